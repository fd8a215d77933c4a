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

Fast mode finds the faces of a batch of positrons at once (:func:`calorimeter_hits_batch`: the same
answers, bit for bit, from loops that LLVM vectorises).
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

    n_stations: int = 24  # docs/physics.md §3 [V]
    inner_x_m: float = -0.275  # 9 PbF2 crystals of 2.5 cm: 22.5 cm wide [V], placed 5 cm inside the orbit [U]
    outer_x_m: float = -0.050
    half_height_m: float = 0.075  # 6 crystals of 2.5 cm [V]
    chamber_outer_x_m: float = 0.090  # a positron going further out than this hits the vacuum chamber [U]
    chamber_inner_x_m: float = -0.350  # … or further in than this (inner walls, calorimeter backs) [U]

    def azimuths_rad(self) -> np.ndarray:
        """Return the azimuths (rad) of the stations' front faces, 2π(k + 1)/n_stations."""
        return TWO_PI * (np.arange(self.n_stations) + 1.0) / self.n_stations


@njit(cache=True, error_model="numpy", inline="always")
def _pseudo_angle(cross, dot):
    """Return a stand-in for the angle atan2(cross, dot) taken in [0, 2π), increasing with it: values in [0, 4]."""
    r = dot / (abs(dot) + abs(cross))
    return 1.0 - r if cross >= 0.0 else 3.0 + r


@njit(cache=True, error_model="numpy", inline="always")
def _turn_rad(cross, dot):
    """Return the angle atan2(cross, dot) taken in [0, 2π) [rad]."""
    travel = math.atan2(cross, dot)
    return travel + TWO_PI if travel < 0.0 else travel


# below this pseudo-angle a turn is compared with the minimal turn of 1e-9 rad through atan2
_SMALL_TURN = 1e-8
# the candidate test widens the faces' radial range by this fraction of their outer radius
_FACE_MARGIN = 1e-7


@njit(cache=True, error_model="numpy", inline="always")
def _face_crossing(s, ex, ez, cx, cz, rx, rz, radius_m, inner_x, outer_x):
    """Return the turn from the decay point to the crossing at distance ``s`` [m] along (ex, ez).

    The result is the turn's pseudo-angle, cross and dot products [m²], and whether that crossing of the
    radial direction (ex, ez) lies on a front face and runs downstream.

    The circle has its centre at (cx, cz) [m] and the decay point at (cx + rx, cz + rz) [m].
    """
    qx, qz = s * ex - cx, s * ez - cz
    x_face = s - radius_m
    cross, dot = rx * qz - rz * qx, rx * qx + rz * qz
    # the front face is crossed moving downstream: tangent (−sin a, cos a)·φ̂ > 0, with
    # (cos a, sin a) = (Q − C)/ρ at the crossing Q = s ê; no branches on these
    on_face = (s > 0.0) & (x_face >= inner_x) & (x_face <= outer_x) & (qz * ez + qx * ex > 0.0)
    return _pseudo_angle(cross, dot), cross, dot, on_face


@njit(cache=True, error_model="numpy", inline="always")
def _face_turn(s, ex, ez, cx, cz, rx, rz, radius_m, inner_x, outer_x, floor):
    """Return :func:`_face_crossing`'s pseudo-angle, cross and dot products, the pseudo-angle 5 if not a face crossing.

    The pseudo-angle is 5 (above all others) where that is no downstream front-face crossing turned
    to beyond ``floor`` and 1e-9 rad.
    """
    turn, cross, dot, on_face = _face_crossing(s, ex, ez, cx, cz, rx, rz, radius_m, inner_x, outer_x)
    if turn < _SMALL_TURN and _turn_rad(cross, dot) <= 1e-9:
        turn = 5.0
    ok = on_face & (turn > floor)
    return (turn if ok else 5.0), cross, dot


