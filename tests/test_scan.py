"""Systematic studies on dask: C_e follows docs/physics.md §4's quadratic law in Δp/p, fit-start shifts stay in
the nested-subset band, a study survives a killed worker with every task once, resumes and extends,
and the command line refuses bad input before writing anything."""

import argparse
import json
import math
import os
import signal

import numpy as np
import pytest
from distributed import Client

from ringsim.cli.scan import add_scan_arguments, cmd_scan, resolve_study
from ringsim.config import load_config
from ringsim.errors import ConfigError, InputError, RingsimError
from workflows.study import Study, fit_sensitivity, local_cluster, prepare, run_study, run_task, study_from_toml
from workflows.study_library import STUDIES

MUON_MASS_MEV = 105.6583755
C_LIGHT = 299_792_458.0


@pytest.fixture(scope="module")
def client():
    with local_cluster(2) as cluster, Client(cluster) as c:
        yield c


def _args(argv):
    parser = argparse.ArgumentParser(prog="ringsim scan")
    add_scan_arguments(parser)
    return parser.parse_args(argv)


def _task_files(folder):
    return sorted(p.name for p in (folder / "tasks").iterdir())


def test_sensitivity_fit_recovers_a_polynomial_and_the_analytic_errors():
    dx = np.array([-2.0, 1.0, 2.0, 4.0])
    exact = fit_sensitivity(dx, 3.0 * dx + 0.5 * dx**2, np.ones(4), 2)
    assert exact["coefficients_ppb"] == pytest.approx([3.0, 0.5], abs=1e-12)
    sigma = np.array([1.0, 2.0, 0.5, 3.0])
    linear = fit_sensitivity(dx, 7.0 * dx, sigma, 1)
    assert linear["ppb_per_unit_err"] == pytest.approx(1.0 / math.sqrt(np.sum(dx**2 / sigma**2)), rel=1e-12)
    assert linear["chi2"] == pytest.approx(0.0, abs=1e-18)
    # per-seed errors: the spread of the per-seed weighted slopes Σwxy/Σwx²
    rng = np.random.default_rng(5)
    per_seed = 7.0 * dx[:, None] + rng.normal(0.0, sigma[:, None], (4, 6))
    slopes = (dx / sigma**2) @ per_seed / np.sum(dx**2 / sigma**2)
    fit = fit_sensitivity(dx, per_seed.mean(axis=1), sigma, 1, per_seed)
    assert fit["ppb_per_unit"] == pytest.approx(slopes.mean(), rel=1e-12)
    assert fit["ppb_per_unit_err"] == pytest.approx(slopes.std(ddof=1) / math.sqrt(6), rel=1e-12)


def test_list_element_parameter_and_study_file(tmp_path):
    prepared = prepare(Study(parameter="perturbations.normal_ppm[1]", values=(50.0,), seeds=1))
    assert prepared.nominal == 0.0
    assert prepared.configs[50.0].perturbations.normal_ppm == (0.0, 50.0)
    path = tmp_path / "study.toml"
    path.write_text('[study]\nparameter = "beam.vertical_width_m"\nvalues = [0.0, 0.01]\nseeds = 2\n[beam]\nmomentum_spread = 2.0e-3\n')
    study = study_from_toml(path, {"positrons": 1000})
    assert (study.name, study.seeds, study.positrons) == ("study", 2, 1000)
    prepared = prepare(study)
    assert prepared.nominal == load_config("fnal").beam.vertical_width_m
    assert all(cfg.beam.momentum_spread == 2.0e-3 for cfg in prepared.configs.values())
    assert prepared.configs[0.01].beam.vertical_width_m == 0.01


@pytest.mark.parametrize("name", sorted(STUDIES))
def test_library_studies_are_valid(name):
    prepared = prepare(STUDIES[name])
    assert prepared.study.description
    distinct = {json.dumps(cfg.to_dict(), sort_keys=True) for cfg in prepared.configs.values()}
    assert len(distinct) == len(prepared.values)  # the parameter really changes the configuration


