"""The budget table (docs/physics.md §4 Run-1 numbers as inputs), its exact R'_μ factor and renderings, and the
budget of a small simulated run closing on the simulation truth."""

import json
import math

import numpy as np
import pytest

from calibration.amu import amu_fnal
from calibration.budget import Budget, BudgetLine
from ringsim.constants import ELECTRON_PROTON_MOMENT_RATIO, codata
from ringsim.errors import ConfigError, InputError
from workflows.closure import simulated_run_budget

RUN1 = (  # docs/physics.md §4, seed 004 Table 3: (name, correction, uncertainty, role, group)
    ("ω_a statistical", 0.0, 434.0, "uncertainty", ""),
    ("ω_a systematic", 0.0, 56.0, "uncertainty", ""),
    ("C_e", 489.0, 53.0, "numerator", "C"),
    ("C_p", 180.0, 13.0, "numerator", "C"),
    ("C_ml", -11.0, 5.0, "numerator", "C"),
    ("C_pa", -158.0, 75.0, "numerator", "C"),
    ("ω_p systematic", 0.0, 56.0, "uncertainty", ""),
    ("B_k", -27.0, 37.0, "denominator", "B"),
    ("B_q", -17.0, 92.0, "denominator", "B"),
)


def _run1() -> Budget:
    return Budget(tuple(BudgetLine(name, value, err, role, group) for name, value, err, role, group in RUN1), "Run-1")


def test_run1_table_totals():
    """Total correction 544 ppb and total uncertainty 462 ppb (docs/physics.md §4 [V])."""
    b = _run1()
    assert round(b.total_correction_ppb) == 544
    assert round(b.total_error_ppb) == 462
    # the corrections enter R'_μ as (1 + ΣC)/(1 + ΣB)
    assert b.factor() == pytest.approx((1 + 500e-9) / (1 - 44e-9), rel=1e-15, abs=0.0)
    assert (b.factor() - 1) * 1e9 == pytest.approx(544.0, abs=0.1)


def test_groups_make_separate_factors():
    lines = (
        BudgetLine("C_e", 400.0, 1.0, "numerator", "C"),
        BudgetLine("C_p", 200.0, 1.0, "numerator", "C"),
        BudgetLine("f_clock", -30.0, 1.0, "numerator", "f_clock"),
        BudgetLine("f_calib", 50.0, 1.0, "denominator", "f_calib"),
        BudgetLine("B_k", -20.0, 1.0, "denominator", "B"),
    )
    expected = (1 - 30e-9) * (1 + 600e-9) / ((1 + 50e-9) * (1 - 20e-9))
    assert Budget(lines).factor() == pytest.approx(expected, rel=1e-15, abs=0.0)
    assert Budget(lines).total_correction_ppb == pytest.approx(400 + 200 - 30 - 50 + 20)


def test_renderings_carry_every_line():
    b = _run1()
    text = b.to_text()
    for name, value, err, role, _ in RUN1:
        row = next(line for line in text.splitlines() if line.startswith(name))
        assert f"{err:.1f}" in row and (role == "uncertainty" or f"{value:.1f}" in row)
    assert "544.0" in text.splitlines()[-1] and "461.6" in text.splitlines()[-1]
    d = json.loads(b.to_json())
    assert d == json.loads(json.dumps(b.to_dict()))
    assert [line["name"] for line in d["lines"]] == [r[0] for r in RUN1]
    assert d["total_correction_ppb"] == pytest.approx(544.0)
    tex = b.to_latex()
    assert tex.startswith(r"\begin{tabular}") and tex.rstrip().endswith(r"\end{tabular}")
    assert r"C\_e & 489.0 & 53.0 \\" in tex and "Total & 544.0 & 461.6" in tex


def test_budget_line_validation():
    with pytest.raises(ConfigError, match="role must be one of"):
        BudgetLine("x", 1.0, 1.0, "sideways")
    with pytest.raises(ConfigError, match="error finite and >= 0"):
        BudgetLine("x", 1.0, -1.0)


def test_electron_proton_moment_ratio_matches_scipy():
    from scipy.constants import physical_constants

    assert ELECTRON_PROTON_MOMENT_RATIO == physical_constants["electron-proton mag. mom. ratio"][0]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """60 000 recorded positrons of the default Fermilab ring in fast mode, fitted unblinded."""
    import uproot

    from analysis.wiggle import histogram_and_fit, ring_settings, select_energy
    from ringsim.config import load_config
    from ringsim.run_file import simulate_to_file

    cfg = load_config("fnal")
    path = tmp_path_factory.mktemp("run") / "events.root"
    simulate_to_file(path, cfg, "fast", n_positrons=60_000, seed=3, progress=False)
    with uproot.open(path) as f:
        events = f["events"].arrays(library="np")
    settings = ring_settings(cfg)
    fit, _, _ = histogram_and_fit(select_energy(events["time_ns"], events["energy_mev"], settings), settings, seed=3)
    return cfg, fit, events


