"""The per-muon truth tree: every muon once, consistent with the recorded positrons, and its decays
follow the exponential lifetime and the phase-averaged Michel spectrum in the lab."""

import math

import numpy as np
import pytest
from scipy import stats

from ringsim.cli import main
from ringsim.config import load_config
from ringsim.constants import MUON_LIFETIME_S, codata
from ringsim.event_schema import TRUTH_BRANCHES
from ringsim.rings import ring_kinematics
from ringsim.simulate import generate_block

SMALL_FILLS = ["run.muons_per_fill=2000"]


def _check_against_events(block, n_muons, key_station=True):
    """Row count, lost muons and every single-positron cluster found in the truth with its station."""
    truth, events, lost = block.truth, block.positrons, block.lost
    assert list(truth) == list(TRUTH_BRANCHES) and truth["fill"].size == n_muons
    assert np.all(np.diff(truth["fill"]) >= 0)
    is_lost = truth["lost"] == 1
    assert sorted(truth["time_ns"][is_lost]) == sorted(lost["time_ns"])
    assert np.isnan(truth["energy_mev"][is_lost]).all() and (truth["station"][is_lost] == -1).all()
    assert not np.isnan(truth["energy_mev"][~is_lost]).any()
    by_decay = {(f, t): i for i, (f, t) in enumerate(zip(truth["fill"], truth["time_ns"])) if not is_lost[i]}
    single = np.flatnonzero((events["truth_mip"] == 0) & (events["n_hits"] == 1))
    assert single.size > 100
    rows = np.array([by_decay[(f, t)] for f, t in zip(events["fill"][single], events["truth_decay_time_ns"][single])])
    for key in ("energy_mev", "spin_phase_rad", "t0_ns", "x_m", "y_m", "delta_p"):  # as stored (track mode's events are cast on writing)
        np.testing.assert_array_equal(truth[key][rows], events[f"truth_{key}"][single].astype(TRUTH_BRANCHES[key]))
    if key_station:
        np.testing.assert_array_equal(truth["station"][rows], events["calo"][single])
    return truth, is_lost


def test_fast_truth_has_every_muon_and_leaves_the_events_unchanged():
    cfg = load_config("fnal", overrides=[*SMALL_FILLS, "fastmodel.loss_fraction=0.05"])
    with_truth = generate_block(cfg, "fast", 4, 1, n_use=30_000, truth=True)
    without = generate_block(cfg, "fast", 4, 1, n_use=30_000)
    assert without.truth is None
    for key in without.positrons:
        np.testing.assert_array_equal(with_truth.positrons[key], without.positrons[key])
    truth, is_lost = _check_against_events(with_truth, 30_000)
    assert 0.03 < is_lost.mean() < 0.07
    # geometry: some decays reach no face; the sectors model puts every decay in a station
    assert 0.2 < (truth["station"][~is_lost] >= 0).mean() < 0.9
    sectors = generate_block(load_config("fnal", overrides=[*SMALL_FILLS, "detector.model=simple"]), "fast", 4, 1, n_use=4000, truth=True).truth
    assert (sectors["station"] >= 0).all()


def test_fast_jparc_truth_station_is_the_first_vane_crossed():
    # with every crossing detected, the first detected vane of a track is the first vane crossed
    cfg = load_config("jparc", overrides=[*SMALL_FILLS, "detector.efficiency=1.0"])
    block = generate_block(cfg, "fast", 5, 0, n_use=20_000, truth=True)
    truth, _ = _check_against_events(block, 20_000)
    assert ((truth["station"] >= 0) & (truth["station"] < cfg.ring.n_detectors)).mean() > 0.3


def test_track_truth_matches_its_events():
    cfg = load_config("fnal", overrides=["run.muons_per_fill=400"])
    block = generate_block(cfg, "track", 2, 0, n_use=800, truth=True)
    truth, is_lost = _check_against_events(block, 800)
    np.testing.assert_allclose(truth["x_m"][~is_lost], truth["x_m"][~is_lost].clip(-0.05, 0.05))  # inside the aperture


