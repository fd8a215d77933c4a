"""New-physics bands (docs/physics.md §7): loop-integral limits against the closed forms, and every band edge
put back into its model gives Δa_μ ± n_σ·error."""

import math

import numpy as np
import pytest

from calibration import bsm
from ringsim.constants import codata
from ringsim.errors import ConfigError

M_MU = codata(2018).muon_mass_mev * 1e-3
ALPHA = 1 / 137.035_999_084
DELTA, ERR = 251e-11, 59e-11


def test_loop_integral_light_limit():
    """m_X ≪ m_μ: I → ∫z dz = 1/2, so Δa = ε²α/(2π); the correction is of order m_X/m_μ."""
    for r in (1e-4, 1e-3):
        assert abs(bsm.loop_integral(r * M_MU)[0] - 0.5) < 2 * r
    assert bsm.dark_photon_delta_a(1e-3, 1e-5 * M_MU)[0] == pytest.approx(1e-6 * ALPHA / (2 * math.pi), rel=1e-4)


def test_loop_integral_heavy_limit():
    """m_X ≫ m_μ: I → (m_μ/m_X)²∫(1−z)²dz = (m_μ/m_X)²/3, Δa = ε²α/(3π)(m_μ/m_X)²; the relative
    correction is of order ln(r)/r², r = m_X/m_μ."""
    for r in (1e3, 1e4):
        expected = 1e-4 * ALPHA / (3 * math.pi) / r**2
        assert bsm.dark_photon_delta_a(1e-2, r * M_MU)[0] == pytest.approx(expected, rel=10 * math.log(r) / r**2)


def test_loop_integral_against_direct_quadrature():
    from scipy.integrate import quad

    m = 0.3 * M_MU
    direct = quad(lambda z: M_MU**2 * z * (1 - z) ** 2 / (M_MU**2 * (1 - z) ** 2 + m**2 * z), 0, 1, epsrel=1e-12)[0]
    assert bsm.loop_integral(m)[0] == pytest.approx(direct, rel=1e-9)


def test_lmu_ltau_heavy_limit():
    """Heavy Z': Δa ≈ g'²/(12π²)(m_μ/m_Z')² (docs/physics.md §7)."""
    g, m = 0.1, 1e3 * M_MU
    assert bsm.lmu_ltau_delta_a(g, m)[0] == pytest.approx(g**2 / (12 * math.pi**2) * (M_MU / m) ** 2, rel=1e-2)


@pytest.mark.parametrize("n_sigma", [1.0, 2.0])
def test_band_edges_reproduce_delta(n_sigma):
    lo, hi = DELTA - n_sigma * ERR, DELTA + n_sigma * ERR
    masses = np.array([1e-3, 0.05, 2.0])
    b = bsm.dark_photon_band(DELTA, ERR, masses, n_sigma)
    np.testing.assert_allclose(bsm.dark_photon_delta_a(b.lower, masses), lo, rtol=1e-9)
    np.testing.assert_allclose(bsm.dark_photon_delta_a(b.upper, masses), hi, rtol=1e-9)
    b = bsm.lmu_ltau_band(DELTA, ERR, masses, n_sigma)
    np.testing.assert_allclose(bsm.lmu_ltau_delta_a(b.upper, masses), hi, rtol=1e-9)
    m_lq = np.array([1500.0, 5000.0])
    b = bsm.leptoquark_band(DELTA, ERR, m_lq, n_sigma)
    np.testing.assert_allclose(bsm.leptoquark_delta_a(b.lower, m_lq), lo, rtol=1e-9)
    tan_beta = np.array([10.0, 40.0])
    b = bsm.mssm_band(DELTA, ERR, tan_beta, n_sigma)
    np.testing.assert_allclose(bsm.mssm_delta_a(b.lower, tan_beta), hi, rtol=1e-9)  # lighter masses: larger Δa
    np.testing.assert_allclose(bsm.mssm_delta_a(b.upper, tan_beta), lo, rtol=1e-9)
    c_gg = np.array([-60.0, -30.0])
    b = bsm.alp_band(DELTA, ERR, c_gg, n_sigma=n_sigma)
    np.testing.assert_allclose([bsm.alp_delta_a(f, c)[0] for f, c in zip(b.upper, c_gg)], lo, rtol=1e-9)


def test_leptoquark_formula():
    """Written out: Re(λλ*)/(4π²)·m_μm_t/m²·[ln(m²/m_t²) − 7/4]."""
    m, mt = 2000.0, bsm.TOP_MASS_GEV
    expected = 0.01 / (4 * math.pi**2) * M_MU * mt / m**2 * (math.log(m**2 / mt**2) - 1.75)
    assert bsm.leptoquark_delta_a(0.01, m)[0] == pytest.approx(expected, rel=1e-12, abs=0.0)


def test_dipole_scales():
    """Δa = 250e-11(100 TeV/Λ)² ⇒ Λ = 100 TeV at Δa = 250e-11; suppressed form: 170 GeV."""
    b = bsm.dipole_scale_band_gev(250e-11, 1e-13, 1.0, n_sigma=1.0)
    assert b.lower[0] == pytest.approx(1e5, rel=1e-3) and b.upper[0] == pytest.approx(1e5, rel=1e-3)
    b = bsm.dipole_scale_band_gev(250e-11, 1e-13, n_sigma=1.0, suppressed=True)
    assert b.lower[0] == pytest.approx(170.0, rel=1e-3)
    # a Δa compatible with zero leaves the scale unbounded above
    assert np.isposinf(bsm.dipole_scale_band_gev(50e-11, 59e-11).upper[0])


def test_mssm_reference_point():
    """Seed 001: ≈ 260e-11 at tanβ = 50 and m_SUSY = 500 GeV (an approximation of the full loops)."""
    assert bsm.mssm_delta_a(500.0, 50.0)[0] == pytest.approx(260e-11, rel=0.1)


def test_alp_needs_a_large_negative_photon_coupling():
    """With c_μμ = 1 the bracket 1 + (2α/π)c_γγ ln(Λ²/m_μ²) must be negative for Δa > 0."""
    threshold = -1 / (2 * ALPHA / math.pi * math.log(1000.0**2 / M_MU**2))
    b = bsm.alp_band(DELTA, ERR, [threshold + 1.0, threshold - 1.0])
    assert np.isnan(b.lower[0]) and np.isfinite(b.lower[1])


def test_electron_scaling():
    """Δa_e ≈ (m_e/m_μ)²Δa_μ ≈ 5.8e-14 for Δa_μ = 251e-11 (docs/physics.md §7)."""
    assert bsm.electron_scaling(251e-11) == pytest.approx(5.87e-14, rel=3e-3)


def test_invalid_inputs_raise():
    with pytest.raises(ConfigError, match="^mass_gev: "):
        bsm.loop_integral([-1.0])
    with pytest.raises(ConfigError, match="^delta_a: "):
        bsm.mssm_band(DELTA, -1.0, [10.0])
