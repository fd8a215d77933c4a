"""Argument types and the parser class of the command line, shared by every subcommand."""

from __future__ import annotations

import argparse

from ringsim.errors import ConfigError

__all__ = ["MAX_COUNT", "Parser", "nonneg_int", "positive_count"]

MAX_COUNT = 10**12  # largest --positrons/--muons (also bounded by the free disk space)


class Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors follow the one-line contract (``error: …``, exit 2) instead of a usage block."""

    def error(self, message: str):
        """Raise the message as a ConfigError (one line, exit 2) instead of printing usage."""
        raise ConfigError(f"{self.prog}: {message}")


def positive_count(text: str) -> int:
    """Parse a count: a positive integer (``1e6`` allowed) of at most :data:`MAX_COUNT`."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if not (0 < value <= MAX_COUNT and value == int(value)):
        raise argparse.ArgumentTypeError(f"expected a positive integer ≤ {MAX_COUNT:.0e}, got {text!r}")
    return int(value)


def nonneg_int(text: str) -> int:
    """Parse a non-negative integer (a seed)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value
