"""J-PARC silicon vanes: helix crossings, acceptance, up–down asymmetry, reconstruction.

Independent references written here: a Runge–Kutta integration of the Lorentz force, the helix in
its rotation form P(α) = P₀ + ρ[sin α t̂ + (1 − cos α) n̂] sampled densely, a rest-frame integral of
the Michel density for the vertical asymmetry, and binomial probabilities for the per-vane efficiency.
"""

import math

import numpy as np
import pytest
from numba import njit
from scipy import constants as sc
from scipy import integrate, stats

from ringsim.constants import codata
from ringsim.decay import decay_positron
from ringsim.detectors.vanes import VaneGeometry, reconstruct, vane_hits
from ringsim.errors import ConfigError, InputError

M_MU = codata().muon_mass_mev
R0_M = 0.33356  # docs/physics.md §5
U_MUON = 300.0 / M_MU  # γβ of the 300 MeV/c muon
GEOM = VaneGeometry()


@njit
def _decays_on_orbit(n, spin_y, polarization, seed):
    """Muons on the orbit at random azimuth, moving along the tangent; spin along spin_y·ŷ (or the
    momentum when spin_y = 0). Rows: decay x, y, z [m], positron direction, energy [MeV]."""
    np.random.seed(seed)
    out = np.empty((n, 7))
    for i in range(n):
        phi = 2.0 * math.pi * np.random.random()
        tx, tz = -math.sin(phi), math.cos(phi)
        if spin_y == 0.0:
            sx, sy, sz = tx, 0.0, tz
        else:
            sx, sy, sz = 0.0, spin_y, 0.0
        e, dx, dy, dz = decay_positron(U_MUON * tx, 0.0, U_MUON * tz, sx, sy, sz, polarization, M_MU)
        out[i, 0], out[i, 1], out[i, 2] = R0_M * math.cos(phi), 0.0, R0_M * math.sin(phi)
        out[i, 3], out[i, 4], out[i, 5], out[i, 6] = dx, dy, dz, e
    return out


def _hits(sample, geometry=GEOM, t0_ns=None):
    t0 = np.zeros(len(sample)) if t0_ns is None else t0_ns
    return vane_hits(sample[:, :3], sample[:, 3:6], sample[:, 6], t0, geometry)


def _rk4_crossings(x0, d0, energy_mev, geom, ds_m=5e-4):
    """Integrate dp/ds = e p̂ × B (massless, v = c) with RK4 in SI units; linear interpolation of the
    sign change of û_k × r at each vane. Stops after 2π of turning, at |y| > h or r < r_min."""
    b_vec = np.array([0.0, geom.field_t, 0.0])
    p_abs = energy_mev * 1e6 * sc.e / sc.c
    state = np.concatenate([np.asarray(x0, float), p_abs * np.asarray(d0, float)])

    def deriv(st):
        p_hat = st[3:] / p_abs
        return np.concatenate([p_hat, sc.e * np.cross(p_hat, b_vec)])

    phis = 2 * np.pi * np.arange(geom.n_vanes) / geom.n_vanes
    ux, uz = np.cos(phis), np.sin(phis)
    crossings, s_m, turned = [], 0.0, 0.0
    while True:
        k1 = deriv(state)
        k2 = deriv(state + 0.5 * ds_m * k1)
        k3 = deriv(state + 0.5 * ds_m * k2)
        k4 = deriv(state + ds_m * k3)
        new = state + ds_m / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        ca = ux * state[2] - uz * state[0]
        cb = ux * new[2] - uz * new[0]
        for k in np.flatnonzero(ca * cb < 0):
            f = ca[k] / (ca[k] - cb[k])
            pos = state[:3] + f * (new[:3] - state[:3])
            r = pos[0] * ux[k] + pos[2] * uz[k]
            if r > 0 and geom.r_min_m <= r <= geom.r_max_m:
                crossings.append((k, r, pos[1], (s_m + f * ds_m) / sc.c * 1e9))
        turned += math.atan2(state[3] * new[5] - state[5] * new[3], state[3] * new[3] + state[5] * new[5])
        state, s_m = new, s_m + ds_m
        if turned >= 2 * np.pi or abs(state[1]) > geom.half_height_m or math.hypot(state[0], state[2]) < geom.r_min_m:
            return crossings


