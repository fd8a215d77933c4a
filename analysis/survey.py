"""A survey of any ROOT file for ``ringsim inspect``: its trees, RNTuples and histograms, and the ``ringsim fit`` options that read it.

Branch roles are guessed from their names (the Fermilab ``clusterTree`` and ``crystalTreeMaker``
ntuples, ringsim's own files, common spellings), the time unit from the decay of the hit times
(the apparent lifetime against γτ of each ring: docs/physics.md §3, §5) and the energy unit from
the median energy. The guesses are proposals for the user to check, and say so.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from analysis.ingest import TREE_CLASSES
from analysis.units import ns_per_time_unit
from ringsim.errors import InputError
from ringsim.io import open_root

__all__ = ["ObjectSurvey", "survey_file"]

_HISTOGRAMS = re.compile(r"TH[123][CSILFD]|TProfile2?D?")
_ROLE_NAMES = {  # role → branch names in order of preference (compared case-insensitively)
    "time": ("time_ns", "time", "t", "clustertime", "hittime", "t_ns", "times"),
    "energy": ("energy_mev", "energy", "e", "edep", "clusterenergy", "energies"),
    "calo": ("calo", "calonum", "caloindex", "calorimeter", "station", "detector", "vane"),
}
_FILL_KEYS = (("runnum", "subrunnum", "eventnum"), ("runindex", "subrunindex", "fillindex"), ("run", "subrun", "event"), ("fill",), ("fillnum",), ("fillindex",))  # composite keys first
_CANDIDATE_TIME_UNITS = ("ns", "ct", "us", "s")


def _gamma_tau_ns() -> dict[str, float]:
    """Return the dilated muon lifetime γτ of each ring preset, ns (docs/physics.md §3, §5)."""
    from ringsim.config import RINGS, load_config
    from ringsim.rings import ring_kinematics

    return {ring: ring_kinematics(load_config(ring)).gamma_tau_us * 1e3 for ring in RINGS}


_SAMPLE_ROWS = 200_000


@dataclass
class ObjectSurvey:
    """One object of a file: its path, class, entries, branches (name → type) and the proposed fit options."""

    path: str
    classname: str
    entries: int
    branches: dict[str, str] = field(default_factory=dict)
    options: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Return the JSON form."""
        return {"path": self.path, "class": self.classname, "entries": self.entries, "branches": self.branches, "fit_options": self.options, "notes": self.notes}


def _role(branches: dict[str, str], role: str) -> str | None:
    lower = {name.lower(): name for name in branches}
    return next((lower[n] for n in _ROLE_NAMES[role] if n in lower), None)


def _fill_key(branches: dict[str, str]) -> list[str] | None:
    lower = {name.lower(): name for name in branches}
    return next(([lower[n] for n in key] for key in _FILL_KEYS if all(n in lower for n in key)), None)


def _time_unit(times: np.ndarray) -> tuple[str, str, str]:
    """Return (unit, ring, note): the unit and ring whose γτ the apparent lifetime of the hits matches best.

    The apparent lifetime is the mean of the times beyond their 20th percentile, less that
    percentile (an exponential's memorylessness; the wiggle averages out over many periods).
    """
    t = times[np.isfinite(times)]
    if t.size < 100:
        return "ns", "fnal", "too few hits to judge the time unit"
    start = float(np.quantile(t, 0.2))
    tail = t[t > start]
    lifetime = float(np.mean(tail) - start)
    if not lifetime > 0.0:
        return "ns", "fnal", "the hit times do not decay; check the time branch"
    gamma_tau_ns = _gamma_tau_ns()
    unit, ring = min(((u, r) for u in _CANDIDATE_TIME_UNITS for r in gamma_tau_ns), key=lambda ur: abs(math.log(lifetime * ns_per_time_unit(ur[0]) / gamma_tau_ns[ur[1]])))
    return unit, ring, f"apparent lifetime {lifetime:.4g} (file units) = {lifetime * ns_per_time_unit(unit) * 1e-3:.3g} μs if the unit is {unit}: γτ of {ring} is {gamma_tau_ns[ring] * 1e-3:.3g} μs"


