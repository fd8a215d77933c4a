"""Five-parameter ω_a fit: closure on Poisson pseudo-data, pulls, Fisher errors, failures, histograms."""

import json
import math

import numpy as np
import pytest

from analysis.fitting import fit_five_parameter
from analysis.histograms import time_histogram
from analysis.models import five_parameter, five_parameter_binned
from analysis.plots import wiggle_plot
from analysis.precision import fisher_omega_precision
from ringsim.errors import FitError, InputError

# Fermilab-like pseudo-experiment
OMEGA = 1.4394  # rad/μs
TAU = 64.4  # μs
ASYM = 0.35
PHI = 2.1
BIN_US = 0.1492
START_US, END_US = 30.2, 650.0
OMEGA_REF = 2.0 * math.pi * 0.2291  # rad/μs
N_WINDOW = 1.0e6  # expected entries in the fit window


def rate_per_us(t, n0, tau, asym, omega, phi):
    return n0 * np.exp(-t / tau) * (1.0 + asym * np.cos(omega * t + phi))


def expected_counts(edges, n0, tau=TAU, asym=ASYM, omega=OMEGA, phi=PHI, sub=1):
    """Bin integrals by 8-point Gauss–Legendre quadrature on ``sub`` equal pieces of each bin
    (independent of the closed form used by the fitter)."""
    x, w = np.polynomial.legendre.leggauss(8)
    piece = np.diff(edges) / sub
    lo = edges[:-1, None] + piece[:, None] * np.arange(sub)[None, :]  # (bins, sub)
    t = lo[..., None] + 0.5 * piece[:, None, None] * (x + 1.0)
    return np.sum(rate_per_us(t, n0, tau, asym, omega, phi) * w, axis=(1, 2)) * 0.5 * piece


def fnal_edges():
    return START_US + BIN_US * np.arange(math.floor((END_US - START_US) / BIN_US) + 1)


def fnal_expectation():
    edges = fnal_edges()
    n0 = N_WINDOW / np.sum(expected_counts(edges, 1.0))
    return edges, expected_counts(edges, n0)


def test_binned_model_is_the_integral_of_the_rate():
    edges = np.array([0.0, 0.3, 1.0, 5.0, 5.1, 40.0])
    got = five_parameter_binned(edges, 1000.0, 6.6, 0.4, 2.97, -0.7)
    want = expected_counts(edges, 1000.0, 6.6, 0.4, 2.97, -0.7, sub=400)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    t = np.array([0.0, 1.0, 7.0])
    np.testing.assert_allclose(
        five_parameter(t, 1000.0, 6.6, 0.4, 2.97, -0.7), 1000.0 * np.exp(-t / 6.6) * (1 + 0.4 * np.cos(2.97 * t - 0.7))
    )


def test_fit_recovers_truth_and_reports_contract_keys():
    edges, mu = fnal_expectation()
    counts = np.random.default_rng(11).poisson(mu)
    fit = fit_five_parameter(counts, edges, START_US, END_US, OMEGA_REF, tau_guess_us=60.0)
    assert abs(fit.omega_a - OMEGA) < 4.0 * fit.omega_a_err
    assert abs(fit.params["tau_us"] - TAU) < 4.0 * fit.errors["tau_us"]
    assert abs(fit.params["A"] - ASYM) < 4.0 * fit.errors["A"]
    assert abs(fit.params["phi"] - PHI) < 4.0 * fit.errors["phi"]
    assert fit.R_ppm == pytest.approx((fit.omega_a / OMEGA_REF - 1.0) * 1e6, rel=1e-9)
    assert not fit.blinded
    assert fit.ndf == counts.size - 5 and fit.n_entries == counts.sum()
    assert fit.start_us == pytest.approx(START_US) and fit.end_us <= END_US

    # chi2 is the Poisson deviance, recomputed here with the test's own model at the fitted values
    p = fit.params
    mu_fit = expected_counts(edges, p["N0"], p["tau_us"], p["A"], fit.omega_a, p["phi"])
    n = counts.astype(float)
    log_term = np.where(n > 0, n * np.log(np.where(n > 0, n, 1.0) / mu_fit), 0.0)
    assert fit.chi2 == pytest.approx(2.0 * np.sum(mu_fit - n + log_term), rel=1e-9)
    assert abs(fit.chi2 - fit.ndf) < 5.0 * math.sqrt(2.0 * fit.ndf)

    d = json.loads(json.dumps(fit.to_dict()))
    for key in ("omega_a", "omega_a_err", "R_ppm", "blinded", "chi2", "ndf", "params", "errors"):
        assert key in d
    assert d["omega_a_unit"] == "rad/us"
    assert set(d["params"]) == {"N0", "tau_us", "A", "R_ppm", "phi"}
    assert d["correlation"]["R_ppm"]["R_ppm"] == pytest.approx(1.0)


def test_pulls_over_many_seeds_are_standard_normal():
    edges, mu = fnal_expectation()
    rng = np.random.default_rng(2024)
    pulls = []
    for _ in range(60):
        fit = fit_five_parameter(rng.poisson(mu), edges, START_US, END_US, OMEGA_REF, tau_guess_us=TAU)
        pulls.append((fit.omega_a - OMEGA) / fit.omega_a_err)
    pulls = np.array(pulls)
    assert abs(pulls.mean()) < 3.0 / math.sqrt(pulls.size)
    assert abs(pulls.std(ddof=1) - 1.0) < 0.25


