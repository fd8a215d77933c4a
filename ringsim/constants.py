"""Physical constants by CODATA edition, and the internal unit system.

Internal units of every numba kernel: SI (metre, second, tesla, volt per metre); momenta are
carried as the dimensionless vector u = γβ. Files store times in ns and energies in MeV; fits
work in μs and rad/μs. Every result names the CODATA edition it used (``Codata.name``).

Values are from docs/physics.md §1 (CODATA 2018 and 2022 tables); the 2022 table is checked against
``scipy.constants`` in the tests. Exact SI-2019 constants (c, e, h) are shared by both editions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ringsim.errors import ConfigError

SPEED_OF_LIGHT_M_PER_S = 299_792_458.0
ELEMENTARY_CHARGE_C = 1.602_176_634e-19
HBAR_J_S = 6.626_070_15e-34 / (2.0 * math.pi)

MUON_LIFETIME_S = 2.196_981_1e-6  # rest-frame lifetime, PDG; docs/physics.md §1
MUON_LIFETIME_ERR_S = 2.2e-12
A_MU_DEFAULT = 116_592_0715e-12  # 2025 world average, docs/physics.md §1 [V]

T_REF_SHIELDING_C = 25.0  # temperature at which μ'_p (spherical H2O sample) is tabulated
T_R_FNAL_C = 34.7  # reference temperature of the Fermilab ω̃'_p(T_r), docs/physics.md §4
# dσ'/dT of protons in a spherical water sample: the shielding grows with temperature, so
# μ'_p(T) = μ'_p(25 °C)·(1 − dσ'/dT·(T − 25 °C)); docs/physics.md §1. Only this sign turns the
# published Fermilab Run-1 ratio into the published a_μ (tests/test_amu.py).
SHIELDING_DSIGMA_DT_PER_K = 10.36e-9
SHIELDING_DSIGMA_DT_ERR_PER_K = 0.30e-9
BOUND_ELECTRON_H_RATIO = 1.0 - 17.7054e-6  # μ_e(H)/μ_e [U], docs/physics.md §1
LAMBDA_E821 = 3.183_345_39  # μ_μ/μ_p used by BNL E821 [V]
LAMBDA_E821_ERR = 1.0e-7
# μ_e/μ_p (free proton), CODATA 2018 and 2022 (unchanged): scipy.constants 'electron-proton mag. mom. ratio'
ELECTRON_PROTON_MOMENT_RATIO = -658.210_687_89


@dataclass(frozen=True)
class Codata:
    """One CODATA edition: the measured constants the package needs (value, standard error)."""

    edition: int
    muon_mass_mev: float
    muon_mass_mev_err: float
    muon_electron_mass_ratio: float
    muon_electron_mass_ratio_err: float
    electron_g_factor: float  # negative (electron moment antiparallel to spin)
    electron_g_factor_err: float
    electron_to_shielded_proton_moment_ratio: float  # μ_e/μ'_p, H2O sphere at 25 °C, negative
    electron_to_shielded_proton_moment_ratio_err: float
    shielded_proton_gyromagnetic_ratio_mhz_per_t: float  # γ'_p/2π at 25 °C (tabulated, for checks)
    shielded_proton_gyromagnetic_ratio_mhz_per_t_err: float
    muon_proton_moment_ratio: float  # |μ_μ/μ_p| = λ
    muon_proton_moment_ratio_err: float

    @property
    def name(self) -> str:
        """Label of the edition, e.g. "CODATA 2018"."""
        return f"CODATA {self.edition}"

    @property
    def electron_mass_mev(self) -> float:
        """m_e c² in MeV, from m_μ and m_μ/m_e of this edition."""
        return self.muon_mass_mev / self.muon_electron_mass_ratio

    @property
    def muon_charge_over_mass_c_per_kg(self) -> float:
        """e/m_μ in C/kg (from m_μ c² in MeV and the exact SI constants)."""
        return SPEED_OF_LIGHT_M_PER_S**2 / (self.muon_mass_mev * 1.0e6)

    @property
    def electron_moment_j_per_t(self) -> float:
        """μ_e = (g_e/2) e ħ/(2 m_e), negative."""
        m_e_kg = self.electron_mass_mev * 1.0e6 * ELEMENTARY_CHARGE_C / SPEED_OF_LIGHT_M_PER_S**2
        bohr_magneton = ELEMENTARY_CHARGE_C * HBAR_J_S / (2.0 * m_e_kg)
        return 0.5 * self.electron_g_factor * bohr_magneton

    def shielded_proton_to_electron_moment_ratio(self, temperature_c: float) -> float:
        """μ'_p(T)/μ_e for a spherical water sample at ``temperature_c`` (negative).

        The shielding σ'(T) grows with temperature: μ'_p(T) = μ'_p(25 °C)(1 − dσ'/dT (T − 25 °C)).
        """
        dt_k = temperature_c - T_REF_SHIELDING_C
        return (1.0 - SHIELDING_DSIGMA_DT_PER_K * dt_k) / self.electron_to_shielded_proton_moment_ratio

    def shielded_proton_larmor_rad_per_s_per_t(self, temperature_c: float) -> float:
        """γ'_p(T) = 2|μ'_p(T)|/ħ in rad s⁻¹ T⁻¹, derived from μ_e and μ_e/μ'_p of this edition."""
        mu_p = self.electron_moment_j_per_t * self.shielded_proton_to_electron_moment_ratio(temperature_c)
        return 2.0 * abs(mu_p) / HBAR_J_S


_CODATA_EDITIONS = (2018, 2022)
# Codata field: (value, standard uncertainty) of each edition in _CODATA_EDITIONS
_CODATA_ROWS = {
    "muon_mass_mev": ((105.658_375_5, 2.3e-6), (105.658_375_5, 2.3e-6)),
    "muon_electron_mass_ratio": ((206.768_283_0, 4.6e-6), (206.768_282_7, 4.6e-6)),
    "electron_g_factor": ((-2.002_319_304_362_56, 3.5e-13), (-2.002_319_304_360_92, 3.6e-13)),
    "electron_to_shielded_proton_moment_ratio": ((-658.227_597_1, 7.2e-6), (-658.227_585_6, 2.7e-6)),
    "shielded_proton_gyromagnetic_ratio_mhz_per_t": ((42.576_384_74, 4.6e-7), (42.576_385_43, 1.7e-7)),
    "muon_proton_moment_ratio": ((3.183_345_142, 7.1e-8), (3.183_345_146, 7.1e-8)),
}

CODATA_TABLES: dict[int, Codata] = {
    edition: Codata(edition=edition, **{key: row[i][0] for key, row in _CODATA_ROWS.items()}, **{f"{key}_err": row[i][1] for key, row in _CODATA_ROWS.items()})
    for i, edition in enumerate(_CODATA_EDITIONS)
}


def codata(edition: int = 2018) -> Codata:
    """Return the constants of one CODATA edition (2018 or 2022)."""
    try:
        return CODATA_TABLES[int(edition)]
    except (KeyError, ValueError, TypeError):
        known = ", ".join(str(k) for k in CODATA_TABLES)
        raise ConfigError(f"codata: unknown CODATA edition {edition!r}; expected one of {known}") from None
