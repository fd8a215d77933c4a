"""First detector model: Michel positron of each decay, energy resolution, flat efficiency, station.

The station is the azimuthal sector (of ``n_stations``) holding the decay point; times are the decay
times (flight to a calorimeter face comes with the geometric model). Energy resolution
σ_E/E = √(a²/E[GeV] + b²) (SPEC §3).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ringsim.decay import decay_positron


@njit(cache=True, parallel=True)
def decay_and_detect(block_starts, block_seeds, u, s, azimuth_rad, polarization, muon_mass_mev, n_stations, res_stochastic, res_constant, efficiency, energy_min_mev):
    """Decay every muon into a positron and record what the detector sees.

    Muons are processed in blocks ``block_starts[i]:block_starts[i+1]``, block ``i`` drawing its random
    numbers from numba's generator seeded with ``block_seeds[i]`` (identical results for any thread
    count). ``u`` (n, 3) is γβ and ``s`` (n, 3) the rest-frame spin at decay; ``azimuth_rad`` the decay
    azimuth. Returns (accepted, measured energy [MeV], true energy [MeV], station).
    """
    n = u.shape[0]
    accepted = np.zeros(n, dtype=np.bool_)
    energy = np.zeros(n)
    true_energy = np.zeros(n)
    station = np.zeros(n, dtype=np.int32)
    sector = 2.0 * math.pi / n_stations
    for b in prange(block_seeds.size):
        np.random.seed(block_seeds[b])
        for i in range(block_starts[b], block_starts[b + 1]):
            e_true = decay_positron(u[i, 0], u[i, 1], u[i, 2], s[i, 0], s[i, 1], s[i, 2], polarization, muon_mass_mev)[0]
            e_gev = max(e_true, 1e-6) * 1e-3
            sigma = e_true * math.sqrt(res_stochastic * res_stochastic / e_gev + res_constant * res_constant)
            e_meas = e_true + sigma * np.random.standard_normal()
            keep = np.random.random() < efficiency
            true_energy[i] = e_true
            energy[i] = e_meas
            accepted[i] = keep and e_meas >= energy_min_mev
            phi = azimuth_rad[i] % (2.0 * math.pi)
            station[i] = min(int(phi / sector), n_stations - 1)
    return accepted, energy, true_energy, station
