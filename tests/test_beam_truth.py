"""Beam-dynamics corrections against spin-tracking truth (ringsim.tracker) and analytic toys:
C_e and C_p of a sampled beam, C_ml of a scraped beam with a phase–momentum correlation, C_dd
against the shift a five-parameter fit reports, C_pa against an independent integral."""

import math

import numpy as np
import pytest

from analysis.fitting import fit_five_parameter
from calibration.beam_corrections import (
    differential_decay_correction,
    electric_field_correction,
    lost_muon_correction,
    phase_acceptance_correction,
    phase_drift_correction,
    phase_momentum_slope,
    pitch_correction,
    pitch_correction_from_tracker,
)
from ringsim.beam import initial_states, muon_charge_over_mass, sample_beam
from ringsim.config import load_config
from ringsim.constants import MUON_LIFETIME_S
from ringsim.ring_fields import ring_parameters
from ringsim.rings import ring_kinematics
from ringsim.tracker import spin_phase_rad, track_diagnostics, track_recorded

Q_OVER_M = muon_charge_over_mass()
OMEGA_FNAL = 1.439_33  # rad/μs
GAMMA_TAU = 64.4


@pytest.mark.parametrize(
    "overrides, which",
    [(["beam.vertical_width_m=0.0"], "C_e"), (["beam.momentum_spread=0.0"], "C_p")],
)
def test_corrections_of_a_sampled_beam_match_spin_tracking(overrides, which):
    """Default (discrete-ESQ) ring, 300 muons over 150 turns: −(ω_a/ω_a0 − 1) of each muon from its
    spin against the formula of its measured orbit (mean radius, mean y²), compared pairwise."""
    cfg = load_config("fnal", overrides=["kicker.enabled=false", *overrides])
    kin = ring_kinematics(cfg)
    period = 2 * math.pi / kin.omega_c_rad_per_s
    beam = sample_beam(cfg, 300, np.random.default_rng(1))
    d = track_diagnostics(initial_states(cfg, kin, beam), 150 * 32, period / 32, 4, ring_parameters(cfg, kin), Q_OVER_M, cfg.muon.a_mu, 0.0)
    d = d[np.isnan(d[:, 5])]
    n, r0 = cfg.ring.field_index, cfg.ring.radius_m
    spin = -(d[:, 0] / (cfg.muon.a_mu * Q_OVER_M * cfg.ring.field_t) - 1)
    c_e, _ = electric_field_correction(d[:, 1], n, r0, kin.beta)
    c_p, _ = pitch_correction(np.sqrt(d[:, 4]), n, r0)
    per_muon = 2 * n * (1 - n) * kin.beta**2 * d[:, 1] ** 2 / r0**2 + n * d[:, 4] / (2 * r0**2)
    assert per_muon.mean() == pytest.approx(c_e + c_p, rel=1e-9)
    diff = spin - per_muon
    expected = c_e if which == "C_e" else c_p
    assert expected > 100e-9  # a real correction of the default beam (Run-1 scale)
    # the formulas hold for the discrete lattice to 1 % (C_e) and 3 % (C_p, where ν_y² ≠ n)
    assert abs(diff.mean()) < (0.01 if which == "C_e" else 0.03) * expected
    assert abs(diff.mean()) < 0.03 * expected + 4 * diff.std() / math.sqrt(diff.size)


