"""The per-station time × energy histograms of a run file (numba binner over the run's fixed edges)."""

from __future__ import annotations

import numpy as np
from numba import njit

from ringsim.config import HISTOGRAM_ENERGY_BINS, SimConfig, histogram_time_bins
from ringsim.rings import ring_kinematics


def histogram_edges(cfg: SimConfig, codata_edition: int = 2018) -> tuple[np.ndarray, np.ndarray]:
    """Time [ns] and energy [MeV] bin edges of the per-station histograms of a run file."""
    e_top = 1.05 * ring_kinematics(cfg, codata_edition).e_max_mev
    return np.arange(histogram_time_bins(cfg.analysis) + 1) * cfg.analysis.bin_width_ns, np.linspace(0.0, e_top, HISTOGRAM_ENERGY_BINS + 1)


@njit(cache=True)
def _bin_index(value, edges, inv_width):
    """Bin of ``value`` in the increasing ``edges`` as numpy's histograms count it (the last edge in the last bin), −1 outside or NaN; ``inv_width``: 1 / mean bin width, which makes the first guess exact but at the edges."""
    n_bins = edges.size - 1
    if not (edges[0] <= value <= edges[n_bins]):
        return -1
    k = min(int((value - edges[0]) * inv_width), n_bins - 1)
    while value < edges[k]:
        k -= 1
    while k + 1 < n_bins and value >= edges[k + 1]:
        k += 1
    return k


@njit(cache=True)
def fill_station_histograms(counts, station, time_ns, energy_mev, t_edges, e_edges):
    """Add clusters to ``counts`` (station, time bin, energy bin), counting as ``np.histogramdd`` with these edges and the stations' integer bins: clusters outside any bin are left out. One pass, O(1) per cluster for (nearly) uniform edges."""
    inv_t = (t_edges.size - 1) / (t_edges[-1] - t_edges[0])
    inv_e = (e_edges.size - 1) / (e_edges[-1] - e_edges[0])
    for i in range(station.size):
        s = station[i]
        k_t = _bin_index(time_ns[i], t_edges, inv_t)
        k_e = _bin_index(energy_mev[i], e_edges, inv_e)
        if 0 <= s < counts.shape[0] and k_t >= 0 and k_e >= 0:
            counts[s, k_t, k_e] += 1.0
