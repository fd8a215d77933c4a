"""The pipelines layer: the fit of a file uses the configuration stored in it; streams derive by one rule."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ringsim.cli import main
from ringsim.config import config_from_dict, load_config
from ringsim.errors import ConfigError
from ringsim.random_streams import ANALYSIS, FAST_ROTATION, PILEUP_SHIFT, seed_sequence, stream


@pytest.fixture(scope="module")
def late_start_file(tmp_path_factory):
    """A small Fermilab file simulated with a non-default analysis window (fit start 50 μs, end 300 μs)."""
    path = tmp_path_factory.mktemp("prov") / "late.root"
    args = ["simulate", "--ring", "fnal", "--positrons", "150000", "--seed", "8", "--set", "analysis.fit_start_us=50", "--set", "analysis.fit_end_us=300", "-o", str(path)]
    assert main(args) == 0
    return path


def _fit(tmp_path, name, *args):
    out = tmp_path / f"{name}.json"
    assert main(["fit", *map(str, args), "--json", str(out)]) == 0
    return json.loads(out.read_text())


def test_fit_uses_the_configuration_stored_in_the_file(late_start_file, tmp_path, capsys):
    stored = _fit(tmp_path, "stored", late_start_file)
    assert 50.0 <= stored["start_us"] < 50.0 + 0.1492 and 300.0 - 0.1492 < stored["end_us"] <= 300.0
    assert stored["config_source"] == "the file's provenance"
    assert "note:" not in capsys.readouterr().err
    # a preset given at fit time replaces the stored configuration, and the fit says so
    preset = _fit(tmp_path, "preset", late_start_file, "--ring", "fnal")
    fnal = load_config("fnal").analysis
    assert abs(preset["start_us"] - fnal.fit_start_us) < 0.1492 and abs(preset["end_us"] - fnal.fit_end_us) < 0.1492
    assert "replacing the file's stored configuration" in preset["config_source"]
    assert "note: analysis configuration from preset fnal" in capsys.readouterr().err
    # --set amends the stored configuration
    amended = _fit(tmp_path, "amended", late_start_file, "--set", "analysis.fit_end_us=250")
    assert 50.0 <= amended["start_us"] < 50.0 + 0.1492 and 250.0 - 0.1492 < amended["end_us"] <= 250.0
    assert amended["config_source"] == "the file's provenance with --set analysis.fit_end_us=250"


def test_fit_refuses_a_bad_override(late_start_file, capsys):
    assert main(["fit", str(late_start_file), "--set", "analysis.no_such_key=1"]) == 2
    assert "analysis.no_such_key" in capsys.readouterr().err


def test_stored_configuration_round_trips_through_json():
    cfg = load_config("jparc", overrides=["beam.momentum_spread=0.002", "analysis.fit_start_us=7.5"])
    stored = json.loads(json.dumps(cfg.to_dict()))
    assert config_from_dict(stored) == cfg
    # a file from an older ringsim lacking a key takes the preset's value for it
    del stored["beam"]["momentum_spread"]
    assert config_from_dict(stored).beam.momentum_spread == load_config("jparc").beam.momentum_spread
    with pytest.raises(ConfigError, match="ring.name"):
        config_from_dict({"ring": {"name": "bnl"}})


def test_streams_follow_one_rule():
    """Every stream is SeedSequence(seed, spawn_key=key): analysis stages are (ANALYSIS, k)."""
    direct = np.random.default_rng(np.random.SeedSequence(11, spawn_key=(ANALYSIS, FAST_ROTATION))).random(5)
    np.testing.assert_array_equal(stream(11, FAST_ROTATION).random(5), direct)
    # stages, seeds and simulation blocks give different streams
    draws = [stream(11, FAST_ROTATION).random(4), stream(11, PILEUP_SHIFT).random(4), stream(12, FAST_ROTATION).random(4), np.random.default_rng(seed_sequence(11, 0)).random(4)]
    assert len({tuple(d) for d in draws}) == len(draws)


def test_the_loss_term_names_the_options_it_needs(late_start_file, capsys):
    assert main(["fit", str(late_start_file), "--model", "18"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--loss-tree" in err and "--loss-coincidences" in err
    # the run lost no muons (fast mode without fastmodel.loss_fraction): the message says so
    assert main(["fit", str(late_start_file), "--model", "18", "--loss-tree", "lost_muons"]) == 2
    assert "recorded no lost muons" in capsys.readouterr().err


def test_outputs_are_all_or_none_and_frequencies_positive(late_start_file, tmp_path, capsys, monkeypatch):
    import ringsim.cli.fit as cli_fit

    def disk_gone(args, result):
        raise OSError(28, "No space left on device", str(tmp_path / "fit.json"))

    monkeypatch.setattr(cli_fit, "_emit", disk_gone)  # the JSON fails after the plot was written
    plot = tmp_path / "w.png"
    assert main(["fit", str(late_start_file), "--plot", str(plot), "--json", str(tmp_path / "fit.json")]) == 2
    assert not plot.exists() and "No space left" in capsys.readouterr().err
    monkeypatch.undo()
    assert main(["fit", str(late_start_file), "--frequencies", "cbo=-1"]) == 2
    assert "positive frequencies" in capsys.readouterr().err
