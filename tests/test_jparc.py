"""J-PARC solenoid (current loops) and spiral injection against analytic and independent results."""

import math

import numpy as np
import pytest
from scipy.special import ellipe, ellipk

from ringsim.constants import SPEED_OF_LIGHT_M_PER_S, codata
from ringsim.errors import ConfigError
from ringsim.injection import InjectionParams, canonical_angular_momentum_m, entry_states, inject, track_in_solenoid, track_stored
from ringsim.jparc_solenoid import MU0_T_M_PER_A, coil_set_jparc, ellipk_ellipe, field_index_at, field_solenoid, flux_solenoid

R0 = 0.33356
B0 = 3.0
Q_OVER_M = SPEED_OF_LIGHT_M_PER_S**2 / (codata(2018).muon_mass_mev * 1e6)  # e/m_μ [C/kg]
N_INDEX = 1.5e-4
PARAMS = InjectionParams()
N_MUONS = 200


@pytest.fixture(scope="module")
def injected():
    return inject(N_MUONS, 7, PARAMS)


def test_agm_elliptic_integrals_match_scipy():
    m = np.concatenate([[0.0, 1e-12, 1e-6], np.linspace(0.01, 0.99, 99), [0.999, 0.99999, 1 - 1e-9]])
    k, e = np.array([ellipk_ellipe(v) for v in m]).T
    assert np.max(np.abs(k / ellipk(m) - 1)) < 1e-12
    assert np.max(np.abs(e / ellipe(m) - 1)) < 1e-12


def test_single_loop_on_axis_field_is_the_biot_savart_result():
    a, current = 0.7, 2.5e5
    coils = (np.array([a]), np.array([0.1]), np.array([current]))
    for y in (-2.0, -0.3, 0.1, 0.45, 3.0):
        z = y - 0.1
        expected = MU0_T_M_PER_A * current * a**2 / (2 * (a**2 + z**2) ** 1.5)
        for rho in (0.0, 1e-7):
            bx, by, bz = field_solenoid(rho, y, 0.0, *coils)
            assert by == pytest.approx(expected, rel=1e-12)
            assert abs(bx) < 1e-6 * expected and bz == 0.0


@pytest.mark.parametrize("distance_over_radius", [30.0, 100.0])
def test_single_loop_far_field_is_a_dipole(distance_over_radius):
    a, current = 0.5, 1e5
    coils = (np.array([a]), np.array([0.0]), np.array([current]))
    moment = current * math.pi * a**2  # along +y
    rng = np.random.default_rng(3)
    for direction in rng.normal(size=(6, 3)):
        n = direction / np.linalg.norm(direction)
        r = distance_over_radius * a
        dipole = MU0_T_M_PER_A / (4 * math.pi * r**3) * (3 * moment * n[1] * n - np.array([0.0, moment, 0.0]))
        b = np.array(field_solenoid(*(r * n), *coils))
        # multipole corrections are of relative order (a/r)²
        assert np.linalg.norm(b - dipole) / np.linalg.norm(dipole) < 3.0 / distance_over_radius**2


def _jacobian(point, coils, h=1e-4):
    """∂B_i/∂x_j by the fourth-order central difference."""
    jac = np.empty((3, 3))
    for j in range(3):
        d = np.zeros(3)
        d[j] = h
        f = [np.array(field_solenoid(*(point + k * d), *coils)) for k in (-2, -1, 1, 2)]
        jac[:, j] = (f[0] - 8 * f[1] + 8 * f[2] - f[3]) / (12 * h)
    return jac


@pytest.mark.parametrize(
    "point",
    [(R0, 0.0, 0.0), (0.0, 0.02, R0 + 0.01), (-0.2, -0.025, -0.26), (0.3, 0.5, 0.2), (-0.25, 0.9, 0.3), (0.05, 1.3, -0.6)],
)
def test_total_field_is_divergence_and_curl_free(point):
    coils = coil_set_jparc()
    jac = _jacobian(np.array(point), coils)
    scale = np.max(np.abs(jac)) + 1e-3
    div = np.trace(jac)
    curl = np.array([jac[2, 1] - jac[1, 2], jac[0, 2] - jac[2, 0], jac[1, 0] - jac[0, 1]])
    assert abs(div) < 1e-8 * scale
    assert np.max(np.abs(curl)) < 1e-8 * scale


