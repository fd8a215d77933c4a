"""Spin–orbit tracker against analytic results: spin advance, tunes, closed orbit, energy, EDM tilt."""

import math

import numpy as np
import pytest

from ringsim.beam import Beam, initial_states, muon_charge_over_mass
from ringsim.config import load_config
from ringsim.constants import SPEED_OF_LIGHT_M_PER_S, codata
from ringsim.ring_fields import ring_parameters
from ringsim.rings import ring_kinematics
from ringsim.tracker import radial_vertical_offsets_m, spin_phase_rad, track_recorded

Q_OVER_M = muon_charge_over_mass()
UNIFORM = ["esq.model='none'", "kicker.enabled=false", "collimators.azimuth_deg=[]"]
SMOOTH = ["esq.model='continuous'", "kicker.enabled=false", "collimators.azimuth_deg=[]"]


def _single(x_beta=0.0, y=0.0, delta=0.0):
    z = np.zeros(1)
    return Beam(np.full(1, delta), z, np.full(1, x_beta), z, np.full(1, y), z, z)


def _period_s(ring):
    # T_c = 2π γ m/(eB) computed here from the constants, independently of ringsim.rings
    cfg = load_config(ring)
    p_over_mc = SPEED_OF_LIGHT_M_PER_S * cfg.ring.field_t * cfg.ring.radius_m * 1e-6 / codata().muon_mass_mev
    gamma = math.sqrt(1 + p_over_mc**2)
    return 2 * math.pi * gamma / (Q_OVER_M * cfg.ring.field_t), gamma


def _fnal_muons(n, seed, min_turns, max_turns, overrides=()):
    """Fermilab preset (with overrides): config, ring array, T_c [s], n beam muons and durations uniform in turns."""
    from ringsim.beam import sample_beam

    cfg = load_config("fnal", overrides=list(overrides))
    kin = ring_kinematics(cfg)
    period, _ = _period_s("fnal")
    st = initial_states(cfg, kin, sample_beam(cfg, n, np.random.default_rng(seed)))
    durations = np.random.default_rng(seed + 1).uniform(min_turns, max_turns, n) * period
    return cfg, ring_parameters(cfg, kin), period, st, durations


@pytest.mark.parametrize("steps_per_turn", [16, 64])
def test_spin_advance_per_turn_is_2pi_a_gamma_in_a_uniform_field(steps_per_turn):
    cfg = load_config("fnal", overrides=UNIFORM)
    kin = ring_kinematics(cfg)
    ring = ring_parameters(cfg, kin)
    period, gamma = _period_s("fnal")
    n_turns = 5000
    rec = track_recorded(initial_states(cfg, kin, _single()), n_turns * steps_per_turn, period / steps_per_turn, steps_per_turn, ring, Q_OVER_M, cfg.muon.a_mu, 0.0)
    phase = np.unwrap(spin_phase_rad(rec[0, :, 3:6], rec[0, :, 6:9]))
    per_turn = (phase[-1] - 0.0) / n_turns
    expected = 2 * math.pi * cfg.muon.a_mu * gamma
    assert per_turn / expected - 1 == pytest.approx(0.0, abs=1e-9)
    # the orbit closes on R0 exactly: chord-corrected drift
    x, y = radial_vertical_offsets_m(rec[0, :, :3], cfg.ring.radius_m)
    assert np.max(np.abs(x)) < 1e-9 and np.max(np.abs(y)) == 0.0


def _tune(signal, samples_per_turn):
    """Peak of the zero-padded spectrum, refined by a parabola through the three top bins."""
    sig = (signal - signal.mean()) * np.hanning(signal.size)
    pad = 16 * signal.size
    amp = np.abs(np.fft.rfft(sig, n=pad))
    k = int(np.argmax(amp[1:])) + 1
    a, b, c = np.log(amp[k - 1 : k + 2])
    k_fine = k + 0.5 * (a - c) / (a - 2 * b + c)
    return k_fine / pad * samples_per_turn


