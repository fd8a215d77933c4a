"""ω_a fits: five-parameter closure, pulls and Fisher errors; general models (automatic start values,
22 parameters on 4000 bins, blinding, least squares and scaled Poisson, loud failures); start- and
end-time scans with their allowed band; histograms and plots."""

import json
import math

import numpy as np
import pytest

from analysis.fitting import fit_five_parameter, fit_wiggle
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
    np.testing.assert_allclose(five_parameter(t, 1000.0, 6.6, 0.4, 2.97, -0.7), 1000.0 * np.exp(-t / 6.6) * (1 + 0.4 * np.cos(2.97 * t - 0.7)))


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


# --- general models (analysis.fitting.fit_wiggle), scans and plots -------------------------------

from analysis import pseudo_data as toy  # noqa: E402
from analysis.blinding import Blinder  # noqa: E402
from analysis.models import LossSpectrum, beam_frequencies_mhz, parse_model  # noqa: E402
from analysis.plots import correlation_plot, pulls_plot, residual_fft_plot, scan_plot  # noqa: E402
from analysis.scans import end_time_scan, start_time_scan  # noqa: E402
from ringsim.errors import ConfigError  # noqa: E402

FREQS = beam_frequencies_mhz(6.705, 0.108)
BEAM_TRUTH = dict(
    N0=1.0, tau_us=TAU, A=ASYM, R_ppm=12.0, phi=PHI, omega_cbo=2 * math.pi * 0.37, tau_cbo_us=150.0, A_cbo_N=0.008,
    phi_cbo_N=0.3, A_cbo_A=0.03, phi_cbo_A=1.0, A_cbo_phi=0.03, phi_cbo_phi=-0.5, omega_vw=2 * math.pi * 2.30,
    tau_vw_us=60.0, A_vw=0.02, phi_vw=0.1, omega_y=2 * math.pi * 2.20, tau_y_us=80.0, A_y=0.01, phi_y=-1.2,
    k_loss=0.02, loss_tau_us=30.0, loss_end_us=700.0,
)  # fmt: skip
LOSS_EDGES = np.linspace(0.0, 700.0, 1401)
LOSS = LossSpectrum(LOSS_EDGES, -np.diff(np.exp(-LOSS_EDGES / 30.0)), TAU)


def beam_expectation(n_bins, n_window, truth=BEAM_TRUTH):
    edges = START_US + BIN_US * np.arange(n_bins + 1)
    mu = toy.bin_integrals(edges, lambda t: toy.toy_rate(t, truth, OMEGA_REF))
    return edges, mu * n_window / mu.sum()


def general_fit(counts, edges, model="5", **kw):
    kw = {"start_us": edges[0], "end_us": edges[-1], "omega_ref_rad_per_us": OMEGA_REF, "tau_guess_us": TAU, "loss": LOSS, "frequencies_mhz": FREQS} | kw
    return fit_wiggle(counts, edges, model, **kw)


def test_general_fit_error_matches_fisher_information():
    edges, mu = fnal_expectation()
    fit = general_fit(np.random.default_rng(5).poisson(mu), edges, "5", loss=None)
    n_all = N_WINDOW / (math.exp(-edges[0] / TAU) - math.exp(-edges[-1] / TAU))
    sigma = OMEGA * fisher_omega_precision(n_all, ASYM, 1.0, OMEGA, TAU, edges[0], edges[-1], phi_rad=PHI)
    assert fit.omega_a_err == pytest.approx(sigma, rel=0.05)
    assert abs(fit.omega_a - OMEGA) < 4 * fit.omega_a_err


def test_automatic_start_reaches_the_minimum_of_a_fit_started_at_the_truth():
    edges, mu = beam_expectation(1200, 3e6)
    counts = np.random.default_rng(8).poisson(mu)
    model = parse_model("18")
    n0 = float(np.sum(mu) / np.sum(toy.bin_integrals(edges, lambda t: toy.toy_rate(t, BEAM_TRUTH | {"N0": 1.0}, OMEGA_REF))))
    truth_start = {k: BEAM_TRUTH[k] for k in model.names} | {"N0": n0}
    auto = general_fit(counts, edges, model)
    at_truth = general_fit(counts, edges, model, start=truth_start)
    assert auto.chi2 == pytest.approx(at_truth.chi2, abs=1e-3)
    assert auto.params["R_ppm"] == pytest.approx(at_truth.params["R_ppm"], abs=0.01 * at_truth.errors["R_ppm"])
    assert abs(auto.params["R_ppm"] - BEAM_TRUTH["R_ppm"]) < 4 * auto.errors["R_ppm"]
    assert abs(auto.chi2 - auto.ndf) < 5 * math.sqrt(2 * auto.ndf)


