"""Command line: the end-to-end run closes on truth, fits are independent of the file layout,
blinding hides and restores ω_a, precision equals a direct Fisher calculation, bad input exits 2."""

import json
import math

import numpy as np
import pytest
import uproot

from analysis.blinding import Blinder
from ringsim.cli import main
from ringsim.config import load_config
from ringsim.constants import codata
from ringsim.decay import lab_fraction_and_asymmetry
from ringsim.rings import ring_kinematics


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    path = tmp_path_factory.mktemp("sim") / "events.root"
    assert main(["simulate", "--ring", "fnal", "--positrons", "400000", "--seed", "3", "-o", str(path)]) == 0
    return path


def _fit_json(tmp_path, name, *args):
    out = tmp_path / f"{name}.json"
    assert main(["fit", *map(str, args), "--json", str(out)]) == 0
    return json.loads(out.read_text())


@pytest.mark.slow
def test_run_closes_on_the_true_a_mu(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--ring", "fnal", "--positrons", "1000000", "--seed", "5", "-o", str(out), "--json", str(tmp_path / "r.json")]) == 0
    result = json.loads((out / "result.json").read_text())
    assert json.loads((tmp_path / "r.json").read_text()) == result
    for key in ("a_mu", "a_mu_err", "a_mu_true", "omega_a", "omega_a_err", "pull"):
        assert key in result
    assert abs(result["a_mu"] - result["a_mu_true"]) < 3 * result["a_mu_err"]
    assert {"events.root", "fit.json", "report.txt", "result.json", "wiggle.png", "budget.txt", "budget.json", "budget.tex", "comparison.png", "bsm.png"} <= {p.name for p in out.iterdir()}
    assert "pull" in capsys.readouterr().out
    # a simulated run is not read as new physics unless asked (--run-bsm)
    assert "delta_a_mu_vs_sm2025" not in result and not (out / "bsm_run.png").exists()
    # the run's fit is the fit of its file: `ringsim fit OUT/events.root --seed 5` gives the same ω_a
    again = _fit_json(tmp_path, "again", out / "events.root", "--seed", "5")
    assert again["omega_a"] == result["omega_a"] and again["omega_a_err"] == result["omega_a_err"]
    assert again == json.loads((out / "fit.json").read_text()) and again["pileup"]["corrected"]


def test_fit_is_the_same_for_another_file_layout(sample, tmp_path):
    with uproot.open(sample) as f:
        d = f["events"].arrays(["time_ns", "energy_mev"], library="np")
    other = tmp_path / "foreign.root"
    with uproot.recreate(other) as f:
        f.mktree("run1/calo/hits", {"t": np.float64, "E": np.float64})
        f["run1/calo/hits"].extend({"t": d["time_ns"] * 1e-3, "E": d["energy_mev"].astype(np.float64) * 1e-3})
    ours = _fit_json(tmp_path, "a", sample, "--unblind", "--no-pileup")
    theirs = _fit_json(tmp_path, "b", other, "--tree", "run1/calo/hits", "--time-branch", "t", "--time-unit", "us", "--energy-branch", "E", "--energy-unit", "GeV", "--unblind", "--no-pileup")
    assert theirs["omega_a"] == pytest.approx(ours["omega_a"], abs=1e-3 * ours["omega_a_err"])
    assert theirs["omega_a_err"] == pytest.approx(ours["omega_a_err"], rel=1e-3)


def test_blinding_hides_omega_a_and_unblinding_restores_it(sample, tmp_path):
    open_fit = _fit_json(tmp_path, "open", sample, "--unblind")
    blind_fit = _fit_json(tmp_path, "blind", sample, "--blind", "muon g-2 secret")
    assert blind_fit["blinded"] and not open_fit["blinded"]
    # a ppm-scale offset (|ΔR| ≤ ~27 ppm): the reported ω_a is not the true one
    assert abs(blind_fit["omega_a"] / open_fit["omega_a"] - 1) > 1e-7
    assert repr(open_fit["omega_a"]) not in json.dumps(blind_fit)
    omega_ref = 2 * math.pi * load_config("fnal").analysis.blinding_reference_mhz
    restored = Blinder("muon g-2 secret", omega_ref).unblind_r(blind_fit["R_ppm"])
    assert restored == pytest.approx(open_fit["omega_a"], rel=1e-12, abs=0.0)


def _fisher_precision(n, asym, omega, tau, start, end):
    """Direct Fisher information of N(t) = N0 e^{-t/τ}(1 + A cos(ωt + φ)) on a fine grid."""
    t = np.linspace(start, end, 400_001)
    n0, phi = n / tau, 0.0
    e = np.exp(-t / tau)
    c, s = np.cos(omega * t + phi), np.sin(omega * t + phi)
    f = n0 * e * (1 + asym * c)
    grads = [f / n0, f * t / tau**2, n0 * e * c, -n0 * e * asym * t * s, -n0 * e * asym * s]
    info = np.array([[np.trapezoid(gi * gj / f, t) for gj in grads] for gi in grads])
    return math.sqrt(np.linalg.inv(info)[3, 3]) / omega


@pytest.mark.parametrize("ring, window, start, end", [("jparc", "200,275", 0.0, 40.0), ("fnal", "1700,3200", 30.2, 650.0)])
def test_precision_matches_a_direct_fisher_calculation(ring, window, start, end, tmp_path, capsys):
    out = tmp_path / "p.json"
    assert main(["precision", "--ring", ring, "--positrons", "5.7e11", "--polarization", "0.5", "--energy-window", window, "--start", str(start), "--end", str(end), "--json", str(out)]) == 0
    got = json.loads(out.read_text())
    kin = ring_kinematics(load_config(ring))
    lo, hi = map(float, window.split(","))
    frac, asym = lab_fraction_and_asymmetry(kin.gamma, lo, hi, codata().muon_mass_mev)
    assert got["asymmetry"] == pytest.approx(asym) and got["fraction"] == pytest.approx(frac)
    expected = _fisher_precision(5.7e11, 0.5 * asym, kin.omega_a_rad_per_us, kin.gamma_tau_us, start, end)
    assert got["delta_omega_over_omega"] == pytest.approx(expected, rel=2e-3)


def _random_bytes(path):
    path.write_bytes(np.random.default_rng(0).bytes(5000))


def _truncated(path, source):
    data = source.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    "case, extra, message",
    [
        ("random", [], "foo.root"),
        ("empty", [], "foo.root"),
        ("truncated", [], "foo.root"),
        ("copy", ["--tree", "nope"], "nope"),
        ("copy", ["--time-branch", "t_missing"], "t_missing"),
        ("copy", ["--energy-branch", "E_missing"], "E_missing"),
        ("copy", ["--time-unit", "fortnight"], "fortnight"),
    ],
)
def test_fit_bad_inputs_follow_the_error_contract(case, extra, message, sample, tmp_path, capsys):
    bad = tmp_path / "foo.root"
    {"random": _random_bytes, "empty": lambda p: p.write_bytes(b""), "truncated": lambda p: _truncated(p, sample), "copy": lambda p: p.write_bytes(sample.read_bytes())}[case](bad)
    out = tmp_path / "fit.json"
    assert main(["fit", str(bad), "--json", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err
    assert not out.exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["amu", "--ratio", "-0.0037"], "ratio"),
        (["simulate", "--set", "ring.field_t=-1.45", "--positrons", "10", "-o", "{tmp}/x.root"], "ring.field_t"),
        (["simulate", "--config", "{tmp}/bad.toml", "--positrons", "10", "-o", "{tmp}/x.root"], "invalid TOML"),
        (["precision", "--positrons", "1e9", "--energy-window", "300,200"], "energy-window"),
        (["run", "--set", "beam.momentum_spread=-1", "-o", "{tmp}/run"], "beam.momentum_spread"),
        (["simulate", "--set", "beam.momentum_offset=0.02", "--muons", "100", "-o", "{tmp}/x.root"], "fits inside the 45 mm aperture"),
        (["simulate", "--set", "ring.radius_m=0.05", "--muons", "100", "-o", "{tmp}/x.root"], "turn or spin phase"),
        (["simulate", "--set", "detector.energy_min_mev=1e9", "--positrons", "10", "-o", "{tmp}/x.root"], "no positron recorded"),
        (["run", "--set", "detector.efficiency=0", "--positrons", "1000", "-o", "{tmp}/run"], "no positron recorded"),
    ],
)
def test_command_errors_exit_2_with_one_line_and_no_output(argv, message, tmp_path, capsys):
    (tmp_path / "bad.toml").write_text("[ring\nfield_t = 1\n")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