def test_coil_set_gives_three_tesla_and_the_field_index_at_r0():
    coils = coil_set_jparc()
    h = 1e-3
    b = [field_solenoid(R0 + k * h, 0.0, 0.0, *coils)[1] for k in (-2, -1, 0, 1, 2)]
    slope = (b[0] - 8 * b[1] + 8 * b[3] - b[4]) / (12 * h)
    assert b[2] == pytest.approx(B0, rel=1e-3)
    assert -R0 / b[2] * slope == pytest.approx(N_INDEX, rel=1e-3)
    assert field_index_at(R0, *coils)[1] == pytest.approx(N_INDEX, rel=1e-3)
    # mid-plane symmetry: no radial field in the storage plane
    assert abs(field_solenoid(R0, 0.0, 0.0, *coils)[0]) < 1e-12


def test_fringe_field_falls_off_above_the_storage_plane():
    coils = coil_set_jparc()
    ys = np.linspace(0.0, PARAMS.entry_height_m, 91)
    b = np.array([field_solenoid(R0, y, 0.0, *coils) for y in ys])
    # no mirror peak: B_y(R0, y) never exceeds B0, and falls steadily towards the entry
    assert np.all(b[:, 1] <= B0 * (1 + 1e-9)) and np.all(np.diff(b[:, 1]) <= 1e-9)
    assert b[-1, 1] < 0.9 * B0
    # weak focusing (B_ρ opposite to y) near the plane, diverging fringe field (B_ρ > 0) above
    assert np.all(b[(ys > 0) & (ys <= 0.06), 0] < 0)
    assert np.all(b[ys >= 0.1, 0] > 0)


@pytest.mark.parametrize("rho, y", [(R0, 0.0), (0.36, 0.3), (0.5, 0.7), (0.05, 0.2), (1.5, 2.0)])
def test_flux_function_is_the_integral_of_the_field(rho, y):
    # Ψ(ρ, y) = ∫ 2πρ' B_y dρ': ∂Ψ/∂ρ = 2πρ B_y and ∂Ψ/∂y = −2πρ B_ρ (∇·B = 0)
    coils = coil_set_jparc()
    h = 1e-5
    d_rho = (flux_solenoid(rho + h, y, *coils) - flux_solenoid(rho - h, y, *coils)) / (2 * h)
    d_y = (flux_solenoid(rho, y + h, *coils) - flux_solenoid(rho, y - h, *coils)) / (2 * h)
    b_rho, b_y, _ = field_solenoid(rho, y, 0.0, *coils)
    scale = 2 * math.pi * rho * math.hypot(b_rho, b_y)
    assert d_rho == pytest.approx(2 * math.pi * rho * b_y, abs=1e-8 * scale)
    assert d_y == pytest.approx(-2 * math.pi * rho * b_rho, abs=1e-8 * scale)


def test_canonical_angular_momentum_is_conserved_to_second_order_in_the_step():
    # axisymmetric static field: L = ρ p_φ − qΨ/2π is a constant of the motion; the leapfrog
    # conserves it up to an O(dt²) error picked up in the fringe field
    drift = []
    for steps_per_turn in (64, 128):
        params = InjectionParams(steps_per_turn=steps_per_turn)
        st = entry_states(6, 3, params)
        before = canonical_angular_momentum_m(st, params)
        coils = coil_set_jparc()
        kick_off = (np.zeros(1), np.zeros(1), np.zeros(1), 0.0, 1.0)
        dt = 2 * math.pi * math.sqrt(1 + (params.momentum_mev / codata(2018).muon_mass_mev) ** 2) / (Q_OVER_M * B0) / steps_per_turn
        track_in_solenoid(st, 6 * steps_per_turn, dt, *coils, *kick_off, Q_OVER_M, PARAMS.a_mu, 0.0, 0.03, 0, 1)
        drift.append(np.max(np.abs(canonical_angular_momentum_m(st, params) / before - 1)))
    assert drift[0] < 2e-4
    assert drift[0] / drift[1] == pytest.approx(4.0, rel=0.2)