def test_momentum_spread_gives_the_quadratic_c_e_of_spec(client, tmp_path):
    study = Study(parameter="beam.momentum_spread", values=(0.5e-3, 1.0e-3, 1.5e-3), nominal=0.0, observable="C_e", degree=2, seeds=6, positrons=50_000, overrides=("ring.aperture_radius_m=0.5",))
    summary = run_study(study, tmp_path / "ce", client=client, progress=False)
    cfg = load_config("fnal")
    p_mev = C_LIGHT * cfg.ring.field_t * cfg.ring.radius_m * 1e-6
    beta2 = p_mev**2 / (p_mev**2 + MUON_MASS_MEV**2)
    n = cfg.ring.field_index
    # C_e = 2n(1−n)β²⟨x_e²⟩/R0² with x_e = R0 δ/(1−n): 2nβ²σ²/(1−n), in ppb per unit²
    expected = 2.0 * n * beta2 / (1.0 - n) * 1e9
    sens = summary["sensitivity"]
    c1, c2 = sens["coefficients_ppb"]
    e1, e2 = sens["errors_ppb"]
    # the errors are six-seed spreads (Student's t with 5 degrees of freedom: |t| > 4 has 1 % chance);
    # the formula holds for the stored muons, and the fitted positrons weight ⟨x_e²⟩ by the
    # calorimeter acceptance (≈ +1 %): 1 % more for c2
    assert abs(c2 - expected) < 4.0 * e2 + 0.01 * expected
    assert e2 < 0.01 * expected
    assert abs(c1) < 4.0 * e1
    assert [p["n_seeds"] for p in summary["points"]] == [6] * 4
    assert (tmp_path / "ce" / "shift.png").read_bytes()[:4] == b"\x89PNG"


def test_fit_start_shifts_stay_inside_the_nested_band(client, tmp_path):
    study = Study(parameter="analysis.fit_start_us", values=(30.2, 35.0, 45.0), seeds=3, positrons=50_000)
    summary = run_study(study, tmp_path / "start", client=client, progress=False)
    varied = [p for p in summary["points"] if p["value"] != 30.2]
    assert len(varied) == 2
    for p in varied:
        assert p["band_ppb"] > 0.0 and p["shift_ppb"] != 0.0
        assert abs(p["shift_ppb"]) < 3.0 * p["band_ppb"]
    assert abs(summary["sensitivity"]["ppb_per_unit"]) < 3.0 * summary["sensitivity"]["ppb_per_unit_err"]


def test_study_completes_after_a_worker_is_killed_with_every_task_once(client, tmp_path):
    study = Study(parameter="beam.momentum_spread", values=(0.0, 2.0e-3), seeds=3, positrons=20_000)
    killed = {}

    def kill_a_busy_worker(value, seed, record):
        if killed:
            return
        busy = {addr: keys for addr, keys in client.processing().items() if keys}
        addr = sorted(busy)[0]
        killed["pid"] = client.run(os.getpid, workers=[addr])[addr]
        killed["keys"] = busy[addr]
        os.kill(killed["pid"], signal.SIGKILL)  # the nanny starts a new worker; the cluster goes on

    summary = run_study(study, tmp_path / "kill", client=client, progress=False, on_result=kill_a_busy_worker)
    assert killed["keys"]
    with pytest.raises(ProcessLookupError):
        os.kill(killed["pid"], 0)
    values = (0.0, 1.0e-3, 2.0e-3)  # the nominal (preset) value joins the points
    assert _task_files(tmp_path / "kill") == sorted(f"v={v!r}_s={s}.json" for v in values for s in (1, 2, 3))
    assert summary["tasks"] == {"total": 9, "run": 9, "resumed": 0}
    assert [p["value"] for p in summary["points"]] == list(values)
    assert all(p["n_seeds"] == 3 for p in summary["points"])
    # a re-run task gives exactly what one run in this process gives (seeded, thread-count independent)
    record = json.loads((tmp_path / "kill" / "tasks" / "v=0.002_s=2.json").read_text())
    direct = run_task(prepare(study).configs[2.0e-3], "fast", 20_000, 2)
    assert record["omega_a"] == direct["omega_a"] and record["C_e"] == direct["C_e"]


def test_resume_runs_only_missing_tasks_and_extends(client, tmp_path):
    study = Study(parameter="analysis.energy_min_mev", values=(1700.0, 1900.0), seeds=2, positrons=20_000)
    out = tmp_path / "resume"
    first = run_study(study, out, client=client, progress=False)
    assert first["tasks"]["run"] == 4
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "tasks").iterdir()}
    (out / "tasks" / "v=1900.0_s=2.json").unlink()
    again = run_study(study, out, client=client, progress=False)
    assert again["tasks"] == {"total": 4, "run": 1, "resumed": 3}
    assert again["points"] == first["points"]
    assert all((out / "tasks" / name).stat().st_mtime_ns == t for name, t in stamps.items() if name != "v=1900.0_s=2.json")
    more = run_study(Study(parameter="analysis.energy_min_mev", values=(1700.0, 1900.0), seeds=3, positrons=20_000), out, client=client, progress=False)
    assert more["tasks"] == {"total": 6, "run": 2, "resumed": 4}
    assert len(_task_files(out)) == 6


