"""Frequencies in a magnetic field (docs/physics.md §4).

The shielded-proton NMR reference ω̃'_p(T) and the ideal ω_a, and the field the muons of a
weak-focusing ring see on average.

Both the simulation truth and the extraction of a_μ use these, so that they share one set of
constants (one CODATA edition).
"""

from __future__ import annotations

import math

import numpy as np

from ringsim.constants import T_R_FNAL_C, codata
from ringsim.errors import ConfigError

__all__ = ["muon_weighted_field_t", "omega_a_from_amu_rad_per_s", "omega_p_tilde_rad_per_s"]


def _check_field(field_t: float) -> float:
    field_t = float(field_t)
    if not (math.isfinite(field_t) and field_t > 0.0):
        raise ConfigError(f"field_t: must be a positive finite field in tesla, got {field_t!r}")
    return field_t


def omega_p_tilde_rad_per_s(field_t: float, codata_edition: int = 2018, temperature_c: float = T_R_FNAL_C) -> float:
    """Shielded-proton Larmor frequency ω̃'_p(T) = γ'_p(T)·B, rad/s.

    Parameters
    ----------
    field_t : float
        Magnetic field magnitude B, T.
    codata_edition : int
        CODATA edition (2018 or 2022) of μ_e and μ_e/μ'_p.
    temperature_c : float
        Temperature of the spherical water sample, °C (Fermilab reference: 34.7).
    """
    field_t = _check_field(field_t)
    temperature_c = float(temperature_c)
    if not math.isfinite(temperature_c):
        raise ConfigError(f"temperature_c: must be a finite temperature in °C, got {temperature_c!r}")
    return codata(codata_edition).shielded_proton_larmor_rad_per_s_per_t(temperature_c) * field_t


def omega_a_from_amu_rad_per_s(a_mu: float, field_t: float, codata_edition: int = 2018) -> float:
    """Ideal anomalous precession frequency ω_a = a_μ (e/m_μ) B, rad/s (no E field, no pitch).

    Parameters
    ----------
    a_mu : float
        Muon anomaly (g−2)/2.
    field_t : float
        Magnetic field magnitude B, T.
    codata_edition : int
        CODATA edition (2018 or 2022) of m_μ.
    """
    a_mu = float(a_mu)
    if not math.isfinite(a_mu):
        raise ConfigError(f"a_mu: must be a finite number, got {a_mu!r}")
    field_t = _check_field(field_t)
    return a_mu * codata(codata_edition).muon_charge_over_mass_c_per_kg * field_t


def muon_weighted_field_t(field_t: float, field_index: float, radius_m: float, x_m, focusing: str) -> float:
    """Field averaged over the muon distribution ⟨B⟩ = B₀(1 − n⟨x⟩/R₀) for weak magnetic focusing.

    With electrostatic focusing the magnetic field is uniform and ⟨B⟩ = B₀. ``x_m`` are the radial
    offsets of the muons (their equilibrium radii; betatron motion averages out).
    """
    field_t = _check_field(field_t)
    if focusing == "electric":
        return field_t
    return field_t * (1.0 - field_index * float(np.mean(x_m)) / radius_m)