@pytest.mark.parametrize(
    "decay_xyz, direction, energy_mev, stop",
    [
        ((R0_M, 0.0, 0.0), (0.0, 0.05, 1.0), 240.0, "full turn"),
        ((R0_M * math.cos(0.3), 0.002, R0_M * math.sin(0.3)), (-0.5, -0.1, 0.8), 150.0, "inner support"),
        ((R0_M, 0.0, 0.0), (-0.3, 0.02, 0.9), 100.0, "full turn, same vane twice"),
        ((R0_M, 0.01, 0.0), (0.1, 0.45, 0.9), 120.0, "leaves vertically"),
    ],
)
def test_single_positron_crossings_match_lorentz_force_integration(decay_xyz, direction, energy_mev, stop):
    d = np.asarray(direction) / np.linalg.norm(direction)
    t0 = 17.0
    hits = vane_hits(np.array([decay_xyz]), np.array([d]), np.array([energy_mev]), np.array([t0]), GEOM)
    ref = _rk4_crossings(decay_xyz, d, energy_mev, GEOM)
    sl = slice(hits.hit_offsets[0], hits.hit_offsets[1])
    assert hits.n_vanes[0] == len(ref) >= 3
    np.testing.assert_array_equal(hits.hit_vane[sl], [c[0] for c in ref])
    np.testing.assert_allclose(hits.hit_r_m[sl], [c[1] for c in ref], atol=2e-6)
    np.testing.assert_allclose(hits.hit_y_m[sl], [c[2] for c in ref], atol=2e-6)
    np.testing.assert_allclose(hits.hit_time_ns[sl] - t0, [c[3] for c in ref], atol=1e-4)
    assert hits.first_time_ns[0] == hits.hit_time_ns[sl][0] and hits.first_vane[0] == ref[0][0]
    # every hit lies on the circle of radius p⊥/(eB) about the centre left of the initial motion
    h = math.hypot(d[0], d[2])
    rho = energy_mev * 1e6 * sc.e / sc.c * h / (sc.e * GEOM.field_t)
    centre = np.array([decay_xyz[0] - rho * d[2] / h, decay_xyz[2] + rho * d[0] / h])
    phi = 2 * np.pi * hits.hit_vane[sl] / GEOM.n_vanes
    pts = hits.hit_r_m[sl][:, None] * np.stack([np.cos(phi), np.sin(phi)], axis=1)
    np.testing.assert_allclose(np.linalg.norm(pts - centre, axis=1), rho, rtol=1e-12)
    assert hits.hemisphere[0] == np.sign(d[1])
    assert hits.vertical_angle_rad[0] == pytest.approx(math.atan2(d[1], h), rel=1e-14)


