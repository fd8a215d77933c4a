"""Fermilab calorimeters: 24 stations at the inner radius, reached by positrons curling inwards.

Each positron follows its exact helix in the uniform storage field (m_e neglected, electric fields
neglected for positrons) from its decay point; the hit is the first crossing of a calorimeter front
face, a vertical rectangle in the radial plane at the station's azimuth, crossed moving downstream,
before the positron leaves the chamber (outwards, or inwards past the calorimeters). Acceptance versus energy
and decay position comes out of this geometry: low-energy positrons curl in sharply and hit the
next station soon, the highest energies travel further and may reach a station further downstream,
and some pass inside or outside the faces or turn a full circle without a hit.

Then the response: energy resolution σ_E/E = √(a²/E + b²) (E in GeV), time resolution, in-fill
gain sag E → E(1 − C e^{−t/τ_g}), and pulse-pair merging of hits closer than the resolving time in
one station (pileup) within a fill.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from ringsim.constants import SPEED_OF_LIGHT_M_PER_S

TWO_PI = 2.0 * math.pi


@dataclass(frozen=True)
class CalorimeterGeometry:
    """Front faces: radial extent relative to R₀ [m], half height [m], station azimuths (downstream edges of sectors)."""

    n_stations: int = 24  # SPEC §3 [V]
    inner_x_m: float = -0.275  # 9 PbF2 crystals of 2.5 cm: 22.5 cm wide [V], placed 5 cm inside the orbit [U]
    outer_x_m: float = -0.050
    half_height_m: float = 0.075  # 6 crystals of 2.5 cm [V]
    chamber_outer_x_m: float = 0.090  # a positron going further out than this hits the vacuum chamber [U]
    chamber_inner_x_m: float = -0.350  # … or further in than this (inner walls, calorimeter backs) [U]

    def azimuths_rad(self) -> np.ndarray:
        return TWO_PI * (np.arange(self.n_stations) + 1.0) / self.n_stations


@njit(cache=True, parallel=True)
def calorimeter_hits(pos, direction, energy_mev, field_t, radius_m, azimuths, inner_x, outer_x, half_height, chamber_x, chamber_inner_x):
    """First calorimeter face crossed by each positron.

    ``pos`` (n, 3) decay points [m], ``direction`` (n, 3) unit momenta, ``energy_mev`` energies.
    Returns (station or −1, flight time [ns], radial hit position x − R₀ [m], vertical position [m]).
    """
    n = pos.shape[0]
    station = np.full(n, -1, dtype=np.int32)
    flight_ns = np.zeros(n)
    x_hit = np.zeros(n)
    y_hit = np.zeros(n)
    for i in prange(n):
        dh = math.sqrt(direction[i, 0] ** 2 + direction[i, 2] ** 2)
        if dh < 1e-12 or energy_mev[i] <= 0.0:
            continue
        rho = energy_mev[i] * 1e6 / (SPEED_OF_LIGHT_M_PER_S * field_t) * dh  # horizontal radius of curvature
        vx, vz = direction[i, 0] / dh, direction[i, 2] / dh
        # centre of the circle: P + ρ (v̂ × ŷ) = P + ρ(−v_z, 0, v_x)
        cx, cz = pos[i, 0] - rho * vz, pos[i, 2] + rho * vx
        start = math.atan2(pos[i, 2] - cz, pos[i, 0] - cx)
        slope = direction[i, 1] / dh  # vertical rise per unit horizontal path
        c2 = cx * cx + cz * cz
        # leaving the chamber (outwards or inwards) bounds the search: the circle meets radius R_c
        # where cos(a − a_C) = (R_c² − |C|² − ρ²)/(2ρ|C|)
        best = 1e300
        a_centre = math.atan2(cz, cx)
        for rc in (radius_m + chamber_x, radius_m + chamber_inner_x):
            cos_a = (rc * rc - c2 - rho * rho) / (2.0 * rho * math.sqrt(c2)) if c2 > 0.0 else 2.0
            if abs(cos_a) <= 1.0:
                for sgn in (-1.0, 1.0):
                    travel = (a_centre + sgn * math.acos(cos_a) - start) % TWO_PI
                    if 1e-9 < travel < best:
                        best = travel
        limit = min(best, TWO_PI)
        best = 1e300
        for k in range(azimuths.size):
            dx, dz = math.cos(azimuths[k]), math.sin(azimuths[k])
            dc = dx * cx + dz * cz
            disc = dc * dc - c2 + rho * rho
            if disc < 0.0:
                continue
            root = math.sqrt(disc)
            for s in (dc - root, dc + root):
                if s <= 0.0:
                    continue
                x_face = s - radius_m
                if x_face < inner_x or x_face > outer_x:
                    continue
                a_hit = math.atan2(s * dz - cz, s * dx - cx)
                travel = (a_hit - start) % TWO_PI
                if travel <= 1e-9 or travel >= limit or travel >= best:
                    continue
                # the front face is crossed moving downstream: tangent (−sin a, cos a)·φ̂_k > 0
                if math.sin(a_hit) * dz + math.cos(a_hit) * dx <= 0.0:
                    continue
                y = pos[i, 1] + slope * rho * travel
                if abs(y) > half_height:
                    continue
                best = travel
                station[i] = k
                x_hit[i] = x_face
                y_hit[i] = y
        if station[i] >= 0:
            flight_ns[i] = rho * best * math.sqrt(1.0 + slope * slope) / SPEED_OF_LIGHT_M_PER_S * 1e9
    return station, flight_ns, x_hit, y_hit


def merge_pileup(fill: np.ndarray, station: np.ndarray, time_ns: np.ndarray, energy_mev: np.ndarray, resolving_ns: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge hits of one station and fill closer than ``resolving_ns`` into clusters.

    A cluster's energy is the sum and its time the energy-weighted mean; returns the index of each
    hit's cluster (first hit of the cluster, in the input order), and the clusters' time and energy
    (arrays aligned with the input, valid at the cluster indices).
    """
    order = np.lexsort((time_ns, station, fill))
    f, s, t, e = fill[order], station[order], time_ns[order], energy_mev[order]
    new_cluster = np.ones(order.size, dtype=bool)
    if order.size > 1:
        new_cluster[1:] = (f[1:] != f[:-1]) | (s[1:] != s[:-1]) | (np.diff(t) > resolving_ns)
    cluster_id = np.cumsum(new_cluster) - 1
    n_clusters = int(cluster_id[-1]) + 1 if order.size else 0
    e_sum = np.bincount(cluster_id, weights=e, minlength=n_clusters)
    et_sum = np.bincount(cluster_id, weights=e * t, minlength=n_clusters)
    first = order[new_cluster]
    cluster_of_hit = np.empty(order.size, dtype=np.int64)
    cluster_of_hit[order] = first[cluster_id]
    time_c = np.zeros(order.size)
    energy_c = np.zeros(order.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        time_c[first] = np.where(e_sum > 0, et_sum / e_sum, t[new_cluster])
    energy_c[first] = e_sum
    return cluster_of_hit, time_c, energy_c
