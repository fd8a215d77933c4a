"""Read decay-positron events and histograms from any ROOT file into ns and MeV arrays.

The tree (possibly in sub-directories), branch names and units are options, so files written by
other programs can be analysed as they are; ``ringsim simulate`` output is read with the
defaults. Trees are read in chunks (``step_size``) and only the needed branches are kept. Every
problem with a file is an ``InputError`` whose one-line message names the file (and tree/branch).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import uproot

from ringsim.errors import ConfigError, InputError
from ringsim.io import open_root, provenance_of

NS_PER_TIME_UNIT = {"ns": 1.0, "us": 1.0e3, "s": 1.0e9}
MEV_PER_ENERGY_UNIT = {"mev": 1.0, "gev": 1.0e3}
DEFAULT_ENERGY_BRANCH = "energy_mev"
DEFAULT_CALO_BRANCH = "calo"
DEFAULT_FILL_BRANCH = "fill"

_TREE_CLASSES = ("TTree", "TNtuple", "TNtupleD")
_TH1 = re.compile(r"TH1[CSILFD]")
_TH2 = re.compile(r"TH2[CSILFD]")
_MEMORY_SIZE = re.compile(r"\s*(\d+(\.\d*)?|\.\d+)\s*(B|[kMGT]B|[KMGT]iB)\s*", re.IGNORECASE)
_MAX_LISTED = 20


def ns_per_time_unit(unit: str) -> float:
    """Nanoseconds in one ``unit`` (ns, us or s, case-insensitive); ConfigError otherwise."""
    factor = NS_PER_TIME_UNIT.get(str(unit).lower())
    if factor is None:
        raise ConfigError(f"time unit {unit!r} is not one of ns, us, s")
    return factor


def mev_per_energy_unit(unit: str) -> float:
    """MeV in one ``unit`` (MeV or GeV, case-insensitive); ConfigError otherwise."""
    factor = MEV_PER_ENERGY_UNIT.get(str(unit).lower())
    if factor is None:
        raise ConfigError(f"energy unit {unit!r} is not one of MeV, GeV")
    return factor


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
        Provenance dict of the first file, ``{}`` if it has none.
    fill
        Fill number per hit (int64, read from a ``fill`` branch when the tree has one), or None.
        Times restart at every fill; pileup pairs hits of one fill only.
    """

    time_ns: np.ndarray
    energy_mev: np.ndarray | None
    calo: np.ndarray | None
    source: str
    n_entries: int
    provenance: dict = field(default_factory=dict)
    fill: np.ndarray | None = None


class Histogram(NamedTuple):
    """A time (TH1) or time × energy (TH2) histogram in ns and MeV.

    Attributes
    ----------
    counts
        Bin contents without under/overflow, float64; shape (n_time,) or (n_time, n_energy).
    edges
        TH1: time edges in ns, shape (n_time + 1,). TH2: tuple (time edges in ns, energy edges
        in MeV).
    unit_note
        How the axes were interpreted, with their titles in the file, e.g. for a plot caption.
    """

    counts: np.ndarray
    edges: np.ndarray | tuple[np.ndarray, np.ndarray]
    unit_note: str


def _listing(names: Sequence[str]) -> str:
    """Comma-separated names, shortened after ``_MAX_LISTED``; ``(none)`` when empty."""
    if not names:
        return "(none)"
    shown = ", ".join(names[:_MAX_LISTED])
    return shown if len(names) <= _MAX_LISTED else f"{shown}, … ({len(names)} in all)"


DEFAULT_TREE = "events"


def _find_tree(root_file: uproot.ReadOnlyDirectory, path: str, tree: str | None) -> str:
    """The tree's path in the file: ``tree`` checked; if ``tree`` is None, the file's only TTree, or
    its tree ``events`` (the positron tree of ringsim run files) when it holds several."""
    classnames = root_file.classnames(cycle=False)
    trees = sorted(name for name, classname in classnames.items() if classname in _TREE_CLASSES)
    if tree is None:
        if not trees:
            objects = [f"{name} ({classname})" for name, classname in sorted(classnames.items())]
            raise InputError(f"{path}: holds no TTree; objects in the file: {_listing(objects)}")
        if len(trees) > 1 and DEFAULT_TREE in trees:
            return DEFAULT_TREE
        if len(trees) > 1:
            raise InputError(f"{path}: holds {len(trees)} TTrees ({_listing(trees)}); name one with --tree")
        return trees[0]
    key = tree.strip("/")
    if key not in classnames:
        raise InputError(f"{path}: no tree '{tree}'; TTrees in the file: {_listing(trees)}")
    if classnames[key] not in _TREE_CLASSES:
        raise InputError(f"{path}: '{tree}' is a {classnames[key]}, not a TTree")
    return key


