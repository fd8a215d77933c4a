"""Methods T, A, Q, R: unbiased ω_a with unit pulls on pseudo-experiments with CBO, vertical waist
and muon losses (modelled in the 18-parameter fit), A beats T by the Michel-spectrum figure of
merit, A(E) is measured correctly, the R split is right, and the ``ringsim fit`` handler honours its
contract (keys, blinding, extras, plots, errors)."""

import argparse
import json
import math

import numpy as np
import pytest
import uproot

from analysis import pseudo_data as toy
from analysis.blinding import Blinder
from analysis.fitting import fit_wiggle
from analysis.methods import (
    AsymmetryWeights,
    collapse_energy,
    energy_bin_weights,
    energy_binned_fits,
    fit_ratio,
    measure_asymmetry,
    michel_asymmetry,
    per_station_fits,
    ratio_histograms,
)
from analysis.models import LossSpectrum, parse_model
from ringsim.cli.fit import add_fit_arguments, cmd_fit
from ringsim.errors import ConfigError, FitError, InputError, RingsimError

OMEGA_REF = 2.0 * math.pi * 0.2291
TAU = 64.4
E_MAX = 3095.0
TRUTH = dict(
    N0=1.0, tau_us=TAU, A=0.0, R_ppm=12.0, phi=2.1, omega_cbo=2 * math.pi * 0.37, tau_cbo_us=150.0, A_cbo_N=0.008,
    phi_cbo_N=0.3, A_cbo_A=0.03, phi_cbo_A=1.0, A_cbo_phi=0.03, phi_cbo_phi=-0.5, omega_vw=2 * math.pi * 2.30,
    tau_vw_us=60.0, A_vw=0.02, phi_vw=0.1, k_loss=0.02, loss_tau_us=30.0, loss_end_us=700.0,
)  # fmt: skip
EDGES = 30.2 + 0.1492 * np.arange(1001)
Y_EDGES = np.linspace(0.1, 1.0, 19)
E_EDGES = Y_EDGES * E_MAX
THRESHOLD = 0.55 * E_MAX - 1e-6  # a bin edge: the T method keeps y ≥ 0.55 (≈ 1.7 GeV)
HALF_PERIOD = math.pi / OMEGA_REF
N_T = 3e7  # expected T-method positrons in the window
MODEL = parse_model("18")
LOSS_EDGES = np.linspace(0.0, 700.0, 1401)
LOSS = LossSpectrum(LOSS_EDGES, -np.diff(np.exp(-LOSS_EDGES / 30.0)), TAU)
FRACTION, ASYMMETRY = toy.michel_energy_bins(Y_EDGES)
MICHEL = AsymmetryWeights(E_EDGES, ASYMMETRY, np.zeros_like(ASYMMETRY), "michel")
WEIGHTS = {m: energy_bin_weights(m, E_EDGES, threshold_mev=THRESHOLD if m == "T" else 0.0, asymmetry=MICHEL) for m in "TAQ"}


@pytest.fixture(scope="module")
def expectation():
    """Expected counts per (time, energy) bin, and the R method's V and U, scaled to N_T."""
    mu2 = toy.expected_time_energy(EDGES, Y_EDGES, TRUTH, OMEGA_REF)
    scale = N_T / (mu2 @ WEIGHTS["T"]).sum()
    v, u = toy.ratio_subsets_expected(EDGES, Y_EDGES, TRUTH, OMEGA_REF, HALF_PERIOD, TAU, 0.55)
    return mu2 * scale, v * scale, u * scale, scale


def truth_start(method, scale):
    """True values of the fit parameters for a weighted histogram (N0 and A of the weighted sum)."""
    start = {k: TRUTH[k] for k in MODEL.names}
    c0 = scale * (FRACTION @ WEIGHTS[method])
    start["N0"], start["A"] = c0, scale * ((FRACTION * ASYMMETRY) @ WEIGHTS[method]) / c0
    return start


