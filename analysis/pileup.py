"""Pileup correction by the shadow-window method (docs/physics.md §3), per calorimeter and fill.

The analysis first imposes an artificial dead time δ (5 ns): a hit less than δ after the first hit
of a cluster in the same calorimeter and fill is merged into it (energies add, the time is the
energy-weighted mean). Two positrons closer than δ are then always seen as one "doublet" of energy
E1 + E2, and two singlets are missing. The shadow window estimates those pairs from pairs of
resolved hits a gap later: for each hit at t1, every hit at t2 ∈ [t1 + gap, t1 + gap + w) (gap
10 ns, w 5 ns) gives a doublet (E1 + E2 at the energy-weighted time of t1 and t2 − gap) counted +1
and its singlets (E1 at t1, E2 at t2 − gap) counted −1, scaled by δ/w. Histogrammed with the
method's energy weights, this pileup spectrum is subtracted from the data; its variance per bin is
Σ over pairs of (the pair's net contribution to the bin)², added to the data variance (the
estimate's small correlation with the data is neglected). The pileup fraction falls like e^{−t/γτ}
relative to the data, so without correction the fitted A, φ and ω_a drift.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numba import njit

from ringsim.errors import ConfigError, InputError

DEAD_TIME_NS = 5.0
SHADOW_GAP_NS = 10.0
SHADOW_WINDOW_NS = 5.0


def _group_keys(n: int, calo, fill) -> np.ndarray:
    """One integer per hit identifying its (fill, calorimeter)."""
    keys = np.zeros(n, dtype=np.int64)
    for values in (fill, calo):
        if values is not None:
            v = np.asarray(values, dtype=np.int64)
            if v.shape != (n,):
                raise InputError(f"pileup: calo/fill arrays need one entry per hit ({n}), got {v.shape}")
            _, inverse = np.unique(v, return_inverse=True)
            keys = keys * (int(inverse.max(initial=0)) + 1) + inverse
    return keys


def _checked(time_ns, energy_mev) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(time_ns, dtype=float).ravel()
    e = np.asarray(energy_mev, dtype=float).ravel()
    if t.shape != e.shape:
        raise InputError(f"pileup: {t.size} times but {e.size} energies")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(e))):
        raise InputError("pileup: times and energies must be finite")
    return t, e


@njit(cache=True)
def _dead_time_clusters(key, t, dead_time_ns):
    """Cluster number of each hit (sorted by key, then time): non-extending dead time after the first hit."""
    cluster = np.empty(t.size, dtype=np.int64)
    c = -1
    first = 0.0
    for i in range(t.size):
        if i == 0 or key[i] != key[i - 1] or t[i] - first >= dead_time_ns:
            c += 1
            first = t[i]
        cluster[i] = c
    return cluster


def apply_dead_time(time_ns, energy_mev, calo=None, fill=None, dead_time_ns: float = DEAD_TIME_NS) -> dict[str, np.ndarray]:
    """Impose the artificial dead time: merge hits within ``dead_time_ns`` after a cluster's first hit.

    Parameters
    ----------
    time_ns, energy_mev : array_like
        Hit times (ns, within the fill) and energies (MeV).
    calo, fill : array_like, optional
        Calorimeter and fill of each hit; hits of different calorimeters or fills never merge.
    dead_time_ns : float
        Artificial dead time δ in ns (> 0).

    Returns
    -------
    dict
        ``time_ns`` (energy-weighted), ``energy_mev`` (summed), ``calo`` and ``fill`` (None where not
        given) of the clusters, sorted by fill, calorimeter and time.
    """
    if not (math.isfinite(dead_time_ns) and dead_time_ns > 0.0):
        raise ConfigError(f"pileup: dead_time_ns must be > 0, got {dead_time_ns!r}")
    t, e = _checked(time_ns, energy_mev)
    key = _group_keys(t.size, calo, fill)
    order = np.lexsort((t, key))
    cluster = _dead_time_clusters(key[order], t[order], float(dead_time_ns))
    energy = np.bincount(cluster, weights=e[order])
    with np.errstate(invalid="ignore", divide="ignore"):
        time = np.bincount(cluster, weights=e[order] * t[order]) / energy
    first = order[np.flatnonzero(np.diff(cluster, prepend=-1))]
    time = np.where(np.isfinite(time), time, t[first])  # zero-energy clusters keep the first time
    return {
        "time_ns": time,
        "energy_mev": energy,
        "calo": None if calo is None else np.asarray(calo, dtype=np.int64)[first],
        "fill": None if fill is None else np.asarray(fill, dtype=np.int64)[first],
    }


@njit(cache=True)
def _shadow_pairs(key, t, gap_ns, window_ns):
    """Index pairs (i, j) of hits with t_j − t_i in [gap, gap + window) and the same key (sorted input)."""
    first = []
    second = []
    start = 0
    for i in range(t.size):
        lo = t[i] + gap_ns
        hi = lo + window_ns
        if start <= i:
            start = i + 1
        while start < t.size and key[start] == key[i] and t[start] < lo:
            start += 1
        j = start
        while j < t.size and key[j] == key[i] and t[j] < hi:
            first.append(i)
            second.append(j)
            j += 1
    return np.array(first, dtype=np.int64), np.array(second, dtype=np.int64)


@dataclass(frozen=True)
class PileupEstimate:
    """Shadow-window pileup spectrum as signed pseudo-hits: per pair a doublet (+) and two singlets (−).

    Attributes
    ----------
    time_ns, energy_mev : numpy.ndarray
        Pseudo-hit times (ns) and energies (MeV).
    sign : numpy.ndarray
        +1 for doublets, −1 for singlets.
    pair : numpy.ndarray
        Index of the shadow pair each pseudo-hit belongs to.
    calo : numpy.ndarray or None
        Calorimeter of each pseudo-hit.
    scale : float
        δ/w, the factor from shadow pairs to pileup pairs.
    """

    time_ns: np.ndarray
    energy_mev: np.ndarray
    sign: np.ndarray
    pair: np.ndarray
    calo: np.ndarray | None
    scale: float

    @property
    def n_pairs(self) -> int:
        """Number of shadow pairs found."""
        return int(self.sign.size // 3)

    def select(self, keep: np.ndarray) -> PileupEstimate:
        """Return the pseudo-hits of the pairs where ``keep`` (one flag per pseudo-hit, e.g. a calorimeter) holds."""
        return PileupEstimate(self.time_ns[keep], self.energy_mev[keep], self.sign[keep], self.pair[keep], None if self.calo is None else self.calo[keep], self.scale)


def shadow_pileup(time_ns, energy_mev, calo=None, fill=None, *, dead_time_ns: float = DEAD_TIME_NS, gap_ns: float = SHADOW_GAP_NS, window_ns: float = SHADOW_WINDOW_NS) -> PileupEstimate:
    """Pileup pseudo-hits of hits that already passed :func:`apply_dead_time` with ``dead_time_ns``.

    Raises
    ------
    ConfigError
        Non-positive window or a gap shorter than the dead time plus the window.
    """
    if not (math.isfinite(window_ns) and window_ns > 0.0 and math.isfinite(gap_ns) and gap_ns >= dead_time_ns > 0.0):
        raise ConfigError(f"pileup: need window > 0 and gap >= dead time > 0, got window {window_ns!r}, gap {gap_ns!r}, dead time {dead_time_ns!r}")
    t, e = _checked(time_ns, energy_mev)
    key = _group_keys(t.size, calo, fill)
    order = np.lexsort((t, key))
    i, j = _shadow_pairs(key[order], t[order], float(gap_ns), float(window_ns))
    i, j = order[i], order[j]
    t1, t2, e1, e2 = t[i], t[j] - gap_ns, e[i], e[j]
    total = e1 + e2
    with np.errstate(invalid="ignore", divide="ignore"):
        t_doublet = np.where(total > 0.0, (e1 * t1 + e2 * t2) / total, t1)
    n = i.size
    calo_arr = None if calo is None else np.asarray(calo, dtype=np.int64)
    return PileupEstimate(
        time_ns=np.concatenate([t_doublet, t1, t2]),
        energy_mev=np.concatenate([total, e1, e2]),
        sign=np.concatenate([np.ones(n), -np.ones(n), -np.ones(n)]),
        pair=np.tile(np.arange(n), 3),
        calo=None if calo_arr is None else np.concatenate([calo_arr[i], calo_arr[i], calo_arr[j]]),
        scale=dead_time_ns / window_ns,
    )


def pileup_histogram(estimate: PileupEstimate, edges_us, weight: Callable[[np.ndarray], np.ndarray], time_shift_us=None) -> tuple[np.ndarray, np.ndarray]:
    """Pileup spectrum in time bins with per-hit energy weights, and its variance.

    Parameters
    ----------
    estimate : PileupEstimate
        Shadow-window pseudo-hits.
    edges_us : array_like
        Time-bin edges in μs.
    weight : callable
        Energy (MeV) → weight of a hit in the method (T: 1 above threshold else 0; A: A(E); Q: E).
    time_shift_us : array_like, optional
        Extra shift of each pseudo-hit's time in μs (fast-rotation randomisation).

    Returns
    -------
    values, variance : numpy.ndarray
        scale × Σ sign·w per bin, and scale² × Σ_pairs (net contribution of the pair to the bin)².
    """
    e = np.asarray(edges_us, dtype=float)
    t_us = estimate.time_ns * 1e-3 + (0.0 if time_shift_us is None else np.asarray(time_shift_us, dtype=float))
    w = estimate.sign * np.asarray(weight(estimate.energy_mev), dtype=float)
    b = np.searchsorted(e, t_us, side="right") - 1
    inside = (b >= 0) & (b < e.size - 1) & (w != 0.0)
    b, w, pair = b[inside], w[inside], estimate.pair[inside]
    n_bins = e.size - 1
    values = np.bincount(b, weights=w, minlength=n_bins)
    cell, index = np.unique(pair * n_bins + b, return_inverse=True)
    net = np.bincount(index, weights=w)
    variance = np.bincount(cell % n_bins, weights=net**2, minlength=n_bins)
    return estimate.scale * values, estimate.scale**2 * variance