def test_energy_is_conserved_through_the_injection(injected):
    states_after, _, _ = injected
    before = entry_states(N_MUONS, 7, PARAMS)
    gamma = lambda st: np.sqrt(1 + np.sum(st[:, 3:6] ** 2, axis=1))  # noqa: E731
    assert np.max(np.abs(gamma(states_after) / gamma(before) - 1)) < 1e-10


def test_stored_muons_stay_in_the_storage_region_with_the_weak_focusing_tune(injected):
    states_after, stored, report = injected
    assert report.efficiency == pytest.approx(stored.mean())
    assert report.efficiency > 0.7
    assert np.all(report.vertical_amplitude_m <= PARAMS.storage_half_height_m)
    sample, amplitude = states_after[stored][:12], report.vertical_amplitude_m[:12]
    n_turns, per_turn = 1000, 4
    rec = track_stored(sample, n_turns, PARAMS, samples_per_turn=per_turn)
    rho = np.hypot(rec[..., 0], rec[..., 2])
    assert np.all(np.isfinite(rec))
    # the amplitude found at the end of the injection is kept for 1000 turns
    assert np.all(np.max(np.abs(rec[..., 1]), axis=1) <= 1.01 * amplitude + 1e-4)
    assert np.max(np.abs(rec[..., 1])) <= PARAMS.storage_half_height_m
    assert np.max(np.abs(rho - R0)) <= PARAMS.storage_half_width_m
    # vertical frequency √n f_c, with f_c = eB/(2πγm) from the constants
    gamma = math.sqrt(1 + (PARAMS.momentum_mev / codata(2018).muon_mass_mev) ** 2)
    f_c = Q_OVER_M * B0 / (2 * math.pi * gamma)
    t = rec[0, :, 9]
    measured = 0
    for y in rec[..., 1]:
        if np.ptp(y) < 2e-3:  # too small an oscillation to measure
            continue
        f_y = _dominant_frequency(y - y.mean(), t[1] - t[0])
        assert f_y == pytest.approx(math.sqrt(N_INDEX) * f_c, rel=0.01)
        measured += 1
    assert measured >= 6


def _dominant_frequency(signal, dt):
    """Peak of the zero-padded, Hann-windowed spectrum, refined by a parabola through three bins."""
    pad = 32 * signal.size
    amp = np.abs(np.fft.rfft(signal * np.hanning(signal.size), n=pad))
    k = int(np.argmax(amp[1:])) + 1
    a, b, c = np.log(amp[k - 1 : k + 2])
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) / (pad * dt)


def test_without_the_kicker_muons_are_not_stored(injected):
    _, _, report_on = injected
    off = InjectionParams(kicker_peak_t=0.0, kicker_start_ns=0.0)
    states_off, _, report_off = inject(N_MUONS, 7, off)
    assert report_off.efficiency < report_on.efficiency
    assert report_off.efficiency < 0.05
    # they reach the storage plane and go on through it, downwards
    assert np.mean(np.isfinite(report_off.arrival_time_ns)) > 0.95
    assert np.median(states_off[:, 1]) < -PARAMS.storage_half_height_m


def test_bad_injection_parameters_raise_config_errors():
    with pytest.raises(ConfigError, match="storage_pitch_rad"):
        InjectionParams(storage_pitch_rad=-0.01)
    with pytest.raises(ConfigError, match="steps_per_turn"):
        InjectionParams(steps_per_turn=3)


# --------------------------------------------------------------------------- the tracker's solenoid field model


def _jparc_ring(overrides=()):
    from ringsim.config import load_config
    from ringsim.ring_fields import ring_parameters
    from ringsim.rings import ring_kinematics

    cfg = load_config("jparc", overrides=list(overrides))
    kin = ring_kinematics(cfg)
    return cfg, kin, ring_parameters(cfg, kin)


def _tracker_b(point, ring):
    from ringsim.ring_fields import fields_at

    return np.array(fields_at(*point, 0.0, 1e-10, ring)[3:])