def pseudo_fit(method, rng, expectation):
    mu2, v_mu, u_mu, scale = expectation
    common = {"start_us": EDGES[0], "end_us": EDGES[-1], "omega_ref_rad_per_us": OMEGA_REF, "loss": LOSS}
    if method == "R":
        fixed = {"N0": 1.0, "tau_us": TAU, "k_loss": TRUTH["k_loss"]} | {k: TRUTH[k] for k in ("omega_vw", "tau_vw_us", "A_vw", "phi_vw")}
        return fit_ratio(rng.poisson(v_mu), rng.poisson(u_mu), EDGES, MODEL, half_period_us=HALF_PERIOD, weighting_tau_us=TAU, tau_guess_us=TAU, start=truth_start("T", scale), fixed=fixed, **common)
    values, variance = collapse_energy(rng.poisson(mu2), WEIGHTS[method])
    return fit_wiggle(values, EDGES, MODEL, tau_guess_us=TAU, variance=None if method == "T" else variance, start=truth_start(method, scale), method=method, **common)


@pytest.mark.parametrize("method", ["T", "A", "Q", "R"])
def test_pulls_of_omega_a_are_unit_normal_with_beam_terms_in_data_and_fit(method, expectation):
    rng = np.random.default_rng(100 + ord(method))
    pulls = []
    for _ in range(200):
        fit = pseudo_fit(method, rng, expectation)
        pulls.append((fit.params["R_ppm"] - TRUTH["R_ppm"]) / fit.errors["R_ppm"])
    pulls = np.array(pulls)
    # the criterion: mean 0 ± 0.15, width 1 ± 0.1 (200 toys: statistical ±0.07 and ±0.05)
    assert abs(pulls.mean()) < 0.15
    assert abs(pulls.std(ddof=1) - 1.0) < 0.1


def test_a_method_beats_t_method_by_the_michel_figure_of_merit(expectation):
    mu2, *_ = expectation
    counts = np.random.default_rng(21).poisson(mu2)
    five = parse_model("5")
    errors = {}
    for method in "TA":
        values, variance = collapse_energy(counts, WEIGHTS[method])
        fit = fit_wiggle(values, EDGES, five, start_us=EDGES[0], end_us=EDGES[-1], omega_ref_rad_per_us=OMEGA_REF, tau_guess_us=TAU, variance=None if method == "T" else variance)
        errors[method] = fit.omega_a_err
    # figure of merit N A² of the threshold selection versus Σ F A² of the A-weighted bins (A > 0)
    t_bins, a_bins = WEIGHTS["T"] > 0, ASYMMETRY > 0
    fom_t = FRACTION[t_bins].sum() * (FRACTION[t_bins] @ ASYMMETRY[t_bins] / FRACTION[t_bins].sum()) ** 2
    fom_a = FRACTION[a_bins] @ ASYMMETRY[a_bins] ** 2
    assert errors["A"] < errors["T"]
    assert errors["T"] / errors["A"] == pytest.approx(math.sqrt(fom_a / fom_t), rel=0.05)


def test_measured_asymmetry_recovers_the_michel_asymmetry(expectation):
    mu2, *_ = expectation
    counts = np.random.default_rng(22).poisson(mu2)
    omega = OMEGA_REF * (1 + TRUTH["R_ppm"] * 1e-6)
    # the CBO/VW/loss terms average out of a per-energy projection; A(E) is the in-phase amplitude
    got = measure_asymmetry(counts, EDGES, E_EDGES, start_us=EDGES[0], end_us=EDGES[-1], omega_rad_per_us=omega, phi=TRUTH["phi"], tau_us=TAU)
    pulls = (got.asymmetry - ASYMMETRY) / got.error
    assert got.source == "fit" and np.all(np.isfinite(got.error))
    assert np.sum(pulls**2) < 18 + 4 * math.sqrt(2 * 18)
    # weights: A of the energy's bin (bins of 0.05 E_max from 0.1 E_max), zero below the range, above it
    # and where A < 0 (y = 0.3 has A < 0)
    energies = np.array([0.0, 0.3, 0.646, 0.969, 1.3]) * E_MAX
    assert got.asymmetry[4] < 0.0
    np.testing.assert_allclose(got.weight(energies), [0.0, 0.0, got.asymmetry[10], got.asymmetry[17], 0.0])


def test_michel_weights_follow_ringsim_and_rank_energies():
    got = michel_asymmetry(E_EDGES, 29.3, 105.6583755)
    assert got.source == "michel" and np.all(np.diff(got.asymmetry) > 0)  # A(E) rises with energy
    np.testing.assert_allclose(got.asymmetry, ASYMMETRY, atol=5e-3)  # the toy's β → 1 spectrum


