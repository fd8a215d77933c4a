"""Fast calorimeter hit finder: same station, flight time and hit position as the plain transcendental
implementation it replaced (a copy of which is kept here as the reference)."""

import math

import numpy as np
from numba import njit

from ringsim.constants import SPEED_OF_LIGHT_M_PER_S
from ringsim.detectors.calorimeter import CalorimeterGeometry, calorimeter_hit, face_directions

R0, B_T = 7.112, 1.4513
GEO = CalorimeterGeometry()
TWO_PI = 2.0 * math.pi


@njit
def reference_calorimeter_hit(px, py, pz, dx, dy, dz, energy_mev, field_t, radius_m, cos_az, sin_az, inner_x, outer_x, half_height, chamber_x, chamber_inner_x):
    """The former ``calorimeter_hit``: one atan2 per candidate crossing, acos and atan2 for the chamber exit."""
    dh = math.sqrt(dx * dx + dz * dz)
    if dh < 1e-12 or energy_mev <= 0.0:
        return -1, 0.0, 0.0, 0.0
    rho = energy_mev * 1e6 / (SPEED_OF_LIGHT_M_PER_S * field_t) * dh
    vx, vz = dx / dh, dz / dh
    cx, cz = px - rho * vz, pz + rho * vx
    rx, rz = px - cx, pz - cz
    slope = dy / dh
    c2 = cx * cx + cz * cz
    s_in, s_out = radius_m + inner_x, radius_m + outer_x
    g_in, g_out = (s_in * s_in + c2 - rho * rho) / (2.0 * s_in), (s_out * s_out + c2 - rho * rho) / (2.0 * s_out)
    g_lo, g_hi = min(g_in, g_out), max(g_in, g_out)
    s_turn2 = c2 - rho * rho
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
            qx, qz = s * ex - cx, s * ez - cz
            if qz * ez + qx * ex <= 0.0:
                continue
            travel = math.atan2(rx * qz - rz * qx, rx * qx + rz * qz)
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


def broad_positrons(rng, n, radius_m, wide):
    """Decay points within ±5 cm of R₀ radially and vertically at any azimuth, energies 10 MeV–3.1 GeV
    (half uniform, half log-uniform), directions within ±0.05 rad of the tangent horizontally and
    vertically, except a fraction ``wide`` going any way horizontally and within ±0.5 rad vertically."""
    azimuth = rng.uniform(0.0, TWO_PI, n)
    r = radius_m + rng.uniform(-0.05, 0.05, n)
    pos = np.stack([r * np.cos(azimuth), rng.uniform(-0.05, 0.05, n), r * np.sin(azimuth)], axis=1)
    is_wide = rng.random(n) < wide
    alpha = np.where(is_wide, rng.uniform(-math.pi, math.pi, n), rng.uniform(-0.05, 0.05, n))
    beta = np.where(is_wide, rng.uniform(-0.5, 0.5, n), rng.uniform(-0.05, 0.05, n))
    heading = azimuth + alpha  # the tangent, downstream, is (−sin φ, 0, cos φ)
    direction = np.stack([-np.sin(heading) * np.cos(beta), np.sin(beta), np.cos(heading) * np.cos(beta)], axis=1)
    energy = np.where(rng.random(n) < 0.5, rng.uniform(10.0, 3100.0, n), np.exp(rng.uniform(math.log(10.0), math.log(3100.0), n)))
    return pos, direction, energy


def hits_loop(hit):
    """An njit loop of the scalar finder ``hit`` over arrays: (station, flight time [ns], x_hit, y_hit).

    Not cached: numba's cache of a caller does not notice a change of the callee.
    """

    @njit
    def loop(pos, direction, energy, field_t, radius_m, cos_az, sin_az, inner_x, outer_x, half_height, chamber_x, chamber_inner_x):
        n = energy.size
        station, flight_ns, x_hit, y_hit = np.full(n, -1), np.zeros(n), np.zeros(n), np.zeros(n)
        for i in range(n):
            station[i], flight_ns[i], x_hit[i], y_hit[i] = hit(
                pos[i, 0], pos[i, 1], pos[i, 2], direction[i, 0], direction[i, 1], direction[i, 2], energy[i],
                field_t, radius_m, cos_az, sin_az, inner_x, outer_x, half_height, chamber_x, chamber_inner_x,
            )
        return station, flight_ns, x_hit, y_hit

    return loop


_reference_hits, _new_hits = hits_loop(reference_calorimeter_hit), hits_loop(calorimeter_hit)


def _geometry_args(azimuths):
    return (B_T, R0, *face_directions(azimuths), GEO.inner_x_m, GEO.outer_x_m, GEO.half_height_m, GEO.chamber_outer_x_m, GEO.chamber_inner_x_m)


def _near_edge(pos, direction, energy, station_new, args):
    """Whether the reference finds ``station_new`` for this positron once its energy or direction is
    changed by 1e-9 (relative, rad): the two answers differ only by rounding at a tie or an edge."""
    for scale in (1.0 - 1e-9, 1.0 + 1e-9):
        if _reference_hits(pos[None], direction[None], np.array([energy * scale]), *args)[0][0] == station_new:
            return True
    for axis in range(3):
        for step in (-1e-9, 1e-9):
            d = direction.copy()
            d[axis] += step
            if _reference_hits(pos[None], d[None] / np.linalg.norm(d), np.array([energy]), *args)[0][0] == station_new:
                return True
    return False


