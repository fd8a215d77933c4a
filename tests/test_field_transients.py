"""Transient fields B_k (kicker eddy currents) and B_q (ESQ vibration) averaged over the muon decays
in the fit window: the "phase" weighting must equal the shift that the five-parameter fit of
analysis.fitting reports for an expected (noise-free) histogram with the perturbed precession."""

import math

import numpy as np
import pytest

from analysis.fitting import fit_five_parameter
from calibration.transients import esq_vibration, fit_transient, kicker_eddy_current, phase_slope, transient_average, transient_correction, transient_kernel
from ringsim.errors import ConfigError, InputError

OMEGA = 1.439_33  # rad/μs
GAMMA_TAU = 64.4
START, END = 30.2, 650.0
BIN = 0.1492


def _asimov_counts(extra_phase, n0=1e9, asym=0.37, phi=0.3):
    """Expected counts per bin of N0 e^{−t/γτ}[1 + A cos(ωt + φ + δφ(t))], integrated with Simpson's rule."""
    edges = np.arange(0.0, END + BIN, BIN)
    sub = np.linspace(0.0, 1.0, 9)
    t = edges[:-1, None] + BIN * sub[None, :]
    rate = n0 * np.exp(-t / GAMMA_TAU) * (1 + asym * np.cos(OMEGA * t + phi + extra_phase(t)))
    w = np.array([1, 4, 2, 4, 2, 4, 2, 4, 1]) * BIN / 24
    return rate @ w, edges


def _fitted_shift(extra_phase):
    base_counts, edges = _asimov_counts(lambda t: 0.0 * t)
    counts, _ = _asimov_counts(extra_phase)
    base = fit_five_parameter(base_counts, edges, START, END, OMEGA, GAMMA_TAU)
    pert = fit_five_parameter(counts, edges, START, END, OMEGA, GAMMA_TAU)
    return pert.omega_a / base.omega_a - 1.0, base


def test_kernel_is_normalised_and_averages_a_constant():
    for weighting in ("phase", "decay"):
        t, k = transient_kernel(START, END, GAMMA_TAU, weighting)
        assert np.trapezoid(k, t) == pytest.approx(1.0, rel=1e-6)
        assert transient_average(lambda t: np.full_like(t, 3.0), START, END, GAMMA_TAU, weighting) == pytest.approx(3.0, rel=1e-6)


def test_decay_weighting_closed_form():
    """∫e^{−t/τ_k}e^{−t/γτ}dt / ∫e^{−t/γτ}dt over the window, written out."""
    tau_k, amp = 50.0, 1.0
    rate = 1 / tau_k + 1 / GAMMA_TAU
    num = (math.exp(-START * rate) - math.exp(-END * rate)) / rate
    den = GAMMA_TAU * (math.exp(-START / GAMMA_TAU) - math.exp(-END / GAMMA_TAU))
    assert transient_average(lambda t: kicker_eddy_current(t, amp, tau_k), START, END, GAMMA_TAU, "decay") == pytest.approx(num / den, rel=1e-6)


def test_kicker_transient_matches_the_fitted_frequency_shift():
    """δB/B = B₀e^{−t/τ} adds δφ = ωB₀τ(1 − e^{−t/τ})."""
    amp, tau = 1e-4, 50.0
    shift, base = _fitted_shift(lambda t: OMEGA * amp * tau * (1 - np.exp(-t / tau)))
    assert base.omega_a == pytest.approx(OMEGA, rel=1e-9)  # the unperturbed Asimov fit is exact
    predicted = transient_average(lambda t: kicker_eddy_current(t, amp, tau), START, END, GAMMA_TAU)
    assert shift == pytest.approx(predicted, rel=0.01)
    # the plain decay average is a different (wrong) number for a transient this fast
    decay = transient_average(lambda t: kicker_eddy_current(t, amp, tau), START, END, GAMMA_TAU, "decay")
    assert abs(decay / predicted - 1) > 0.2


def test_esq_vibration_matches_the_fitted_frequency_shift():
    """δB/B = B₀e^{−t/τ}cos(2πft + φ): δφ = ω∫₀ᵗ δB/B, integrated here numerically."""
    amp, tau, f, ph = 2e-4, 200.0, 0.004, 0.7
    grid = np.linspace(0.0, END + 1.0, 200_001)
    accumulated = np.concatenate([[0.0], np.cumsum(0.5 * np.diff(grid) * (esq_vibration(grid[1:], amp, tau, f, ph) + esq_vibration(grid[:-1], amp, tau, f, ph)))])
    shift, _ = _fitted_shift(lambda t: OMEGA * np.interp(t, grid, accumulated))
    predicted = transient_average(lambda t: esq_vibration(t, amp, tau, f, ph), START, END, GAMMA_TAU)
    assert shift == pytest.approx(predicted, rel=0.02)


def test_phase_slope_of_a_linear_drift_is_its_rate():
    t = np.linspace(0.0, 700.0, 1001)
    slope, err = phase_slope(t, 0.3 + 2e-5 * t, START, END, GAMMA_TAU, np.full(t.size, 1e-3))
    assert slope == pytest.approx(2e-5, rel=1e-9)
    assert err > 0


def test_fitted_transient_and_its_error():
    """Fit a magnetometer record of a known kicker transient; the propagated error of B_k equals the
    spread of B_k over parameters drawn from the fit covariance."""
    rng = np.random.default_rng(1)
    t = np.linspace(1.0, 300.0, 300)
    truth = (-300.0, 40.0)  # ppb, μs
    record = kicker_eddy_current(t, *truth) + rng.normal(0.0, 10.0, t.size)
    params, cov = fit_transient("kicker", t, record, np.full(t.size, 10.0), {"amplitude": -200.0, "tau_us": 30.0})
    assert abs(params[0] - truth[0]) < 4 * math.sqrt(cov[0, 0]) and abs(params[1] - truth[1]) < 4 * math.sqrt(cov[1, 1])
    value, err = transient_correction("kicker", params, cov, START, END, GAMMA_TAU)
    draws = rng.multivariate_normal(params, cov, 400)
    spread = np.std([transient_average(lambda x, p=p: kicker_eddy_current(x, *p), START, END, GAMMA_TAU) for p in draws])
    assert err == pytest.approx(spread, rel=0.15)
    assert value < 0


def test_invalid_inputs_raise():
    with pytest.raises(ConfigError, match="^weighting: "):
        transient_kernel(START, END, GAMMA_TAU, "flat")
    with pytest.raises(ConfigError, match="^fit window: "):
        transient_average(lambda t: t, END, START, GAMMA_TAU)
    with pytest.raises(ConfigError, match="^transient model: "):
        fit_transient("quench", [1, 2, 3, 4], [1, 2, 3, 4], [1, 1, 1, 1], {})
    with pytest.raises(InputError, match="^transient record: "):
        fit_transient("kicker", [1, 2], [1, 2], [1, 1], {"amplitude": 1.0, "tau_us": 1.0})
    with pytest.raises(InputError, match="^delta: "):
        transient_average(lambda t: np.full(3, np.nan), START, END, GAMMA_TAU)
