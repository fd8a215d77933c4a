"""Progress bars: shown on a terminal, silent in CI and when output is redirected."""

from __future__ import annotations

import os
import sys

from tqdm import tqdm


def progress_bar(total: int, unit: str, enabled: bool | None = None) -> tqdm:
    """A tqdm bar (context manager); ``enabled=None`` shows it only on an interactive stderr outside CI."""
    if enabled is None:
        enabled = sys.stderr.isatty() and not os.environ.get("CI")
    return tqdm(total=total, unit=unit, unit_scale=True, disable=not enabled, leave=False, dynamic_ncols=True)
