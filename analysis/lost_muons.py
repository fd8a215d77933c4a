"""Lost muons from the data: triple coincidences of minimum-ionising clusters in successive stations.

A candidate is a cluster whose energy lies in the MIP window. A triple is a candidate in station k
followed, in the same fill, by one in station k + 1 and one in station k + 2, each within the
window of the station-to-station flight time. Its time (the first cluster's) enters the lost-muon
spectrum ℓ(t) of the loss term Λ(t) (:class:`analysis.models.LossSpectrum`). Accidental triples
of positrons are part of the measured spectrum, as in the experiment; their rate is
≈ n₁ (r w)² for candidate rate r per station and window width w.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ringsim.constants import SPEED_OF_LIGHT_M_PER_S
from ringsim.errors import ConfigError, InputError


@njit(cache=True)
def _triples(group, time_ns, n_stations, dt_lo_ns, dt_hi_ns):
    """Index of the first cluster of each triple; input sorted by (group = fill·N + station, time)."""
    n = time_ns.size
    out = np.empty(n, dtype=np.int64)
    n_out = 0
    for i in range(n):
        g = group[i]
        fill = g // n_stations
        t = time_ns[i]
        ok = True
        for step in range(1, 3):
            target = fill * n_stations + (g % n_stations + step) % n_stations
            lo_t = t + step * dt_lo_ns
            hi_t = t + step * dt_hi_ns
            # binary search for the first cluster of the target group at time ≥ lo_t
            a, b = 0, n
            while a < b:
                m = (a + b) // 2
                if group[m] < target or (group[m] == target and time_ns[m] < lo_t):
                    a = m + 1
                else:
                    b = m
            if not (a < n and group[a] == target and time_ns[a] <= hi_t):
                ok = False
                break
        if ok:
            out[n_out] = i
            n_out += 1
    return out[:n_out]


STATION_WINDOW = (0.65, 1.35)  # station-to-station time window, relative to the flight time between faces


def station_window_ns(radius_m: float, n_stations: int, beta: float) -> tuple[float, float]:
    """Window of the station-to-station time: :data:`STATION_WINDOW` × R₀·2π/N/(βc) (Fermilab: 6.2 ns)."""
    spacing_ns = radius_m * 2.0 * math.pi / n_stations / (beta * SPEED_OF_LIGHT_M_PER_S) * 1e9
    return STATION_WINDOW[0] * spacing_ns, STATION_WINDOW[1] * spacing_ns


def triple_coincidences(
    fill: np.ndarray,
    calo: np.ndarray,
    time_ns: np.ndarray,
    energy_mev: np.ndarray,
    n_stations: int,
    station_dt_ns: tuple[float, float],
    energy_window_mev: tuple[float, float] = (100.0, 500.0),
) -> np.ndarray:
    """Return the times [ns] of the lost-muon triples among the clusters (one per triple, the first cluster's).

    ``station_dt_ns``: window of the time from one station to the next (:func:`station_window_ns`);
    the second station is searched within twice the window. Fill numbers must be unique across the
    input (clusters of one fill only are combined).
    """
    lo_e, hi_e = energy_window_mev
    dt_lo, dt_hi = station_dt_ns
    if not (0.0 <= lo_e < hi_e):
        raise ConfigError(f"energy_window_mev: expected 0 <= low < high, got {energy_window_mev}")
    if not (0.0 < dt_lo < dt_hi):
        raise ConfigError(f"station_dt_ns: expected 0 < low < high, got {station_dt_ns}")
    time_ns = np.asarray(time_ns, dtype=float)
    if not np.all(np.isfinite(time_ns)):
        raise InputError("lost-muon coincidences: cluster times must be finite")
    calo = np.asarray(calo, dtype=np.int64)
    if calo.size and (calo.min() < 0 or calo.max() >= n_stations):
        raise InputError(f"lost-muon coincidences: calo expected in 0..{n_stations - 1}, got {calo.min()}..{calo.max()}")
    mip = (np.asarray(energy_mev) >= lo_e) & (np.asarray(energy_mev) <= hi_e)
    group = np.asarray(fill, dtype=np.int64)[mip] * n_stations + calo[mip]
    t = time_ns[mip]
    order = np.lexsort((t, group))
    first = _triples(group[order], t[order], n_stations, dt_lo, dt_hi)
    return np.sort(t[order][first])