def test_ratio_split_probabilities_and_shifts():
    # every hit at one time: V holds sets 1 + 2 there, U holds set 3 half a period earlier and set 4
    # half a period later, with probabilities ∝ 1, 1, e^{T/2τ}, e^{−T/2τ}
    n, t0 = 400_000, 50.0
    edges = np.arange(0.0, 100.0 + 1e-9, 0.1)
    v, u = ratio_histograms(np.full(n, t0), edges, HALF_PERIOD, TAU, seed=3)
    s = math.exp(HALF_PERIOD / TAU)
    p = np.array([2.0, s, 1.0 / s]) / (2.0 + s + 1.0 / s)
    got = np.array([v[int(t0 / 0.1)], u[int((t0 - HALF_PERIOD) / 0.1)], u[int((t0 + HALF_PERIOD) / 0.1)]])
    assert got.sum() == n
    assert np.all(np.abs(got - n * p) < 4 * np.sqrt(n * p * (1 - p)))


def test_energy_binned_and_per_station_fits_name_their_failures(expectation):
    mu2, *_ = expectation
    counts = np.random.default_rng(23).poisson(mu2[:, -4:] * 0.01)

    def fit(c, e):
        return fit_wiggle(c, e, "5", start_us=EDGES[0], end_us=EDGES[-1], omega_ref_rad_per_us=OMEGA_REF, tau_guess_us=TAU)

    fits = energy_binned_fits(counts, EDGES, E_EDGES[-5:], fit)
    assert [round(lo) for lo, _, _ in fits] == [round(e) for e in E_EDGES[-5:-1]]
    assert all(abs(f.params["R_ppm"] - TRUTH["R_ppm"]) < 5 * f.errors["R_ppm"] for *_, f in fits)
    with pytest.raises(FitError, match="energy bin"):
        energy_binned_fits(np.zeros((EDGES.size - 1, 1)), EDGES, E_EDGES[:2], fit)
    stations = per_station_fits(np.array([0, 0, 1, 1]), lambda mask: fit(counts[:, -1] * (0.5 if mask[0] else 0.5), EDGES))
    assert sorted(stations) == [0, 1]
    with pytest.raises(FitError, match="station 7"):
        per_station_fits(np.array([7]), lambda mask: fit(np.zeros(EDGES.size - 1), EDGES))


# --- the ringsim fit handler ----------------------------------------------------------------------

HIT_TRUTH = dict(tau_us=TAU, R_ppm=12.0, phi=2.1)


@pytest.fixture(scope="module")
def hits_file(tmp_path_factory):
    """A foreign-layout ROOT file: tree run/hits with t (μs), E (GeV), station, fill."""
    hits = toy.toy_hits(np.random.default_rng(5), 400, 3000.0, HIT_TRUTH, OMEGA_REF, E_MAX, n_calos=2, t_max_us=260.0)
    path = tmp_path_factory.mktemp("cli") / "hits.root"
    with uproot.recreate(path) as f:
        f.mktree("run/hits", {"t": np.float64, "E": np.float64, "station": np.int32, "fill": np.int64})
        f["run/hits"].extend({"t": hits["time_ns"] * 1e-3, "E": hits["energy_mev"] * 1e-3, "station": hits["calo"].astype(np.int32), "fill": hits["fill"]})
    return path


def run_fit(path, *options, tmp_path=None, capsys=None):
    parser = argparse.ArgumentParser()
    add_fit_arguments(parser)
    layout = ["--tree", "run/hits", "--time-branch", "t", "--time-unit", "us", "--energy-branch", "E", "--energy-unit", "GeV", "--calo-branch", "station", "--ring", "fnal", "--end", "250"]
    args = parser.parse_args([str(path), *layout, *map(str, options)])
    assert cmd_fit(args) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("method", ["T", "A", "Q", "R"])
def test_cli_methods_report_the_contract_keys_and_close_on_truth(method, hits_file, capsys):
    got = run_fit(hits_file, "--method", method, "--unblind", capsys=capsys)
    for key in ("omega_a", "omega_a_err", "R_ppm", "blinded", "chi2", "ndf", "params", "errors"):
        assert key in got
    assert got["method"] == method and not got["blinded"]
    assert abs(got["R_ppm"] - HIT_TRUTH["R_ppm"]) < 4 * got["errors"]["R_ppm"]
    if method == "A":
        assert got["asymmetry_weights"]["source"] == "fit"


