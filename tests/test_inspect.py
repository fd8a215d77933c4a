"""``ringsim inspect``: a foreign file's objects listed, and proposed fit options that fit it in one step."""

from __future__ import annotations

import json
import shlex

import awkward as ak
import numpy as np
import pytest
import uproot

from ringsim.cli import main
from ringsim.config import load_config
from ringsim.run_file import simulate_to_file

CLOCK_TICK_NS = 1.25  # Fermilab WFD clock tick, 800 MHz: clusterTree `time` is in these units


@pytest.fixture(scope="module")
def cluster_file(tmp_path_factory):
    """A Fermilab clusterTree/clusters file (times in clock ticks, run/subrun/event fill key, a vector branch), written by bare uproot."""
    folder = tmp_path_factory.mktemp("inspect")
    sim = folder / "sim.root"
    provenance = simulate_to_file(sim, load_config("fnal"), n_positrons=120_000, seed=5, progress=False)
    with uproot.open(sim) as f:
        hits = f["events"].arrays(["time_ns", "energy_mev", "calo", "fill"], library="np")
    n = hits["time_ns"].size
    path = folder / "gm2offline_ana_15921_00001.root"
    with uproot.recreate(path) as f:
        f.mktree(
            "clusterTree/clusters",
            {"time": np.float64, "energy": np.float64, "caloNum": np.uint32, "runNum": np.uint32, "subRunNum": np.uint32, "eventNum": np.uint32, "xtalEnergies": "var * float64"},
        )
        f["clusterTree/clusters"].extend(
            {
                "time": hits["time_ns"] / CLOCK_TICK_NS,
                "energy": hits["energy_mev"].astype(np.float64),
                "caloNum": (hits["calo"] + 1).astype(np.uint32),
                "runNum": np.full(n, 15921, np.uint32),
                "subRunNum": np.ones(n, np.uint32),
                "eventNum": hits["fill"].astype(np.uint32),
                "xtalEnergies": ak.Array([[0.5, 0.25]] * n),
            }
        )
        f["plots/hTime"] = np.histogram(hits["time_ns"], bins=100, range=(0.0, 7e5))
    return path, provenance["omega_a_truth_rad_per_us"]


def test_inspect_lists_the_tree_and_proposes_options_that_fit_it(cluster_file, tmp_path, capsys):
    path, omega_truth = cluster_file
    assert main(["inspect", str(path), "--json", str(tmp_path / "survey.json")]) == 0
    printed = capsys.readouterr().out
    assert "clusterTree/clusters (TTree" in printed and "xtalEnergies: double[]" in printed and "plots/hTime (TH1D" in printed
    survey = json.loads((tmp_path / "survey.json").read_text())[str(path)]
    clusters = next(o for o in survey if o["path"] == "clusterTree/clusters")
    assert clusters["entries"] > 100_000
    options = " ".join(clusters["fit_options"])
    for expected in ("--time-branch time", "--time-unit ct", "--ring fnal", "--energy-branch energy", "--energy-unit MeV", "--calo-branch caloNum", "--fill-branch runNum,subRunNum,eventNum"):
        assert expected in options
    # the proposed line, as printed, fits the file: ω_a within 4σ of the simulation's truth
    line = next(li.strip() for li in printed.splitlines() if li.strip().startswith("ringsim fit") and "clusterTree" in li)
    out = tmp_path / "fit.json"
    assert main([*shlex.split(line)[1:], "--unblind", "--json", str(out)]) == 0
    fit = json.loads(out.read_text())
    assert abs(fit["omega_a"] - omega_truth) < 4 * fit["omega_a_err"] and fit["pileup"]["corrected"]


def test_inspect_refuses_a_file_that_is_not_root(tmp_path, capsys):
    bad = tmp_path / "notes.root"
    bad.write_text("not a ROOT file", encoding="utf-8")
    assert main(["inspect", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and str(bad) in err