@pytest.mark.parametrize("ring, n_turns", [("fnal", 600), ("jparc", 2500)])
def test_betatron_tunes_match_smooth_focusing(ring, n_turns):
    cfg = load_config(ring, overrides=SMOOTH if ring == "fnal" else [])
    kin = ring_kinematics(cfg)
    period, _ = _period_s(ring)
    steps, every = 64, 4
    rec = track_recorded(
        initial_states(cfg, kin, _single(x_beta=1e-3 * cfg.ring.radius_m / 7.112, y=1e-3 * cfg.ring.radius_m / 7.112)),
        n_turns * steps,
        period / steps,
        every,
        ring_parameters(cfg, kin),
        Q_OVER_M,
        cfg.muon.a_mu,
        0.0,
    )
    x, y = radial_vertical_offsets_m(rec[0, :, :3], cfg.ring.radius_m)
    n = cfg.ring.field_index
    assert _tune(x, steps // every) == pytest.approx(math.sqrt(1 - n), abs=1e-3)
    assert _tune(y, steps // every) == pytest.approx(math.sqrt(n), abs=1e-3)


def test_energy_is_conserved_in_a_purely_magnetic_ring():
    cfg = load_config("jparc")
    kin = ring_kinematics(cfg)
    period, _ = _period_s("jparc")
    beam = _single(x_beta=0.004, y=0.003, delta=2e-3)
    st = initial_states(cfg, kin, beam)
    g0 = math.sqrt(1 + np.sum(st[0, 3:6] ** 2))
    rec = track_recorded(st, 2000 * 32, period / 32, 32, ring_parameters(cfg, kin), Q_OVER_M, cfg.muon.a_mu, 0.0)
    gam = np.sqrt(1 + np.sum(rec[0, :, 3:6] ** 2, axis=1))
    assert np.max(np.abs(gam / g0 - 1)) < 1e-12
    # spin stays a unit vector
    assert np.max(np.abs(np.linalg.norm(rec[0, :, 6:9], axis=1) - 1)) < 1e-12


def test_edm_tilts_the_precession_plane_by_atan_eta_beta_over_2a():
    cfg = load_config("jparc", overrides=["muon.edm_eta=2e-4"])
    kin = ring_kinematics(cfg)
    period, gamma = _period_s("jparc")
    beta = math.sqrt(1 - 1 / gamma**2)
    a, eta = cfg.muon.a_mu, cfg.muon.edm_eta
    ring = ring_parameters(cfg, kin)
    ring[1] = 1e-12  # (almost) no focusing: only the uniform field and the EDM term
    turns_per_period = 1 / (a * gamma)  # one g-2 period ≈ 285 turns
    n_turns = int(2 * turns_per_period)
    rec = track_recorded(initial_states(cfg, kin, _single()), n_turns * 32, period / 32, 1, ring, Q_OVER_M, a, eta)
    s = rec[0, :, 6:9]
    tilt = np.arcsin(np.max(np.abs(s[:, 1])))
    assert tilt == pytest.approx(math.atan(eta * beta / (2 * a)), rel=1e-2)
    # and the precession is faster by 1/cos(δ): count the spin-phase advance over the run
    u = rec[0, :, 3:6]
    horizontal = np.unwrap(spin_phase_rad(u, s))
    omega_eff = horizontal[-1] / (rec[0, -1, 9])
    omega_a = a * Q_OVER_M * cfg.ring.field_t
    delta = math.atan(eta * beta / (2 * a))
    assert omega_eff == pytest.approx(omega_a / math.cos(delta), rel=2e-3)


def _hill_tune(cfg, plane):
    """Independent tune: integrate Hill's equation over one turn (scipy) for the two principal solutions."""
    from scipy.integrate import solve_ivp

    from ringsim.optics import focusing_sections

    r0 = cfg.ring.radius_m
    parts = focusing_sections(cfg)
    m = np.eye(2)
    for a, b, n_loc in parts:
        k = ((1 - n_loc) if plane == "x" else n_loc) / r0**2
        seg = []
        for col in range(2):
            sol = solve_ivp(lambda s, v: [v[1], -k * v[0]], (0, r0 * math.radians(b - a)), m[:, col], rtol=1e-11, atol=1e-14)
            seg.append(sol.y[:, -1])
        m = np.array(seg).T
    mu = math.acos(0.5 * np.trace(m)) / (2 * math.pi)
    return 1 - mu if plane == "x" else mu


def test_discrete_esq_tunes_match_an_independent_one_turn_calculation():
    cfg = load_config("fnal", overrides=["kicker.enabled=false", "collimators.azimuth_deg=[]"])
    kin = ring_kinematics(cfg)
    period, _ = _period_s("fnal")
    steps = 64
    rec = track_recorded(initial_states(cfg, kin, _single(x_beta=1e-3, y=1e-3)), 600 * steps, period / steps, 1, ring_parameters(cfg, kin), Q_OVER_M, cfg.muon.a_mu, 0.0)
    x, y = radial_vertical_offsets_m(rec[0, :, :3], cfg.ring.radius_m)
    nu_x, nu_y = _hill_tune(cfg, "x"), _hill_tune(cfg, "y")
    # discrete stations differ from the smooth √(1−n), √n, and the tracker follows them
    assert abs(nu_y - math.sqrt(cfg.ring.field_index)) > 5e-4
    assert _tune(x, steps) == pytest.approx(nu_x, abs=2e-4)
    assert _tune(y, steps) == pytest.approx(nu_y, abs=2e-4)
    from ringsim.optics import one_turn_tunes

    assert one_turn_tunes(cfg) == pytest.approx((nu_x, nu_y), abs=1e-8)


@pytest.mark.parametrize("steps_per_turn", [32, 64])
def test_electric_field_and_pitch_shifts_of_omega_a_match_the_formulas(steps_per_turn):
    from ringsim.tracker import track_diagnostics

    cfg = load_config("fnal", overrides=SMOOTH)
    kin = ring_kinematics(cfg)
    period, gamma = _period_s("fnal")
    n, r0 = cfg.ring.field_index, cfg.ring.radius_m
    beta = math.sqrt(1 - 1 / gamma**2)
    delta = np.array([1e-3, -1e-3, 2e-3, 0, 0, 0])
    y = np.array([0, 0, 0, 0.005, 0.01, 0.02])
    z = np.zeros(6)
    beam = Beam(delta, r0 * delta / (1 - n), z, z, y, z, z)
    d = track_diagnostics(initial_states(cfg, kin, beam), 300 * steps_per_turn, period / steps_per_turn, 4, ring_parameters(cfg, kin), Q_OVER_M, cfg.muon.a_mu, 0.0)
    shift = d[:, 0] / (cfg.muon.a_mu * Q_OVER_M * cfg.ring.field_t) - 1
    c_e = 2 * n * (1 - n) * beta**2 * d[:, 1] ** 2 / r0**2  # x_e measured as the mean radius
    c_p = n * d[:, 4] / (2 * r0**2)
    np.testing.assert_allclose(-shift[:3], c_e[:3], rtol=2e-2)
    np.testing.assert_allclose(-shift[3:], c_p[3:], rtol=2e-2)


def test_lost_fraction_rises_as_the_collimator_radius_shrinks():
    from ringsim.beam import sample_beam
    from ringsim.tracker import track_to_times

    period, _ = _period_s("fnal")
    lost = []
    for radius in (0.045, 0.035, 0.025):
        cfg = load_config("fnal", overrides=[f"ring.aperture_radius_m={radius}"])
        kin = ring_kinematics(cfg)
        # the same injected beam each time (sampled for the 45 mm ring), scraped by smaller collimators
        beam = sample_beam(load_config("fnal"), 1500, np.random.default_rng(4))
        t_loss = track_to_times(initial_states(cfg, kin, beam), np.full(1500, 30 * period), period / 32, ring_parameters(cfg, kin), Q_OVER_M, cfg.muon.a_mu, 0.0)
        lost.append(np.isfinite(t_loss).mean())
    assert lost[0] < lost[1] < lost[2]


def test_gamma_is_constant_in_the_field_free_gaps_of_the_discrete_ring():
    cfg = load_config("fnal", overrides=["kicker.enabled=false", "collimators.azimuth_deg=[]"])
    kin = ring_kinematics(cfg)
    period, _ = _period_s("fnal")
    steps = 128
    rec = track_recorded(initial_states(cfg, kin, _single(x_beta=0.01, y=0.01, delta=1e-3)), 3 * steps, period / steps, 1, ring_parameters(cfg, kin), Q_OVER_M, cfg.muon.a_mu, 0.0)
    gam = np.sqrt(1 + np.sum(rec[0, :, 3:6] ** 2, axis=1))
    phi = np.degrees(np.arctan2(rec[0, :, 2], rec[0, :, 0])) % 360
    in_gap = (phi > 73 + 3) & (phi < 120 - 3)  # between station 1 (ends at 73°) and station 2
    passes = np.split(np.flatnonzero(in_gap), np.flatnonzero(np.diff(np.flatnonzero(in_gap)) > 1) + 1)
    assert len(passes) == 3 and all(p.size > 10 for p in passes)
    for p in passes:  # each pass through the gap keeps its energy
        assert np.ptp(gam[p]) / gam[p].mean() < 1e-13
    assert np.ptp(gam) / gam.mean() > 1e-7  # inside the plates the electric field does work


def _orbit(overrides, beam, turns, steps=64, every=4):
    cfg = load_config("fnal", overrides=overrides)
    kin = ring_kinematics(cfg)
    period, _ = _period_s("fnal")
    rec = track_recorded(initial_states(cfg, kin, beam), turns * steps, period / steps, every, ring_parameters(cfg, kin), Q_OVER_M, cfg.muon.a_mu, 0.0)
    return cfg, rec


def test_radial_field_shifts_the_vertical_closed_orbit():
    ppm = 20.0
    cfg, rec = _orbit([*SMOOTH, f"perturbations.radial_field_ppm={ppm}"], _single(), 200)
    _, y = radial_vertical_offsets_m(rec[0, :, :3], cfg.ring.radius_m)
    # vertical force balance q v B_r = q κ y with κ = nβcB₀/R₀:  y = R₀ B_r/(n B₀)
    expected = cfg.ring.radius_m * ppm * 1e-6 / cfg.ring.field_index
    assert y.mean() == pytest.approx(expected, rel=1e-2)


def test_normal_quadrupole_multipole_shifts_the_tunes():
    b1_ppm = 200.0
    cfg, rec = _orbit([*SMOOTH, f"perturbations.normal_ppm=[{b1_ppm}]"], _single(x_beta=1e-3, y=1e-3), 600, every=1)
    x, y = radial_vertical_offsets_m(rec[0, :, :3], cfg.ring.radius_m)
    # B_y = B₀ b₁ x/r₀ is a magnetic gradient of field index −R₀b₁/r₀, added to the electric n
    n_total = cfg.ring.field_index - cfg.ring.radius_m * b1_ppm * 1e-6 / cfg.perturbations.reference_radius_m
    assert _tune(x, 64) == pytest.approx(math.sqrt(1 - n_total), abs=1e-3)
    assert _tune(y, 64) == pytest.approx(math.sqrt(n_total), abs=1e-3)


def test_esq_rc_recovery_makes_the_tune_drift_during_the_fill():
    frac, tau_us = 0.3, 20.0
    cfg, rec = _orbit([*SMOOTH, f"esq.rc_fraction={frac}", f"esq.rc_tau_us={tau_us}"], _single(y=1e-3), 1400, every=4)
    _, y = radial_vertical_offsets_m(rec[0, :, :3], cfg.ring.radius_m)
    t_us = rec[0, :, 9] * 1e6
    n = cfg.ring.field_index
    period_us = _period_s("fnal")[0] * 1e6
    for lo, hi in ((0.0, 40.0), (120.0, 200.0)):
        sel = (t_us >= lo) & (t_us < hi)
        ys, ts = y[sel], t_us[sel]
        up = np.flatnonzero(np.diff(np.sign(ys)) > 0)  # upward zero crossings: the mean frequency of a chirp
        tune = (up.size - 1) / (ts[up[-1]] - ts[up[0]]) * period_us
        n_mean = n * (1 - frac * np.mean(np.exp(-ts / tau_us)))
        assert tune == pytest.approx(math.sqrt(n_mean), abs=1e-3)
    assert math.sqrt(n * (1 - frac)) < 0.3  # the drift is large compared with the tolerance


def test_under_kick_leaves_a_larger_coherent_betatron_oscillation():
    from ringsim.beam import sample_beam
    from ringsim.ring_fields import design_kick_rad

    assert design_kick_rad(load_config("fnal")) == pytest.approx(10e-3, rel=0.1)  # docs/physics.md §3: ~10 mrad
    amplitude = {}
    for strength in (1.0, 0.8):
        cfg = load_config("fnal", overrides=[f"kicker.strength={strength}", "collimators.azimuth_deg=[]", "ring.aperture_radius_m=0.2"])
        beam = sample_beam(load_config("fnal"), 400, np.random.default_rng(8))
        _, rec = _orbit([f"kicker.strength={strength}", "collimators.azimuth_deg=[]", "ring.aperture_radius_m=0.2"], beam, 60)
        x, _ = radial_vertical_offsets_m(rec[:, :, :3], cfg.ring.radius_m)
        centroid = x.mean(axis=0)[40:]  # after the kicker pulse
        amplitude[strength] = np.ptp(centroid) / 2
    assert amplitude[0.8] > 1.5 * amplitude[1.0]


@pytest.mark.parametrize("steps_per_turn", [8, 32])
def test_betatron_amplitude_is_conserved_with_magnetic_focusing(steps_per_turn):
    # a symplectic integrator keeps the Courant–Snyder amplitude: no artificial damping
    overrides = ["ring.focusing='magnetic'", "esq.model='none'", "kicker.enabled=false", "collimators.azimuth_deg=[]"]
    cfg, rec = _orbit(overrides, _single(x_beta=0.016), 3000, steps=steps_per_turn, every=1)
    x, _ = radial_vertical_offsets_m(rec[0, :, :3], cfg.ring.radius_m)
    first, last = x[: 100 * steps_per_turn], x[-100 * steps_per_turn :]
    assert np.ptp(last) / np.ptp(first) == pytest.approx(1.0, abs=0.02)


def test_polynomial_sin_cos_and_azimuth_match_libm():
    from numba import njit

    from ringsim.ring_fields import azimuth_rad
    from ringsim.tracker import _sin_cos

    @njit
    def evaluate(x, px, pz):
        out = np.empty((3, x.size))
        for i in range(x.size):
            out[0, i], out[1, i] = _sin_cos(x[i])
            out[2, i] = azimuth_rad(px[i], pz[i])
        return out

    rng = np.random.default_rng(3)
    x = np.concatenate([rng.uniform(-1, 1, 20000) * 10.0 ** rng.integers(-8, 1, 20000) * math.pi / 2, [0.0, math.pi / 2, -math.pi / 4]])
    px, pz = rng.normal(size=(2, x.size)) * 10.0 ** rng.integers(-3, 2, (2, x.size))
    px[:4], pz[:4] = [1.0, 0.0, -1.0, 0.0], [0.0, 1.0, 0.0, -1.0]
    s, c, phi = evaluate(x, px, pz)
    assert np.max(np.abs(s - np.sin(x))) < 2e-15 and np.max(np.abs(c - np.cos(x))) < 2e-15
    small = np.abs(x) <= math.pi / 4  # the tracker's angles
    assert np.max(np.abs(s - np.sin(x))[small] / np.maximum(np.abs(np.sin(x[small])), 1e-300)) < 4e-16
    assert np.max(np.abs(c - np.cos(x))[small]) < 4e-16
    assert np.max(np.abs(phi - np.arctan2(pz, px) % (2 * math.pi))) < 2e-15
    assert np.all((phi >= 0) & (phi <= 2 * math.pi))


@pytest.mark.parametrize("stations", ["[30.0, 120.0, 210.0, 300.0]", "[340.0, 70.0, 160.0, 250.0]"])
def test_vectorised_esq_fields_match_fields_at(stations):
    # the block kernel's branch-free fields (overlap from shifted section copies) against the scalar fields_at
    from numba import njit

    from ringsim.ring_fields import azimuth_rad, fields_at, kick_span_rad, section_copies, static_field_constants, static_fields

    cfg = load_config("fnal", overrides=[f"esq.station_start_deg={stations}", "kicker.enabled=false"])
    ring = ring_parameters(cfg, ring_kinematics(cfg))

    @njit
    def both(p, h):
        consts = static_field_constants(ring)
        sec = section_copies(ring)
        out = np.empty((2, p.shape[0], 6))
        for i in range(p.shape[0]):
            lo, hi = kick_span_rad(azimuth_rad(p[i, 0], p[i, 2]), h, h, consts[5])
            inside = 0.0
            for k in range(sec.size // 2):
                inside += max(min(hi, sec[2 * k + 1]) - max(lo, sec[2 * k]), 0.0)
            out[0, i] = static_fields(p[i, 0], p[i, 1], p[i, 2], inside, h, consts)
            out[1, i] = fields_at(p[i, 0], p[i, 1], p[i, 2], 0.0, h, ring)
        return out

    rng = np.random.default_rng(5)
    phi = rng.uniform(0, 2 * math.pi, 4000)
    rho = cfg.ring.radius_m + rng.uniform(-0.04, 0.04, phi.size)
    p = np.stack([rho * np.cos(phi), rng.uniform(-0.04, 0.04, phi.size), rho * np.sin(phi)], axis=1)
    period, _ = _period_s("fnal")
    fast, ref = both(p, period / 32)
    kappa = -ref[:, 1] / p[:, 1]  # E_y = −κ y, κ scaled by the kick's fraction inside the plates
    partial = (kappa > 0.01 * kappa.max()) & (kappa < 0.99 * kappa.max())
    assert partial.sum() > 50  # the sample includes kicks straddling plate edges
    np.testing.assert_allclose(fast, ref, rtol=1e-12, atol=1e-9 * np.max(np.abs(ref)))


def test_a_muon_is_tracked_bit_identically_alone_and_in_a_batch():
    # blocks of muons share vector instructions and lanes are refilled as muons finish: a muon's
    # trajectory must not depend on its neighbours (full ring: ESQ stations, kicker, collimators)
    from ringsim.tracker import track_to_times

    cfg, ring, period, st, durations = _fnal_muons(300, 9, 0.5, 12.0, ["muon.edm_eta=1e-5"])
    batch = st.copy()
    lost = track_to_times(batch, durations, period / 32, ring, Q_OVER_M, cfg.muon.a_mu, 1e-5)
    assert 0.05 < np.isfinite(lost).mean() < 0.95  # both lost and stored muons are compared
    for i in [0, 1, 57, 150, 299, *np.flatnonzero(np.isfinite(lost))[:3]]:
        alone = st[i : i + 1].copy()
        lost_alone = track_to_times(alone, durations[i : i + 1], period / 32, ring, Q_OVER_M, cfg.muon.a_mu, 1e-5)
        np.testing.assert_array_equal(alone[0], batch[i])
        np.testing.assert_array_equal(lost_alone[0], lost[i])


# --- region-adaptive steps ------------------------------------------------------------------------
ESQ_RING = ["kicker.enabled=false", "collimators.azimuth_deg=[]"]


def _diag_omega(cfg, beam, n_turns, steps_per_turn, sample_turns):
    """ω_a [rad/s] of each muon from track_diagnostics, samples every ``sample_turns`` turns (0: every step)."""
    from ringsim.tracker import track_diagnostics

    kin = ring_kinematics(cfg)
    period, _ = _period_s("fnal")
    every = sample_turns * steps_per_turn or 1
    d = track_diagnostics(initial_states(cfg, kin, beam), n_turns * steps_per_turn, period / steps_per_turn, every, ring_parameters(cfg, kin), Q_OVER_M, cfg.muon.a_mu, 0.0)
    return d[:, 0]


def test_region_adaptive_omega_a_matches_fine_fixed_steps_in_the_discrete_esq_ring():
    # reference: 256 fixed steps per turn (a diagnostics sample after every step makes every step a
    # stop); region-adaptive: 32 steps per turn, gaps crossed in one step, samples every 10 turns
    cfg = load_config("fnal", overrides=ESQ_RING)
    z = np.zeros(3)
    beam = Beam(np.array([0.0, 1e-3, -5e-4]), z, np.array([0.016, 0.01, 0.0]), z, np.array([0.013, 0.0, 0.02]), z, z)
    fine = _diag_omega(cfg, beam, 600, 256, 0)
    adaptive = _diag_omega(cfg, beam, 600, 32, 10)
    np.testing.assert_allclose(adaptive / fine - 1.0, 0.0, atol=1e-9)
    assert np.ptp(fine) / fine.mean() > 1e-8  # the muons' ω_a differ by far more than the tolerance (E field, pitch)


def test_region_adaptive_orbit_and_tunes_match_fine_fixed_steps():
    cfg = load_config("fnal", overrides=ESQ_RING)
    kin = ring_kinematics(cfg)
    ring = ring_parameters(cfg, kin)
    period, _ = _period_s("fnal")
    st = initial_states(cfg, kin, _single(x_beta=0.01, y=0.008, delta=5e-4))
    n_turns = 300
    fine = track_recorded(st.copy(), n_turns * 256, period / 256, 1, ring, Q_OVER_M, cfg.muon.a_mu, 0.0)[0, 255::256]
    adaptive = track_recorded(st.copy(), n_turns * 32, period / 32, 32, ring, Q_OVER_M, cfg.muon.a_mu, 0.0)[0]
    np.testing.assert_array_equal(adaptive[:, 9], fine[:, 9])  # the records fall at the same times
    for plane in (0, 1):
        xy_fine, xy_adaptive = (radial_vertical_offsets_m(r[:, :3], cfg.ring.radius_m)[plane] for r in (fine, adaptive))
        assert np.max(np.abs(xy_adaptive[:10] - xy_fine[:10])) < 2e-5  # m (amplitudes 10 and 8 mm), first 10 turns
        # later the betatron phases drift apart by the O(h²) tune error
        assert _tune(xy_adaptive, 1) == pytest.approx(_tune(xy_fine, 1), abs=1e-4)


def test_region_adaptive_steps_conserve_the_betatron_amplitude_over_many_turns():
    from ringsim.optics import one_turn_tunes

    cfg = load_config("fnal", overrides=ESQ_RING)
    kin = ring_kinematics(cfg)
    period, _ = _period_s("fnal")
    n_turns, steps = 10000, 24
    rec = track_recorded(initial_states(cfg, kin, _single(x_beta=0.01, y=0.008)), n_turns * steps, period / steps, steps, ring_parameters(cfg, kin), Q_OVER_M, cfg.muon.a_mu, 0.0)[0]
    x, y = radial_vertical_offsets_m(rec[:, :3], cfg.ring.radius_m)
    # turn-by-turn samples at one azimuth: their spread measures the Courant–Snyder amplitude (a
    # step schedule that followed each muon's betatron phase would drift by 5e-4 here)
    for v in (x, y):
        assert np.ptp(v[-1000:]) / np.ptp(v[:1000]) == pytest.approx(1.0, abs=3e-4)
    nu_x, nu_y = one_turn_tunes(cfg)
    assert _tune(x, 1) == pytest.approx(1.0 - nu_x, abs=2e-4)  # turn-by-turn samples see the fractional tune folded
    assert _tune(y, 1) == pytest.approx(nu_y, abs=2e-4)


def test_a_muon_in_a_uniform_field_crosses_the_ring_in_six_gap_steps_on_the_exact_helix():
    from ringsim.tracker import track_to_times_counted

    cfg = load_config("fnal", overrides=UNIFORM)  # no focusing: the whole ring is a field-free "gap"
    kin = ring_kinematics(cfg)
    ring = ring_parameters(cfg, kin)
    period, gamma = _period_s("fnal")
    st = initial_states(cfg, kin, _single(x_beta=0.01, y=0.005, delta=2e-3))
    st[0, 4] = 5e-7 * np.linalg.norm(st[0, 3:6])  # a vertical velocity as well: a helix (22 mm rise)
    start = st[0].copy()
    n_turns = 1000
    _, steps = track_to_times_counted(st, [n_turns * period], period / 32, ring, Q_OVER_M, cfg.muon.a_mu, 0.0)
    assert steps[0] <= 6 * n_turns + 2  # sixth-of-a-turn steps (the longest step, MAX_STEP_RAD = π/3)
    # analytic helix: u rotates about ŷ at Ω = qB/(γm) (clockwise seen from +y for a μ⁺), y grows linearly
    u0 = start[3:6]
    g = math.sqrt(1 + u0 @ u0)
    t = n_turns * period
    omega = -Q_OVER_M * cfg.ring.field_t / g
    c, s = math.cos(omega * t), math.sin(omega * t)
    u_end = np.array([c * u0[0] + s * u0[2], u0[1], -s * u0[0] + c * u0[2]])
    v0 = u0 * SPEED_OF_LIGHT_M_PER_S / g
    # position: X − centre rotates like u; centre = X₀ + v_⊥ × ŷ/Ω
    centre = start[:3] + np.array([v0[2], 0.0, -v0[0]]) / omega
    r0 = start[:3] - centre
    pos_end = centre + np.array([c * r0[0] + s * r0[2], v0[1] * t + r0[1], -s * r0[0] + c * r0[2]])
    assert st[0, 9] == start[9] + t
    np.testing.assert_allclose(st[0, 3:6], u_end, rtol=0, atol=1e-9 * np.linalg.norm(u0))  # after 6283 rad
    np.testing.assert_allclose(st[0, :3], pos_end, rtol=0, atol=1e-8)
    # spin: turns relative to the momentum at ω_a = a(q/m)B (vertical velocity: a 1e-13 correction)
    advance = cfg.muon.a_mu * Q_OVER_M * cfg.ring.field_t * t
    phase = spin_phase_rad(st[0, 3:6], st[0, 6:9]) - spin_phase_rad(start[3:6], start[6:9])
    assert (phase - advance + math.pi) % (2 * math.pi) - math.pi == pytest.approx(0.0, abs=1e-9 * advance)


def test_muons_end_exactly_at_their_times_and_are_lost_at_collimator_azimuths():
    from ringsim.tracker import track_diagnostics, track_to_times

    cfg, ring, period, st, durations = _fnal_muons(500, 2, 0.1, 20.0)
    end = st.copy()
    lost = track_to_times(end, durations, period / 32, ring, Q_OVER_M, cfg.muon.a_mu, 0.0)
    kept = np.isnan(lost)
    np.testing.assert_array_equal(end[kept, 9], st[kept, 9] + durations[kept])
    np.testing.assert_array_equal(end[~kept, 9], lost[~kept])
    assert 0.2 < kept.mean() < 0.8
    # loss azimuths: at the collimators (steps land on them, to within the muon's slip from the
    # node schedule), not up to a step (11°) beyond
    d = track_diagnostics(st.copy(), 20 * 32, period / 32, 32, ring, Q_OVER_M, cfg.muon.a_mu, 0.0)
    phi = np.degrees(d[np.isfinite(d[:, 5]), 6])
    assert phi.size > 50
    off = np.min(np.abs((phi[:, None] - np.asarray(cfg.collimators.azimuth_deg)[None, :] + 180) % 360 - 180), axis=1)
    assert np.max(off) < 1.0
