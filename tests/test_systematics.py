"""ω_a shifts of correlated samples: for a random subset the shift's spread is √(σ_v² − σ_n²), the
linear-response ("difference") estimate agrees with it, and a gain sag shifts ω_a by many σ of the
correlated uncertainty until the energies are corrected."""

import functools
import math

import numpy as np
import pytest

from analysis import pseudo_data as toy
from analysis.fitting import fit_wiggle
from analysis.gain import correct_gain, exponential_gain
from analysis.methods import hit_weights
from analysis.systematics import omega_a_shift
from ringsim.errors import ConfigError, InputError

OMEGA_REF = 2.0 * math.pi * 0.2291
TAU = 64.4
EDGES = 30.2 + 0.1492 * np.arange(1001)
FIT = functools.partial(fit_wiggle, model="5", start_us=EDGES[0], end_us=EDGES[-1], omega_ref_rad_per_us=OMEGA_REF, tau_guess_us=TAU)


def expectation(n_window=2e6):
    truth = {"N0": 1.0, "tau_us": TAU, "A": 0.35, "R_ppm": 12.0, "phi": 2.1}
    mu = toy.bin_integrals(EDGES, lambda t: toy.toy_rate(t, truth, OMEGA_REF))
    return mu * n_window / mu.sum()


def test_subset_shift_spread_is_the_difference_of_variances():
    mu = expectation()
    rng = np.random.default_rng(31)
    keep = 0.8
    shifts, results = [], []
    for _ in range(60):
        full = rng.poisson(mu)
        subset = rng.binomial(full, keep)
        res = omega_a_shift((full, EDGES), (subset, EDGES), FIT, uncertainty="subset")
        shifts.append(res.shift)
        results.append(res)
    res = results[-1]
    # a binomial subset with fraction f: σ_v² = σ_n²/f, so the shift has σ_n √(1/f − 1)
    assert res.error == pytest.approx(res.nominal.omega_a_err * math.sqrt(1 / keep - 1), rel=0.02)
    # a small removal (5 %): |Δn| is the variance of each bin's change, and the first-order linear
    # response gives σ_n √(1 − f) against the exact σ_n √(1/f − 1) (2.5 % apart)
    full = rng.poisson(mu)
    small = 0.95
    diff = omega_a_shift((full, EDGES), (rng.binomial(full, small), EDGES), FIT, uncertainty="difference")
    assert diff.error == pytest.approx(diff.nominal.omega_a_err * math.sqrt(1 / small - 1), rel=0.06)
    predicted = np.mean([r.error for r in results])
    assert np.std(shifts, ddof=1) == pytest.approx(predicted, rel=0.25)  # 60 pairs: ±9 % statistical
    assert abs(np.mean(shifts)) < 4 * predicted / math.sqrt(len(shifts))
    assert res.shift_ppm == pytest.approx(res.shift / res.nominal.omega_a * 1e6)
    assert set(res.to_dict()) >= {"shift", "error", "shift_ppm", "error_ppm", "uncertainty", "nominal", "variation"}


def test_independent_samples_add_their_variances():
    mu = expectation()
    rng = np.random.default_rng(2)
    res = omega_a_shift((rng.poisson(mu), EDGES), (rng.poisson(mu), EDGES), FIT, uncertainty="independent")
    assert res.error == pytest.approx(math.hypot(res.nominal.omega_a_err, res.variation.omega_a_err))


def test_gain_sag_shifts_omega_a_and_the_correction_restores_it():
    rng = np.random.default_rng(8)
    hits = toy.toy_hits(rng, 1000, 3000.0, {"tau_us": TAU, "R_ppm": 12.0, "phi": 2.1}, OMEGA_REF, 3095.0, n_calos=2, t_max_us=200.0, phase_slope_rad=3.0)
    t_ns, e0 = hits["time_ns"], hits["energy_mev"]
    sag = {0: exponential_gain(0.15, 30.0), 1: exponential_gain(0.10, 40.0)}  # per calorimeter
    measured = e0 * np.where(hits["calo"] == 0, sag[0](t_ns * 1e-3), sag[1](t_ns * 1e-3))
    corrected = correct_gain(t_ns, measured, sag, calo=hits["calo"])
    np.testing.assert_allclose(corrected, e0, rtol=1e-12)  # E0 = E/G(t) undoes E = E0 G(t)

    def select(energy):
        return np.histogram(t_ns * 1e-3, bins=EDGES, weights=hit_weights("T", energy, threshold_mev=1700.0))[0]

    truth, sagged = select(e0), select(measured)
    moved = np.histogram(t_ns * 1e-3, bins=EDGES, weights=((e0 >= 1700.0) != (measured >= 1700.0)).astype(float))[0]  # each changed event: variance 1
    before = omega_a_shift((truth, EDGES), (sagged, EDGES), FIT, uncertainty="difference", difference_variance=moved)
    after = omega_a_shift((truth, EDGES), (select(corrected), EDGES), FIT, uncertainty="difference", difference_variance=moved)
    assert abs(before.shift) > 5 * before.error
    assert after.shift == 0.0


def test_gain_and_shift_inputs_are_checked():
    with pytest.raises(ConfigError, match="amplitude"):
        exponential_gain(1.2, 10.0)
    with pytest.raises(ConfigError, match="tau_us"):
        exponential_gain(0.1, 0.0)
    with pytest.raises(InputError, match="calorimeter"):
        correct_gain([1.0, 2.0], [10.0, 20.0], {0: exponential_gain(0.1, 5.0)}, calo=[0, 3])
    with pytest.raises(InputError, match="> 0"):
        correct_gain([1.0], [10.0], lambda t: np.zeros_like(t))
    mu = expectation(1e5)
    with pytest.raises(ConfigError, match="uncertainty"):
        omega_a_shift((mu, EDGES), (mu, EDGES), FIT, uncertainty="guess")
    with pytest.raises(InputError, match="same bins"):
        omega_a_shift((mu, EDGES), (mu[:-1], EDGES[:-1]), FIT)
    with pytest.raises(InputError, match="counts, edges_us"):
        omega_a_shift(mu, (mu, EDGES), FIT)
