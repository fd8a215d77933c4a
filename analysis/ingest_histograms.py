"""Read time (TH1), time × energy (TH2) and time × energy × calorimeter (TH3) histograms in ns and MeV.

``name`` is an object path or a shell-style pattern (``'clusters/calo*/hTimeEnergy'``,
``'Calo*_Times_And_Energies'``); every matching histogram of every file is summed, and all must
have the same dimension and bin edges. Time is the x axis, energy the y axis, and the z axis of a
TH3 the calorimeter (its bins are fitted as stations). Histograms with stored per-bin variances
(Sumw2) that differ from their contents (weighted or pileup-subtracted ones, which may have
negative bins) carry those variances; a negative bin without Sumw2 and profiles (TProfile: means,
not counts) are refused. Every error names the file and the object.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from analysis.ingest import check_same_ring, listing, provenance_ring
from analysis.units import mev_per_energy_unit, ns_per_time_unit
from ringsim.errors import ConfigError, InputError
from ringsim.io import open_root, provenance_of

_HISTOGRAM = re.compile(r"TH[123][CSILFD]")
_PROFILE = re.compile(r"TProfile(2D|3D)?")
_AXES = ("fXaxis", "fYaxis", "fZaxis")


class Histogram(NamedTuple):
    """A time (TH1), time × energy (TH2) or time × energy × calorimeter (TH3) histogram in ns and MeV.

    Attributes
    ----------
    counts
        Summed bin contents without under/overflow, float64; shape (n_time,), (n_time, n_energy)
        or (n_time, n_energy, n_station).
    edges
        TH1: time edges in ns, shape (n_time + 1,). TH2 and TH3: tuple (time edges in ns, energy
        edges in MeV).
    unit_note
        How the axes were interpreted, with their titles in the file, e.g. for a plot caption.
    variance
        Summed Sumw2 per bin (shape of ``counts``) where it differs from the contents, else None
        (Poisson counts).
    stations
        TH3: calorimeter number of each z bin (its centre when the centres are whole numbers, else
        the bin index); None otherwise.
    source
        ``file:object`` of every match, joined with ``", "``.
    provenance
        Provenance dict of the first file that has one, ``{}`` if none has.
    """

    counts: np.ndarray
    edges: np.ndarray | tuple[np.ndarray, np.ndarray]
    unit_note: str
    variance: np.ndarray | None = None
    stations: np.ndarray | None = None
    source: str = ""
    provenance: dict | None = None


def _axis_edges(hist, index: int) -> np.ndarray:
    return np.asarray(hist.axis(index).edges(flow=False), dtype=np.float64)


def _note(hist, time_unit: str, energy_unit: str) -> str:
    """How the axes of ``hist`` are read, with their titles."""
    parts = []
    for index, (quantity, unit, target) in enumerate((("time", time_unit, "ns"), ("energy", energy_unit, "MeV"), ("calorimeter", "bins", "stations"))[: len(hist.axes)]):
        title = hist.member(_AXES[index]).member("fTitle")
        parts.append(f"{quantity} axis{f' {title!r}' if title else ''} read in {unit}, edges in {target}")
    return "; ".join(parts)


def _matches(classnames: dict[str, str], name: str, path: str) -> list[str]:
    """Object paths matching ``name`` (a path or a pattern), each checked to be a histogram of counts."""
    key = name.strip("/")
    histograms = sorted(k for k, cls in classnames.items() if _HISTOGRAM.fullmatch(cls))
    if any(char in key for char in "*?["):
        found = sorted(k for k, cls in classnames.items() if fnmatch.fnmatchcase(k, key) and (_HISTOGRAM.fullmatch(cls) or _PROFILE.fullmatch(cls)))
    else:
        found = [key] if key in classnames else []
    if not found:
        raise InputError(f"{path}: no histogram matches '{name}'; histograms in the file: {listing(histograms)}")
    for k in found:
        if _PROFILE.fullmatch(classnames[k]):
            raise InputError(f"{path}:{k}: is a {classnames[k]}, a profile of mean values per bin, not counts; expected a TH1, TH2 or TH3 histogram")
        if not _HISTOGRAM.fullmatch(classnames[k]):
            raise InputError(f"{path}:{k}: is a {classnames[k]}, expected a TH1, TH2 or TH3 histogram")
    return found


def _contents(hist, source: str) -> tuple[np.ndarray, np.ndarray, bool]:
    """Return counts, variances and whether the variances are stored (Sumw2) and differ from the counts."""
    counts = np.asarray(hist.values(flow=False), dtype=np.float64)
    n_bad = np.count_nonzero(~np.isfinite(counts))
    if n_bad:
        raise InputError(f"{source}: {n_bad} bins have non-finite counts")
    if len(hist.member("fSumw2")) == 0:
        n_negative = np.count_nonzero(counts < 0.0)
        if n_negative:
            raise InputError(f"{source}: {n_negative} bins are negative and the histogram stores no Sumw2; a subtracted histogram needs its per-bin variances (Sumw2)")
        return counts, counts, False
    variance = np.asarray(hist.variances(flow=False), dtype=np.float64)
    if not np.all(np.isfinite(variance) & (variance >= 0.0)):
        raise InputError(f"{source}: Sumw2 holds negative or non-finite variances")
    return counts, variance, not np.array_equal(variance, counts)


def _stations(edges: np.ndarray) -> np.ndarray:
    centres = 0.5 * (edges[:-1] + edges[1:])
    whole = np.all(np.abs(centres - np.round(centres)) < 1e-9)
    return np.round(centres).astype(np.int64) if whole else np.arange(centres.size, dtype=np.int64)


def read_histogram(paths: str | os.PathLike | Sequence[str | os.PathLike], name: str, time_unit: str = "ns", energy_unit: str = "MeV") -> Histogram:
    """Read and sum the TH1, TH2 or TH3 histograms ``name`` (a path or a pattern) of one or several files.

    Parameters
    ----------
    paths
        A ROOT file or a list of them; each must hold at least one match.
    name
        Histogram path in the file, possibly in sub-directories, or a pattern with ``*``, ``?``,
        ``[…]`` matched against the full paths.
    time_unit, energy_unit
        Units of the x (time) and y (energy) axes in the file (:mod:`analysis.units`).

    Returns
    -------
    Histogram
        Summed counts with edges in ns (and MeV), variances where weighted, TH3 stations.

    Raises
    ------
    InputError
        Unreadable file, no match, a match that is not a histogram of counts (TProfile), matches of
        different dimension or binning, non-finite counts, negative bins without Sumw2, files
        simulated for different rings.
    ConfigError
        Unknown unit.
    """
    ns_per_unit = ns_per_time_unit(time_unit)
    mev_per_unit = mev_per_energy_unit(energy_unit)
    files = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    if not files:
        raise ConfigError("read_histogram: no input files given")
    total = first = None
    weighted, sources, rings, provenance = False, [], {}, {}
    for path in files:
        with open_root(path) as root_file:
            file_provenance = provenance_of(root_file, path) or {}
            for key in _matches(root_file.classnames(cycle=False), name, str(path)):
                source = f"{path}:{key}"
                hist = root_file[key]
                counts, variance, stored = _contents(hist, source)
                edges = [_axis_edges(hist, index) for index in range(counts.ndim)]
                if first is None:
                    first, total, note = (source, edges), [counts, variance], _note(hist, time_unit, energy_unit)
                elif len(edges) != len(first[1]) or any(e.shape != f.shape or not np.array_equal(e, f) for e, f in zip(edges, first[1], strict=False)):
                    raise InputError(f"{source}: has other bins ({counts.ndim}-d, shape {counts.shape}) than {first[0]}; histograms are summed bin by bin")
                else:
                    total[0] = total[0] + counts
                    total[1] = total[1] + variance
                weighted = weighted or stored
                sources.append(source)
        rings[str(path)] = provenance_ring(file_provenance)
        provenance = provenance or file_provenance
    check_same_ring(rings)
    edges = first[1]
    time_edges_ns = edges[0] * ns_per_unit
    return Histogram(
        counts=total[0],
        edges=time_edges_ns if len(edges) == 1 else (time_edges_ns, edges[1] * mev_per_unit),
        unit_note=note,
        variance=total[1] if weighted else None,
        stations=_stations(edges[2]) if len(edges) == 3 else None,
        source=", ".join(sources),
        provenance=provenance,
    )