@njit(cache=True, error_model="numpy", inline="always")
def _meets_faces(dc, c2, rho2, s_lo, s_hi):
    """Return whether the circle meets the radial line ê at its far root within [``s_lo``, ``s_hi``] [m].

    The far root is s = ê·C + √((ê·C)² − |C|² + ρ²), tested without the square root; ``dc`` = ê·C,
    |C|² = ``c2``, ρ² = ``rho2`` [m²].
    """
    disc = dc * dc - c2 + rho2
    to_hi, to_lo = s_hi - dc, s_lo - dc
    return (disc >= 0.0) & (to_hi >= 0.0) & (disc <= to_hi * to_hi) & ((to_lo <= 0.0) | (disc >= to_lo * to_lo))


@njit(cache=True, error_model="numpy", inline="always")
def _wall_turn(n, root, r_cross_c, r_dot_c, sgn):
    """Return the pseudo-angle, cross and dot products [m⁴] of the turn to the chamber-wall crossing of sign ``sgn``.

    See :func:`calorimeter_hit`: ``n`` = R_c² − |C|² − ρ², ``root`` = √(4ρ²|C|² − n²), R×C and R·C.
    """
    cross_c, dot_c = n * r_cross_c + sgn * root * r_dot_c, n * r_dot_c - sgn * root * r_cross_c
    return _pseudo_angle(cross_c, dot_c), cross_c, dot_c


@njit(cache=True, error_model="numpy", inline="always")
def _face_candidate(ex, ez, cx, cz, rx, rz, c2, rho2, radius_m, inner_x, outer_x, floor):
    """Return the crossing of the radial line (ex, ez) seen by :func:`_face_turn`.

    The result is (pseudo-angle, distance from the ring centre [m], cross and dot products [m²]);
    |C|² = ``c2``, ρ² = ``rho2`` [m²].
    """
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
                mask |= _meets_faces(cos_az[k] * cx + sin_az[k] * cz, c2, rho2, s_lo, s_hi) << j
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
                turn, cross_c, dot_c = _wall_turn(n, root, r_cross_c, r_dot_c, sgn)
                if turn <= best and (turn >= _SMALL_TURN or _turn_rad(cross_c, dot_c) > 1e-9):
                    return -1, 0.0, 0.0, 0.0
    return station, rho * travel * math.sqrt(1.0 + slope * slope) / SPEED_OF_LIGHT_M_PER_S * 1e9, s_hit - radius_m, y_hit


# rows of the batch finder's float work table, one column per positron: its circle, its best crossing so
# far, the turn to it, the bounds of the wide station test and the radial direction of the station tried
_W_RHO, _W_SLOPE, _W_RISE, _W_CX, _W_CZ, _W_RX, _W_RZ, _W_C2, _W_RHO2, _W_BEST, _W_S, _W_CROSS, _W_DOT, _W_TRAVEL, _W_LO, _W_HI, _W_TANGENT, _W_EX, _W_EZ = range(19)
_N_WORK_ROWS = 19
_WIDE = 1e-10  # the wide test's margins relative to the squared scale |C|² + ρ² + s_hi²: far above rounding (~1e-15)
# … and of its integer table: stations still to try (bit mask), station of the best crossing, fallback flag, hit list, station tried
_I_MASK, _I_STATION, _I_FALLBACK, _I_HIT, _I_TRY = range(5)
_N_INDEX_ROWS = 5
VECTOR_STATIONS = 64  # stations of one mask word: the batch finder hands more to calorimeter_hit
_VECTOR_ROUNDS = 2  # candidate stations per positron tried in vectorised passes (the rest, a few %, one by one)


@njit(cache=True)
def batch_scratch(n_max):
    """Work tables (float64, int64) of :func:`calorimeter_hits_batch` for batches of up to ``n_max`` positrons."""
    return np.empty((_N_WORK_ROWS, n_max)), np.empty((_N_INDEX_ROWS, n_max), dtype=np.int64)


