"""Read decay-positron hits from any ROOT file into ns and MeV arrays.

The tree (possibly in sub-directories), branch names, units and the fill key are options, so files
written by other programs can be analysed as they are; ``ringsim simulate`` output is read with the
defaults. A tree is a TTree or an RNTuple, read alike, with one row per hit or one entry per fill
whose vector branches hold the fill's hits (flattened; the entry's scalar branches are repeated for
each of its hits). Trees are read in chunks (``step_size``) and only the needed branches are kept.
Every problem with a file is an ``InputError`` whose one-line message names the file (and
tree/branch); files simulated for different rings are refused.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import awkward as ak
import numpy as np
import uproot

from analysis.fills import ENTRY_KEY, FillKey, fill_numbers
from analysis.selection import evaluate_selection, selection_branches
from analysis.units import mev_per_energy_unit, ns_per_time_unit
from ringsim.errors import ConfigError, InputError
from ringsim.io import open_root, provenance_of

DEFAULT_ENERGY_BRANCH = "energy_mev"
DEFAULT_CALO_BRANCH = "calo"
DEFAULT_FILL_BRANCH = "fill"
DEFAULT_TREE = "events"

TREE_CLASSES = ("TTree", "TNtuple", "TNtupleD", "ROOT::RNTuple")
_MEMORY_SIZE = re.compile(r"\s*(\d+(\.\d*)?|\.\d+)\s*(B|[kMGT]B|[KMGT]iB)\s*", re.IGNORECASE)
_MAX_LISTED = 20


@dataclass(frozen=True)
class EventData:
    """Decay-positron hits read from one or more ROOT files.

    Attributes
    ----------
    time_ns
        Hit times in ns (float64).
    energy_mev
        Hit energies in MeV (float64), or None if the tree has no energy branch.
    calo
        Calorimeter (or detector) index per hit (int64), or None if the tree has none.
    source
        ``"file:tree"``; several files are joined with ``", "``.
    n_entries
        Number of hits (after the selection).
    provenance
        Provenance dict of the first file that has one, ``{}`` if none has.
    fill
        Fill number per hit (int64, dense, see :mod:`analysis.fills`), or None without a fill key.
        Times restart at every fill; pileup pairs hits of one fill only.
    fill_key
        Where the fill numbers come from (:meth:`analysis.fills.FillKey.describe`), or None.
    """

    time_ns: np.ndarray
    energy_mev: np.ndarray | None
    calo: np.ndarray | None
    source: str
    n_entries: int
    provenance: dict = field(default_factory=dict)
    fill: np.ndarray | None = None
    fill_key: str | None = None

    def require_fills(self, what: str) -> np.ndarray:
        """Return the fill numbers; ConfigError saying that ``what`` needs a fill key if there are none."""
        if self.fill is None:
            raise ConfigError(
                f"{what}: needs the fill of every hit, and {self.source} has no branch '{DEFAULT_FILL_BRANCH}'; "
                "name the fill's branches with --fill-branch NAME[,NAME…] (e.g. runNum,subRunNum,eventNum)"
            )
        return self.fill


def listing(names: Sequence[str]) -> str:
    """Comma-separated names, shortened after ``_MAX_LISTED``; ``(none)`` when empty."""
    if not names:
        return "(none)"
    shown = ", ".join(names[:_MAX_LISTED])
    return shown if len(names) <= _MAX_LISTED else f"{shown}, … ({len(names)} in all)"


def provenance_ring(provenance: dict) -> str | None:
    """Return the ring named in a ringsim provenance, or None."""
    return provenance.get("config", {}).get("ring", {}).get("name") if isinstance(provenance.get("config"), dict) else None


def check_same_ring(rings: dict[str, str | None]) -> None:
    """InputError if the provenances of the files (path → ring or None) name different rings."""
    named = [(path, ring) for path, ring in rings.items() if ring is not None]
    for path, ring in named[1:]:
        if ring != named[0][1]:
            raise InputError(f"{path}: simulated for the {ring} ring but {named[0][0]} for the {named[0][1]} ring; fit the files of each ring separately")


def _find_tree(root_file: uproot.ReadOnlyDirectory, path: str, tree: str | None) -> str:
    """Find the tree's path in the file.

    ``tree`` is checked; if it is None, the file's only tree, or its tree ``events`` (the positron
    tree of ringsim run files) when it holds several.
    """
    classnames = root_file.classnames(cycle=False)
    trees = sorted(name for name, classname in classnames.items() if classname in TREE_CLASSES)
    if tree is None:
        if not trees:
            objects = [f"{name} ({classname})" for name, classname in sorted(classnames.items())]
            raise InputError(f"{path}: holds no TTree or RNTuple; objects in the file: {listing(objects)}")
        if len(trees) > 1 and DEFAULT_TREE in trees:
            return DEFAULT_TREE
        if len(trees) > 1:
            raise InputError(f"{path}: holds {len(trees)} trees ({listing(trees)}); name one with --tree")
        return trees[0]
    key = tree.strip("/")
    if key not in classnames:
        raise InputError(f"{path}: no tree '{tree}'; trees in the file: {listing(trees)}")
    if classnames[key] not in TREE_CLASSES:
        raise InputError(f"{path}: '{tree}' is a {classnames[key]}, not a TTree or RNTuple")
    return key


def _roles(tree, source: str, time_branch: str, energy_branch: str | None, calo_branch: str | None, fill_branches: Sequence[str] | None) -> tuple[dict[str, str], list[str] | None]:
    """Branch of each of ``time``, ``energy``, ``calo`` (optional ones only if present), and the fill key's branches."""
    names = tree.keys()
    roles = {"time": time_branch}
    for role, named, default in (("energy", energy_branch, DEFAULT_ENERGY_BRANCH), ("calo", calo_branch, DEFAULT_CALO_BRANCH)):
        if named is not None:
            roles[role] = named
        elif default in names:
            roles[role] = default
    key = list(fill_branches) if fill_branches else ([DEFAULT_FILL_BRANCH] if DEFAULT_FILL_BRANCH in names else None)
    for branch in [*roles.values(), *(key or [])]:
        if branch not in names:
            raise InputError(f"{source}: no branch '{branch}'; branches: {listing(names)}")
    return roles, key