def _check_branch(ttree: uproot.TTree, source: str, branch: str) -> None:
    """InputError unless ``branch`` exists and holds one number per entry."""
    names = ttree.keys()
    if branch not in names:
        raise InputError(f"{source}: no branch '{branch}'; branches: {_listing(names)}")
    interpretation = ttree[branch].interpretation
    numeric = isinstance(
        interpretation,
        (uproot.interpretation.numerical.AsDtype, uproot.interpretation.numerical.TruncatedNumerical),
    )
    if not numeric or interpretation.to_dtype.shape != () or interpretation.to_dtype.kind not in "iuf":
        raise InputError(
            f"{source}: branch '{branch}' holds {ttree[branch].typename}; expected one number per entry"
        )


def _branch_roles(
    ttree: uproot.TTree, source: str, time_branch: str, energy_branch: str | None, calo_branch: str | None
) -> dict[str, str]:
    """Branch to read for each of ``time``, ``energy``, ``calo`` (optional ones only if present)."""
    roles = {"time": time_branch}
    for role, named, default in (
        ("energy", energy_branch, DEFAULT_ENERGY_BRANCH),
        ("calo", calo_branch, DEFAULT_CALO_BRANCH),
        ("fill", None, DEFAULT_FILL_BRANCH),
    ):
        if named is not None:
            roles[role] = named
        elif default in ttree.keys():
            roles[role] = default
    for branch in roles.values():
        _check_branch(ttree, source, branch)
    return roles


def _check_selection(ttree: uproot.TTree, source: str, branch: str, selection: str) -> None:
    """ConfigError if ``selection`` cannot be evaluated on the first entries of the tree."""
    try:
        ttree.arrays([branch], cut=selection, entry_stop=2, library="np")
    except (SyntaxError, NameError, KeyError, ValueError, TypeError, AttributeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"selection {selection!r} cannot be evaluated on {source} ({reason})") from None


def _as_calo(values: np.ndarray, source: str, branch: str) -> np.ndarray:
    """Calorimeter (or fill) indices as int64; floats are accepted if they are whole numbers."""
    if values.dtype.kind in "iu":
        return values.astype(np.int64)
    if not np.all(np.isfinite(values) & (values == np.round(values))):
        raise InputError(
            f"{source}: branch '{branch}' holds non-integer values; expected integer indices"
        )
    return values.astype(np.int64)


def _concatenate_scaled(parts: list[np.ndarray], factor: float) -> np.ndarray:
    """Chunks joined into one float64 array and multiplied by ``factor`` (unit conversion)."""
    values = np.concatenate(parts, dtype=np.float64)
    values *= factor
    return values


def _converted(
    parts: dict[str, list[np.ndarray]],
    roles: dict[str, str],
    source: str,
    ns_per_unit: float,
    mev_per_unit: float,
) -> dict[str, np.ndarray]:
    """One tree's chunks joined per role, converted to ns / MeV / int64 and checked."""
    time_ns = _concatenate_scaled(parts["time"], ns_per_unit)
    n_bad = np.count_nonzero(~(np.isfinite(time_ns) & (time_ns >= 0.0)))
    if n_bad:
        raise InputError(f"{source}: {n_bad} entries have negative or non-finite times")
    columns = {"time": time_ns}
    if "energy" in parts:
        columns["energy"] = _concatenate_scaled(parts["energy"], mev_per_unit)
        n_bad = np.count_nonzero(~np.isfinite(columns["energy"]))
        if n_bad:
            raise InputError(f"{source}: {n_bad} entries have non-finite energies")
    for role in ("calo", "fill"):
        if role in parts:
            columns[role] = _as_calo(np.concatenate(parts[role]), source, roles[role])
    return columns


