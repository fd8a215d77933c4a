"""Fast calorimeter hit finder: same station, flight time and hit position as the plain transcendental
implementation it replaced (a copy of which is kept here as the reference); the batch finder of fast
mode: bit for bit the answers of the one-positron finder."""

import math

import numpy as np
import pytest
from numba import njit

from ringsim.beam import muon_charge_over_mass
from ringsim.config import load_config
from ringsim.constants import SPEED_OF_LIGHT_M_PER_S, codata
from ringsim.detectors.calorimeter import _I_FALLBACK, VECTOR_STATIONS, CalorimeterGeometry, batch_scratch, calorimeter_hit, calorimeter_hits_batch, face_directions
from ringsim.fast_generation import _DX, _DY, _DZ, _ENERGY, _PX, _PY, _PZ, BATCH, N_DECAY_ROWS, _beam, _decays, fast_params, fill_streams
from ringsim.rings import ring_kinematics

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
            x, y, z = pos[i, 0], pos[i, 1], pos[i, 2]
            dx, dy, dz = direction[i, 0], direction[i, 1], direction[i, 2]
            station[i], flight_ns[i], x_hit[i], y_hit[i] = hit(x, y, z, dx, dy, dz, energy[i], field_t, radius_m, cos_az, sin_az, inner_x, outer_x, half_height, chamber_x, chamber_inner_x)
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


def faces_and_walls_positrons(rng, n):
    """Decay points on the faces' edges and radial lines, on the chamber walls, inside and outside, any heading."""
    x = rng.choice(np.array([GEO.inner_x_m, GEO.outer_x_m, -0.15, -0.3, 0.08, GEO.chamber_outer_x_m, 0.12, GEO.chamber_inner_x_m, -0.4]), n)
    on_face = rng.random(n) < 0.5
    azimuth = np.where(on_face, GEO.azimuths_rad()[rng.integers(0, GEO.n_stations, n)], rng.uniform(0.0, TWO_PI, n))
    pos = np.stack([(R0 + x) * np.cos(azimuth), rng.uniform(-0.05, 0.05, n), (R0 + x) * np.sin(azimuth)], axis=1)
    heading = azimuth + rng.uniform(-math.pi, math.pi, n)
    beta = rng.uniform(-0.05, 0.05, n)
    direction = np.stack([-np.sin(heading) * np.cos(beta), np.sin(beta), np.cos(heading) * np.cos(beta)], axis=1)
    energy = np.exp(rng.uniform(math.log(10.0), math.log(3100.0), n))
    return pos, direction, energy


def test_same_hits_from_decay_points_inside_outside_and_on_the_faces_and_walls():
    _assert_same_hits(*faces_and_walls_positrons(np.random.default_rng(13), 20_000))


def tangent_positrons(rng, n):
    """Circles whose centre C lies at distance ρ from station k's radial line, touching it at s ê_k within the face."""
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
    return pos, direction, energy


def test_same_hits_for_circles_tangent_to_a_face():
    _assert_same_hits(*tangent_positrons(np.random.default_rng(14), 5_000))


def test_more_stations_than_one_mask_holds():
    pos, direction, energy = broad_positrons(np.random.default_rng(15), 20_000, R0, wide=0.2)
    station, _ = _assert_same_hits(pos, direction, energy, azimuths=TWO_PI * (np.arange(150) + 1.0) / 150)
    assert np.any(station >= 64)


def test_no_hit_without_horizontal_motion_or_energy():
    cos_az, sin_az = face_directions(GEO.azimuths_rad())
    faces = (GEO.inner_x_m, GEO.outer_x_m, GEO.half_height_m, GEO.chamber_outer_x_m, GEO.chamber_inner_x_m)
    for direction, energy in (((0.0, 1.0, 0.0), 1000.0), ((1e-13, 1.0, 0.0), 1000.0), ((0.0, 0.0, 1.0), 0.0), ((0.0, 0.0, 1.0), -5.0)):
        assert calorimeter_hit(R0, 0.0, 0.0, *direction, energy, B_T, R0, cos_az, sin_az, *faces) == (-1, 0.0, 0.0, 0.0)


def _batch_rows(pos, direction, energy):
    """A decay table as fast mode has it: one contiguous row per quantity (_PX … _ENERGY)."""
    rows = np.zeros((N_DECAY_ROWS, energy.size))
    rows[_PX], rows[_PY], rows[_PZ] = pos.T
    rows[_DX], rows[_DY], rows[_DZ] = direction.T
    rows[_ENERGY] = energy
    return rows