def test_cli_blinding_extras_and_plots(hits_file, tmp_path, capsys):
    open_fit = run_fit(hits_file, "--unblind", capsys=capsys)
    plots = {opt: tmp_path / f"{opt.strip('-')}.png" for opt in ("--plot", "--residual-plot", "--scan-plot", "--correlation-plot", "--pulls-plot")}
    out = tmp_path / "fit.json"
    argv = ["--blind", "secret", "--per-station", "--scan-start", "30.2,50,80", "--json", out]
    for opt, path in plots.items():
        argv += [opt, path]
    blind = run_fit(hits_file, *argv, capsys=capsys)
    assert json.loads(out.read_text()) == blind
    assert blind["blinded"] and abs(blind["omega_a"] / open_fit["omega_a"] - 1) > 1e-7
    assert Blinder("secret", OMEGA_REF).unblind_r(blind["R_ppm"]) == pytest.approx(open_fit["omega_a"], rel=1e-12)
    assert sorted(blind["stations"]) == ["0", "1"]
    scan = blind["scan_start"]
    assert scan["times_us"] == [30.2, 50.0, 80.0] and scan["band"][0] == 0.0 and scan["blinded"]
    for path in plots.values():
        assert path.read_bytes().startswith(b"\x89PNG")


def test_cli_pileup_and_gain_options_run(hits_file, capsys):
    got = run_fit(hits_file, "--pileup", "--gain", "0.01,20", "--unblind", capsys=capsys)
    # ~1500 hits per fill and calorimeter pair up in the shadow window; the subtracted histogram is
    # weighted, so it is fitted by the scaled Poisson likelihood
    assert got["pileup"]["shadow_pairs"] > 100 and got["chi2_definition"] == "scaled_poisson_deviance"
    assert abs(got["R_ppm"] - HIT_TRUTH["R_ppm"]) < 4 * got["errors"]["R_ppm"]


@pytest.mark.parametrize(
    "options, error, match",
    [
        (["--model", "7"], ConfigError, "model"),
        (["--fix", "A"], ConfigError, "fix"),
        (["--scan-start", "30"], ConfigError, "scan-start"),
        (["--method", "R", "--scan-end", "250,200"], ConfigError, "scan"),
        (["--gain", "2,10"], ConfigError, "gain"),
        (["--scan-plot", "{tmp}/s.png"], ConfigError, "scan-plot"),
        (["--time-branch", "nope"], InputError, "nope"),
        (["--json", "{tmp}/exists.json"], InputError, "exists"),
    ],
)
def test_cli_errors_are_one_line_and_write_nothing(options, error, match, hits_file, tmp_path, capsys):
    (tmp_path / "exists.json").write_text("{}")
    parser = argparse.ArgumentParser()
    add_fit_arguments(parser)
    layout = ["--tree", "run/hits", "--time-branch", "t", "--time-unit", "us", "--energy-branch", "E", "--energy-unit", "GeV", "--end", "250"]
    argv = [str(hits_file), *layout, "--json", str(tmp_path / "out.json"), *[o.replace("{tmp}", str(tmp_path)) for o in options]]
    args = parser.parse_args(argv)
    with pytest.raises(error, match=match) as info:
        cmd_fit(args)
    assert isinstance(info.value, RingsimError) and "\n" not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists.json"]
    assert (tmp_path / "exists.json").read_text() == "{}"


def test_cli_histogram_input_t_and_a_from_a_th2(tmp_path, expectation, capsys):
    mu2, *_ = expectation
    counts = np.random.default_rng(31).poisson(mu2 * 0.02).astype(float)
    edges_ns = EDGES * 1e3
    path = tmp_path / "h.root"
    with uproot.recreate(path) as f:
        f["wiggle2d"] = (counts, edges_ns, E_EDGES)
    parser = argparse.ArgumentParser()
    add_fit_arguments(parser)
    results = {}
    for method in "TA":
        args = parser.parse_args([str(path), "--hist", "wiggle2d", "--method", method, "--start", str(EDGES[0]), "--end", str(EDGES[-1]), "--threshold", str(THRESHOLD) if method == "T" else "0"])
        assert cmd_fit(args) == 0
        results[method] = json.loads(capsys.readouterr().out)
        assert abs(results[method]["R_ppm"] - TRUTH["R_ppm"]) < 4 * results[method]["errors"]["R_ppm"]
    assert results["A"]["omega_a_err"] < results["T"]["omega_a_err"]
    args = parser.parse_args([str(path), "--hist", "wiggle2d", "--method", "R"])
    with pytest.raises(ConfigError, match="R method needs hits"):
        cmd_fit(args)