def _energy_unit(energies: np.ndarray) -> str:
    e = energies[np.isfinite(energies) & (energies > 0)]
    return "GeV" if e.size and float(np.median(e)) < 10.0 else "MeV"


def _sample(tree, name: str) -> np.ndarray:
    """Return up to _SAMPLE_ROWS values of branch ``name`` (flattened when it is a vector)."""
    import awkward as ak

    values = tree.arrays([name], entry_stop=min(tree.num_entries, _SAMPLE_ROWS), library="ak")[name]
    return np.asarray(ak.flatten(values, axis=None), dtype=float)


def _survey_tree(path: str, key: str, obj, classname: str) -> ObjectSurvey:
    branches = {name: obj[name].typename for name in obj.keys()}  # TTree branches and RNTuple fields alike
    survey = ObjectSurvey(key, classname, int(obj.num_entries), branches)
    time, energy, calo = (_role(branches, role) for role in ("time", "energy", "calo"))
    options = [f"--tree {key}"]
    if time is None:
        survey.notes.append("no branch looks like a hit time; name it with --time-branch")
        survey.options = options
        return survey
    times = _sample(obj, time)
    unit, ring, note = _time_unit(times)
    options += [f"--time-branch {time}", f"--time-unit {unit}", f"--ring {ring}"]
    survey.notes.append(note)
    if energy is not None:
        options += [f"--energy-branch {energy}", f"--energy-unit {_energy_unit(_sample(obj, energy))}"]
    else:
        survey.notes.append("no branch looks like an energy; the fit methods need one (--energy-branch)")
    if calo is not None:
        options.append(f"--calo-branch {calo}")
    fill = _fill_key(branches)
    if fill is not None:
        options.append(f"--fill-branch {','.join(fill)}")
    elif "[]" in branches.get(time, "") or "vector" in branches.get(time, ""):
        survey.notes.append("one entry per fill (vector times): the entry is the fill")
    else:
        survey.notes.append("no fill identity found: --pileup needs --fill-branch")
    survey.options = options
    return survey


def _survey_histogram(key: str, obj, classname: str) -> ObjectSurvey:
    axes = [obj.axis(i) for i in range(len(obj.axes))]
    entries = int(round(float(np.sum(obj.values()))))
    branches = {f"axis {i}": f"{ax.member('fTitle') or '(no title)'}: {len(ax)} bins over [{ax.edges()[0]:g}, {ax.edges()[-1]:g}]" for i, ax in enumerate(axes)}
    survey = ObjectSurvey(key, classname, entries, branches)
    if classname.startswith("TProfile"):
        survey.notes.append("a profile (mean per bin), not counts: ringsim fit refuses it")
        return survey
    survey.options = [f"--hist {key}"]
    survey.notes.append("axis 0 is read as time, axis 1 as energy, axis 2 (TH3) as calorimeter; give --time-unit/--energy-unit if they are not ns and MeV")
    return survey


def survey_file(path: str) -> list[ObjectSurvey]:
    """List the trees, RNTuples and histograms of a ROOT file with the fit options that read each.

    Raises
    ------
    ringsim.errors.InputError
        The file cannot be opened as ROOT, or holds nothing ringsim can fit.
    """
    surveys, histograms = [], {}
    with open_root(path) as root_file:
        for key, classname in sorted(root_file.classnames(cycle=False).items()):
            if classname in TREE_CLASSES:
                surveys.append(_survey_tree(str(path), key, root_file[key], classname))
            elif _HISTOGRAMS.fullmatch(classname):
                histograms.setdefault((re.sub(r"\d+", "*", key), classname), []).append(_survey_histogram(key, root_file[key], classname))
    for (pattern, classname), group in histograms.items():
        if len(group) == 1:
            surveys.append(group[0])
            continue
        first = group[0]
        summed = ObjectSurvey(pattern, classname, sum(h.entries for h in group), first.branches, [f"--hist '{pattern}'"] if first.options else [], first.notes)
        summed.notes = [f"{len(group)} histograms ({group[0].path} … {group[-1].path}), summed by the pattern", *first.notes]
        surveys.append(summed)
    if not surveys:
        raise InputError(f"{path}: holds no TTree, RNTuple or histogram")
    return surveys