def _counts_by_sampling(sample, geom, n_steps=6000):
    """Independent crossing count: the helix P(α) = P₀ + ρ[sin α t̂ + (1 − cos α) n̂], y = y₀ + ρ α tanλ,
    sampled at n_steps points per turn; a vane is crossed where the sector index ⌊φ/Δφ⌋ changes, at
    the interpolated radius, before the interpolated stop (|y| > h, r < r_min) or 2π."""
    x0, y0, z0, dx, dy, dz, e = sample.T
    h = np.hypot(dx, dz)
    rho = e * 1e6 * h / (sc.c * geom.field_t)
    tx, tz = dx / h, dz / h
    alpha = np.linspace(0.0, 2 * np.pi, n_steps + 1)
    sa, ca = np.sin(alpha), 1.0 - np.cos(alpha)
    px = x0[:, None] + rho[:, None] * (sa * tx[:, None] - ca * tz[:, None])
    pz = z0[:, None] + rho[:, None] * (sa * tz[:, None] + ca * tx[:, None])
    py = y0[:, None] + rho[:, None] * alpha * (dy / h)[:, None]
    r = np.hypot(px, pz)
    # stop: first sample outside, at the interpolated fraction of the preceding step
    bad_y, bad_r = np.abs(py) - geom.half_height_m, geom.r_min_m - r
    margin = np.maximum(bad_y, bad_r)
    out = margin > 0
    first_out = np.where(out.any(axis=1), out.argmax(axis=1), n_steps + 1)
    sector_width = 2 * np.pi / geom.n_vanes
    sector = np.floor(np.mod(np.arctan2(pz, px), 2 * np.pi) / sector_width).astype(int)  # 0 … n−1
    counts = np.zeros(len(sample), dtype=int)
    for i in range(len(sample)):
        for j in np.flatnonzero(sector[i, 1:] != sector[i, :-1]):
            if j + 1 > first_out[i]:
                break
            a, b = sector[i, j], sector[i, j + 1]
            k = max(a, b) if abs(a - b) == 1 else 0  # the vane between the sectors (0 between n−1 and 0)
            u = np.array([math.cos(k * sector_width), math.sin(k * sector_width)])
            ca_, cb_ = u[0] * pz[i, j] - u[1] * px[i, j], u[0] * pz[i, j + 1] - u[1] * px[i, j + 1]
            f = ca_ / (ca_ - cb_)
            if j + 1 == first_out[i]:
                m0, m1 = margin[i, j], margin[i, j + 1]
                if f >= m0 / (m0 - m1):
                    break
            rc = math.hypot(px[i, j] + f * (px[i, j + 1] - px[i, j]), pz[i, j] + f * (pz[i, j + 1] - pz[i, j]))
            counts[i] += geom.r_min_m <= rc <= geom.r_max_m
    return counts


def test_crossing_counts_agree_with_densely_sampled_helix():
    sample = _decays_on_orbit(1500, 0.0, 0.0, 21)
    sample = sample[sample[:, 6] > 20.0]  # below 19.6 MeV nothing reaches r_max (next test)
    counts = _hits(sample).n_vanes
    ref = np.concatenate([_counts_by_sampling(sample[i : i + 250], GEOM) for i in range(0, len(sample), 250)])
    assert np.mean(counts == ref) >= 0.999
    assert np.abs(counts - ref).max() <= 1
    assert counts.sum() > 5 * len(sample)


def test_acceptance_versus_momentum_has_the_geometric_shape():
    """Acceptance (≥ 3 detected vanes) of Michel positrons from decays on the orbit r = R₀.

    In the uniform 3 T field a positron from R₀ moves on a circle of radius ρ = p⊥/(eB) that curls
    inwards; for tangential emission it spans radii [R₀ − 2ρ, R₀] (ρ < R₀/2) or [2ρ − R₀, R₀].
    - p < eB(R₀ − r_max)/2 = 19.6 MeV: the circle never reaches the active radius r_max → no hits.
    - 20–75 MeV: short arcs just inside r_max span fewer than two vane spacings (18°) → rises from 0.
    - ~75–100 MeV: the circle stays between r_min and r_max and sweeps many vanes → nearly 1.
    - dip near p = eBR₀/2 = 150 MeV: the circle passes near the ring centre, so the track runs almost
      radially into the inner support r_min after crossing only a few vanes.
    - p > eB(R₀ + r_min)/2 = 191 MeV: the circle encloses the support and crosses ~20–30 vanes → 1.
      The 200–275 MeV analysis window therefore has full acceptance.
    - p > eB(R₀ + r_max)/2 = 280 MeV: near-tangential positrons stay outside r_max; above 290 MeV the
      decay kinematics bound the angle to the tangent to ≤ 5.1°, which keeps every circle outside.
    """
    sample = _decays_on_orbit(200_000, 0.0, 0.0, 22)
    e = sample[:, 6]
    hits = _hits(sample)
    acc = reconstruct(hits, GEOM, 5).accepted
    mev_per_m = sc.c * GEOM.field_t / 1e6  # p = eBρ
    p_reach = mev_per_m * (R0_M - GEOM.r_max_m) / 2
    p_enclose = mev_per_m * (R0_M + GEOM.r_min_m) / 2
    p_outside = mev_per_m * (R0_M + GEOM.r_max_m) / 2
    assert p_reach == pytest.approx(19.6, abs=0.1) and p_enclose == pytest.approx(191.3, abs=0.1)
    assert p_outside == pytest.approx(280.4, abs=0.1)

    def frac(lo, hi):
        m = (e >= lo) & (e < hi)
        assert m.sum() > 500
        return acc[m].mean()

    assert not np.any(hits.n_vanes[e < p_reach])
    assert frac(p_reach, 50) < 0.1 < frac(50, 75) < 0.95 < frac(75, 100)
    assert frac(125, 150) < frac(75, 100) - 0.1 and frac(125, 150) < frac(175, 200) - 0.1
    window = frac(200, 275)
    assert window >= 0.999  # 1.0000 with the default geometry
    assert 0.0 < frac(p_outside, 290) < 0.9 and not np.any(acc[e >= 290])
    assert np.mean(hits.n_vanes[(e >= 200) & (e < 275)]) > 15