def test_simulated_run_closes_on_its_truth(small_run, tmp_path):
    cfg, fit, events = small_run
    rb = simulated_run_budget(cfg, fit, events, c_e_source="truth", seed=3)
    names = [line.name for line in rb.budget.lines]
    for name in ("ω_a statistical", "C_e", "C_p", "C_pa", "C_dd", "C_ml", "f_clock", "f_calib (probe calibration)", "B_k", "B_q"):
        assert name in names
    closure = rb.closure
    assert abs(closure["pull"]) < 3
    # the corrections' sum against the frequency shift seen by the true spins
    assert closure["truth_total_ppb"] > 200  # C_e + C_p of the default beam
    assert abs(closure["pull_total"]) < 3 and abs(closure["pull_C_p"]) < 3
    # R'_μ is ω_a over the uncalibrated weighted field, times the exact correction factor
    op = rb.omega_p
    assert rb.ratio == pytest.approx(fit.omega_a / (op.omega_p_rad_per_s * 1e-6 / op.f_calib) * rb.budget.factor(), rel=1e-14, abs=0.0)
    assert rb.ratio_err == pytest.approx(rb.ratio * rb.budget.total_error_ppb * 1e-9, rel=1e-12, abs=0.0)
    assert rb.amu.a_mu == pytest.approx(amu_fnal(rb.ratio, codata_edition=2018, temperature_c=op.temperature_c).a_mu, rel=1e-15, abs=0.0)
    # E821 form a = R/(λ' − R), λ' = μ_μ/μ'_p(T_r) = λ·(μ_e/μ'_p(T_r))/(μ_e/μ_p) from the same CODATA table;
    # μ'_p(T) = μ'_p(25 °C)(1 − 10.36e-9/K·(T − 25 °C)) (shielding grows with T; PRA 103, 042208 (2021))
    c = codata(2018)
    mu_e_over_mu_p_shielded = c.electron_to_shielded_proton_moment_ratio / (1 - 10.36e-9 * (op.temperature_c - 25.0))
    lam = c.muon_proton_moment_ratio * mu_e_over_mu_p_shielded / ELECTRON_PROTON_MOMENT_RATIO
    assert rb.amu_e821.a_mu == pytest.approx(rb.ratio / (lam - rb.ratio), rel=1e-12, abs=0.0)
    # both forms agree at the true ratio (to the consistency of λ with the CODATA table, ~1e-8)
    true_ratio = cfg.muon.a_mu / (1 + cfg.muon.a_mu) * lam
    assert amu_fnal(true_ratio, codata_edition=2018, temperature_c=op.temperature_c).a_mu == pytest.approx(cfg.muon.a_mu, rel=3e-8)
    rb.write(tmp_path)
    saved = json.loads((tmp_path / "budget.json").read_text())
    assert saved["a_mu"] == rb.amu.a_mu and saved["closure"]["a_mu_true"] == cfg.muon.a_mu
    assert (tmp_path / "budget.tex").read_text().startswith(r"\begin{tabular}")
    assert "C_e" in (tmp_path / "budget.txt").read_text()


def test_simulated_run_fast_rotation_and_lost_muons(small_run):
    """C_e from the fast rotation agrees with C_e of the truth x_e; lost-muon records enter C_ml."""
    cfg, fit, events = small_run
    rng = np.random.default_rng(5)
    lost = {"time_ns": rng.exponential(20_000.0, 300), "truth_delta_p": rng.normal(0.002, 0.0005, 300)}
    rb = simulated_run_budget(cfg, fit, events, lost=lost, n_muons=400_000, seed=4)
    c_e = next(line for line in rb.budget.lines if line.name == "C_e")
    assert c_e.note == "fast rotation" and rb.fast_rotation is not None
    assert abs(rb.closure["pull_C_e"]) < 3
    c_ml = next(line for line in rb.budget.lines if line.name == "C_ml")
    assert c_ml.note == "300 lost muons" and c_ml.error_ppb > 0


def test_invalid_inputs_raise(small_run):
    cfg, fit, events = small_run
    blinded = {**fit.to_dict(), "blinded": True}
    with pytest.raises(ConfigError, match="^fit: .*blinded"):
        simulated_run_budget(cfg, blinded, events)
    partial = {k: v for k, v in events.items() if k != "truth_spin_phase_rad"}
    with pytest.raises(InputError, match="truth_spin_phase_rad"):
        simulated_run_budget(cfg, fit, partial)
    with pytest.raises(ConfigError, match="^n_muons: "):
        simulated_run_budget(cfg, fit, events, lost={"time_ns": np.ones(3), "truth_delta_p": np.zeros(3)}, c_e_source="truth")
    with pytest.raises(ConfigError, match="^c_e_source: "):
        simulated_run_budget(cfg, fit, events, c_e_source="guess")
    assert math.isfinite(fit.omega_a)


def test_spin_truth_error_matches_the_scatter_of_heteroscedastic_phases():
    """Each muon's phase residual is its own shift times its lifetime: its spread grows with τ."""
    from workflows.closure import spin_truth

    omega0, n, tau_ns = 1.439e6, 3000, 64_400.0
    totals, errors = [], []
    for seed in range(300):
        rng = np.random.default_rng(seed)
        life_ns = rng.exponential(tau_ns, n)
        shift = rng.normal(-4e-7, 3e-5, n) * omega0  # per-muon frequency shifts [rad/s]
        phase = omega0 * life_ns * 1e-9 + shift * life_ns * 1e-9 + rng.normal(0.0, 0.01, n)
        truth = {"truth_decay_time_ns": life_ns, "truth_t0_ns": np.zeros(n), "truth_spin_phase_rad": np.angle(np.exp(1j * phase)), "truth_delta_p": rng.normal(0.0, 1e-3, n)}
        out = spin_truth(truth, omega0, 0.0, np.ones(n, dtype=bool))
        totals.append(out["total"])
        errors.append(out["total_err"])
    scatter = np.std(totals, ddof=1)
    assert np.mean(totals) == pytest.approx(4e-7, abs=4 * scatter / math.sqrt(len(totals)))
    assert np.mean(errors) == pytest.approx(scatter, rel=0.15)  # the homoscedastic formula is 1.4× short here
