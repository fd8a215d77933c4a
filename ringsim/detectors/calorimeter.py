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


@njit(cache=True)
def calorimeter_hit(px, py, pz, dx, dy, dz, energy_mev, field_t, radius_m, cos_az, sin_az, inner_x, outer_x, half_height, chamber_x, chamber_inner_x):
    """First calorimeter face crossed by one positron.

    Decay point (px, py, pz) [m], unit momentum (dx, dy, dz), energy [MeV]; station k's face lies
    along the radial direction (cos_az[k], 0, sin_az[k]). Returns (station or −1, flight time [ns],
    radial hit position x − R₀ [m], vertical position [m]).
    """
    dh = math.sqrt(dx * dx + dz * dz)
    if dh < 1e-12 or energy_mev <= 0.0:
        return -1, 0.0, 0.0, 0.0
    rho = energy_mev * 1e6 / (SPEED_OF_LIGHT_M_PER_S * field_t) * dh  # horizontal radius of curvature
    vx, vz = dx / dh, dz / dh
    # centre of the circle: P + ρ (v̂ × ŷ) = P + ρ(−v_z, 0, v_x)
    cx, cz = px - rho * vz, pz + rho * vx
    rx, rz = px - cx, pz - cz  # decay point seen from the centre
    slope = dy / dh  # vertical rise per unit horizontal path
    c2 = cx * cx + cz * cz
    # a crossing at distance s from the ring centre along ê_k has ê_k·C = g(s) = (s² + |C|² − ρ²)/(2s):
    # the faces (s in [s_in, s_out]) can only be met where ê_k·C lies in the range of g there
    s_in, s_out = radius_m + inner_x, radius_m + outer_x
    g_in, g_out = (s_in * s_in + c2 - rho * rho) / (2.0 * s_in), (s_out * s_out + c2 - rho * rho) / (2.0 * s_out)
    g_lo, g_hi = min(g_in, g_out), max(g_in, g_out)
    s_turn2 = c2 - rho * rho  # g is smallest at s² = |C|² − ρ²
    if s_in * s_in < s_turn2 < s_out * s_out:
        g_lo = min(g_lo, math.sqrt(s_turn2))
    margin = 1e-9 * (abs(g_lo) + abs(g_hi) + radius_m)
    g_lo -= margin
    g_hi += margin
    best = 1e300
    station, x_hit, y_hit = -1, 0.0, 0.0
    for k in range(cos_az.size):
        ex, ez = cos_az[k], sin_az[k]
        dc = ex * cx + ez * cz
        if dc < g_lo or dc > g_hi:
            continue
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
            # the front face is crossed moving downstream: tangent (−sin a, cos a)·φ̂_k > 0, with
            # (cos a, sin a) = (Q − C)/ρ at the crossing Q = s ê_k
            qx, qz = s * ex - cx, s * ez - cz
            if qz * ez + qx * ex <= 0.0:
                continue
            travel = math.atan2(rx * qz - rz * qx, rx * qx + rz * qz)  # turn from the decay point to Q
            if travel < 0.0:
                travel += TWO_PI
            if travel <= 1e-9 or travel >= best:
                continue
            y = py + slope * rho * travel
            if abs(y) > half_height:
                continue
            best = travel
            station = k
            x_hit = x_face
            y_hit = y
    if station < 0:
        return -1, 0.0, 0.0, 0.0
    # the positron must reach that face before it leaves the chamber (outwards or inwards): the
    # circle meets radius R_c where cos(a − a_C) = (R_c² − |C|² − ρ²)/(2ρ|C|)
    a_centre = math.atan2(cz, cx)
    start = math.atan2(rz, rx)
    for rc in (radius_m + chamber_x, radius_m + chamber_inner_x):
        cos_a = (rc * rc - c2 - rho * rho) / (2.0 * rho * math.sqrt(c2)) if c2 > 0.0 else 2.0
        if abs(cos_a) <= 1.0:
            for sgn in (-1.0, 1.0):
                travel = (a_centre + sgn * math.acos(cos_a) - start) % TWO_PI
                if 1e-9 < travel <= best:
                    return -1, 0.0, 0.0, 0.0
    return station, rho * best * math.sqrt(1.0 + slope * slope) / SPEED_OF_LIGHT_M_PER_S * 1e9, x_hit, y_hit


@njit(cache=True)
def face_directions(azimuths):
    """(cos, sin) of the station azimuths [rad]: the radial directions of the faces."""
    return np.cos(azimuths), np.sin(azimuths)


@njit(cache=True, parallel=True)
def calorimeter_hits(pos, direction, energy_mev, field_t, radius_m, azimuths, inner_x, outer_x, half_height, chamber_x, chamber_inner_x):
    """First calorimeter face crossed by each positron (:func:`calorimeter_hit` over arrays).

    ``pos`` (n, 3) decay points [m], ``direction`` (n, 3) unit momenta, ``energy_mev`` energies.
    Returns (station or −1, flight time [ns], radial hit position x − R₀ [m], vertical position [m]).
    """
    n = pos.shape[0]
    station = np.full(n, -1, dtype=np.int32)
    flight_ns = np.zeros(n)
    x_hit = np.zeros(n)
    y_hit = np.zeros(n)
    cos_az, sin_az = face_directions(azimuths)
    for i in prange(n):
        station[i], flight_ns[i], x_hit[i], y_hit[i] = calorimeter_hit(
            pos[i, 0], pos[i, 1], pos[i, 2], direction[i, 0], direction[i, 1], direction[i, 2], energy_mev[i],
            field_t, radius_m, cos_az, sin_az, inner_x, outer_x, half_height, chamber_x, chamber_inner_x,
        )
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
