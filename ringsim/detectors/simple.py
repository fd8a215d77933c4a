"""Decay of every muon into a positron (numba, reproducible blocks) and the sector-station model.

The sector model records a positron in the azimuthal sector of its decay point with no flight time:
the idealised detector of studies that need no geometry.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ringsim.decay import decay_positron


@njit(cache=True, parallel=True)
def decay_positrons(block_starts, block_seeds, u, s, polarization, muon_mass_mev):
    """Lab energy [MeV] and unit direction (n, 3) of the decay positron of every muon.

    Muons ``block_starts[i]:block_starts[i+1]`` draw from numba's generator seeded with
    ``block_seeds[i]``, so results are identical for any thread count. ``u`` (n, 3) is γβ and ``s``
    (n, 3) the rest-frame spin at decay.
    """
    n = u.shape[0]
    energy = np.zeros(n)
    direction = np.zeros((n, 3))
    for b in prange(block_seeds.size):
        np.random.seed(block_seeds[b])
        for i in range(block_starts[b], block_starts[b + 1]):
            e, dx, dy, dz = decay_positron(u[i, 0], u[i, 1], u[i, 2], s[i, 0], s[i, 1], s[i, 2], polarization, muon_mass_mev)
            energy[i] = e
            direction[i, 0], direction[i, 1], direction[i, 2] = dx, dy, dz
    return energy, direction


def sector_station(azimuth_rad: np.ndarray, n_stations: int) -> np.ndarray:
    """Station = azimuthal sector of the decay point."""
    sector = 2.0 * math.pi / n_stations
    return np.minimum((np.mod(azimuth_rad, 2.0 * math.pi) / sector).astype(np.int32), n_stations - 1)