def _assert_same_hits(pos, direction, energy, azimuths=None):
    """Same stations as the reference but for rare rounding-degenerate cases, same hit values."""
    args = _geometry_args(GEO.azimuths_rad() if azimuths is None else azimuths)
    (s_ref, t_ref, x_ref, y_ref), (s_new, t_new, x_new, y_new) = _reference_hits(pos, direction, energy, *args), _new_hits(pos, direction, energy, *args)
    differ = np.flatnonzero(s_ref != s_new)
    assert differ.size <= 1e-5 * energy.size
    for i in differ:
        assert _near_edge(pos[i], direction[i], energy[i], s_new[i], args), (pos[i], direction[i], energy[i], s_ref[i], s_new[i])
    same = s_ref == s_new
    for ref, new in ((t_ref, t_new), (x_ref, x_new), (y_ref, y_new)):
        np.testing.assert_allclose(new[same], ref[same], rtol=1e-9, atol=1e-15)
    return s_ref, t_ref


def test_same_hits_as_the_reference_on_a_broad_sample():
    pos, direction, energy = broad_positrons(np.random.default_rng(11), 200_000, R0, wide=0.05)
    station, _ = _assert_same_hits(pos, direction, energy)
    assert 0.2 < np.mean(station >= 0) < 0.5  # the sample is not all misses (or all hits)


def test_same_hits_for_wide_angles_above_and_below_the_faces_and_past_half_a_turn():
    rng = np.random.default_rng(12)
    pos, direction, energy = broad_positrons(rng, 100_000, R0, wide=1.0)
    pos[:, 1] = rng.uniform(-0.15, 0.15, pos.shape[0])  # half of them start above or below the faces
    station, flight_ns = _assert_same_hits(pos, direction, energy)
    hit = station >= 0
    rho_m = energy * 1e6 / (299792458.0 * B_T) * np.hypot(direction[:, 0], direction[:, 2])
    turn = flight_ns * 1e-9 * 299792458.0 * np.hypot(direction[:, 0], direction[:, 2]) / np.maximum(rho_m, 1e-300)
    assert np.count_nonzero(hit & (np.abs(pos[:, 1]) > GEO.half_height_m)) > 100  # coming down (up) onto a face
    assert np.count_nonzero(hit & (turn > math.pi)) > 5  # more than half a circle before the hit (rare: most leave the chamber first)


def test_same_hits_from_decay_points_inside_outside_and_on_the_faces_and_walls():
    rng = np.random.default_rng(13)
    n = 20_000
    x = rng.choice(np.array([GEO.inner_x_m, GEO.outer_x_m, -0.15, -0.3, 0.08, GEO.chamber_outer_x_m, 0.12, GEO.chamber_inner_x_m, -0.4]), n)
    on_face = rng.random(n) < 0.5
    azimuth = np.where(on_face, GEO.azimuths_rad()[rng.integers(0, GEO.n_stations, n)], rng.uniform(0.0, TWO_PI, n))
    pos = np.stack([(R0 + x) * np.cos(azimuth), rng.uniform(-0.05, 0.05, n), (R0 + x) * np.sin(azimuth)], axis=1)
    heading = azimuth + rng.uniform(-math.pi, math.pi, n)
    beta = rng.uniform(-0.05, 0.05, n)
    direction = np.stack([-np.sin(heading) * np.cos(beta), np.sin(beta), np.cos(heading) * np.cos(beta)], axis=1)
    energy = np.exp(rng.uniform(math.log(10.0), math.log(3100.0), n))
    _assert_same_hits(pos, direction, energy)


def test_same_hits_for_circles_tangent_to_a_face():
    # centre C at distance ρ from station k's radial line, touching it at s ê_k within the face
    rng = np.random.default_rng(14)
    n = 5_000
    k = rng.integers(0, GEO.n_stations, n)
    az = GEO.azimuths_rad()[k]
    e_k, n_k = np.stack([np.cos(az), np.sin(az)], axis=1), np.stack([-np.sin(az), np.cos(az)], axis=1)
    energy = np.exp(rng.uniform(math.log(10.0), math.log(3100.0), n))
    rho = energy * 1e6 / (299792458.0 * B_T)
    s = R0 + rng.uniform(GEO.inner_x_m, GEO.outer_x_m, n)
    side = rng.choice([-1.0, 1.0], n)
    centre = s[:, None] * e_k + (side * rho)[:, None] * n_k
    a = rng.uniform(0.0, TWO_PI, n)  # decay point on the circle, moving anticlockwise about C
    pos2 = centre + rho[:, None] * np.stack([np.cos(a), np.sin(a)], axis=1)
    pos = np.stack([pos2[:, 0], np.zeros(n), pos2[:, 1]], axis=1)
    direction = np.stack([-np.sin(a), np.zeros(n), np.cos(a)], axis=1)
    _assert_same_hits(pos, direction, energy)


def test_more_stations_than_one_mask_holds():
    pos, direction, energy = broad_positrons(np.random.default_rng(15), 20_000, R0, wide=0.2)
    station, _ = _assert_same_hits(pos, direction, energy, azimuths=TWO_PI * (np.arange(150) + 1.0) / 150)
    assert np.any(station >= 64)


def test_no_hit_without_horizontal_motion_or_energy():
    cos_az, sin_az = face_directions(GEO.azimuths_rad())
    faces = (GEO.inner_x_m, GEO.outer_x_m, GEO.half_height_m, GEO.chamber_outer_x_m, GEO.chamber_inner_x_m)
    for direction, energy in (((0.0, 1.0, 0.0), 1000.0), ((1e-13, 1.0, 0.0), 1000.0), ((0.0, 0.0, 1.0), 0.0), ((0.0, 0.0, 1.0), -5.0)):
        assert calorimeter_hit(R0, 0.0, 0.0, *direction, energy, B_T, R0, cos_az, sin_az, *faces) == (-1, 0.0, 0.0, 0.0)
