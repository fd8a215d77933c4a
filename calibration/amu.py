"""The muon anomaly a_μ from a measured frequency ratio (docs/physics.md §4).

Two forms are provided:

- Fermilab: a_μ = R'_μ · (μ'_p(T_r)/μ_e(H)) · (μ_e(H)/μ_e) · (m_μ/m_e) · (g_e/2), with
  R'_μ = ω_a/ω̃'_p(T_r) the ratio of the anomalous precession frequency to the shielded-proton
  Larmor frequency of a spherical water sample at T_r (34.7 °C).
- BNL E821: a_μ = R/(λ − R), with R = ω_a/ω_p and λ = μ_μ/μ_p.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ringsim.constants import (
    BOUND_ELECTRON_H_RATIO,
    LAMBDA_E821,
    LAMBDA_E821_ERR,
    SHIELDING_DSIGMA_DT_ERR_PER_K,
    SHIELDING_DSIGMA_DT_PER_K,
    T_R_FNAL_C,
    T_REF_SHIELDING_C,
    codata,
)
from ringsim.errors import ConfigError

__all__ = ["AmuResult", "amu_e821", "amu_fnal"]


@dataclass(frozen=True)
class AmuResult:
    """a_μ with its standard uncertainty and the inputs that produced it.

    Attributes
    ----------
    a_mu, a_mu_err : float
        The anomaly (g−2)/2 and its standard uncertainty.
    form : str
        ``"fnal"`` or ``"e821"``.
    codata : str
        The constants used: ``"CODATA 2018"``/``"CODATA 2022"`` for the Fermilab form, the λ
        value (``"lambda=3.18334539"``) for the E821 form, which uses no CODATA table.
    ratio, ratio_err : float
        The input frequency ratio and its uncertainty.
    """

    a_mu: float
    a_mu_err: float
    form: str
    codata: str
    ratio: float
    ratio_err: float

    def to_dict(self) -> dict[str, float | str]:
        """Plain dictionary with keys ``a_mu``, ``a_mu_err``, ``form``, ``codata``, ``ratio``, ``ratio_err``."""
        return asdict(self)


def _check_positive(name: str, value: float) -> float:
    value = float(value)
    if not (math.isfinite(value) and value > 0.0):
        raise ConfigError(f"{name}: must be a positive finite number, got {value!r}")
    return value


def _check_error(name: str, value: float) -> float:
    value = float(value)
    if not (math.isfinite(value) and value >= 0.0):
        raise ConfigError(f"{name}: must be a finite number >= 0, got {value!r}")
    return value


def amu_fnal(
    ratio: float,
    ratio_err: float = 0.0,
    codata_edition: int = 2018,
    temperature_c: float = T_R_FNAL_C,
) -> AmuResult:
    """a_μ from R'_μ = ω_a/ω̃'_p(T), the Fermilab form.

    Parameters
    ----------
    ratio, ratio_err : float
        R'_μ = ω_a/ω̃'_p(T) (dimensionless, ≈ 0.0037) and its standard uncertainty.
    codata_edition : int
        CODATA edition of m_μ/m_e, g_e and μ_e/μ'_p (2018 or 2022).
    temperature_c : float
        Temperature of the water sample defining ω̃'_p, °C (Fermilab: 34.7).

    Returns
    -------
    AmuResult
        Uncertainty: relative errors of R'_μ, m_μ/m_e, μ_e/μ'_p, g_e and of the shielding's
        temperature coefficient (±0.30e-9 /K over T − 25 °C: 2.9 ppb at 34.7 °C) in quadrature.
    """
    ratio = _check_positive("ratio", ratio)
    ratio_err = _check_error("ratio_err", ratio_err)
    temperature_c = float(temperature_c)
    if not math.isfinite(temperature_c):
        raise ConfigError(f"temperature_c: must be a finite temperature in °C, got {temperature_c!r}")
    c = codata(codata_edition)

    proton_over_electron_h = c.shielded_proton_to_electron_moment_ratio(temperature_c) / BOUND_ELECTRON_H_RATIO
    electron_h_over_free = BOUND_ELECTRON_H_RATIO
    a_mu = ratio * proton_over_electron_h * electron_h_over_free * c.muon_electron_mass_ratio * (0.5 * c.electron_g_factor)

    dt_k = temperature_c - T_REF_SHIELDING_C
    temperature_rel_err = SHIELDING_DSIGMA_DT_ERR_PER_K * abs(dt_k) / (1.0 - SHIELDING_DSIGMA_DT_PER_K * dt_k)
    rel_err = math.hypot(
        ratio_err / ratio,
        temperature_rel_err,
        c.muon_electron_mass_ratio_err / c.muon_electron_mass_ratio,
        c.electron_to_shielded_proton_moment_ratio_err / abs(c.electron_to_shielded_proton_moment_ratio),
        c.electron_g_factor_err / abs(c.electron_g_factor),
    )
    return AmuResult(
        a_mu=a_mu,
        a_mu_err=abs(a_mu) * rel_err,
        form="fnal",
        codata=c.name,
        ratio=ratio,
        ratio_err=ratio_err,
    )


def amu_e821(
    ratio: float,
    ratio_err: float = 0.0,
    lam: float = LAMBDA_E821,
    lam_err: float = LAMBDA_E821_ERR,
) -> AmuResult:
    """a_μ = R/(λ − R) from R = ω_a/ω_p, the BNL E821 form.

    Parameters
    ----------
    ratio, ratio_err : float
        R = ω_a/ω_p (dimensionless) and its standard uncertainty.
    lam, lam_err : float
        λ = μ_μ/μ_p and its standard uncertainty (default: the value E821 used).

    Returns
    -------
    AmuResult
        Uncertainty from ∂a/∂R = λ/(λ−R)² and ∂a/∂λ = −R/(λ−R)² in quadrature.
    """
    ratio = _check_positive("ratio", ratio)
    ratio_err = _check_error("ratio_err", ratio_err)
    lam = _check_positive("lam", lam)
    lam_err = _check_error("lam_err", lam_err)
    if not lam > ratio:
        raise ConfigError(f"lam: must be greater than ratio ({ratio!r}), got {lam!r}")

    denom = lam - ratio
    a_mu = ratio / denom
    a_mu_err = math.hypot(lam / denom**2 * ratio_err, ratio / denom**2 * lam_err)
    return AmuResult(
        a_mu=a_mu,
        a_mu_err=a_mu_err,
        form="e821",
        codata=f"lambda={lam!r}",
        ratio=ratio,
        ratio_err=ratio_err,
    )