def _vertical_asymmetry_integral(lo_mev, hi_mev):
    """A_ud and window fraction from the rest-frame density x²[(3−2x) + cosθ(2x−1)], spin along ŷ.

    The boost is horizontal, so sign(p_y) = sign(n*_y); the window fixes n* along the boost, c, and
    averaging |n*_y| = √(1−c²)|sin ϕ| over ϕ gives (2/π)√(1−c²).
    """
    gamma = math.sqrt(1 + U_MUON**2)
    beta = U_MUON / gamma

    def c_range(x):
        scale = 0.5 * gamma * M_MU * x
        return np.clip([(lo_mev / scale - 1) / beta, (hi_mev / scale - 1) / beta], -1, 1)

    def arc(c):
        return 0.5 * (c * math.sqrt(1 - c * c) + math.asin(c))

    kinks = sorted(2 * e / (gamma * M_MU * (1 + s * beta)) for e in (lo_mev, hi_mev) for s in (1, -1))
    pts = [k for k in kinks if 0 < k < 1]
    up_minus_down = integrate.quad(lambda x: x * x * (2 * x - 1) * (2 / math.pi) * np.diff([arc(c) for c in c_range(x)])[0], 0, 1, points=pts, limit=200)[0]
    number = integrate.quad(lambda x: x * x * (3 - 2 * x) * np.diff(c_range(x))[0], 0, 1, points=pts, limit=200)[0]
    return up_minus_down / number, number  # ∫∫ x²(3−2x) dx dc = 1 over all decays


@pytest.fixture(scope="module")
def vertical_spin_samples():
    """Decays with spin ±ŷ (P = 1), positrons with 190–290 MeV (the window and > 5σ of momentum resolution)."""
    out = {}
    for spin, seed in ((1.0, 31), (-1.0, 32)):
        s = _decays_on_orbit(1_000_000, spin, 1.0, seed)
        out[spin] = (s[(s[:, 6] > 190) & (s[:, 6] < 290)], len(s))
    return out


def test_up_down_asymmetry_per_unit_vertical_spin_perfect_acceptance(vertical_spin_samples):
    a_ref, frac_ref = _vertical_asymmetry_integral(200.0, 275.0)
    assert a_ref == pytest.approx(0.268, abs=0.002)  # docs/physics.md §5
    assert frac_ref == pytest.approx(0.125, abs=0.001)
    for spin, (s, n_decays) in vertical_spin_samples.items():
        w = (s[:, 6] >= 200) & (s[:, 6] <= 275)
        n_up, n_down = np.sum(w & (s[:, 4] > 0)), np.sum(w & (s[:, 4] < 0))
        assert (n_up + n_down) / n_decays == pytest.approx(frac_ref, abs=4 * math.sqrt(frac_ref / n_decays))
        assert (n_up - n_down) / (n_up + n_down) == pytest.approx(spin * a_ref, abs=4 / math.sqrt(n_up + n_down))


