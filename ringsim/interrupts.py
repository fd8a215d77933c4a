"""SIGINT and SIGTERM as one exception, deferred while numba kernels run.

An interrupt that lands inside a compiled (possibly multi-threaded) kernel surfaces as a
``SystemError`` from numba's machinery instead of a clean ``KeyboardInterrupt``. The command line
therefore installs :func:`install_handlers`: outside :func:`deferred` a signal raises
:class:`Interrupted` at once; inside, it is remembered and raised when the block ends, so a kernel
always finishes its block and what was finished is kept for a resume.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["Interrupted", "deferred", "install_handlers", "restore_handlers"]

_state = {"depth": 0, "pending": None}


class Interrupted(KeyboardInterrupt):
    """A SIGINT or SIGTERM; ``signum`` says which (exit status 128 + signum)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _handler(signum, frame) -> None:
    if _state["depth"] > 0:
        _state["pending"] = signum
        return
    raise Interrupted(signum)


def install_handlers() -> dict:
    """Route SIGINT and SIGTERM to :class:`Interrupted` (from the main thread); return the previous handlers."""
    _state["pending"] = None
    return {signum: signal.signal(signum, _handler) for signum in (signal.SIGINT, signal.SIGTERM)}


def restore_handlers(previous: dict) -> None:
    """Put back the handlers :func:`install_handlers` replaced."""
    for signum, handler in previous.items():
        signal.signal(signum, handler)


@contextmanager
def deferred() -> Iterator[None]:
    """Hold signals while the body runs (a numba kernel), then raise the first one that came."""
    _state["depth"] += 1
    try:
        yield
    finally:
        _state["depth"] -= 1
        pending = _state["pending"]
        if _state["depth"] == 0 and pending is not None:
            _state["pending"] = None
            raise Interrupted(pending)