@pytest.mark.parametrize("ring", ["fnal", "jparc"])
def test_truth_does_not_depend_on_the_detector_response(ring):
    # thresholds and efficiencies act after the geometry: the station reached, and all else, stay put
    cfg = load_config(ring, overrides=SMALL_FILLS)
    nominal = generate_block(cfg, "fast", 6, 0, n_use=8000, truth=True).truth
    for change in (["detector.energy_min_mev=250"], ["detector.energy_min_mev=0"], ["detector.efficiency=0.3"]):
        other = generate_block(load_config(ring, overrides=[*SMALL_FILLS, *change]), "fast", 6, 0, n_use=8000, truth=True).truth
        for key in TRUTH_BRANCHES:
            np.testing.assert_array_equal(other[key], nominal[key])
    assert (nominal["station"] >= 0).sum() > 2000


@pytest.fixture(scope="module")
def fast_truth():
    cfg = load_config("fnal", overrides=["run.muons_per_fill=10000", "fastmodel.loss_fraction=0"])
    return cfg, generate_block(cfg, "fast", 11, 0, n_use=100_000, truth=True).truth


def test_decay_times_are_exponential_with_the_dilated_lifetime(fast_truth):
    cfg, truth = fast_truth
    kin = ring_kinematics(cfg)
    u = kin.gamma * kin.beta * (1.0 + truth["delta_p"].astype(float))
    gamma_tau_ns = np.sqrt(1.0 + u * u) * MUON_LIFETIME_S * 1e9
    life = (truth["time_ns"] - truth["t0_ns"].astype(float)) / gamma_tau_ns
    assert stats.kstest(life, "expon").pvalue > 1e-3


def test_decay_positrons_follow_the_phase_averaged_michel_spectrum(fast_truth):
    """Averaged over the spin phase (⟨cos ψ⟩ = 1/(1 + (ω_a γτ)²) ≈ 1e-4), the lab energy fraction
    y = E/E_max of an ultra-relativistic muon's positron has dN/dy = (5 − 9y² + 4y³)/3 (mean 7/20)."""
    cfg, truth = fast_truth
    kin = ring_kinematics(cfg)
    m = codata().muon_mass_mev
    u = kin.gamma * kin.beta * (1.0 + truth["delta_p"].astype(float))
    gamma = np.sqrt(1.0 + u * u)
    e_max = (gamma + u) * m / 2.0  # γ(1 + β) m/2
    y = truth["energy_mev"].astype(float) / e_max
    assert y.max() <= 1.0 + 1e-6
    assert stats.kstest(y, lambda v: (5.0 * v - 3.0 * v**3 + v**4) / 3.0).pvalue > 1e-3
    # mean lab energy γ⟨E*⟩ = γ · 0.35 m_μ, whatever the angular distribution once the phase is averaged
    ratio = truth["energy_mev"] / (gamma * 0.35 * m)
    assert abs(ratio.mean() - 1.0) < 4 * ratio.std() / math.sqrt(ratio.size)


def test_cli_writes_the_truth_tree_only_when_asked(tmp_path):
    import uproot

    plain, full = tmp_path / "plain.root", tmp_path / "full.root"
    args = ["simulate", "--ring", "fnal", "--muons", "20000", "--set", "run.muons_per_fill=5000"]
    assert main([*args, "-o", str(plain)]) == 0
    assert main([*args, "--truth", "--compression", "zlib", "-o", str(full)]) == 0
    with uproot.open(plain) as a, uproot.open(full) as b:
        assert type(a.file.compression).__name__ == "ZSTD" and type(b.file.compression).__name__ == "ZLIB"
        assert "truth" not in a and b["truth"].num_entries == 20_000
        assert set(b["truth"].keys()) == set(TRUTH_BRANCHES)
        np.testing.assert_array_equal(a["events"]["time_ns"].array(library="np"), b["events"]["time_ns"].array(library="np"))