def test_existing_outputs_are_not_overwritten_without_force(sample, tmp_path, capsys):
    before = sample.read_bytes()
    assert main(["simulate", "--positrons", "10", "-o", str(sample)]) == 2
    assert sample.read_bytes() == before
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    assert main(["run", "--positrons", "1000", "-o", str(folder)]) == 2
    assert (folder / "notes.txt").read_text() == "mine"
    assert "exists" in capsys.readouterr().err


def test_amu_command_forms(tmp_path, capsys):
    assert main(["amu", "--ratio", "0.0037072063", "--ratio-err", "2.0e-9", "--form", "e821"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["a_mu"] == pytest.approx(0.0037072063 / (3.18334539 - 0.0037072063), rel=1e-14, abs=0.0)
    out = tmp_path / "a.json"
    assert main(["amu", "--ratio", "0.0037073", "--codata", "2022", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["codata"] == "CODATA 2022"


def test_simulated_file_carries_its_provenance(sample):
    from ringsim.io import read_provenance

    prov = read_provenance(sample)
    assert prov["n_positrons"] == 400_000 and prov["seed"] == 3 and prov["codata"] == "CODATA 2018"
    assert prov["a_mu_truth"] == load_config("fnal").muon.a_mu and "unblinded" in prov["blinding"]
    assert prov["config"]["ring"]["name"] == "fnal"


def test_validate_passes_and_reports_every_check(tmp_path, capsys):
    out = tmp_path / "checks.json"
    assert main(["validate", "--json", str(out)]) == 0
    checks = json.loads(out.read_text())
    names = " ".join(c["name"] for c in checks)
    for topic in ("tune x", "tune y", "spin advance", "C_e", "C_p", "EDM tilt", "Michel asymmetry"):
        assert topic in names
    assert all({"measured", "expected", "tolerance", "ok"} <= set(c) and c["ok"] for c in checks)


@pytest.mark.slow
def test_jparc_run_closes_through_the_silicon_vanes(tmp_path):
    out = tmp_path / "jparc"
    assert main(["run", "--ring", "jparc", "--positrons", "300000", "--seed", "4", "--run-bsm", "-o", str(out)]) == 0
    result = json.loads((out / "result.json").read_text())
    assert (out / "bsm_run.png").exists() and result["delta_a_mu_err"] > 0
    assert abs(result["a_mu"] - result["a_mu_true"]) < 3 * result["a_mu_err"]
    budget = json.loads((out / "budget.json").read_text())
    c_e = [line for line in budget["budget"]["lines"] if line["name"] == "C_e"][0]
    assert c_e["value_ppb"] == 0.0  # no electric field in the J-PARC ring
    names = {line["name"] for line in budget["budget"]["lines"]}
    assert "ω_p field maps (mapping probe)" in names and not any("trolley" in n for n in names)  # J-PARC maps with a probe, not a trolley


def test_station_histograms_hold_the_events_of_their_station(sample):
    from ringsim.station_histograms import histogram_edges

    t_edges, e_edges = histogram_edges(load_config("fnal"))
    with uproot.open(sample) as f:
        events = f["events"].arrays(["calo", "time_ns", "energy_mev"], library="np")
        for station in (0, 7, 23):
            mine = events["calo"] == station
            expected = np.histogram2d(events["time_ns"][mine], events["energy_mev"][mine], bins=(t_edges, e_edges))[0]
            hist = f[f"hist/calo_{station:02d}"]
            np.testing.assert_array_equal(hist.values(), expected)
            np.testing.assert_array_equal(hist.axis(0).edges(), t_edges)
            assert expected.sum() > 0.9 * mine.sum() > 1000


def test_config_show_prints_every_key_as_toml_that_loads_back(capsys):
    import tomllib

    from ringsim.config import config_from_dict

    assert main(["config", "show", "--ring", "fnal-run1", "--set", "beam.polarization=0.9"]) == 0
    printed = capsys.readouterr().out
    shown = tomllib.loads(printed)
    lines = {line.split(" = ")[0]: line for line in printed.splitlines() if " = " in line}
    assert "[m]" in lines["radius_m"] and "fnal.toml: R0" in lines["radius_m"]  # unit and source
    assert "fnal-run1.toml" in lines["momentum_offset"] and lines["polarization"].endswith("# --set")
    assert config_from_dict(shown) == load_config("fnal-run1", overrides=["beam.polarization=0.9"])
    assert shown["beam"]["polarization"] == 0.9 and "pileup_correction" in shown["analysis"]


@pytest.mark.parametrize("command", ["run", "simulate", "amu", "precision", "validate", "inspect", "config", "bsm"])
def test_every_command_explains_itself_with_examples(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    assert "examples:" in text or "example:" in text
    assert text.count("\n") > 8 and f"ringsim {command}" in text.split("examples:")[-1]


def test_simulate_writes_its_provenance_with_json(tmp_path):
    out, prov = tmp_path / "s.root", tmp_path / "s.json"
    assert main(["simulate", "--positrons", "20000", "--seed", "4", "-o", str(out), "--json", str(prov)]) == 0
    written = json.loads(prov.read_text())
    assert written["n_positrons"] == 20000 and written["seed"] == 4 and written["config"]["ring"]["name"] == "fnal"


def test_a_missing_study_file_is_named_as_missing(tmp_path, capsys):
    assert main(["scan", str(tmp_path / "my_study.toml"), "-o", str(tmp_path / "out")]) == 2
    assert "my_study.toml' does not exist" in capsys.readouterr().err
