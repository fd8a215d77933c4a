"""Pileup: dead-time merging and shadow pairs on hand-made hits, the per-pair variance of the pileup
histogram, the e^{−2t/γτ} fall of the pileup rate, and removal of pileup injected at a known rate
(the ω_a shift is many σ without subtraction and consistent with zero after)."""

import functools
import math

import numpy as np
import pytest

from analysis import pseudo_data as toy
from analysis.fitting import fit_wiggle
from analysis.methods import hit_weights
from analysis.pileup import PileupEstimate, apply_dead_time, pileup_histogram, shadow_pileup
from analysis.systematics import omega_a_shift
from ringsim.errors import ConfigError, InputError

OMEGA_REF = 2.0 * math.pi * 0.2291
TAU = 64.4
E_MAX = 3095.0
THRESHOLD = 1700.0
EDGES = 0.1492 * np.arange(int(300.0 / 0.1492) + 1)


def test_dead_time_merges_within_the_window_after_the_first_hit():
    t = np.array([0.0, 3.0, 4.9, 10.0, 100.0, 1.0, 2.0])
    e = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    calo = np.array([0, 0, 0, 0, 0, 1, 0])
    fill = np.array([0, 0, 0, 0, 0, 0, 1])
    got = apply_dead_time(t, e, calo, fill, dead_time_ns=5.0)
    # fill 0 calo 0: {0, 3, 4.9} → E = 6 at (0·1 + 3·2 + 4.9·3)/6; 10 and 100 alone; calo 1 and fill 1 apart
    order = np.lexsort((got["time_ns"], got["calo"], got["fill"]))
    np.testing.assert_allclose(got["energy_mev"][order], [6.0, 4.0, 5.0, 6.0, 7.0])
    np.testing.assert_allclose(got["time_ns"][order], [(6.0 + 14.7) / 6.0, 10.0, 100.0, 1.0, 2.0])
    assert got["calo"][order].tolist() == [0, 0, 0, 1, 0] and got["fill"][order].tolist() == [0, 0, 0, 0, 1]
    with pytest.raises(ConfigError, match="dead_time_ns"):
        apply_dead_time(t, e, dead_time_ns=0.0)
    with pytest.raises(InputError, match="one entry per hit"):
        apply_dead_time(t, e, calo=[0, 1])


def test_shadow_pairs_and_their_pseudo_hits():
    # hit at 0 ns (1 MeV) finds 12 ns (3 MeV) in [10, 15); 16 ns is outside; 12 finds 22 (next calo: no)
    t = np.array([0.0, 12.0, 16.0, 22.0])
    e = np.array([1.0, 3.0, 5.0, 7.0])
    calo = np.array([0, 0, 0, 1])
    est = shadow_pileup(t, e, calo)
    assert est.n_pairs == 1 and est.scale == 1.0
    np.testing.assert_allclose(est.energy_mev, [4.0, 1.0, 3.0])
    np.testing.assert_allclose(est.time_ns, [(1.0 * 0.0 + 3.0 * 2.0) / 4.0, 0.0, 2.0])  # second hit moved back by the gap
    np.testing.assert_allclose(est.sign, [1.0, -1.0, -1.0])
    with pytest.raises(ConfigError, match="gap"):
        shadow_pileup(t, e, gap_ns=4.0)


def test_pileup_histogram_variance_counts_each_pair_once_per_bin():
    # pair 0: doublet and both singlets in bin 0 → net 1 − 1 − 1 = −1; pair 1: doublet in bin 0, singlets
    # in bin 1 → bin 0 gets +1, bin 1 gets −2 (variance 4)
    est = PileupEstimate(
        time_ns=np.array([100.0, 100.0, 100.0, 900.0, 1100.0, 1100.0]),
        energy_mev=np.ones(6),
        sign=np.array([1.0, -1.0, -1.0, 1.0, -1.0, -1.0]),
        pair=np.array([0, 0, 0, 1, 1, 1]),
        calo=None,
        scale=2.0,
    )
    values, variance = pileup_histogram(est, np.array([0.0, 1.0, 2.0]), lambda e: np.ones_like(e))
    np.testing.assert_allclose(values, 2.0 * np.array([-1.0 + 1.0, -2.0]))
    np.testing.assert_allclose(variance, 4.0 * np.array([1.0 + 1.0, 4.0]))


def _chunks(n_chunks, fills_per_chunk, positrons_per_fill, phase_slope_rad):
    """Hit-level pseudo-data in independent chunks of fills: truth hits, and hits merged by a 5 ns
    pulse-pair resolution then the analysis dead time."""
    for seed in range(n_chunks):
        hits = toy.toy_hits(
            np.random.default_rng(1000 + seed), fills_per_chunk, positrons_per_fill, {"tau_us": TAU, "R_ppm": 12.0, "phi": 2.1}, OMEGA_REF, E_MAX, t_max_us=320.0, phase_slope_rad=phase_slope_rad
        )
        merged = toy.merge_within(hits, 5.0)
        yield hits, merged, apply_dead_time(merged["time_ns"], merged["energy_mev"], merged["calo"], merged["fill"], 5.0)


