"""Lost muons in the Fermilab calorimeters: minimum-ionising hits in three successive stations.

A muon that leaves the storage aperture keeps almost its full momentum and, bent inwards by the
storage field, passes through the calorimeters downstream of its loss point. Here it crosses the
next three stations at the azimuths of their front faces, at the ring's speed (flight time
R₀Δφ/(βc) from the loss point), and deposits in each a minimum-ionising energy drawn from a Moyal
(Landau-like) distribution, E = E_mip + w·X with X = −ln Z², Z standard normal (then e^{−X} is
χ²-distributed with one degree of freedom, the defining property of the Moyal law). The analysis
finds these triples among all clusters (:mod:`analysis.lost_muons`) and measures Λ(t) from them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

from ringsim.constants import SPEED_OF_LIGHT_M_PER_S

TWO_PI = 2.0 * math.pi
MIP_STATIONS = 3  # successive stations a lost muon crosses (the coincidence of the Fermilab analysis)


@dataclass(frozen=True)
class MipResponse:
    """Energy deposit of a minimum-ionising muon in one station: Moyal most-probable value and width [MeV]."""

    most_probable_mev: float = 170.0  # 14 cm of PbF2, Cherenkov-equivalent MIP peak [U]
    width_mev: float = 12.0  # Moyal scale [U]


def first_station(loss_azimuth_rad: np.ndarray, n_stations: int) -> np.ndarray:
    """Station whose front face is the first downstream of the loss point (faces at (k + 1)·2π/N)."""
    sector = TWO_PI / n_stations
    return np.floor(np.mod(loss_azimuth_rad, TWO_PI) / sector).astype(np.int64) % n_stations


def lost_muon_hits(
    u_moyal: np.ndarray,
    loss_time_ns: np.ndarray,
    loss_azimuth_rad: np.ndarray,
    fill: np.ndarray,
    n_stations: int,
    radius_m: float,
    beta: float,
    response: MipResponse = MipResponse(),
) -> dict[str, np.ndarray]:
    """Return the true minimum-ionising hits of the lost muons in the next :data:`MIP_STATIONS` stations.

    ``u_moyal`` (n, MIP_STATIONS): uniform draws in (0, 1) for the deposits (Z = Φ⁻¹(u)), so that a
    muon's hits do not depend on how many muons are drawn with it. Returns ``muon`` (index of the
    lost muon), ``fill``, ``calo``, ``time_ns`` and ``energy_mev``, the hits of muon i in rows 3i,
    3i + 1, 3i + 2 (stations downstream in order).
    """
    n = loss_time_ns.size
    sector = TWO_PI / n_stations
    first = first_station(loss_azimuth_rad, n_stations)
    k = np.arange(MIP_STATIONS)
    face_rad = (first[:, None] + 1 + k[None, :]) * sector  # unwrapped face azimuths, downstream of the loss
    phi = np.mod(loss_azimuth_rad, TWO_PI)[:, None]
    flight_ns = radius_m * (face_rad - phi) / (beta * SPEED_OF_LIGHT_M_PER_S) * 1e9
    z = ndtri(u_moyal)
    energy = response.most_probable_mev - response.width_mev * np.log(z * z)
    return {
        "muon": np.repeat(np.arange(n), MIP_STATIONS),
        "fill": np.repeat(fill, MIP_STATIONS),
        "calo": ((first[:, None] + k[None, :]) % n_stations).reshape(-1),
        "time_ns": (loss_time_ns[:, None] + flight_ns).reshape(-1),
        "energy_mev": energy.reshape(-1),
    }