def test_lost_muon_correction_matches_the_spin_phases_of_the_survivors():
    """A beam offset outwards (Δp/p = +0.3 %) in a ring whose ESQ voltage recovers (RC) loses
    high-momentum muons during the fill; their spins start at φ₀ = kδ. The survivors' mean spin
    phase drift (truth, from the tracked spins) equals C_ml from the loss times and initial phases."""
    cfg = load_config("fnal", overrides=["kicker.enabled=false", "beam.momentum_offset=0.003", "esq.rc_fraction=0.5", "esq.rc_tau_us=10.0"])
    kin = ring_kinematics(cfg)
    beam = sample_beam(load_config("fnal", overrides=["beam.momentum_offset=0.003"]), 1000, np.random.default_rng(2))
    st = initial_states(cfg, kin, beam)
    phi0 = 200.0 * beam.delta_p
    uh = np.hypot(st[:, 3], st[:, 5])
    ux, uz = st[:, 3] / uh, st[:, 5] / uh
    st[:, 6], st[:, 7], st[:, 8] = np.cos(phi0) * ux - np.sin(phi0) * uz, 0.0, np.cos(phi0) * uz + np.sin(phi0) * ux
    assert spin_phase_rad(st[:, 3:6], st[:, 6:9]) == pytest.approx(phi0, abs=1e-12)
    period = 2 * math.pi / kin.omega_c_rad_per_s
    rec = track_recorded(st, 200 * 32, period / 32, 32, ring_parameters(cfg, kin), Q_OVER_M, cfg.muon.a_mu, 0.0)
    alive = np.isfinite(rec[:, :, 0])
    t_us = np.arange(1, rec.shape[1] + 1) * period * 1e6
    lost = ~alive[:, -1]
    loss_us = t_us[np.argmin(alive[lost], axis=1)]
    assert lost.sum() > 30 and np.count_nonzero(loss_us > 5.0) > 5  # losses go on during the fill
    omega0 = cfg.muon.a_mu * Q_OVER_M * cfg.ring.field_t
    phase = spin_phase_rad(rec[:, :, 3:6], rec[:, :, 6:9]) - omega0 * (rec[:, :, 9] - beam.t0_ns[:, None] * 1e-9)
    resid = np.angle(np.exp(1j * phase))
    survivors_mean = np.array([resid[alive[:, j], j].mean() for j in range(rec.shape[1])])
    truth, _ = phase_drift_correction(t_us, survivors_mean, omega0 * 1e-6, 2.0, 29.0, GAMMA_TAU)
    c_ml, c_ml_err = lost_muon_correction(loss_us, phi0[lost], phi0, omega0 * 1e-6, 2.0, 29.0, GAMMA_TAU)
    assert abs(truth) > 1e-5  # tens of ppm in this exaggerated setting
    assert c_ml == pytest.approx(truth, rel=0.05)
    assert 0 < c_ml_err < abs(c_ml)


def test_lost_muon_correction_first_order_formula():
    """One loss of phase φ_L at t_L: C = w(φ_L − φ̄)K(t_L)/(Nω), K the fit kernel — and zero
    if the lost muon has the mean phase or is lost before the window."""
    from calibration.transients import transient_kernel

    pop = np.random.default_rng(3).normal(0.0, 0.1, 10_000)
    c, _ = lost_muon_correction([100.0], [pop.mean() + 1.0], pop, OMEGA_FNAL, 30.0, 650.0, GAMMA_TAU, loss_weight=20.0)
    t, kernel = transient_kernel(30.0, 650.0, GAMMA_TAU)
    expected = 20.0 * 1.0 * np.interp(100.0, t, kernel) / (pop.size * OMEGA_FNAL)
    assert c == pytest.approx(expected, rel=5e-3)
    assert lost_muon_correction([10.0], [5.0], pop, OMEGA_FNAL, 30.0, 650.0, GAMMA_TAU)[0] == pytest.approx(0.0, abs=1e-15)


def _decay_mixture_counts(nodes, weights, k, start, end, bin_us=0.1492, asym=0.37):
    """Expected counts of a population of momenta δ_j (weights w_j): decay rate w_j e^{−t/γ_jτ}/γ_jτ,
    wiggle phase kδ_j (Simpson integration over each bin)."""
    gamma0 = 29.3
    u0 = math.sqrt(gamma0**2 - 1)
    tau_us = MUON_LIFETIME_S * 1e6
    edges = np.arange(0.0, end + bin_us, bin_us)
    sub = np.linspace(0, 1, 9)
    t = edges[:-1, None] + bin_us * sub[None, :]
    simpson = np.array([1, 4, 2, 4, 2, 4, 2, 4, 1]) * bin_us / 24
    counts = np.zeros(edges.size - 1)
    for d, w in zip(nodes, weights):
        gt = math.sqrt(1 + (u0 * (1 + d)) ** 2) * tau_us
        counts += (w * 1e9 / gt * np.exp(-t / gt) * (1 + asym * np.cos(OMEGA_FNAL * t + 0.4 + k * d))) @ simpson
    return counts, edges, gamma0