def _jagged_branches(tree, source: str, branches: Sequence[str]) -> dict[str, bool]:
    """For each branch True if it holds a vector of numbers per entry, False for one number; else InputError."""
    sample = tree.arrays(list(branches), entry_stop=1)
    kinds = {}
    for branch in branches:
        content = sample[branch].type.content
        jagged = isinstance(content, ak.types.ListType | ak.types.RegularType)
        number = content.content if jagged else content
        text = content.parameter("__array__") in ("string", "bytestring")
        if text or not (isinstance(number, ak.types.NumpyType) and np.dtype(number.primitive).kind in "iuf"):
            raise InputError(f"{source}: branch '{branch}' holds {tree[branch].typename}; expected numbers (one per entry, or one vector per fill)")
        kinds[branch] = jagged
    return kinds


def _flat_hits(chunk, start: int, kinds: dict[str, bool], time_branch: str, source: str) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Flatten one chunk's branches to one value per hit.

    The chunk holds numpy arrays, or awkward ones for a tree of vectors; returns the hits and each
    hit's entry number (None for one row per hit).
    """
    if not kinds[time_branch]:
        return {branch: chunk[branch] for branch in kinds}, None
    counts = ak.to_numpy(ak.num(chunk[time_branch]))
    hits = {}
    for branch, jagged in kinds.items():
        if not jagged:
            hits[branch] = np.repeat(ak.to_numpy(chunk[branch]), counts)
        elif np.array_equal(ak.to_numpy(ak.num(chunk[branch])), counts):
            hits[branch] = ak.to_numpy(ak.flatten(chunk[branch]))
        else:
            raise InputError(f"{source}: branch '{branch}' holds another number of values per entry than the time branch '{time_branch}'")
    return hits, np.repeat(np.arange(start, start + len(chunk)), counts)


def _read_tree(tree, source: str, branches: list[str], time_branch: str, selection: str | None, step_size) -> tuple[dict[str, np.ndarray], bool]:
    """Read every needed branch of one tree as one array per hit, the selection applied.

    ``ENTRY_KEY`` holds the entry of each hit in a tree of vectors; the flag says whether the tree
    holds one entry per fill (a vector time branch).
    """
    used = selection_branches(selection, source, tree.keys()) if selection is not None else []
    kinds = _jagged_branches(tree, source, sorted(set(branches) | set(used)))
    vectors = sorted(branch for branch, jagged in kinds.items() if jagged)
    if vectors and not kinds[time_branch]:
        raise InputError(
            f"{source}: branch '{vectors[0]}' holds {tree[vectors[0]].typename} but the time branch '{time_branch}' one number per entry; a tree of vectors needs its times in a vector branch too"
        )
    parts: dict[str, list[np.ndarray]] = {branch: [] for branch in [*branches, *([ENTRY_KEY] if vectors else [])]}
    library = "ak" if vectors else "np"
    for chunk, report in tree.iterate(list(kinds), step_size=step_size, report=True, library=library):
        hits, entry = _flat_hits(chunk, report.start, kinds, time_branch, source)
        if entry is not None:
            hits[ENTRY_KEY] = entry
        if selection is not None:
            keep = evaluate_selection(selection, source, {b: hits[b] for b in used}, hits[time_branch].size)
            hits = {name: values[keep] for name, values in hits.items()}
        for name in parts:
            parts[name].append(hits[name])
    return {name: _joined(values) for name, values in parts.items()}, kinds[time_branch]


def _joined(parts: Sequence[np.ndarray]) -> np.ndarray:
    """Join the parts into one array (the part itself, without a copy, when there is one)."""
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _as_index(values: np.ndarray, source: str, branch: str) -> np.ndarray:
    """Calorimeter or fill-key values as int64; floats are accepted if they are whole numbers."""
    if values.dtype.kind in "iu":
        return values.astype(np.int64)
    if not np.all(np.isfinite(values) & (values == np.round(values))):
        raise InputError(f"{source}: branch '{branch}' holds non-integer values; expected integer indices")
    return values.astype(np.int64)


def _converted(hits: dict[str, np.ndarray], roles: dict[str, str], source: str, ns_per_unit: float, mev_per_unit: float) -> dict[str, np.ndarray]:
    """One tree's roles converted to ns / MeV / int64 and checked."""
    time_ns = hits[roles["time"]].astype(np.float64) * ns_per_unit
    n_bad = np.count_nonzero(~(np.isfinite(time_ns) & (time_ns >= 0.0)))
    if n_bad:
        raise InputError(f"{source}: {n_bad} entries have negative or non-finite times")
    columns = {"time": time_ns}
    if "energy" in roles:
        columns["energy"] = hits[roles["energy"]].astype(np.float64) * mev_per_unit
        n_bad = np.count_nonzero(~np.isfinite(columns["energy"]))
        if n_bad:
            raise InputError(f"{source}: {n_bad} entries have non-finite energies")
    if "calo" in roles:
        columns["calo"] = _as_index(hits[roles["calo"]], source, roles["calo"])
    return columns


