"""The histogram fillers of the ω_a fits.

Decay-time histograms (counts, or Σw and Σw² of weighted hits for the A and Q methods) and
time × energy histograms.
"""

from __future__ import annotations

import math

import numpy as np

from ringsim.errors import InputError
from ringsim.random_streams import FAST_ROTATION, stream


def time_histogram(
    t_us,
    bin_width_us: float,
    t_min_us: float,
    t_max_us: float,
    weights=None,
    randomize_us: float = 0.0,
    seed=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Histogram positron times in bins of fixed width.

    Parameters
    ----------
    t_us : array_like
        Positron (cluster) times in μs; all must be finite.
    bin_width_us : float
        Bin width in μs (> 0); the Fermilab practice is T_c = 0.1492 μs.
    t_min_us, t_max_us : float
        Histogram range in μs. Bins start at ``t_min_us``; the last edge is the largest multiple
        of the bin width not beyond ``t_max_us`` (within 1e-9 of a bin).
    weights : array_like, optional
        One finite weight per time (A-method asymmetry weights, Q-method energies).
    randomize_us : float
        If > 0, each time is shifted by a uniform random amount in
        [-randomize_us/2, +randomize_us/2] before binning (fast-rotation randomisation;
        pass the cyclotron period T_c in μs).
    seed : int
        Seed of the randomisation: stream ``FAST_ROTATION`` of :mod:`ringsim.random_streams`,
        the same shifts a file's fit draws for the same hits.

    Returns
    -------
    counts : numpy.ndarray
        Entries (int64) or summed weights (float64) per bin.
    edges_us : numpy.ndarray
        Bin edges in μs, one more than ``counts``.
    """
    t = np.asarray(t_us, dtype=float).ravel()
    if not (math.isfinite(bin_width_us) and bin_width_us > 0.0):
        raise InputError(f"time_histogram: bin_width_us must be a finite number > 0, got {bin_width_us!r}")
    if not (math.isfinite(t_min_us) and math.isfinite(t_max_us) and t_max_us > t_min_us):
        raise InputError(f"time_histogram: need finite t_min_us < t_max_us, got t_min_us={t_min_us!r}, t_max_us={t_max_us!r}")
    if not (math.isfinite(randomize_us) and randomize_us >= 0.0):
        raise InputError(f"time_histogram: randomize_us must be finite and >= 0, got {randomize_us!r}")
    if not np.all(np.isfinite(t)):
        raise InputError(f"time_histogram: t_us holds {np.count_nonzero(~np.isfinite(t))} non-finite times")
    w = None
    if weights is not None:
        w = np.asarray(weights, dtype=float).ravel()
        if w.shape != t.shape:
            raise InputError(f"time_histogram: weights have {w.size} entries, expected one per time ({t.size})")
        if not np.all(np.isfinite(w)):
            raise InputError("time_histogram: weights must all be finite")

    n_bins = math.floor((t_max_us - t_min_us) / bin_width_us + 1e-9)
    if n_bins < 1:
        raise InputError(f"time_histogram: range {t_min_us}..{t_max_us} us is shorter than one bin of {bin_width_us} us")
    if randomize_us > 0.0:
        t = t + stream(0 if seed is None else seed, FAST_ROTATION).uniform(-0.5 * randomize_us, 0.5 * randomize_us, size=t.size)
    edges = t_min_us + bin_width_us * np.arange(n_bins + 1)
    if w is None:
        return np.histogram(t, bins=edges)[0], edges
    return weighted_time_histogram(t, w, edges)[0], edges


def weighted_time_histogram(t_us, weights, edges_us) -> tuple[np.ndarray, np.ndarray]:
    """Σw and Σw² per time bin of hits at ``t_us`` (μs) with ``weights`` (bins of ``edges_us``)."""
    e = np.asarray(edges_us, dtype=float)
    t = np.asarray(t_us, dtype=float)
    w = np.asarray(weights, dtype=float)
    values, _ = np.histogram(t, bins=e, weights=w)
    variance, _ = np.histogram(t, bins=e, weights=w * w)
    return values, variance


def time_energy_histogram(t_us, energy_mev, time_edges_us, energy_edges_mev) -> np.ndarray:
    """Count hits per (time bin, energy bin) (times in μs, energies in MeV)."""
    counts, _, _ = np.histogram2d(np.asarray(t_us, dtype=float), np.asarray(energy_mev, dtype=float), bins=[np.asarray(time_edges_us, dtype=float), np.asarray(energy_edges_mev, dtype=float)])
    return counts