def _weight(energy_mev):
    return hit_weights("T", energy_mev, threshold_mev=THRESHOLD)


def _histogram(t_ns, energy_mev):
    return np.histogram(t_ns * 1e-3, bins=EDGES, weights=_weight(energy_mev))[0]


def _change_variance(hits, merged):
    """Σ over merged groups of (the group's net change of each bin)²: removed hits −w, merged hit +w."""
    group = merged["group"]
    size = np.bincount(group)
    removed = size[group] > 1
    t_us = np.concatenate([hits["time_ns"][removed], merged["time_ns"][size > 1]]) * 1e-3
    w = np.concatenate([-_weight(hits["energy_mev"][removed]), _weight(merged["energy_mev"][size > 1])])
    g = np.concatenate([group[removed], np.flatnonzero(size > 1)])
    b = np.searchsorted(EDGES, t_us, side="right") - 1
    ok = (b >= 0) & (b < EDGES.size - 1) & (w != 0.0)
    cell, index = np.unique(g[ok] * EDGES.size + b[ok], return_inverse=True)
    return np.bincount(cell % EDGES.size, weights=np.bincount(index, weights=w[ok]) ** 2, minlength=EDGES.size - 1)


@pytest.fixture(scope="module")
def pileup_sample():
    """5000 fills of ~1250 recorded positrons (pulse-pair merging ≈ 10 % of hits within 5 ns at
    injection), with an energy-dependent phase so that pileup pulls the phase: histograms of the truth,
    of the measured hits, of the shadow estimate, and the variances of the changes."""
    total = {k: np.zeros(EDGES.size - 1) for k in ("truth", "measured", "pileup", "pileup_var", "change_var")}
    pairs, merged_pairs = 0, 0
    for hits, merged, dead in _chunks(5, 1000, 2500.0, 3.0):
        total["truth"] += _histogram(hits["time_ns"], hits["energy_mev"])
        total["measured"] += _histogram(dead["time_ns"], dead["energy_mev"])
        est = shadow_pileup(dead["time_ns"], dead["energy_mev"], dead["calo"], dead["fill"])
        values, variance = pileup_histogram(est, EDGES, _weight)
        total["pileup"] += values
        total["pileup_var"] += variance
        total["change_var"] += _change_variance(hits, merged)
        pairs += est.n_pairs
        merged_pairs += int(np.count_nonzero(np.bincount(merged["group"]) == 2))
    return total, pairs, merged_pairs


def test_pileup_rate_falls_like_exp_minus_two_t_over_gamma_tau():
    # at a low rate (r δ ≈ 2 % at injection, so the O(r δ) suppression of resolved partners is < 1.5 %)
    # shadow pairs ∝ rate² ∝ e^{−2t/γτ}: windows [20, 80) and [80, 140) μs differ by e^{−2·60/γτ}
    early = late = 0
    for _, _, dead in _chunks(2, 1000, 600.0, 0.0):
        est = shadow_pileup(dead["time_ns"], dead["energy_mev"], dead["calo"], dead["fill"])
        first = est.time_ns[est.n_pairs : 2 * est.n_pairs] * 1e-3
        early += int(np.count_nonzero((first >= 20.0) & (first < 80.0)))
        late += int(np.count_nonzero((first >= 80.0) & (first < 140.0)))
    expected = math.exp(-2.0 * 60.0 / TAU)
    ratio = late / early
    assert ratio == pytest.approx(expected, abs=4.0 * ratio * math.sqrt(1.0 / late + 1.0 / early))
    assert abs(ratio - math.exp(-60.0 / TAU)) > 10.0 * ratio * math.sqrt(1.0 / late + 1.0 / early)


def test_shadow_window_counts_the_merged_pairs(pileup_sample):
    _, pairs, merged_pairs = pileup_sample
    # first-order estimate: equal to the two-hit merges up to O(rate × dead time) ≈ 10 %
    assert pairs == pytest.approx(merged_pairs, rel=0.12)


def test_injected_pileup_shifts_omega_a_and_subtraction_removes_it(pileup_sample):
    total, *_ = pileup_sample
    fit = functools.partial(fit_wiggle, model="5", start_us=30.2, end_us=300.0, omega_ref_rad_per_us=OMEGA_REF, tau_guess_us=TAU)
    truth = (total["truth"], EDGES)
    before = omega_a_shift(truth, (total["measured"], EDGES), fit, uncertainty="difference", difference_variance=total["change_var"])
    corrected = (total["measured"] - total["pileup"], EDGES, total["measured"] + total["pileup_var"])
    after = omega_a_shift(truth, corrected, fit, uncertainty="difference", difference_variance=total["change_var"] + total["pileup_var"])
    assert abs(before.shift) > 4.0 * before.error  # many σ of the correlated uncertainty
    assert abs(after.shift) < 2.5 * after.error
    assert abs(after.shift) < 0.5 * abs(before.shift)
    # the subtraction also restores the asymmetry that pileup diluted
    assert abs(after.variation.params["A"] - after.nominal.params["A"]) < 0.25 * abs(before.variation.params["A"] - before.nominal.params["A"])