def test_differential_decay_matches_the_fitted_shift_and_the_closed_form():
    """Gaussian δ (σ = 0.1 %), φ₀ = kδ with k = 300 rad: C_dd ≈ −kβ²σ²/(ω_a γτ); a fit of the
    expected histogram of the mixture (Gauss–Hermite nodes) is shifted by −C_dd."""
    sigma, k = 1e-3, 300.0
    x, w = np.polynomial.hermite_e.hermegauss(40)
    counts, edges, gamma0 = _decay_mixture_counts(sigma * x, w / w.sum(), k, 30.2, 650.0)
    base, _, _ = _decay_mixture_counts(sigma * x, w / w.sum(), 0.0, 30.2, 650.0)
    fit_k = fit_five_parameter(counts, edges, 30.2, 650.0, OMEGA_FNAL, GAMMA_TAU)
    fit_0 = fit_five_parameter(base, edges, 30.2, 650.0, OMEGA_FNAL, GAMMA_TAU)
    shift = fit_k.omega_a / fit_0.omega_a - 1
    delta = np.random.default_rng(4).normal(0.0, sigma, 400_000)
    c_dd, c_dd_err = differential_decay_correction(delta, k, 0.0, gamma0, OMEGA_FNAL, 30.2, 650.0)
    beta2 = 1 - 1 / gamma0**2
    closed = -k * beta2 * np.var(delta) / (OMEGA_FNAL * gamma0 * MUON_LIFETIME_S * 1e6)
    assert c_dd == pytest.approx(closed, rel=0.01)
    assert shift == pytest.approx(-c_dd, rel=0.03)
    assert c_dd_err == pytest.approx(abs(c_dd) * math.sqrt(2 / delta.size), rel=0.05)  # σ² sampling error
    # with an uncertain k the error grows linearly
    assert differential_decay_correction(delta, k, 30.0, gamma0, OMEGA_FNAL, 30.2, 650.0)[1] > 0.09 * abs(c_dd)


def test_phase_acceptance_linear_toy():
    """σ_x²(t) = σ₀²(1 − εt), φ = c·x²: d⟨φ⟩/dt = −cσ₀²ε, so C_pa = cσ₀²ε/ω_a."""
    t = np.linspace(0.0, 700.0, 141)
    sigma0_sq, eps, c = 0.012**2, 2e-4, 50.0
    moments = (sigma0_sq * (1 - eps * t))[:, None]
    c_pa, err = phase_acceptance_correction(t, moments, np.zeros_like(moments), [c], [0.0], OMEGA_FNAL, 30.2, 650.0, GAMMA_TAU)
    assert c_pa == pytest.approx(c * sigma0_sq * eps / OMEGA_FNAL, rel=1e-9)
    assert err == 0.0


def test_phase_acceptance_exponential_toy_against_an_independent_integral():
    """⟨x⟩(t) = x₀e^{−t/τ_b}, φ = c·x: the weighted least-squares slope with w = e^{−t/γτ}, by quadrature."""
    from scipy.integrate import quad

    x0, tau_b, c, t1, t2 = 0.003, 80.0, 2.0, 30.2, 650.0

    def w(t):
        return math.exp(-t / GAMMA_TAU)

    def mean_phase(t):
        return c * x0 * math.exp(-t / tau_b)

    norm = quad(w, t1, t2)[0]
    t_bar = quad(lambda t: w(t) * t, t1, t2)[0] / norm
    slope = quad(lambda t: w(t) * (t - t_bar) * mean_phase(t), t1, t2)[0] / quad(lambda t: w(t) * (t - t_bar) ** 2, t1, t2)[0]
    t = np.linspace(0.0, 700.0, 7001)
    c_pa, _ = phase_acceptance_correction(t, (x0 * np.exp(-t / tau_b))[:, None], np.full((t.size, 1), 1e-5), [c], [0.1], OMEGA_FNAL, t1, t2, GAMMA_TAU)
    assert c_pa == pytest.approx(-slope / OMEGA_FNAL, rel=1e-4)


def test_tracker_resolution_is_unfolded():
    """y ~ N(0, σ²) seen with resolution r: ⟨y_meas²⟩ = σ² + r², the unfolded C_p = nσ²/(2R0²)."""
    n, r0, sigma, res = 0.108, 7.112, 0.013, 0.003
    rng = np.random.default_rng(5)
    y = rng.normal(0.0, sigma, 400_000) + rng.normal(0.0, res, 400_000)
    c_p, err = pitch_correction_from_tracker(y, res, 0.1 * res, n, r0)
    expected = n * sigma**2 / (2 * r0**2)
    assert abs(c_p - expected) < 4 * err
    assert err > n * 2 * res * 0.1 * res / (2 * r0**2)  # the resolution uncertainty is included
    naive, _ = pitch_correction(y, n, r0)
    assert naive - expected == pytest.approx(n * res**2 / (2 * r0**2), rel=0.1)


def test_phase_momentum_slope():
    rng = np.random.default_rng(6)
    delta = rng.normal(0.0, 1e-3, 50_000)
    phase = 0.2 + 150.0 * delta + rng.normal(0.0, 0.05, delta.size)
    k, k_err = phase_momentum_slope(delta, phase)
    assert k_err == pytest.approx(0.05 / (1e-3 * math.sqrt(delta.size)), rel=0.05)
    assert abs(k - 150.0) < 4 * k_err