def test_tracker_solenoid_field_is_the_loops_field_in_the_storage_region():
    cfg, _, ring = _jparc_ring()
    assert cfg.ring.field_model == "solenoid"
    coils = coil_set_jparc()
    worst = 0.0
    for x in np.linspace(-0.03, 0.03, 7):
        for y in np.linspace(-0.03, 0.03, 7):
            for phi in (0.4, 2.5, 5.0):
                point = np.array([(R0 + x) * math.cos(phi), y, (R0 + x) * math.sin(phi)])
                worst = max(worst, np.max(np.abs(_tracker_b(point, ring) - np.array(field_solenoid(*point, *coils)))))
    # 1e-9 T = 0.3 ppb of B0, and 2.5e-5 of the focusing field B0·n·x/R0 at 3 cm
    assert worst < 1e-9


def test_tracker_solenoid_field_is_curl_free_and_divergence_free_to_the_truncation_order():
    from ringsim.ring_fields import N_POLY

    _, _, ring = _jparc_ring()

    def jacobian(point, h=1e-4):
        jac = np.empty((3, 3))
        for j in range(3):
            d = np.zeros(3)
            d[j] = h
            f = [_tracker_b(point + k * d, ring) for k in (-2, -1, 1, 2)]
            jac[:, j] = (f[0] - 8 * f[1] + 8 * f[2] - f[3]) / (12 * h)
        return jac

    degree = int(ring[N_POLY]) - 1  # total degree of the B_y polynomial in (x, y)
    for x, y, phi in ((0.02, 0.03, 0.3), (-0.025, 0.03, 3.5), (0.03, -0.02, 5.0)):
        div = []
        for scale in (1.0, 0.8):
            xs, ys = scale * x, scale * y
            jac = jacobian(np.array([(R0 + xs) * math.cos(phi), ys, (R0 + xs) * math.sin(phi)]))
            curl = np.array([jac[2, 1] - jac[1, 2], jac[0, 2] - jac[2, 0], jac[1, 0] - jac[0, 1]])
            assert np.max(np.abs(curl)) < 1e-10  # exact up to rounding (the gradients are ≈ 1e-3 T/m)
            div.append(np.trace(jac))
        # the truncation leaves terms of total degree ≥ degree − 1 in ∇·B, 1e-5 of the gradients at most
        assert abs(div[0]) < 1e-8
        assert div[0] / div[1] == pytest.approx(1.25 ** (degree - 1), rel=0.25)
    # the linear model's field is not Maxwellian: ∇·B = B_r/ρ = −B0 n y/(R0 ρ) ≠ 0
    _, _, linear = _jparc_ring(["ring.field_model='linear'", "beam.injection='gaussian'"])
    point = np.array([R0, 0.03, 0.0])
    h = 1e-4
    by = [_tracker_b(point + [0, k * h, 0], linear)[1] for k in (-1, 1)]
    assert (by[1] - by[0]) / (2 * h) + _tracker_b(point, linear)[0] / R0 == pytest.approx(-B0 * N_INDEX * 0.03 / R0**2, rel=1e-6)