@njit(cache=True, error_model="numpy", inline="always")
def _batch_candidate(ex, ez, cx, cz, rx, rz, c2, rho2, radius_m, inner_x, outer_x, s_lo, s_hi):
    """Return :func:`_face_candidate` (floor −1) of a station that passes :func:`_meets_faces`, without its rare branches.

    The result is (pseudo-angle, 5 where none, s [m], cross and dot products [m²], whether the scalar finder
    must decide: the near root runs downstream, a circle touching the radial line, or the turn is below
    ``_SMALL_TURN``, compared with 1e-9 rad through atan2).
    """
    dc = ex * cx + ez * cz
    meets = _meets_faces(dc, c2, rho2, s_lo, s_hi)
    root = math.sqrt(max(dc * dc - c2 + rho2, 0.0))
    s = dc + root
    turn, cross, dot, on_face = _face_crossing(s, ex, ez, cx, cz, rx, rz, radius_m, inner_x, outer_x)
    s_near = dc - root
    unsure = ((s_near * ex - cx) * ex + (s_near * ez - cz) * ez > 0.0) | (on_face & (turn < _SMALL_TURN))
    return (turn if on_face & meets else 5.0), s, cross, dot, meets & unsure


@njit(cache=True, error_model="numpy", inline="always")
def _wall_before(rc, c2, rho2, r_cross_c, r_dot_c, best):
    """Return whether the circle crosses radius ``rc`` [m] turned to at most the pseudo-angle ``best``.

    Beyond 1e-9 rad for sure, or maybe (below ``_SMALL_TURN``); see :func:`calorimeter_hit`.
    """
    wn = rc * rc - c2 - rho2
    disc = 4.0 * rho2 * c2 - wn * wn
    root = math.sqrt(max(disc, 0.0))
    turn_a = _wall_turn(wn, root, r_cross_c, r_dot_c, -1.0)[0]
    turn_b = _wall_turn(wn, root, r_cross_c, r_dot_c, 1.0)[0]
    before_a, before_b = (disc >= 0.0) & (turn_a <= best), (disc >= 0.0) & (turn_b <= best)
    return (before_a & (turn_a >= _SMALL_TURN)) | (before_b & (turn_b >= _SMALL_TURN)), (before_a & (turn_a < _SMALL_TURN)) | (before_b & (turn_b < _SMALL_TURN))


