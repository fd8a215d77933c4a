"""One writer per output: a lock file ``.NAME.lock`` beside the output, holding the writer's process id.

A second ringsim asked to write the same output while the first runs is refused with the error
contract instead of racing it (deleting its live temporaries, computing its tasks twice). A lock
left by a process that no longer exists (killed) is stale and taken over.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ringsim.errors import InputError

__all__ = ["exclusive_output"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


@contextmanager
def exclusive_output(target: str | os.PathLike) -> Iterator[None]:
    """Hold the lock of ``target`` while the body writes it; InputError if a live process holds it."""
    target = Path(target)
    lock = target.with_name(f".{target.name}.lock")
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid = int(lock.read_text(encoding="ascii").strip() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid and pid != os.getpid() and _alive(pid):
                raise InputError(f"{target}: another ringsim (process {pid}) is writing it; wait for it to end or stop it (lock {lock})") from None
            lock.unlink(missing_ok=True)  # stale: its writer is gone
            continue
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(str(os.getpid()))
        break
    else:
        raise InputError(f"{target}: cannot take the lock {lock}")
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