def _measured_and_predicted_asymmetry(samples, geom):
    """A_ud of accepted tracks with reconstructed 200–275 MeV from the ±ŷ samples, and its prediction
    from the same events treated as unpolarised and reweighted by 1 ± k(x) n*_y, k = (2x−1)/(3−2x)."""
    measured, weighted, unweighted = [], 0.0, 0
    for spin, (s, _) in samples.items():
        tracks = reconstruct(_hits(s, geom), geom, 7 if spin > 0 else 8)
        w = tracks.accepted & (tracks.momentum_mev >= 200) & (tracks.momentum_mev <= 275)
        measured.append(spin * tracks.hemisphere[w].mean())
        gamma = math.sqrt(1 + U_MUON**2)
        tangent = np.stack([-s[:, 2], s[:, 0]], axis=1) / R0_M
        e_star = gamma * s[:, 6] * (1 - U_MUON / gamma * np.sum(s[:, [3, 5]] * tangent, axis=1))
        x = 2 * e_star / M_MU
        weight = (2 * x - 1) / (3 - 2 * x) * s[:, 6] * s[:, 4] / e_star  # k(x) n*_y
        weighted += np.sum(tracks.hemisphere[w] * weight[w])
        unweighted += w.sum()
    return np.mean(measured), weighted / unweighted, unweighted


def test_up_down_asymmetry_with_vane_acceptance(vertical_spin_samples):
    """Default vanes: every 200–275 MeV track is accepted (previous test), so A_ud changes only by
    events the 1 % momentum resolution moves across the window edges and 1 mrad angle errors that
    flip nearly horizontal tracks: within ±0.003 of the ideal 0.268. Each positron carries the
    analysing power k(x)|n*_y|, largest for steep tracks; a vertical acceptance that loses them
    (half-height cut to 5 cm, tracks leaving before 3 vanes) lowers A_ud, as the reweighting predicts."""
    a_ref, _ = _vertical_asymmetry_integral(200.0, 275.0)
    ideal = []  # same events, true energy and sign of p_y, no detector
    for spin, (s, _) in vertical_spin_samples.items():
        w = (s[:, 6] >= 200) & (s[:, 6] <= 275)
        ideal.append(spin * np.mean(np.sign(s[w, 4])))
    measured, predicted, n = _measured_and_predicted_asymmetry(vertical_spin_samples, GEOM)
    assert measured == pytest.approx(np.mean(ideal), abs=0.003)
    assert predicted == pytest.approx(a_ref, abs=0.003)
    low = VaneGeometry(half_height_m=0.05)
    measured_low, predicted_low, n_low = _measured_and_predicted_asymmetry(vertical_spin_samples, low)
    assert n_low < 0.8 * n and measured_low < a_ref - 0.05
    assert measured_low == pytest.approx(predicted_low, abs=4 / math.sqrt(n_low))


