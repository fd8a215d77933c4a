"""Progress bars and waiting notes: shown on a terminal, silent in CI and when output is redirected."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import ModuleType

from tqdm import tqdm

__all__ = ["announce", "announce_compilation", "progress_bar", "uncompiled"]


def _interactive() -> bool:
    return sys.stderr.isatty() and not os.environ.get("CI")


def announce(message: str) -> None:
    """Say on stderr what is being done while the user waits (only on an interactive terminal)."""
    if _interactive():
        print(message, file=sys.stderr, flush=True)


def uncompiled(modules: list[ModuleType]) -> list[str]:
    """Names of the modules whose numba kernels have no on-disk cache yet (numba writes ``__pycache__/<module>.*.nbi``)."""
    names = []
    for module in modules:
        path = Path(module.__file__)
        if not any((path.parent / "__pycache__").glob(f"{path.stem}.*.nbi")):
            names.append(module.__name__)
    return names


def announce_compilation(modules: list[ModuleType], what: str) -> None:
    """Say that numba is compiling before a first call whose kernels have no cache (first run after install)."""
    names = uncompiled(modules)
    if names:
        announce(f"{what}: compiling the numba kernels of {', '.join(names)} (first run after install, about a minute; later runs use the cache)")


def progress_bar(total: int, unit: str, enabled: bool | None = None) -> tqdm:
    """Return a tqdm bar (context manager); ``enabled=None`` shows it only on an interactive stderr outside CI."""
    if enabled is None:
        enabled = _interactive()
    return tqdm(total=total, unit=unit, unit_scale=True, disable=not enabled, leave=False, dynamic_ncols=True)