def test_fit_error_matches_fisher_information():
    edges, mu = fnal_expectation()
    fit = fit_five_parameter(np.random.default_rng(5).poisson(mu), edges, START_US, END_US, OMEGA_REF, TAU)
    # n_positrons counts decays over [0, ∞): scale the window content up by the exponential fraction
    n_all = N_WINDOW / (math.exp(-edges[0] / TAU) - math.exp(-edges[-1] / TAU))
    sigma = OMEGA * fisher_omega_precision(n_all, ASYM, 1.0, OMEGA, TAU, edges[0], edges[-1], phi_rad=PHI)
    assert fit.omega_a_err == pytest.approx(sigma, rel=0.05)


@pytest.mark.parametrize(
    "make_counts",
    [
        lambda n: np.zeros(n),  # empty histogram
        lambda n: np.eye(1, n, n // 2)[0] * 1e6,  # everything in one bin
        lambda n: np.where(np.arange(n) >= n - 20, 1000.0, 0.0),  # a late step: no decaying wiggle fits
    ],
    ids=["zeros", "one-bin", "late-step"],
)
def test_fit_failure_raises_fit_error(make_counts):
    edges = np.linspace(0.0, 100.0, 1001)
    with pytest.raises(FitError):
        fit_five_parameter(make_counts(1000), edges, 0.0, 100.0, 1.44, 64.4)


def test_window_outside_histogram_raises_fit_error():
    edges, mu = fnal_expectation()
    with pytest.raises(FitError, match="window"):
        fit_five_parameter(np.round(mu), edges, 700.0, 800.0, OMEGA_REF, TAU)


def test_malformed_histogram_raises_input_error():
    with pytest.raises(InputError, match="edge"):
        fit_five_parameter(np.ones(10), np.arange(10.0), 0.0, 9.0, 1.44, 64.4)
    with pytest.raises(InputError, match="non-negative"):
        fit_five_parameter(-np.ones(10), np.arange(11.0), 0.0, 9.0, 1.44, 64.4)


def test_time_histogram_randomisation_is_uniform_of_width_tc():
    t0, tc, n = 50.0, BIN_US, 200_000
    bin_us = 1e-3
    counts, edges = time_histogram(np.full(n, t0), bin_us, 49.0, 51.0, randomize_us=tc, seed=7)
    assert counts.sum() == n
    centre = 0.5 * (edges[:-1] + edges[1:])
    filled = centre[counts > 0]
    assert filled.min() > t0 - tc / 2 - bin_us and filled.max() < t0 + tc / 2 + bin_us
    mean = np.average(centre, weights=counts)
    var = np.average((centre - mean) ** 2, weights=counts)
    expected_var = tc**2 / 12.0 + bin_us**2 / 12.0  # uniform shift plus binning
    assert abs(mean - t0) < 4.0 * math.sqrt(expected_var / n)
    assert var == pytest.approx(expected_var, rel=4.0 * math.sqrt(0.8 / n))  # Var(s²)/σ⁴ = 0.8 for a uniform
    again, _ = time_histogram(np.full(n, t0), bin_us, 49.0, 51.0, randomize_us=tc, seed=7)
    np.testing.assert_array_equal(counts, again)


def test_time_histogram_bins_and_weights():
    t = np.array([0.05, 0.15, 0.15, 0.95, 1.2])
    counts, edges = time_histogram(t, 0.1, 0.0, 1.0)
    np.testing.assert_allclose(edges, np.linspace(0.0, 1.0, 11))
    np.testing.assert_array_equal(counts, [1, 2, 0, 0, 0, 0, 0, 0, 0, 1])
    wcounts, _ = time_histogram(t, 0.1, 0.0, 1.0, weights=[1.0, 0.5, 0.25, 2.0, 9.0])
    np.testing.assert_allclose(wcounts[[0, 1, 9]], [1.0, 0.75, 2.0])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"t_us": [1.0, np.nan]}, "non-finite"),
        ({"bin_width_us": 0.0}, "bin_width_us"),
        ({"t_max_us": -1.0}, "t_min_us"),
        ({"weights": [1.0]}, "weights"),
    ],
)
def test_time_histogram_rejects_bad_input(kwargs, match):
    args = {"t_us": [1.0, 2.0], "bin_width_us": 0.1, "t_min_us": 0.0, "t_max_us": 5.0} | kwargs
    with pytest.raises(InputError, match=match):
        time_histogram(**args)


def test_wiggle_plot_writes_a_png(tmp_path):
    edges, mu = fnal_expectation()
    counts = np.random.default_rng(1).poisson(mu)
    fit = fit_five_parameter(counts, edges, START_US, END_US, OMEGA_REF, TAU)
    path = tmp_path / "wiggle.png"
    wiggle_plot(counts, edges, fit, fit.expected_counts, path)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 1000
    assert [p.name for p in tmp_path.iterdir()] == ["wiggle.png"]  # no temporary file left behind