def test_reconstructed_time_momentum_and_angle_resolutions():
    rng = np.random.default_rng(3)
    sample = _decays_on_orbit(40_000, 0.0, 0.0, 41)
    sample = sample[(sample[:, 6] > 180) & (sample[:, 6] < 280)]
    t_decay = rng.uniform(0.0, 30_000.0, len(sample))
    hits = _hits(sample, t0_ns=t_decay)
    exact = VaneGeometry(momentum_resolution=0.0, vertical_angle_resolution_rad=0.0, efficiency=0.9)
    tr = reconstruct(hits, exact, 1)
    assert tr.accepted.all()
    dt = tr.time_ns - t_decay
    # with exact momentum the only time error is the 5 ns binning of the first detected hit
    assert np.all(np.abs(dt) <= 2.5 + 1e-9)
    assert dt.std() == pytest.approx(5 / math.sqrt(12), rel=0.03) and abs(dt.mean()) < 0.05
    np.testing.assert_array_equal(tr.momentum_mev, sample[:, 6])
    np.testing.assert_array_equal(tr.hemisphere, np.where(sample[:, 4] >= 0, 1, -1))
    tr = reconstruct(hits, GEOM, 2)
    assert np.std(tr.momentum_mev / sample[:, 6] - 1) == pytest.approx(0.01, rel=0.05)
    assert np.std(tr.vertical_angle_rad - hits.vertical_angle_rad) == pytest.approx(1e-3, rel=0.05)
    # flight times are at most one turn, 2πE/(eBc²); a 1 % momentum error scales them by 1 ± 0.01
    max_flight_ns = 2 * math.pi * 280e6 / (sc.c**2 * GEOM.field_t) * 1e9
    assert np.all(np.abs(tr.time_ns - t_decay) <= 2.5 + 5 * 0.01 * max_flight_ns)


def test_efficiency_and_minimum_vanes_follow_binomial_counting():
    sample = _decays_on_orbit(20_000, 0.0, 0.0, 51)
    hits = _hits(sample[sample[:, 6] > 30.0])
    geom = VaneGeometry(efficiency=0.5, min_vanes=3)
    tr = reconstruct(hits, geom, 9)
    for n_true in (3, 4, 6, 10):
        m = hits.n_vanes == n_true
        expected = stats.binom.sf(2, n_true, 0.5)
        assert tr.accepted[m].mean() == pytest.approx(expected, abs=4 * math.sqrt(expected * (1 - expected) / m.sum()))
        assert tr.n_vanes[m].mean() == pytest.approx(0.5 * n_true, abs=4 * math.sqrt(0.25 * n_true / m.sum()))
    assert not reconstruct(hits, VaneGeometry(efficiency=0.0), 9).accepted.any()
    # the vane of the first detected hit: one of the track's crossings, the first one if every crossing is detected
    owner = np.repeat(np.arange(hits.n_vanes.size), hits.n_vanes)
    seen = tr.first_vane >= 0
    assert np.array_equal(seen, tr.n_vanes > 0)
    assert all(tr.first_vane[i] in hits.hit_vane[owner == i] for i in np.flatnonzero(seen)[:500])
    assert np.mean(tr.first_vane[seen] != hits.first_vane[seen]) > 0.2
    np.testing.assert_array_equal(reconstruct(hits, VaneGeometry(efficiency=1.0), 9).first_vane, hits.first_vane)
    late = _hits(sample, t0_ns=np.full(len(sample), GEOM.readout_window_ns))  # after the readout window
    assert not reconstruct(late, GEOM, 9).accepted.any()


def test_same_seed_gives_identical_tracks():
    hits = _hits(_decays_on_orbit(5_000, 0.0, 0.0, 61))
    a, b, c = reconstruct(hits, GEOM, 123), reconstruct(hits, GEOM, 123), reconstruct(hits, GEOM, 124)
    for field in ("accepted", "momentum_mev", "time_ns", "hemisphere", "vertical_angle_rad", "n_vanes"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.momentum_mev[a.accepted], c.momentum_mev[c.accepted])


def test_bad_input_raises_one_line_errors():
    with pytest.raises(ConfigError, match="efficiency"):
        VaneGeometry(efficiency=1.5)
    with pytest.raises(ConfigError, match="r_min_m"):
        VaneGeometry(r_min_m=0.3)
    with pytest.raises(InputError, match="direction"):
        vane_hits(np.zeros((2, 3)), np.ones((2, 3)), np.ones(2), np.zeros(2))
    with pytest.raises(InputError, match="energy_mev"):
        vane_hits(np.zeros((2, 3)), np.eye(3)[:2], np.ones(3), np.zeros(2))
