"""Fisher-information precision of ω_a, checked against an independent binned calculation."""

import math

import numpy as np
import pytest

from analysis.precision import fisher_omega_precision, simple_omega_precision
from ringsim.errors import ConfigError

# J-PARC E34 (docs/physics.md §5)
N_JPARC = 5.7e11
A_JPARC = 0.419
P_JPARC = 0.5
OMEGA_JPARC = 2.9753  # rad/μs
GTAU_JPARC = 6.614  # μs
JPARC = (N_JPARC, A_JPARC, P_JPARC, OMEGA_JPARC, GTAU_JPARC)


def binned_fisher_precision(n, a, p, omega, gtau, start, end, phi=0.0, dt=0.004):
    """δω/ω from a finely binned expected histogram with finite-difference derivatives."""
    t = np.arange(start + 0.5 * dt, end, dt)
    theta = np.array([n / gtau, gtau, a * p, omega, phi])

    def mu(th):
        n0, tau, ap, w, ph = th
        return n0 * np.exp(-t / tau) * (1.0 + ap * np.cos(w * t + ph)) * dt

    grads = []
    for i in range(5):
        h = np.zeros(5)
        h[i] = 1e-5 * max(abs(theta[i]), 1.0)
        grads.append((mu(theta + h) - mu(theta - h)) / (2.0 * h[i]))
    g = np.array(grads)
    fisher = (g / mu(theta)) @ g.T
    return math.sqrt(np.linalg.inv(fisher)[3, 3]) / omega


def test_jparc_unbounded_window_matches_binned_calculation():
    got = fisher_omega_precision(*JPARC)
    assert got == pytest.approx(binned_fisher_precision(*JPARC, 0.0, 30.0 * GTAU_JPARC), rel=1e-3)
    assert got == pytest.approx(450.6e-9, rel=0.02)  # docs/physics.md §5 [C]; its phase convention is unstated


def test_jparc_readout_window_matches_binned_calculation():
    got = fisher_omega_precision(*JPARC, start_us=0.0, end_us=40.0)
    assert got == pytest.approx(binned_fisher_precision(*JPARC, 0.0, 40.0), rel=1e-3)
    assert got == pytest.approx(471e-9, rel=0.02)  # docs/physics.md §5 [C]
    assert got > fisher_omega_precision(*JPARC)  # a shorter window loses information


def test_late_start_and_phase_match_binned_calculation():
    args = (1.0e9, 0.35, 1.0, 1.4394, 64.4)
    got = fisher_omega_precision(*args, start_us=30.2, end_us=650.0, phi_rad=2.1)
    assert got == pytest.approx(binned_fisher_precision(*args, 30.2, 650.0, phi=2.1, dt=0.02), rel=1e-3)


def test_simple_formula_is_the_large_omega_tau_small_asymmetry_limit():
    # with ωγτ = 3220 and AP = 0.01 the corrections O(1/(ωγτ)²) and O((AP)²) are negligible
    args = (1.0e10, 0.01, 1.0, 50.0, 64.4)
    assert simple_omega_precision(*args) == pytest.approx(fisher_omega_precision(*args), rel=1e-3)
    assert simple_omega_precision(*JPARC) == pytest.approx(454e-9, rel=2e-3)  # docs/physics.md §5


def test_scaling_with_statistics_and_asymmetry():
    base = fisher_omega_precision(*JPARC)
    assert fisher_omega_precision(4.0 * N_JPARC, *JPARC[1:]) == pytest.approx(base / 2.0, rel=1e-10)
    # only the product A·P enters
    assert fisher_omega_precision(N_JPARC, A_JPARC * P_JPARC, 1.0, OMEGA_JPARC, GTAU_JPARC) == pytest.approx(base, rel=1e-10)
    # ∝ 1/(AP) up to the O((AP)²/8) gain from the 1/f weight
    small = fisher_omega_precision(N_JPARC, 0.02, 1.0, OMEGA_JPARC, GTAU_JPARC)
    smaller = fisher_omega_precision(N_JPARC, 0.01, 1.0, OMEGA_JPARC, GTAU_JPARC)
    assert smaller == pytest.approx(2.0 * small, rel=1e-4)
    simple = simple_omega_precision(*JPARC)
    assert simple_omega_precision(4.0 * N_JPARC, *JPARC[1:]) == pytest.approx(simple / 2.0, rel=1e-14)
    assert simple_omega_precision(N_JPARC, A_JPARC, 2.0 * P_JPARC, OMEGA_JPARC, GTAU_JPARC) == pytest.approx(simple / 2.0, rel=1e-14)


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        ((0.0, 0.4, 0.5, 3.0, 6.6), {}, "n_positrons"),
        ((1e9, 0.4, 3.0, 3.0, 6.6), {}, "asymmetry"),
        ((1e9, 0.4, 0.5, 3.0, -6.6), {}, "gamma_tau_us"),
        ((1e9, 0.4, 0.5, 3.0, 6.6), {"start_us": 10.0, "end_us": 5.0}, "start_us"),
    ],
)
def test_bad_arguments_raise_config_error(args, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        fisher_omega_precision(*args, **kwargs)