def test_22_parameter_fit_of_4000_bins_with_correlations():
    edges, mu = beam_expectation(4000, 2e7)
    fit = general_fit(np.random.default_rng(2).poisson(mu), edges, "22")
    assert fit.model == "22" and len(fit.params) == 22 and fit.ndf == 4000 - 22
    assert abs(fit.params["R_ppm"] - BEAM_TRUTH["R_ppm"]) < 4 * fit.errors["R_ppm"]
    for name in ("omega_cbo", "omega_vw", "omega_y", "tau_us", "k_loss"):
        assert abs(fit.params[name] - BEAM_TRUTH[name]) < 5 * fit.errors[name], name
    corr = np.array([[fit.correlation[a][b] for b in fit.correlation] for a in fit.correlation])
    np.testing.assert_allclose(corr, corr.T, atol=1e-12)
    np.testing.assert_allclose(np.diag(corr), 1.0, atol=1e-12)
    scale = np.sqrt(np.diag(fit.covariance))
    np.testing.assert_allclose(fit.covariance / np.outer(scale, scale), corr, atol=1e-12)
    assert fit.errors["R_ppm"] == pytest.approx(scale[list(fit.correlation).index("R_ppm")])


def test_general_fit_blinding_shifts_only_the_reported_r():
    edges, mu = fnal_expectation()
    counts = np.random.default_rng(3).poisson(mu)
    blinder = Blinder("hidden", OMEGA_REF)
    open_fit = general_fit(counts, edges, loss=None)
    blind_fit = general_fit(counts, edges, loss=None, blinder=blinder)
    assert blind_fit.blinded and blind_fit.R_ppm != pytest.approx(open_fit.R_ppm, abs=1e-3)
    assert blinder.unblind_r(blind_fit.R_ppm) == pytest.approx(open_fit.omega_a, rel=1e-12)
    assert blind_fit.omega_a_err == pytest.approx(open_fit.omega_a_err, rel=1e-9)
    np.testing.assert_allclose(blind_fit.expected_counts, open_fit.expected_counts, rtol=1e-9)


def test_least_squares_errors_scale_with_the_given_variance():
    edges, mu = fnal_expectation()
    counts = np.random.default_rng(4).poisson(mu).astype(float)
    var = np.maximum(counts, 1.0)
    one = general_fit(counts, edges, loss=None, variance=var, cost="least_squares")
    four = general_fit(counts, edges, loss=None, variance=4.0 * var, cost="least_squares")
    assert one.chi2_definition == "least_squares"
    assert four.omega_a_err == pytest.approx(2.0 * one.omega_a_err, rel=1e-4)
    assert four.chi2 == pytest.approx(one.chi2 / 4.0, rel=1e-4)
    assert four.omega_a == pytest.approx(one.omega_a, abs=1e-3 * one.omega_a_err)


def test_scaled_poisson_equals_poisson_for_equal_weights():
    # every entry has weight 3 at low counts: Σw = 3n, Σw² = 9n, so the scaled likelihood is the
    # Poisson likelihood of n, and least squares with data variances is biased (Neyman)
    edges, mu = fnal_expectation()
    counts = np.random.default_rng(12).poisson(mu * 2e-3).astype(float)
    plain = general_fit(counts, edges, loss=None)
    scaled = general_fit(3.0 * counts, edges, loss=None, variance=9.0 * counts)
    assert scaled.chi2_definition == "scaled_poisson_deviance"
    assert scaled.params["R_ppm"] == pytest.approx(plain.params["R_ppm"], abs=1e-4 * plain.errors["R_ppm"])
    assert scaled.omega_a_err == pytest.approx(plain.omega_a_err, rel=1e-6)
    assert scaled.params["N0"] == pytest.approx(3.0 * plain.params["N0"], rel=1e-6)
    assert scaled.chi2 == pytest.approx(plain.chi2, rel=1e-6)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"cost": "chi3"}, ConfigError, "unknown cost"),
        ({"cost": "least_squares"}, ConfigError, "needs a variance"),
        ({"model": "9", "frequencies_mhz": {}}, ConfigError, "expected frequency of cbo"),
        ({"model": "5+loss", "loss": None}, ConfigError, "lost-muon spectrum"),
        ({"fixed": {"A_vw": 0.0}}, ConfigError, "no parameter"),
        ({"omega_ref_rad_per_us": -1.0}, ConfigError, "omega_ref"),
        ({"variance": "zeros", "cost": "least_squares"}, FitError, "content but zero variance"),
        ({"start_us": 600.0}, FitError, "window"),
        ({"model": "9", "fixed": {"A_cbo_N": 0.0}}, FitError, "do not constrain|not positive definite|converge"),
        ({"counts": "late-step"}, FitError, "converge|half an error|positive definite|constrain"),
    ],
)
def test_general_fit_fails_loudly_with_one_line(kwargs, error, match):
    edges, mu = fnal_expectation()
    counts = np.random.default_rng(6).poisson(mu).astype(float)
    if kwargs.pop("counts", None) == "late-step":  # no decaying wiggle fits a late step
        counts = np.where(np.arange(mu.size) >= mu.size - 40, 1000.0, 0.0)
    if kwargs.get("variance") == "zeros":
        kwargs["variance"] = np.where(np.arange(counts.size) % 7 == 0, 0.0, counts + 1.0)
    model = kwargs.pop("model", "5")
    with pytest.raises(error, match=match) as info:
        general_fit(counts, edges, model, **({"loss": None} | kwargs))
    assert "\n" not in str(info.value)