def _run_batches(rows, n_total, args, size=BATCH):
    """calorimeter_hits_batch over columns 0 … n_total − 1 of ``rows``, ``size`` at a time: (station, flight time [ns],
    x, y) and the number of positrons handed to the scalar finder."""
    work, index = batch_scratch(size)
    station, flight_ns, x_hit, y_hit = np.full(n_total, -7, dtype=np.int64), np.full(n_total, np.nan), np.full(n_total, np.nan), np.full(n_total, np.nan)
    n_scalar = 0
    for first in range(0, n_total, size):
        m = min(size, n_total - first)
        cols = [np.ascontiguousarray(rows[r, first : first + m]) for r in (_PX, _PY, _PZ, _DX, _DY, _DZ, _ENERGY)]
        calorimeter_hits_batch(*cols, m, *args, work, index, station[first:], flight_ns[first:], x_hit[first:], y_hit[first:])
        n_scalar += int(np.count_nonzero(index[_I_FALLBACK, :m])) if args[2].size <= VECTOR_STATIONS else 0
    return station, flight_ns, x_hit, y_hit, n_scalar


def _assert_batch_is_scalar(pos, direction, energy, azimuths=None, size=BATCH):
    """The batch finder gives bit for bit the station, flight time and hit position of calorimeter_hit; returns the
    stations and the number of positrons it handed to calorimeter_hit."""
    args = _geometry_args(GEO.azimuths_rad() if azimuths is None else azimuths)
    scalar = _new_hits(pos, direction, energy, *args)
    *batch, n_scalar = _run_batches(_batch_rows(pos, direction, energy), energy.size, args, size)
    for ref, new in zip(scalar, batch):
        np.testing.assert_array_equal(new, ref)
    return scalar[0], n_scalar


def test_batch_is_the_scalar_finder_on_fast_mode_decays():
    # the decay table of the fast-mode kernel itself: 800 batches of Fermilab decays
    cfg = load_config("fnal")
    p = fast_params(cfg, ring_kinematics(cfg), muon_charge_over_mass(), codata().muon_mass_mev)
    streams = fill_streams(7, 0, 1)[0]
    n_muons = 800 * BATCH
    beam = np.empty((7, n_muons))
    _beam(p, streams[0], streams[1], n_muons, beam)
    rows = np.empty((N_DECAY_ROWS, n_muons))
    out = np.empty((N_DECAY_ROWS, BATCH))
    for first in range(0, n_muons, BATCH):
        _decays(p, streams[2], streams[3], first, BATCH, beam, out)
        rows[:, first : first + BATCH] = out
    pos, direction = rows[[_PX, _PY, _PZ]].T.copy(), rows[[_DX, _DY, _DZ]].T.copy()
    station, _ = _assert_batch_is_scalar(pos, direction, rows[_ENERGY].copy())
    assert 0.3 < np.mean(station >= 0) < 0.6
    assert np.all(np.bincount(station[station >= 0], minlength=GEO.n_stations) > 0.02 * np.count_nonzero(station >= 0))


def test_batch_is_the_scalar_finder_on_broad_samples():
    rng = np.random.default_rng(21)
    station, _ = _assert_batch_is_scalar(*broad_positrons(rng, 100_000, R0, wide=0.05))
    assert 0.2 < np.mean(station >= 0) < 0.5
    pos, direction, energy = broad_positrons(rng, 100_000, R0, wide=1.0)
    pos[:, 1] = rng.uniform(-0.15, 0.15, pos.shape[0])  # half above or below the faces
    station, n_scalar = _assert_batch_is_scalar(pos, direction, energy)
    assert np.count_nonzero(station >= 0) > 500 and n_scalar > 10  # some came down (up) past a first face crossing


def test_batch_is_the_scalar_finder_on_faces_walls_and_tangent_circles():
    # decay points on a face's line or a chamber wall (turns below _SMALL_TURN) and circles touching a
    # face's line (near and far root coincide): the cases the vector path leaves to calorimeter_hit
    _, n_walls = _assert_batch_is_scalar(*faces_and_walls_positrons(np.random.default_rng(22), 20_000))
    _, n_tangent = _assert_batch_is_scalar(*tangent_positrons(np.random.default_rng(23), 5_000))
    assert n_walls > 10 and n_tangent > 10