@njit(cache=True, error_model="numpy")
def calorimeter_hits_batch(
    px, py, pz, dx, dy, dz, energy_mev, n, field_t, radius_m, cos_az, sin_az, inner_x, outer_x, half_height, chamber_x, chamber_inner_x, work, index, station, flight_ns, x_hit, y_hit
):
    """:func:`calorimeter_hit` of positrons 0 … ``n`` − 1 of the rows ``px`` … ``energy_mev``, same results.

    Writes (station or −1, flight time [ns], x − R₀ [m], y [m]) to ``station``, ``flight_ns``,
    ``x_hit``, ``y_hit``; (``work``, ``index``) come from :func:`batch_scratch` (n ≤ its ``n_max``),
    so nothing is allocated. Loops over the batch that LLVM vectorises: the circles; the bit masks of
    the stations they may meet (a wide test linear in ê·C, stations outer, positrons inner); two passes
    trying each positron's next candidate station (the exact test of :func:`calorimeter_hit`, the
    lowest pseudo-angle kept, the first station on ties); the chamber walls; the height at the face
    and the flight time. Candidates beyond the second (a few %) are tried one by one, and atan2 (libm,
    as in :func:`calorimeter_hit`) runs once per positron reaching a face. Positrons the vector path
    cannot settle exactly (the first crossing above or below the faces but moving towards them, turns
    below ``_SMALL_TURN``, circles touching a radial line), and all with more than
    :data:`VECTOR_STATIONS` stations or faces reaching the ring's centre, go to :func:`calorimeter_hit`. No fast-math contraction, unlike
    the other vectorised loops of fast mode: each operation rounds as in :func:`calorimeter_hit`.
    """
    n_st = cos_az.size
    margin = _FACE_MARGIN * (radius_m + abs(outer_x))
    s_lo, s_hi = radius_m + inner_x - margin, radius_m + outer_x + margin
    if n_st > VECTOR_STATIONS or s_lo <= 0.0:
        for j in range(n):
            station[j], flight_ns[j], x_hit[j], y_hit[j] = calorimeter_hit(
                px[j], py[j], pz[j], dx[j], dy[j], dz[j], energy_mev[j], field_t, radius_m, cos_az, sin_az, inner_x, outer_x, half_height, chamber_x, chamber_inner_x
            )
        return
    rho_r, slope_r, rise_r, cx_r, cz_r, rx_r, rz_r = work[_W_RHO], work[_W_SLOPE], work[_W_RISE], work[_W_CX], work[_W_CZ], work[_W_RX], work[_W_RZ]
    c2_r, rho2_r, best, s_r, cross_r, dot_r, travel_r = work[_W_C2], work[_W_RHO2], work[_W_BEST], work[_W_S], work[_W_CROSS], work[_W_DOT], work[_W_TRAVEL]
    lo_r, hi_r, tangent_r, ex_r, ez_r = work[_W_LO], work[_W_HI], work[_W_TANGENT], work[_W_EX], work[_W_EZ]
    mask, best_k, fallback, hit, try_k = index[_I_MASK], index[_I_STATION], index[_I_FALLBACK], index[_I_HIT], index[_I_TRY]
    half_inv_lo, half_inv_hi, wide_m = 0.5 / s_lo, 0.5 / s_hi, _WIDE / s_lo  # [1/m]
    for j in range(n):  # the circles (centre C, decay point C + R), as in calorimeter_hit
        dh = math.sqrt(dx[j] * dx[j] + dz[j] * dz[j])
        rho = energy_mev[j] * 1e6 / (SPEED_OF_LIGHT_M_PER_S * field_t) * dh
        slope = dy[j] / dh
        rise = slope * rho
        vx, vz = dx[j] / dh, dz[j] / dh
        cx, cz = px[j] - rho * vz, pz[j] + rho * vx
        rho_r[j], slope_r[j], rise_r[j], cx_r[j], cz_r[j], rx_r[j], rz_r[j] = rho, slope, rise, cx, cz, px[j] - cx, pz[j] - cz
        # no horizontal motion or energy, or above (below) the faces and not coming back: ρ² NaN, so no station's test passes
        dead = (dh < 1e-12) | (energy_mev[j] <= 0.0) | ((py[j] > half_height) & (rise >= 0.0)) | ((py[j] < -half_height) & (rise <= 0.0))
        c2, rho2 = cx * cx + cz * cz, (np.nan if dead else rho * rho)
        c2_r[j], rho2_r[j] = c2, rho2
        # _meets_faces widened, linear in ê·C: in exact arithmetic its test is ê·C ≤ min(s_hi, g(s_hi)),
        # ê·C ≥ min(s_lo, g(s_lo)) and (ê·C)² ≥ |C|² − ρ², with g(s) = (s² + |C|² − ρ²)/2s
        scale = s_hi * s_hi + c2 + rho2
        lo_r[j] = min(s_lo, (s_lo * s_lo + c2 - rho2) * half_inv_lo) - wide_m * scale
        hi_r[j] = min(s_hi, (s_hi * s_hi + c2 - rho2) * half_inv_hi) + wide_m * scale
        tangent_r[j] = c2 - rho2 - _WIDE * scale
        mask[j], best[j], best_k[j], fallback[j], travel_r[j] = 0, 5.0, -1, 0, 0.0
    for k in range(n_st):  # bit k: station k passes the wide test (the exact one comes with its crossing)
        ex, ez, bit = cos_az[k], sin_az[k], np.int64(1) << k
        for j in range(n):
            dc = ex * cx_r[j] + ez * cz_r[j]
            mask[j] |= bit if (dc >= lo_r[j]) & (dc <= hi_r[j]) & (dc * dc >= tangent_r[j]) else 0
    for _ in range(_VECTOR_ROUNDS):
        for j in range(n):  # each positron's lowest remaining candidate station, −1 for none (gathered: not vectorised)
            m = mask[j]
            k = trailing_zeros(m) & 63  # 64 & 63 = 0 where none is left: any valid index
            mask[j] = m & (m - 1)
            try_k[j] = k if m != 0 else -1
            ex_r[j], ez_r[j] = cos_az[k], sin_az[k]
        for j in range(n):  # its crossing, kept if below the best so far
            k, best_j, s_j, cross_j, dot_j, k_j = try_k[j], best[j], s_r[j], cross_r[j], dot_r[j], best_k[j]  # loaded before the selects: no masked loads
            turn, s, cross, dot, unsure = _batch_candidate(ex_r[j], ez_r[j], cx_r[j], cz_r[j], rx_r[j], rz_r[j], c2_r[j], rho2_r[j], radius_m, inner_x, outer_x, s_lo, s_hi)
            better = (k >= 0) & (turn < best_j)
            best[j], s_r[j], cross_r[j], dot_r[j], best_k[j] = (turn if better else best_j), (s if better else s_j), (cross if better else cross_j), (dot if better else dot_j), (k if better else k_j)
            fallback[j] |= (k >= 0) & unsure
    for j in range(n):  # the remaining candidates, in station order
        m = mask[j]
        while m != 0:
            k = trailing_zeros(m)
            m &= m - 1
            turn, s, cross, dot, unsure = _batch_candidate(cos_az[k], sin_az[k], cx_r[j], cz_r[j], rx_r[j], rz_r[j], c2_r[j], rho2_r[j], radius_m, inner_x, outer_x, s_lo, s_hi)
            if turn < best[j]:
                best[j], s_r[j], cross_r[j], dot_r[j], best_k[j] = turn, s, cross, dot, k
            fallback[j] |= unsure
    rc_out, rc_in = radius_m + chamber_x, radius_m + chamber_inner_x
    for j in range(n):  # chamber walls crossed before the face: a miss, whatever the height at the face (−1)
        k, best_j, cx, cz, rx, rz, c2, rho2 = best_k[j], best[j], cx_r[j], cz_r[j], rx_r[j], rz_r[j], c2_r[j], rho2_r[j]
        r_dot_c, r_cross_c = rx * cx + rz * cz, rx * cz - rz * cx
        leaves_out, unsure_out = _wall_before(rc_out, c2, rho2, r_cross_c, r_dot_c, best_j)
        leaves_in, unsure_in = _wall_before(rc_in, c2, rho2, r_cross_c, r_dot_c, best_j)
        leaves = leaves_out | leaves_in
        fallback[j] |= (k >= 0) & (unsure_out | unsure_in) & ~leaves
        best_k[j] = -1 if leaves else k
    n_hits = 0
    for j in range(n):  # the positrons still reaching a face, then the turn to it through atan2
        hit[n_hits] = j
        n_hits += (best_k[j] >= 0) & (fallback[j] == 0)
    for i in range(n_hits):
        j = hit[i]
        travel_r[j] = _turn_rad(cross_r[j], dot_r[j])
    for j in range(n):  # height at the face, flight time
        k, travel, rise = best_k[j], travel_r[j], rise_r[j]
        y = py[j] + rise * travel
        inside = abs(y) <= half_height
        fallback[j] |= (k >= 0) & ~inside & ((y > half_height) != (rise > 0.0))  # moving towards the faces: search on
        ok = (k >= 0) & inside
        flight = rho_r[j] * travel * math.sqrt(1.0 + slope_r[j] * slope_r[j]) / SPEED_OF_LIGHT_M_PER_S * 1e9
        x_face = s_r[j] - radius_m  # computed before the selects: no masked loads
        station[j], flight_ns[j], x_hit[j], y_hit[j] = (k if ok else -1), (flight if ok else 0.0), (x_face if ok else 0.0), (y if ok else 0.0)
    for j in range(n):
        if fallback[j]:
            station[j], flight_ns[j], x_hit[j], y_hit[j] = calorimeter_hit(
                px[j], py[j], pz[j], dx[j], dy[j], dz[j], energy_mev[j], field_t, radius_m, cos_az, sin_az, inner_x, outer_x, half_height, chamber_x, chamber_inner_x
            )


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
        x, y, z = pos[i, 0], pos[i, 1], pos[i, 2]
        dx, dy, dz = direction[i, 0], direction[i, 1], direction[i, 2]
        station[i], flight_ns[i], x_hit[i], y_hit[i] = calorimeter_hit(x, y, z, dx, dy, dz, energy_mev[i], field_t, radius_m, cos_az, sin_az, inner_x, outer_x, half_height, chamber_x, chamber_inner_x)
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
