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
from numba.core.cpu import CPUTargetOptions

from ringsim.constants import SPEED_OF_LIGHT_M_PER_S
from ringsim.vecmath import trailing_zeros

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


@njit(cache=True, error_model="numpy", inline="always")
def _pseudo_angle(cross, dot):
    """A stand-in for the angle atan2(cross, dot) taken in [0, 2π), increasing with it: values in [0, 4]."""
    r = dot / (abs(dot) + abs(cross))
    return 1.0 - r if cross >= 0.0 else 3.0 + r


@njit(cache=True, error_model="numpy", inline="always")
def _turn_rad(cross, dot):
    """The angle atan2(cross, dot) taken in [0, 2π) [rad]."""
    travel = math.atan2(cross, dot)
    return travel + TWO_PI if travel < 0.0 else travel


# below this pseudo-angle a turn is compared with the minimal turn of 1e-9 rad through atan2
_SMALL_TURN = 1e-8
# the candidate test widens the faces' radial range by this fraction of their outer radius
_FACE_MARGIN = 1e-7


@njit(cache=True, error_model="numpy", inline="always")
def _face_turn(s, ex, ez, cx, cz, rx, rz, radius_m, inner_x, outer_x, floor):
    """Pseudo-angle of the turn from the decay point to the crossing at distance ``s`` [m] along the
    radial direction (ex, ez), and its cross and dot products [m²]; the pseudo-angle is 5 (above all
    others) where that is no downstream front-face crossing turned to beyond ``floor`` and 1e-9 rad.

    The circle has its centre at (cx, cz) [m] and the decay point at (cx + rx, cz + rz) [m].
    """
    qx, qz = s * ex - cx, s * ez - cz
    x_face = s - radius_m
    cross, dot = rx * qz - rz * qx, rx * qx + rz * qz
    turn = _pseudo_angle(cross, dot)
    if turn < _SMALL_TURN and _turn_rad(cross, dot) <= 1e-9:
        turn = 5.0
    # the front face is crossed moving downstream: tangent (−sin a, cos a)·φ̂ > 0, with
    # (cos a, sin a) = (Q − C)/ρ at the crossing Q = s ê; no branches on these
    ok = (s > 0.0) & (x_face >= inner_x) & (x_face <= outer_x) & (qz * ez + qx * ex > 0.0) & (turn > floor)
    return (turn if ok else 5.0), cross, dot


@njit(cache=True, error_model="numpy", inline="always")
def _face_candidate(ex, ez, cx, cz, rx, rz, c2, rho2, radius_m, inner_x, outer_x, floor):
    """The crossing of the radial line (ex, ez) seen by :func:`_face_turn`: (pseudo-angle, distance
    from the ring centre [m], cross and dot products [m²]); |C|² = ``c2``, ρ² = ``rho2`` [m²]."""
    dc = ex * cx + ez * cz
    root = math.sqrt(max(dc * dc - c2 + rho2, 0.0))
    s = dc + root
    turn, cross, dot = _face_turn(s, ex, ez, cx, cz, rx, rz, radius_m, inner_x, outer_x, floor)
    s_near = dc - root  # its crossing runs upstream unless the two (nearly) coincide
    if (s_near * ex - cx) * ex + (s_near * ez - cz) * ez > 0.0:
        turn_near, cross_near, dot_near = _face_turn(s_near, ex, ez, cx, cz, rx, rz, radius_m, inner_x, outer_x, floor)
        if turn_near <= turn:
            s, turn, cross, dot = s_near, turn_near, cross_near, dot_near
    return turn, s, cross, dot


# no reference counting of the station arrays (``_nrt=False``, an option of numba's own kernels: the
# function allocates nothing; skipped if a numba version drops it), and no division-by-zero checks
# (``error_model="numpy"``): both cost more than the rest of a miss
_NO_REFCOUNT = {"_nrt": False} if hasattr(CPUTargetOptions, "_nrt") else {}


