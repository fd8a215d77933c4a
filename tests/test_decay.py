"""Michel decay: rest-frame moments, lab fraction and asymmetry against independent integrals."""

import math

import numpy as np
import pytest
from numba import njit
from scipy import integrate

from ringsim.constants import A_MU_DEFAULT, codata
from ringsim.decay import decay_positron, lab_fraction_and_asymmetry, sample_rest_frame

M_MU = codata().muon_mass_mev
GAMMA_MAGIC = math.sqrt(1 + 1 / A_MU_DEFAULT)


@njit
def _rest_samples(n, polarization, seed):
    np.random.seed(seed)
    out = np.empty((n, 2))
    for i in range(n):
        out[i, 0], out[i, 1] = sample_rest_frame(polarization)
    return out


@njit
def _lab_energies(n, u_long, spin_angle, polarization, seed):
    """Muon along +z with |u| = u_long, spin in the x–z plane at spin_angle to the momentum."""
    np.random.seed(seed)
    e = np.empty(n)
    for i in range(n):
        e[i] = decay_positron(0.0, 0.0, u_long, math.sin(spin_angle), 0.0, math.cos(spin_angle), polarization, M_MU)[0]
    return e


def _window_integrals(gamma, lo_mev, hi_mev):
    """Independent calculation: integrate x analytically for each cosα, then cosα numerically."""
    beta = math.sqrt(1 - 1 / gamma**2)

    def x_range(c):
        scale = 0.5 * gamma * M_MU * (1 + beta * c)
        return min(max(lo_mev / scale, 0.0), 1.0), min(max(hi_mev / scale, 0.0), 1.0)

    def n_of(c):
        a, b = x_range(c)
        f = lambda x: x**3 - x**4 / 2  # ∫ x²(3−2x)
        return f(b) - f(a)

    def a_of(c):
        a, b = x_range(c)
        g = lambda x: x**4 / 2 - x**3 / 3  # ∫ x²(2x−1)
        return c * (g(b) - g(a))

    n_tot = integrate.quad(n_of, -1, 1, limit=400, epsabs=1e-13)[0]
    a_tot = integrate.quad(a_of, -1, 1, limit=400, epsabs=1e-13)[0]
    return n_tot, a_tot / n_tot


def test_rest_frame_moments():
    s = _rest_samples(400_000, 0.8, 3)
    x, c = s[:, 0], s[:, 1]
    n = x.size
    # ⟨x⟩ = ∫ x·2x²(3−2x) dx = 0.7; ⟨cosθ⟩ = P/9; var(x) = 2(3/5 − 1/3) − 0.49
    assert x.mean() == pytest.approx(0.7, abs=4 * math.sqrt((8 / 15 - 0.49) / n))
    assert c.mean() == pytest.approx(0.8 / 9, abs=4 * math.sqrt(1 / 3 / n))
    assert x.min() >= 0 and x.max() <= 1 and np.all(np.abs(c) <= 1)


@pytest.mark.parametrize("gamma, lo, hi", [(GAMMA_MAGIC, 1700.0, 4000.0), (3.0103, 200.0, 275.0), (GAMMA_MAGIC, 0.0, 1000.0)])
def test_lab_fraction_and_asymmetry_match_independent_integration(gamma, lo, hi):
    frac, asym = lab_fraction_and_asymmetry(gamma, lo, hi, M_MU)
    n_ref, a_ref = _window_integrals(gamma, lo, hi)
    assert frac == pytest.approx(n_ref, rel=1e-7)
    assert asym == pytest.approx(a_ref, rel=1e-7, abs=1e-10)


def test_magic_gamma_threshold_matches_the_beta_to_one_formula():
    # docs/physics.md §6: N(>y) = (3 − 5y + 3y³ − y⁴)/3 from dN/dy ∝ (1−y)(5+5y−4y²); A from A(y)
    e_max = 0.5 * GAMMA_MAGIC * (1 + math.sqrt(1 - GAMMA_MAGIC**-2)) * M_MU
    y0 = 1700.0 / e_max
    dn = lambda y: (1 - y) * (5 + 5 * y - 4 * y * y) / 3
    ay = lambda y: (-8 * y * y + y + 1) / (4 * y * y - 5 * y - 5)
    n_ref = integrate.quad(dn, y0, 1)[0]
    a_ref = integrate.quad(lambda y: dn(y) * ay(y), y0, 1)[0] / n_ref
    frac, asym = lab_fraction_and_asymmetry(GAMMA_MAGIC, 1700.0, 4000.0, M_MU)
    assert frac == pytest.approx(n_ref, abs=1e-3) and frac == pytest.approx(0.22, abs=5e-3)
    assert asym == pytest.approx(a_ref, abs=1e-3) and asym == pytest.approx(0.354, abs=2e-3)


def test_sampled_positrons_reproduce_fraction_and_asymmetry():
    n = 1_000_000
    u = GAMMA_MAGIC * math.sqrt(1 - GAMMA_MAGIC**-2)
    unpolarised = _lab_energies(n, u, 0.0, 0.0, 5)
    forward = _lab_energies(n, u, 0.0, 1.0, 6)
    backward = _lab_energies(n, u, math.pi, 1.0, 7)
    frac, asym = lab_fraction_and_asymmetry(GAMMA_MAGIC, 1700.0, 1e5, M_MU)
    f0 = np.mean(unpolarised > 1700)
    assert f0 == pytest.approx(frac, abs=4 * math.sqrt(frac * (1 - frac) / n))
    nf, nb = np.sum(forward > 1700), np.sum(backward > 1700)
    a_mc = (nf - nb) / (nf + nb)
    assert a_mc == pytest.approx(asym, abs=4 / math.sqrt(nf + nb))
    e_max = 0.5 * GAMMA_MAGIC * (1 + math.sqrt(1 - GAMMA_MAGIC**-2)) * M_MU
    assert forward.max() <= e_max * (1 + 1e-12) and forward.max() > 0.99 * e_max