def _check_step_size(step_size: int | str) -> None:
    """ConfigError unless ``step_size`` is a positive entry count or a size like ``"100 MB"``."""
    if isinstance(step_size, str):
        match = _MEMORY_SIZE.fullmatch(step_size)
        if match and float(match.group(1)) > 0:
            return
    elif isinstance(step_size, int | np.integer) and not isinstance(step_size, bool) and step_size > 0:
        return
    raise ConfigError(f"step_size {step_size!r} must be a positive number of entries or a size like '100 MB'")


def fill_branch_names(text: str | Sequence[str] | None) -> list[str] | None:
    """``"runNum,subRunNum,eventNum"`` (or a list) → branch names; ConfigError for an empty name."""
    if text is None:
        return None
    names = [name.strip() for name in text.split(",")] if isinstance(text, str) else [str(name).strip() for name in text]
    if not names or not all(names) or len(set(names)) != len(names):
        raise ConfigError(f"fill-branch: expected NAME[,NAME…] with distinct names, got {text!r}")
    return names


def read_events(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    tree: str | None = None,
    time_branch: str = "time_ns",
    energy_branch: str | None = None,
    calo_branch: str | None = None,
    time_unit: str = "ns",
    energy_unit: str = "MeV",
    selection: str | None = None,
    step_size: int | str = "100 MB",
    fill_branch: str | Sequence[str] | None = None,
) -> EventData:
    """Read hit times (and energies, calorimeter indices, fills) from one or several ROOT files.

    Parameters
    ----------
    paths
        A ROOT file or a list of them; their entries are concatenated in order.
    tree
        Tree (TTree or RNTuple) path, possibly in sub-directories (``"clusterTree/clusters"``).
        None: the file's only tree (InputError listing them if there are several); the first file
        decides, and every file must hold that tree.
    time_branch
        Branch of hit times, in ``time_unit``: one per entry, or a vector per entry (one entry
        per fill; the other branches are then vectors of the same lengths or one value per fill).
    energy_branch, calo_branch
        Branches of energies (in ``energy_unit``) and calorimeter indices. None: ``"energy_mev"``
        and ``"calo"`` if the tree has them, else the field is None. A named branch must exist.
    time_unit, energy_unit
        Units in the file (:mod:`analysis.units`): e.g. ns, us, ct, 1.25ns; MeV, GeV, keV.
    selection
        Cut on the file's branches, in file units, per hit (``"(E > 1.7) & (t > 30)"``,
        :mod:`analysis.selection`).
    step_size
        Chunk size for reading: entries (int) or memory (``"100 MB"``).
    fill_branch
        Integer branch(es) naming the fill, ``"runNum,subRunNum,eventNum"`` or a list. None: the
        branch ``fill`` if present, else the entry of a one-entry-per-fill tree, else no fills.
        How keys of different files combine: :mod:`analysis.fills`.

    Returns
    -------
    EventData
        Times in ns and energies in MeV, float64.

    Raises
    ------
    InputError
        Unreadable file, missing or ambiguous tree, missing or non-numeric branch, vectors of
        unequal lengths, no entries, negative or non-finite times, non-finite energies, files
        simulated for different rings.
    ConfigError
        Unknown unit, bad ``step_size`` or fill key, or a selection that cannot be evaluated.
    """
    ns_per_unit = ns_per_time_unit(time_unit)
    mev_per_unit = mev_per_energy_unit(energy_unit)
    _check_step_size(step_size)
    fill_names = fill_branch_names(fill_branch)
    files = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    if not files:
        raise ConfigError("read_events: no input files given")

    columns: dict[str, list[np.ndarray]] = {}
    key_columns: list[list[np.ndarray]] = []
    sources, rings, provenance, first, tree_name = [], {}, {}, None, tree
    for path in files:
        with open_root(path) as root_file:
            tree_name = _find_tree(root_file, str(path), tree_name)
            source = f"{path}:{tree_name}"
            ttree = root_file[tree_name]
            if ttree.num_entries == 0:
                raise InputError(f"{source}: tree has no entries")
            roles, key = _roles(ttree, source, time_branch, energy_branch, calo_branch, fill_names)
            file_provenance = provenance_of(root_file, path) or {}
            hits, per_fill = _read_tree(ttree, source, sorted(set(roles.values()) | set(key or [])), time_branch, selection, step_size)
        if key is None and per_fill:
            key = [ENTRY_KEY]
        if first is None:
            first = (roles, key)
        elif (roles.keys(), key) != (first[0].keys(), first[1]):
            raise InputError(
                f"{source}: has branches {sorted(roles.values())} and fill key {key} but {sources[0]} has {sorted(first[0].values())} and {first[1]}; all files must have the same branches"
            )
        rings[str(path)] = provenance_ring(file_provenance)
        provenance = provenance or file_provenance
        for role, values in _converted(hits, roles, source, ns_per_unit, mev_per_unit).items():
            columns.setdefault(role, []).append(values)
        if key is not None:
            key_columns.append([_as_index(hits[branch], source, branch) for branch in key])
        sources.append(source)

    check_same_ring(rings)
    hits = {role: _joined(values) for role, values in columns.items()}
    source = ", ".join(sources)
    if hits["time"].size == 0:
        raise InputError(f"{source}: no entries pass the selection {selection!r}")
    fill_key = None if first[1] is None else FillKey.of(first[1])
    return EventData(
        time_ns=hits["time"],
        energy_mev=hits.get("energy"),
        calo=hits.get("calo"),
        source=source,
        n_entries=int(hits["time"].size),
        provenance=provenance,
        fill=None if fill_key is None else fill_numbers(fill_key, key_columns),
        fill_key=None if fill_key is None else fill_key.describe(),
    )
