"""The resume files of a run: one part file per finished block in ``.NAME.parts/``, and the request that identifies the run (a resumed run must ask for exactly the same)."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import sys
from pathlib import Path

import numpy as np

import ringsim
from ringsim.config import SimConfig
from ringsim.constants import codata
from ringsim.errors import InputError
from ringsim.simulate import Block


def run_request(cfg: SimConfig, mode: str, n_positrons: int | None, n_muons: int | None, seed: int, codata_edition: int, truth: bool) -> dict:
    """Return what identifies a run: a resumed run must ask for exactly the same."""
    return {
        "version": ringsim.__version__,
        "mode": mode,
        "seed": seed,
        "codata": codata(codata_edition).name,
        "requested": {"positrons": n_positrons, "muons": n_muons},
        "truth_tree": truth,
        "config": cfg.to_dict(),
    }


def parts_folder(path: Path) -> Path:
    """Return the resume folder ``.NAME.parts`` beside the run file ``path``."""
    return path.with_name(f".{path.name}.parts")


def finished_parts(folder: Path, request: dict) -> list[Path]:
    """Parts of an interrupted run of the same request, in block order (contiguous from block 0)."""
    meta = folder / "request.json"
    try:
        previous = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise InputError(f"{folder}: unfinished-run folder without a readable request.json; remove it") from None
    asked = json.loads(json.dumps(request))
    if previous != asked:
        differing = sorted(k for k in set(previous) | set(asked) if previous.get(k) != asked.get(k))
        raise InputError(f"{folder}: holds an interrupted run of a different request (differs in: {', '.join(differing)}); remove it or repeat that command")
    for stale in folder.glob(".*.tmp*"):  # a part or run file being written when the run was stopped
        stale.unlink()
    parts = []
    for block in itertools.count():
        part = folder / f"block-{block:06d}.part"
        if not part.exists():
            return parts
        if _part_contents(part) is None:  # damaged: made again, with every later block
            later = [p for p in folder.glob("block-*.part") if int(p.stem.removeprefix("block-")) >= block]
            for damaged in later:
                damaged.unlink()
            print(f"note: {part} is damaged (size, header or checksum); it and {len(later) - 1} later block(s) are made again", file=sys.stderr)
            return parts
        parts.append(part)


_PART_PREFIXES = ("e.", "l.", "t.")  # positrons, lost muons, truth


def save_part(folder: Path, block: Block) -> Path:
    """Save block ``block`` as one file, written under a temporary name and renamed; return it.

    Layout: the byte length of a JSON header, the header (``arrays``: (table prefix + key, dtype,
    length) of each array; ``sha256``: of the arrays' bytes), then the arrays' bytes in its order.
    """
    arrays = {prefix + k: np.ascontiguousarray(v) for prefix, table in zip(_PART_PREFIXES, (block.positrons, block.lost, block.truth or {})) for k, v in table.items()}
    digest = hashlib.sha256()
    for a in arrays.values():
        digest.update(a)  # contiguous: hashed in place, no copy
    contents = json.dumps({"arrays": [[name, a.dtype.str, a.size] for name, a in arrays.items()], "sha256": digest.hexdigest()}).encode()
    tmp = folder / f".block-{block.number:06d}.tmp"
    with open(tmp, "wb") as handle:
        handle.write(len(contents).to_bytes(8, "little"))
        handle.write(contents)
        for a in arrays.values():
            a.tofile(handle)
    part = folder / f"block-{block.number:06d}.part"
    os.replace(tmp, part)
    return part


def _part_contents(part: Path) -> tuple[int, list[tuple[str, np.dtype, int]]] | None:
    """Return where the arrays of a saved block start and its table of contents (name, dtype, length of each).

    None if the file is damaged: unreadable, a non-numeric dtype, lengths that do not add up to its
    size, or arrays whose checksum differs from the one saved with them.
    """
    try:
        with open(part, "rb") as handle:
            file_bytes = os.fstat(handle.fileno()).st_size
            n_header = int.from_bytes(handle.read(8), "little")
            if n_header > file_bytes - 8:
                return None
            header = json.loads(handle.read(n_header))
            contents = [(str(name), np.dtype(dtype), size) for name, dtype, size in header["arrays"]]
            if any(dtype.kind not in "biuf" or type(size) is not int or size < 0 for _, dtype, size in contents):
                return None
            if 8 + n_header + sum(size * dtype.itemsize for _, dtype, size in contents) != file_bytes:
                return None
            digest = hashlib.sha256()
            while chunk := handle.read(1 << 24):
                digest.update(chunk)
            if digest.hexdigest() != header["sha256"]:
                return None  # a flipped byte anywhere in the arrays
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return 8 + n_header, contents


def load_part(part: Path, prefix: str) -> dict[str, np.ndarray]:
    """One table of a saved block: positrons (``"e."``), lost muons (``"l."``) or truth (``"t."``, empty when not asked for)."""
    layout = _part_contents(part)
    if layout is None:
        raise InputError(f"{part}: damaged block of an interrupted run; remove {part.parent}")
    start, contents = layout
    table = {}
    with open(part, "rb") as handle:
        handle.seek(start)
        for name, dtype, size in contents:
            if name.startswith(prefix):
                table[name[len(prefix) :]] = np.fromfile(handle, dtype=dtype, count=size)
            else:
                handle.seek(size * dtype.itemsize, os.SEEK_CUR)
    return table