def test_start_time_scan_band_describes_the_spread_of_nested_fits():
    edges, mu = fnal_expectation()
    rng = np.random.default_rng(77)
    starts = np.array([START_US, 60.0, 120.0])
    pulls = []
    for _ in range(40):
        scan = start_time_scan(rng.poisson(mu), edges, starts, end_us=END_US, model="5", omega_ref_rad_per_us=OMEGA_REF, tau_guess_us=TAU)
        pulls.append(scan.deviation[1:] / scan.band[1:])
    pulls = np.array(pulls)
    assert scan.band[0] == 0.0 and np.all(np.diff(scan.omega_a_err) > 0)
    # Var(ω_i − ω_0) = σ_i² − σ_0² for nested windows: unit-width pulls (40 toys: ±0.11 per point)
    assert np.all(np.abs(pulls.std(axis=0, ddof=1) - 1.0) < 0.35)
    assert abs(pulls.std(ddof=1) - 1.0) < 0.25 and abs(pulls.mean()) < 0.35


def test_end_time_scan_first_point_is_the_plain_fit_and_blinding_keeps_differences(tmp_path):
    edges, mu = fnal_expectation()
    counts = np.random.default_rng(9).poisson(mu)
    kw = {"model": "5", "omega_ref_rad_per_us": OMEGA_REF, "tau_guess_us": TAU}
    plain = fit_wiggle(counts, edges, start_us=START_US, end_us=END_US, **kw)
    scan = end_time_scan(counts, edges, [END_US, 400.0, 200.0], start_us=START_US, **kw)
    blind = end_time_scan(counts, edges, [END_US, 400.0, 200.0], start_us=START_US, blinder=Blinder("s", OMEGA_REF), **kw)
    assert scan.omega_a[0] == pytest.approx(plain.omega_a, rel=1e-10)
    np.testing.assert_allclose(blind.deviation, scan.deviation, atol=1e-12)
    assert blind.blinded and abs(blind.omega_a[0] - scan.omega_a[0]) > 1e-7
    scan_plot(scan, tmp_path / "scan.png")
    assert (tmp_path / "scan.png").read_bytes().startswith(b"\x89PNG")
    with pytest.raises(ConfigError, match="two finite times"):
        end_time_scan(counts, edges, [END_US], start_us=START_US, **kw)


def test_analysis_plots_write_pngs_atomically(tmp_path):
    edges, mu = beam_expectation(1200, 3e6)
    counts = np.random.default_rng(10).poisson(mu)
    fit = general_fit(counts, edges, "18")
    marks = {"f_cbo": FREQS["cbo"], "f_vw": FREQS["vw"], "f_y": FREQS["y"], "f_2cbo": FREQS["2cbo"], "f_a": fit.omega_a / (2 * math.pi)}
    residual_fft_plot(counts, edges, fit, tmp_path / "fft.png", frequencies_mhz=marks)
    correlation_plot(fit, tmp_path / "corr.png")
    pulls_plot(np.random.default_rng(0).standard_normal(200), tmp_path / "pulls.png")
    for name in ("fft.png", "corr.png", "pulls.png"):
        data = (tmp_path / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corr.png", "fft.png", "pulls.png"]
    with pytest.raises(InputError, match="pulls_plot"):
        pulls_plot([np.nan, 1.0], tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_negative_bins_in_the_window_are_fitted_by_least_squares_and_outside_it_ignored():
    """A subtracted (weighted) histogram may go negative where it expects almost nothing; the cost follows the window."""
    edges = 0.1492 * np.arange(4001)
    t = 0.5 * (edges[:-1] + edges[1:])
    mu = 2.0e4 * 0.1492 * np.exp(-t / 64.4) * (1.0 + 0.4 * np.cos(1.4393 * t))
    counts = np.random.default_rng(8).poisson(mu).astype(float)
    variance = np.maximum(mu, 0.5)  # the subtraction's variances
    counts[:10] = -1.0  # negative bins before the window
    kw = {"start_us": 30.2, "end_us": 590.0, "omega_ref_rad_per_us": 1.4393, "tau_guess_us": 64.4, "variance": variance}
    outside = fit_wiggle(counts, edges, "5", **kw)
    assert outside.chi2_definition == "scaled_poisson_deviance"
    late = np.flatnonzero((t > 500.0) & (counts == 0.0))[:5]
    counts[late] = -1.0  # a few late bins, expecting < 1 count, pushed below zero
    negative = fit_wiggle(counts, edges, "5", **kw)
    assert negative.chi2_definition == "least_squares"
    assert abs(negative.omega_a - outside.omega_a) < 0.5 * outside.omega_a_err