def _check_step_size(step_size: int | str) -> None:
    """ConfigError unless ``step_size`` is a positive entry count or a size like ``"100 MB"``."""
    if isinstance(step_size, str):
        match = _MEMORY_SIZE.fullmatch(step_size)
        if match and float(match.group(1)) > 0:
            return
    elif isinstance(step_size, int | np.integer) and not isinstance(step_size, bool) and step_size > 0:
        return
    raise ConfigError(
        f"step_size {step_size!r} must be a positive number of entries or a size like '100 MB'"
    )


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
) -> EventData:
    """Read hit times (and energies, calorimeter indices) from one or several ROOT files.

    Parameters
    ----------
    paths
        A ROOT file or a list of them; their entries are concatenated in order.
    tree
        Tree path, possibly in sub-directories (``"run1/calo/hits"``). None: the file's only
        TTree (InputError listing them if there are several); the first file decides, and every
        file must hold that tree.
    time_branch
        Branch of hit times, in ``time_unit``.
    energy_branch, calo_branch
        Branches of energies (in ``energy_unit``) and calorimeter indices. None: ``"energy_mev"``
        and ``"calo"`` if the tree has them, else the field is None. A named branch must exist.
    time_unit, energy_unit
        Units in the file: ns, us or s; MeV or GeV (case-insensitive).
    selection
        uproot cut expression on the file's branches, in file units (``"(E > 1.7) & (t > 30)"``).
    step_size
        Chunk size for reading: entries (int) or memory (``"100 MB"``).

    Returns
    -------
    EventData
        Times in ns and energies in MeV, float64.

    Raises
    ------
    InputError
        Unreadable file, missing or ambiguous tree, missing or non-scalar branch, no entries,
        negative or non-finite times, non-finite energies.
    ConfigError
        Unknown unit, bad ``step_size`` or a selection that cannot be evaluated.
    """
    ns_per_unit = ns_per_time_unit(time_unit)
    mev_per_unit = mev_per_energy_unit(energy_unit)
    _check_step_size(step_size)
    files = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    if not files:
        raise ConfigError("read_events: no input files given")

    columns: dict[str, list[np.ndarray]] = {}
    sources, provenance, first_roles, tree_name = [], {}, None, tree
    for path in files:
        with open_root(path) as root_file:
            tree_name = _find_tree(root_file, str(path), tree_name)
            source = f"{path}:{tree_name}"
            ttree = root_file[tree_name]
            if ttree.num_entries == 0:
                raise InputError(f"{source}: tree has no entries")
            roles = _branch_roles(ttree, source, time_branch, energy_branch, calo_branch)
            if first_roles is None:
                first_roles, provenance = roles, provenance_of(root_file, path) or {}
            elif roles.keys() != first_roles.keys():
                raise InputError(
                    f"{source}: has branches {sorted(roles.values())} but {sources[0]} has "
                    f"{sorted(first_roles.values())}; all files must have the same branches"
                )
            if selection is not None:
                _check_selection(ttree, source, time_branch, selection)
            parts = {role: [] for role in roles}
            for chunk in ttree.iterate(
                sorted(set(roles.values())), cut=selection, step_size=step_size, library="np"
            ):
                for role, branch in roles.items():
                    parts[role].append(chunk[branch])
        for role, values in _converted(parts, roles, source, ns_per_unit, mev_per_unit).items():
            columns.setdefault(role, []).append(values)
        sources.append(source)

    joined = {role: np.concatenate(values) for role, values in columns.items()}
    source = ", ".join(sources)
    if joined["time"].size == 0:
        raise InputError(f"{source}: no entries pass the selection {selection!r}")
    return EventData(
        time_ns=joined["time"],
        energy_mev=joined.get("energy"),
        calo=joined.get("calo"),
        source=source,
        n_entries=int(joined["time"].size),
        provenance=provenance,
        fill=joined.get("fill"),
    )


def _axis(
    hist: uproot.behaviors.TH1.Histogram, index: int, quantity: str, unit: str, factor: float, target: str
) -> tuple[np.ndarray, str]:
    """Bin edges of axis ``index`` multiplied by ``factor``, and a note naming the axis and units."""
    edges = np.asarray(hist.axis(index).edges(flow=False), dtype=np.float64) * factor
    title = hist.member("fXaxis" if index == 0 else "fYaxis").member("fTitle")
    return edges, f"{quantity} axis{f' {title!r}' if title else ''} read in {unit}, edges in {target}"


def read_histogram(
    path: str | os.PathLike, name: str, time_unit: str = "ns", energy_unit: str = "MeV"
) -> Histogram:
    """Read a time histogram (TH1) or time × energy histogram (TH2, time on x) from a ROOT file.

    Parameters
    ----------
    path
        ROOT file.
    name
        Histogram path in the file, possibly in sub-directories.
    time_unit, energy_unit
        Units of the x (time) and y (energy) axes in the file: ns, us or s; MeV or GeV.

    Returns
    -------
    Histogram
        ``(counts, edges, unit_note)`` with edges in ns (and MeV).

    Raises
    ------
    InputError
        Unreadable file, missing object, an object that is not a TH1/TH2, non-finite counts.
    """
    ns_per_unit = ns_per_time_unit(time_unit)
    mev_per_unit = mev_per_energy_unit(energy_unit)
    with open_root(path) as root_file:
        classnames = root_file.classnames(cycle=False)
        histograms = sorted(
            key for key, cls in classnames.items() if _TH1.fullmatch(cls) or _TH2.fullmatch(cls)
        )
        key = name.strip("/")
        if key not in classnames:
            raise InputError(f"{path}: no histogram '{name}'; histograms in the file: {_listing(histograms)}")
        if key not in histograms:
            raise InputError(f"{path}: '{name}' is a {classnames[key]}, expected a TH1 or TH2 histogram")
        hist = root_file[key]
        counts = np.asarray(hist.values(flow=False), dtype=np.float64)
        time_edges_ns, note = _axis(hist, 0, "time", time_unit, ns_per_unit, "ns")
        if counts.ndim == 2:
            energy_edges_mev, energy_note = _axis(hist, 1, "energy", energy_unit, mev_per_unit, "MeV")
            note += f"; {energy_note}"
    n_bad = np.count_nonzero(~np.isfinite(counts))
    if n_bad:
        raise InputError(f"{path}:{name}: {n_bad} bins have non-finite counts")
    edges = (time_edges_ns, energy_edges_mev) if counts.ndim == 2 else time_edges_ns
    return Histogram(counts=counts, edges=edges, unit_note=note)
