"""CODATA tables: internal consistency, agreement with scipy, and derived ring kinematics."""

import math

import pytest
import scipy
import scipy.constants

from ringsim.constants import (
    A_MU_DEFAULT,
    CODATA_TABLES,
    ELEMENTARY_CHARGE_C,
    SPEED_OF_LIGHT_M_PER_S,
    codata,
)
from ringsim.errors import ConfigError

H_J_S = 6.626_070_15e-34  # exact (SI 2019)


@pytest.mark.parametrize("edition", [2018, 2022])
def test_shielded_proton_gyromagnetic_ratio_from_moments(edition):
    """γ'_p/2π = 2|μ'_p|/h with μ'_p = μ_e/(μ_e/μ'_p), μ_e = (g_e/2) e ħ/(2 m_e), matches the table."""
    c = codata(edition)
    m_e_kg = c.muon_mass_mev / c.muon_electron_mass_ratio * 1e6 * ELEMENTARY_CHARGE_C / SPEED_OF_LIGHT_M_PER_S**2
    hbar = H_J_S / (2.0 * math.pi)
    mu_e = 0.5 * c.electron_g_factor * ELEMENTARY_CHARGE_C * hbar / (2.0 * m_e_kg)
    mu_p_shielded = mu_e / c.electron_to_shielded_proton_moment_ratio
    assert mu_p_shielded > 0.0
    gamma_p_mhz_per_t = 2.0 * mu_p_shielded / H_J_S / 1e6
    tabulated = c.shielded_proton_gyromagnetic_ratio_mhz_per_t
    assert gamma_p_mhz_per_t == pytest.approx(tabulated, rel=3e-8)
    # the package's own derivation at the tabulation temperature (25 °C) agrees with this one
    assert c.shielded_proton_larmor_rad_per_s_per_t(25.0) == pytest.approx(2.0 * math.pi * 1e6 * gamma_p_mhz_per_t, rel=1e-14)


def test_shielding_temperature_dependence():
    """μ'_p(34.7 °C) = μ'_p(25 °C)(1 − 9.7 K × 10.36e-9): the shielding of protons in water grows
    with temperature by 10.36(30)e-9 /K (Fermilab Run-1 field analysis, PRA 103, 042208 (2021))."""
    c = codata(2018)
    ratio = c.shielded_proton_to_electron_moment_ratio(34.7) / c.shielded_proton_to_electron_moment_ratio(25.0)
    assert ratio == pytest.approx(1.0 - 9.7 * 10.36e-9, abs=1e-15)


def _scipy_has_codata_2022() -> bool:
    major, minor = (int(part) for part in scipy.__version__.split(".")[:2])
    return (major, minor) >= (1, 15)  # scipy 1.15 moved scipy.constants to CODATA 2022


SCIPY_KEYS_2022 = {
    "muon mass energy equivalent in MeV": ("muon_mass_mev", 1.0),
    "muon-electron mass ratio": ("muon_electron_mass_ratio", 1.0),
    "electron g factor": ("electron_g_factor", 1.0),
    "electron to shielded proton mag. mom. ratio": ("electron_to_shielded_proton_moment_ratio", 1.0),
    "shielded proton gyromag. ratio in MHz/T": ("shielded_proton_gyromagnetic_ratio_mhz_per_t", 1.0),
    "muon-proton mag. mom. ratio": ("muon_proton_moment_ratio", -1.0),  # the table stores |λ|
}


@pytest.mark.parametrize("key", sorted(SCIPY_KEYS_2022))
def test_codata_2022_matches_scipy(key):
    if not _scipy_has_codata_2022():
        pytest.skip(f"scipy {scipy.__version__} predates CODATA 2022")
    if key not in scipy.constants.physical_constants:
        pytest.skip(f"scipy.constants has no key {key!r}")
    value, _unit, err = scipy.constants.physical_constants[key]
    field, sign = SCIPY_KEYS_2022[key]
    c = CODATA_TABLES[2022]
    assert sign * getattr(c, field) == pytest.approx(value, rel=1e-15)
    assert getattr(c, field + "_err") == pytest.approx(err, rel=1e-12)


def test_magic_momentum():
    """γ_magic = √(1+1/a) ≈ 29.30 and p = γβ m_μ ≈ 3.094 GeV/c (docs/physics.md §2)."""
    gamma = math.sqrt(1.0 + 1.0 / A_MU_DEFAULT)
    beta = math.sqrt(1.0 - 1.0 / gamma**2)
    p_gev = gamma * beta * codata(2018).muon_mass_mev / 1e3
    assert gamma == pytest.approx(29.30, abs=0.005)
    assert p_gev == pytest.approx(3.094, abs=0.0005)
    # at the magic momentum the electric term of ω_a vanishes: a − 1/(γ²−1) = 0
    assert A_MU_DEFAULT - 1.0 / (gamma**2 - 1.0) == pytest.approx(0.0, abs=1e-15)


def _positron_endpoint_mev(gamma: float) -> float:
    beta = math.sqrt(1.0 - 1.0 / gamma**2)
    return gamma * (1.0 + beta) * codata(2018).muon_mass_mev / 2.0


def test_positron_endpoint_fnal():
    gamma = math.sqrt(1.0 + 1.0 / A_MU_DEFAULT)
    assert _positron_endpoint_mev(gamma) / 1e3 == pytest.approx(3.095, abs=0.0005)


def test_positron_endpoint_jparc():
    m_mev = codata(2018).muon_mass_mev
    gamma = math.hypot(300.0, m_mev) / m_mev  # p = 300 MeV/c
    assert gamma == pytest.approx(3.0103, abs=5e-5)  # docs/physics.md §5
    assert _positron_endpoint_mev(gamma) == pytest.approx(309.0, abs=0.05)
    # E_max = (E_μ + p c)/2 for a massless positron emitted forward
    assert _positron_endpoint_mev(gamma) == pytest.approx((math.hypot(300.0, m_mev) + 300.0) / 2.0, rel=1e-14)


@pytest.mark.parametrize("edition", [2014, 2020, "latest", None])
def test_unknown_edition_raises(edition):
    with pytest.raises(ConfigError, match="codata"):
        codata(edition)