@njit(cache=True, error_model="numpy", **_NO_REFCOUNT)
def calorimeter_hit(px, py, pz, dx, dy, dz, energy_mev, field_t, radius_m, cos_az, sin_az, inner_x, outer_x, half_height, chamber_x, chamber_inner_x):
    """First calorimeter face crossed by one positron.

    Decay point (px, py, pz) [m], unit momentum (dx, dy, dz), energy [MeV]; station k's face lies
    along the radial direction (cos_az[k], 0, sin_az[k]). Returns (station or −1, flight time [ns],
    radial hit position x − R₀ [m], vertical position [m]).

    The stations whose faces the circle can meet are found without branches (a bit mask, 64
    stations at a time, which vectorises); turns around the circle's centre are compared through a
    monotone pseudo-angle of their cross and dot products, so the one transcendental call is the
    atan2 of the first face crossing, and the chamber walls are met where the closed-form
    circle–circle intersections lie.
    """
    dh = math.sqrt(dx * dx + dz * dz)
    if dh < 1e-12 or energy_mev <= 0.0:
        return -1, 0.0, 0.0, 0.0
    rho = energy_mev * 1e6 / (SPEED_OF_LIGHT_M_PER_S * field_t) * dh  # horizontal radius of curvature
    slope = dy / dh  # vertical rise per unit horizontal path
    rise = slope * rho  # vertical rise per radian of turn [m]
    if (py > half_height and rise >= 0.0) or (py < -half_height and rise <= 0.0):
        return -1, 0.0, 0.0, 0.0  # above or below the faces and not coming back
    vx, vz = dx / dh, dz / dh
    # centre of the circle: P + ρ (v̂ × ŷ) = P + ρ(−v_z, 0, v_x)
    cx, cz = px - rho * vz, pz + rho * vx
    rx, rz = px - cx, pz - cz  # decay point seen from the centre
    c2 = cx * cx + cz * cz
    rho2 = rho * rho
    margin = _FACE_MARGIN * (radius_m + abs(outer_x))
    s_lo, s_hi = radius_m + inner_x - margin, radius_m + outer_x + margin
    n_st = cos_az.size
    # the first crossing within the faces' height: y is monotone in the turn, so a crossing above
    # (below) the faces while rising (falling) ends the search, one not yet up to them moves it on
    floor = -1.0
    while True:
        best = 5.0  # above any pseudo-angle
        station, s_hit, cross, dot = -1, 0.0, 0.0, 0.0
        for base in range(0, n_st, 64):
            # bit j: the circle meets station base + j's radial line at the far root
            # s = ê·C + √((ê·C)² − |C|² + ρ²) within the faces' radii (widened by the margin)
            mask = 0
            for j in range(min(64, n_st - base)):
                k = np.uint64(base + j)  # unsigned: no wrap-around of negative indices, so the loop vectorises
                dc = cos_az[k] * cx + sin_az[k] * cz
                disc = dc * dc - c2 + rho2
                to_hi, to_lo = s_hi - dc, s_lo - dc
                mask |= ((disc >= 0.0) & (to_hi >= 0.0) & (disc <= to_hi * to_hi) & ((to_lo <= 0.0) | (disc >= to_lo * to_lo))) << j
            while mask != 0:
                k = base + trailing_zeros(mask)
                mask &= mask - 1
                turn, s, cr, dt = _face_candidate(cos_az[k], sin_az[k], cx, cz, rx, rz, c2, rho2, radius_m, inner_x, outer_x, floor)
                if turn < best:
                    best = turn
                    station, s_hit, cross, dot = k, s, cr, dt
        if station < 0:
            return -1, 0.0, 0.0, 0.0
        travel = _turn_rad(cross, dot)
        y_hit = py + rise * travel
        if abs(y_hit) <= half_height:
            break
        if (y_hit > half_height) == (rise > 0.0):
            return -1, 0.0, 0.0, 0.0
        floor = best
    # the positron must reach that face before it leaves the chamber (outwards or inwards): the
    # circle meets radius R_c at Q with Q − C ∝ n C ± √(4ρ²|C|² − n²) ŷ×C, n = R_c² − |C|² − ρ²,
    # whose turns from the decay point have cross and dot products n R×C ± √… R·C and n R·C ∓ √… R×C
    r_dot_c, r_cross_c = rx * cx + rz * cz, rx * cz - rz * cx
    for rc in (radius_m + chamber_x, radius_m + chamber_inner_x):
        n = rc * rc - c2 - rho2
        disc = 4.0 * rho2 * c2 - n * n
        if disc >= 0.0:
            root = math.sqrt(disc)
            for sgn in (-1.0, 1.0):
                cross_c, dot_c = n * r_cross_c + sgn * root * r_dot_c, n * r_dot_c - sgn * root * r_cross_c
                turn = _pseudo_angle(cross_c, dot_c)
                if turn <= best and (turn >= _SMALL_TURN or _turn_rad(cross_c, dot_c) > 1e-9):
                    return -1, 0.0, 0.0, 0.0
    return station, rho * travel * math.sqrt(1.0 + slope * slope) / SPEED_OF_LIGHT_M_PER_S * 1e9, s_hit - radius_m, y_hit


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