def test_tracked_tunes_and_spin_advance_in_the_solenoid_model():
    from ringsim.beam import Beam, initial_states
    from ringsim.tracker import radial_vertical_offsets_m, spin_phase_rad, track_recorded

    cfg, kin, ring = _jparc_ring()
    gamma = math.sqrt(1 + (PARAMS.momentum_mev / codata(2018).muon_mass_mev) ** 2)
    period = 2 * math.pi * gamma / (Q_OVER_M * B0)
    steps, every, turns = 32, 4, 1200
    z = np.zeros(2)
    beam = Beam(z, z, np.array([0.0, 2e-3]), z, np.array([0.0, 5e-3]), z, z)
    rec = track_recorded(initial_states(cfg, kin, beam), turns * steps, period / steps, every, ring, Q_OVER_M, cfg.muon.a_mu, 0.0)
    _, y = radial_vertical_offsets_m(rec[1, :, :3], R0)
    _, n_loops = field_index_at(R0, *coil_set_jparc())
    assert _dominant_frequency(y - y.mean(), 1.0 / (steps // every)) == pytest.approx(math.sqrt(n_loops), rel=0.02)
    # the centred muon sees B0 at R0: the spin turns by 2π a γ per turn
    phase = np.unwrap(spin_phase_rad(rec[0, :, 3:6], rec[0, :, 6:9]))
    assert phase[-1] / turns == pytest.approx(2 * math.pi * cfg.muon.a_mu * gamma, rel=1e-8)


# --------------------------------------------------------------------------- spiral injection as a simulation option


def test_spiral_injected_muons_stay_in_the_storage_region_in_the_main_tracker():
    from ringsim.injection import spiral_beam
    from ringsim.tracker import radial_vertical_offsets_m, track_recorded

    cfg, kin, ring = _jparc_ring()
    assert cfg.beam.injection == "spiral"
    st, beam, injected = spiral_beam(cfg, 120, np.random.default_rng(5))
    assert st.shape == (120, 10) and injected > 120
    # t = 0: the design muon reaches the storage plane; the states are taken after the kicker pulse
    assert np.all(st[:, 9] > 0.0) and np.all(st[:, 9] < 2 * PARAMS.kicker_duration_ns * 1e-9)
    np.testing.assert_array_equal(beam.t0_ns, st[:, 9] * 1e9)
    steps, turns = 40, 120
    rec = track_recorded(st.copy(), turns * steps, 2 * math.pi / kin.omega_c_rad_per_s / steps, 2, ring, Q_OVER_M, cfg.muon.a_mu, 0.0)
    assert np.all(np.isfinite(rec))  # none lost at the aperture
    x, y = radial_vertical_offsets_m(rec[..., :3], R0)
    assert np.max(np.abs(y)) <= PARAMS.storage_half_height_m and np.max(np.abs(x)) <= PARAMS.storage_half_width_m
    assert np.max(np.abs(y)) > 0.3 * PARAMS.storage_half_height_m  # the region is used, not a trivial beam


@pytest.mark.slow
def test_reported_spiral_injection_efficiency_is_the_stored_fraction(tmp_path):
    from ringsim.config import load_config
    from ringsim.injection import EFFICIENCY_MUONS, config_params
    from ringsim.run_file import simulate_to_file
    from ringsim.tracker import radial_vertical_offsets_m, track_recorded

    cfg = load_config("jparc", overrides=["run.muons_per_fill=500"])
    prov = simulate_to_file(tmp_path / "j.root", cfg, "track", n_muons=400, seed=2)
    reported = prov["spiral_injection"]["efficiency"]
    # the same bunch, tracked here in the main tracker for 200 turns (> 2 vertical periods):
    # stored = never leaves the storage region |y| ≤ 3 cm, |x| ≤ 1.5 cm (nor the 3 cm aperture)
    _, kin, ring = _jparc_ring()
    states, _, _ = inject(EFFICIENCY_MUONS, 0, config_params(cfg))
    steps, turns = 40, 200
    rec = track_recorded(states, turns * steps, 2 * math.pi / kin.omega_c_rad_per_s / steps, 4, ring, Q_OVER_M, cfg.muon.a_mu, 0.0)
    x, y = radial_vertical_offsets_m(rec[..., :3], R0)
    inside = np.all(np.isfinite(y), axis=1) & np.all(np.abs(y) <= PARAMS.storage_half_height_m, axis=1) & np.all(np.abs(x) <= PARAMS.storage_half_width_m, axis=1)
    assert reported == pytest.approx(inside.mean(), abs=0.01)
    assert 0.7 < reported < 1.0


@pytest.mark.slow
def test_spiral_track_mode_blocks_are_reproducible():
    from ringsim.config import load_config
    from ringsim.simulate import generate_block

    cfg = load_config("jparc", overrides=["run.muons_per_fill=500"])
    first, second = (generate_block(cfg, "track", 9, 1, n_use=60) for _ in range(2))
    assert first.positrons["time_ns"].size > 0
    for a, b in ((first.positrons, second.positrons), (first.lost, second.lost)):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    other = generate_block(cfg, "track", 9, 2, n_use=60).positrons
    assert not np.array_equal(other["truth_t0_ns"][:5], first.positrons["truth_t0_ns"][:5])


def test_injection_option_is_validated():
    from ringsim.config import load_config

    with pytest.raises(ConfigError, match="beam.injection"):
        load_config("jparc", overrides=["beam.injection='helical'"])
    with pytest.raises(ConfigError, match="beam.injection"):
        load_config("fnal", overrides=["beam.injection='spiral'"])  # needs the solenoid coil model
    with pytest.raises(ConfigError, match="ring.field_model"):
        load_config("jparc", overrides=["ring.field_model='coils'"])
