"""Presets load into validated dataclasses; every bad value is rejected naming its key."""

import math

import pytest

from ringsim.config import load_config
from ringsim.errors import ConfigError


@pytest.mark.parametrize("ring", ["fnal", "jparc"])
def test_presets_load_with_spec_values(ring):
    cfg = load_config(ring)
    expected = {"fnal": (7.112, 1.4513, 0.108, "electric", 24), "jparc": (0.33356, 3.0, 1.5e-4, "magnetic", 40)}[ring]
    r = cfg.ring
    assert (r.radius_m, r.field_t, r.field_index, r.focusing, r.n_detectors) == expected
    # the preset's radius and field give the design momentum of docs/physics.md (3.094 GeV/c, 300 MeV/c)
    p_mev = 299.792458 * r.field_t * r.radius_m
    assert p_mev == pytest.approx({"fnal": 3094.4, "jparc": 300.0}[ring], rel=2e-4)


@pytest.mark.parametrize(
    "override, key",
    [
        ("ring.field_t=0", "ring.field_t"),
        ("ring.field_t=-1.45", "ring.field_t"),
        ("ring.field_index=0", "ring.field_index"),
        ("ring.field_index=1.0", "ring.field_index"),
        ("ring.field_index=-0.1", "ring.field_index"),
        ("beam.momentum_spread=-1e-3", "beam.momentum_spread"),
        ("beam.vertical_width_m=-0.01", "beam.vertical_width_m"),
        ("beam.radial_betatron_width_m=nan", "beam.radial_betatron_width_m"),
        ("beam.polarization=1.5", "beam.polarization"),
        ("ring.focusing='plasma'", "ring.focusing"),
        ("ring.n_detectors=2.5", "ring.n_detectors"),
        ("ring.radius_m='big'", "ring.radius_m"),
        ("detector.efficiency=true", "detector.efficiency"),
        ("beam.colour=1", "beam.colour"),
        ("analysis.fit_end_us=10", "analysis.fit_end_us"),
        ("ring.field_model='iron'", "ring.field_model"),
        ("ring.field_model='solenoid'", "ring.field_model"),  # needs magnetic focusing
        ("beam.injection='spiral'", "beam.injection"),  # needs the solenoid coil model
        ("beam.injection=1", "beam.injection"),
        ("esq.scrape_us=-7", "esq.scrape_us"),
        ("esq.scrape_y_m='up'", "esq.scrape_y_m"),
        ("run.muons_per_fill=2000000", "run.muons_per_fill"),  # more than a fill held in memory
        ("analysis.bin_width_ns=0.001", "analysis.bin_width_ns"),  # 7e8 time bins per station histogram
    ],
)
def test_invalid_values_are_rejected_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as info:
        load_config("fnal", overrides=[override])
    assert "\n" not in str(info.value)


def test_histogram_size_limit_allows_the_presets_and_counts_every_cell():
    from ringsim.config import HISTOGRAM_ENERGY_BINS, MAX_HISTOGRAM_CELLS, histogram_time_bins

    # Fermilab: 650 µs + 10 % in 149.2 ns bins; J-PARC: 40 µs + 10 % in 5 ns bins
    assert histogram_time_bins(load_config("fnal").analysis) == math.ceil(715_000 / 149.2) == 4793
    assert histogram_time_bins(load_config("jparc").analysis) == 44_000 / 5
    # just above the narrowest bin width 24 stations allow: accepted; just below: refused
    limit_ns = 715_000 * 24 * HISTOGRAM_ENERGY_BINS / MAX_HISTOGRAM_CELLS
    load_config("fnal", overrides=[f"analysis.bin_width_ns={limit_ns * 1.001}"])
    with pytest.raises(ConfigError, match="histogram cells"):
        load_config("fnal", overrides=[f"analysis.bin_width_ns={limit_ns * 0.999}"])


def test_unknown_section_and_unknown_ring():
    with pytest.raises(ConfigError, match=r"unknown section \[magnet\]"):
        load_config("fnal", overrides=["magnet.field=1"])
    with pytest.raises(ConfigError, match="unknown preset 'bnl'"):
        load_config("bnl")


def test_user_file_overlays_preset_and_bad_toml_is_reported(tmp_path):
    good = tmp_path / "study.toml"
    good.write_text("[beam]\nmomentum_spread = 2e-3\n")
    cfg = load_config("fnal", good)
    assert cfg.beam.momentum_spread == 2e-3 and cfg.ring.field_t == 1.4513
    bad = tmp_path / "bad.toml"
    bad.write_text("[beam\nmomentum_spread = \n")
    with pytest.raises(ConfigError, match="bad.toml: invalid TOML"):
        load_config("fnal", bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config("fnal", tmp_path / "missing.toml")


def test_frozen_and_overrides_parse_toml_literals():
    cfg = load_config("jparc", overrides=["muon.edm_eta=1e-4", "ring.n_detectors=20"])
    assert cfg.muon.edm_eta == 1e-4 and cfg.ring.n_detectors == 20
    with pytest.raises(AttributeError):
        cfg.ring.field_t = 2.0  # type: ignore[misc]
    assert math.isfinite(cfg.to_dict()["beam"]["polarization"])