def test_cli_scan_on_a_running_scheduler(client, tmp_path, capsys):
    out, js = tmp_path / "cli", tmp_path / "s.json"
    argv = ["fnal", "--param", "analysis.fit_start_us=30.2,40", "--seeds", "2", "--positrons", "2e4", "--scheduler", client.scheduler.address, "--json", str(js), "-o", str(out)]
    assert cmd_scan(_args(argv)) == 0
    result = json.loads(js.read_text())
    assert [p["value"] for p in result["points"]] == [30.2, 40.0]
    assert result == json.loads((out / "summary.json").read_text())
    assert "analysis.fit_start_us" in capsys.readouterr().out
    with pytest.raises(InputError, match="another study"):  # another study into the same folder
        cmd_scan(_args(["fnal", "--param", "analysis.fit_start_us=30.2,50", "-o", str(out)]))
    with pytest.raises(InputError, match="exists"):  # --json never overwritten without --force
        cmd_scan(_args(argv))


@pytest.mark.parametrize(
    "argv",
    [
        ["fnal", "--param", "beam.nope=1,2"],
        ["fnal", "--param", "beam.momentum_spread=a,b"],
        ["fnal", "--param", "beam.momentum_spread=-1e-3,1e-3"],
        ["fnal"],
        ["no_such_study_or_file"],
        ["fit_start", "--seeds", "0"],
    ],
)
def test_cli_refuses_bad_input_before_writing(tmp_path, argv):
    out = tmp_path / "never"
    try:
        args = _args([*argv, "-o", str(out)])
    except SystemExit as exc:  # argparse's own refusal (exit status 2)
        assert exc.code == 2
    else:
        with pytest.raises(RingsimError) as info:
            cmd_scan(args)
        assert "\n" not in str(info.value)
    assert not out.exists()


def test_cli_refuses_a_foreign_folder_and_changes_a_library_study(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="holds no study"):
        cmd_scan(_args(["fit_start", "--seeds", "2", "-o", str(foreign)]))
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    study = resolve_study(_args(["momentum_spread", "--seeds", "2", "--set", "beam.vertical_width_m=0.01", "-o", "x"]))
    assert study.seeds == 2 and study.overrides == ("ring.aperture_radius_m=0.5", "beam.vertical_width_m=0.01")
    other = resolve_study(_args(["momentum_spread", "--param", "ring.field_index=0.1,0.12", "-o", "x"]))
    assert other.nominal is None and prepare(other).nominal == 0.108
    with pytest.raises(ConfigError):
        prepare(Study(parameter="esq.model", values=(1.0,)))


def test_summary_flags_a_sensitivity_fit_that_does_not_describe_the_points():
    from workflows.study import summary_table

    dx = np.array([-2.0, -1.0, 1.0, 2.0])
    curved = fit_sensitivity(dx, 3.0 * dx + 40.0 * dx**2, np.ones(4), 1)  # a line through a parabola, errors 1 ppb
    summary = {"name": "s", "observable": "omega_a", "parameter": "beam.x", "nominal": 0.0, "seeds": [1], "positrons_per_task": 10, "ring": "fnal", "mode": "fast", "points": [], "sensitivity": curved}
    assert "does not describe the shifts" in summary_table(summary)
    straight = fit_sensitivity(dx, 3.0 * dx + np.array([0.3, -0.2, 0.1, -0.4]), np.ones(4), 1)
    assert "does not describe" not in summary_table(summary | {"sensitivity": straight})


def test_shift_plot_title_states_the_sensitivity_with_its_unit(tmp_path):
    from workflows.study import shift_plot

    dx = np.array([-2.0, -1.0, 1.0, 2.0])
    sens = fit_sensitivity(dx, 3.0 * dx + 0.5 * dx**2, np.ones(4), 2)
    points = [{"value": v, "shift_ppb": 3.0 * v + 0.5 * v**2, "shift_err_ppb": 1.0, "band_ppb": 0.5, "n_seeds": 2} for v in dx]
    summary = {"name": "spread", "observable": "omega_a", "parameter": "beam.momentum_spread", "nominal": 0.0, "seeds": [1, 2], "points": points, "sensitivity": sens}
    title = shift_plot(summary, tmp_path / "s.png").axes[0].get_title()
    assert "unit^k" not in title and "ppb/(momentum_spread)^2" in title and title.startswith("omega_a shift against beam.momentum_spread")