def test_batch_is_the_scalar_finder_past_a_first_crossing_above_the_face():
    # decays above the faces, descending: positrons whose first face crossing (on faces 10 m high) is
    # above the face and which hit a later one, found by calorimeter_hit's vertical re-search
    rng = np.random.default_rng(24)
    n = 200_000
    azimuth, r = rng.uniform(0.0, TWO_PI, n), R0 + rng.uniform(-0.05, 0.05, n)
    pos = np.stack([r * np.cos(azimuth), rng.uniform(GEO.half_height_m, 0.2, n), r * np.sin(azimuth)], axis=1)
    heading, beta = azimuth + rng.uniform(-0.3, 0.3, n), -rng.uniform(0.001, 0.1, n)
    direction = np.stack([-np.sin(heading) * np.cos(beta), np.sin(beta), np.cos(heading) * np.cos(beta)], axis=1)
    energy = np.exp(rng.uniform(math.log(100.0), math.log(3100.0), n))
    cos_az, sin_az = face_directions(GEO.azimuths_rad())
    tall = _new_hits(pos, direction, energy, B_T, R0, cos_az, sin_az, GEO.inner_x_m, GEO.outer_x_m, 10.0, GEO.chamber_outer_x_m, GEO.chamber_inner_x_m)[0]
    station, _ = _assert_batch_is_scalar(pos, direction, energy)
    later = (station >= 0) & (tall >= 0) & (station != tall)
    assert np.count_nonzero(later) > 100
    _, n_scalar = _assert_batch_is_scalar(pos[later], direction[later], energy[later])
    assert n_scalar == np.count_nonzero(later)


@pytest.mark.parametrize("size", [1, 7, 13, 100, 255])
def test_batch_of_any_size_writes_its_columns_only(size):
    pos, direction, energy = broad_positrons(np.random.default_rng(25), 3 * size + 5, R0, wide=0.3)
    _assert_batch_is_scalar(pos, direction, energy, size=size)  # batches of ``size``, the last one shorter
    # one call for the first ``size`` of longer input rows and output arrays: nothing beyond ``size`` is written
    rows = _batch_rows(pos, direction, energy)
    work, index = batch_scratch(BATCH)
    n_out = energy.size
    station, flight_ns, x_hit, y_hit = np.full(n_out, -7, dtype=np.int64), np.full(n_out, np.nan), np.full(n_out, np.nan), np.full(n_out, np.nan)
    cols = [np.ascontiguousarray(rows[r]) for r in (_PX, _PY, _PZ, _DX, _DY, _DZ, _ENERGY)]
    calorimeter_hits_batch(*cols, size, *_geometry_args(GEO.azimuths_rad()), work, index, station, flight_ns, x_hit, y_hit)
    assert np.all(station[size:] == -7) and np.all(np.isnan(flight_ns[size:])) and np.all(np.isnan(x_hit[size:]) & np.isnan(y_hit[size:]))
    assert np.all(station[:size] >= -1) and not np.isnan(flight_ns[:size]).any()


def test_batch_with_more_stations_than_one_mask_holds():
    pos, direction, energy = broad_positrons(np.random.default_rng(26), 5_000, R0, wide=0.2)
    station, _ = _assert_batch_is_scalar(pos, direction, energy, azimuths=TWO_PI * (np.arange(150) + 1.0) / 150)
    assert np.any(station >= 64)


def test_batch_with_faces_reaching_the_ring_centre():
    # faces from 1 cm beyond the ring's centre out to the orbit, which the wide station test does not handle
    pos, direction, energy = broad_positrons(np.random.default_rng(27), 5_000, R0, wide=0.2)
    args = (B_T, R0, *face_directions(GEO.azimuths_rad()), -R0 - 0.01, GEO.outer_x_m, GEO.half_height_m, GEO.chamber_outer_x_m, -R0 - 0.02)
    scalar = _new_hits(pos, direction, energy, *args)
    batch = _run_batches(_batch_rows(pos, direction, energy), energy.size, args)[:4]
    for ref, new in zip(scalar, batch):
        np.testing.assert_array_equal(new, ref)
    assert np.count_nonzero(scalar[0] >= 0) > 1000


def test_batch_no_hit_without_horizontal_motion_or_energy():
    pos = np.tile([R0, 0.0, 0.0], (4, 1))
    direction = np.array([[0.0, 1.0, 0.0], [1e-13, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    station, n_scalar = _assert_batch_is_scalar(pos, direction, np.array([1000.0, 1000.0, 0.0, -5.0]))
    assert np.all(station == -1) and n_scalar == 0
