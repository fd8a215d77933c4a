"""From a Δa_μ to preferred parameter bands of new-physics models (docs/physics.md §7, seeds 000 and 001).

Each model's one-loop contribution Δa(p) is given in closed form (or as the general loop integral);
a band is the set of parameters for which Δa(p) lies within n_σ standard errors of the measured
Δa_μ, returned as (lower, upper) edges over a grid of the other parameter (an edge is NaN where no
parameter value reaches it, inf where the band is open). Masses in GeV.

Models:
- generic dipole operator: Δa = 250e-11·C(100 TeV/Λ)², and loop- and Yukawa-suppressed
  250e-11·(170 GeV/Λ)²;
- dark photon of kinetic mixing ε: Δa = (ε²α/π)∫₀¹ dz m_μ²z(1−z)²/(m_μ²(1−z)² + m_X²z), whose limits
  are ε²α/(2π) (m_X ≪ m_μ) and ε²α/(3π)(m_μ/m_X)² (m_X ≫ m_μ);
- L_μ − L_τ gauge boson of coupling g': the same integral with g'²/(4π²) in place of ε²α/π;
- scalar leptoquark S₁ with top loop: Δa = Re(λ_Lλ_R*)/(4π²)·m_μm_t/m_LQ²·[ln(m_LQ²/m_t²) − 7/4];
- axion-like particle (m_a ≪ m_μ): Δa = −m_μ²/(16π²f²)[c_μμ² + (2α/π)c_γγc_μμ ln(Λ²/m_μ²)];
- MSSM bino and wino loops with universal masses m (μ = M₁ = M₂ = m_smuon):
  Δa = (m_μ²/m²)(tanβ/16π²)(g'²/12 + 5g²/12);
- lepton-flavour-universal scaling to the electron: Δa_e = (m_e/m_μ)²Δa_μ.

:func:`verdict` says what a band means: where Δa_μ differs from zero by more than n_σ errors the band
is the preferred region; where it is compatible with zero, the contributions above Δa_μ + n_σ·error
are excluded (two-sided n_σ, 95 % CL for 2σ), so the band's finite edge bounds the excluded region.
:func:`interpret` evaluates every model at one benchmark point, :func:`deltas` gives Δa_μ of an
experimental value against each Standard Model prediction of :mod:`calibration.theory`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from calibration.theory import EXPERIMENTS, SM_PREDICTIONS, delta_amu
from ringsim.constants import codata
from ringsim.errors import ConfigError

__all__ = [
    "ALPHA",
    "BENCHMARKS",
    "G_PRIME_MZ",
    "G_WEAK_MZ",
    "TOP_MASS_GEV",
    "Band",
    "Interpretation",
    "alp_band",
    "alp_delta_a",
    "dark_photon_band",
    "confidence_level_percent",
    "dark_photon_delta_a",
    "deltas",
    "dipole_scale_band_gev",
    "electron_scaling",
    "interpret",
    "leptoquark_band",
    "leptoquark_delta_a",
    "lmu_ltau_band",
    "lmu_ltau_delta_a",
    "loop_integral",
    "mssm_band",
    "mssm_delta_a",
    "verdict",
]

ALPHA = 7.297_352_5693e-3  # fine-structure constant, CODATA 2018
MUON_MASS_GEV = codata(2018).muon_mass_mev * 1e-3
TOP_MASS_GEV = 172.69  # PDG 2022 average [U]
# SU(2) and hypercharge couplings at m_Z from α(m_Z) = 1/127.95 and sin²θ_W = 0.2312 [U]
_E_MZ = math.sqrt(4.0 * math.pi / 127.95)
G_WEAK_MZ = _E_MZ / math.sqrt(0.2312)
G_PRIME_MZ = _E_MZ / math.sqrt(1.0 - 0.2312)


@dataclass(frozen=True)
class Band:
    """Preferred range of one parameter over a grid of another.

    Attributes
    ----------
    grid_name, grid : str, numpy.ndarray
        The scanned parameter (e.g. ``"m_X [GeV]"``) and its values.
    name : str
        The banded parameter.
    lower, upper : numpy.ndarray
        Band edges at each grid point.
    n_sigma : float
        Width of the band in standard errors of Δa_μ.
    """

    grid_name: str
    grid: np.ndarray
    name: str
    lower: np.ndarray
    upper: np.ndarray
    n_sigma: float


def _delta_range(delta: float, delta_err: float, n_sigma: float) -> tuple[float, float]:
    if not (math.isfinite(delta) and math.isfinite(delta_err) and delta_err >= 0.0 and n_sigma > 0.0):
        raise ConfigError(f"delta_a: need a finite Δa_μ, an error >= 0 and n_sigma > 0, got {delta!r} ± {delta_err!r}, {n_sigma!r}")
    return delta - n_sigma * delta_err, delta + n_sigma * delta_err


def _masses(values, name: str) -> np.ndarray:
    m = np.atleast_1d(np.asarray(values, dtype=float))
    if not (np.all(np.isfinite(m)) and np.all(m > 0.0)):
        raise ConfigError(f"{name}: masses must be positive and finite (GeV)")
    return m


def _edges_coupling(lo: float, hi: float, unit_delta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Band of a coupling c with Δa = c²·unit_delta (unit_delta > 0): c ∈ [√(lo/u), √(hi/u)]."""
    lower = np.sqrt(np.maximum(lo, 0.0) / unit_delta)
    upper = np.sqrt(hi / unit_delta) if hi > 0.0 else np.full(unit_delta.shape, np.nan)
    return np.where(hi > 0.0, lower, np.nan), upper


def _edges_scale(lo: float, hi: float, scale_delta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Band of a scale Λ with Δa = scale_delta/Λ² (scale_delta > 0): Λ ∈ [√(s/hi), √(s/lo)]."""
    lower = np.sqrt(scale_delta / hi) if hi > 0.0 else np.full(scale_delta.shape, np.nan)
    upper = np.sqrt(scale_delta / lo) if lo > 0.0 else np.full(scale_delta.shape, np.inf)
    return lower, np.where(hi > 0.0, upper, np.nan)


def loop_integral(mass_gev) -> np.ndarray:
    """I(m) = ∫₀¹ dz m_μ²z(1−z)²/(m_μ²(1−z)² + m²z) of a vector of mass m (→ 1/2 for m → 0)."""
    from scipy.integrate import quad

    masses = _masses(mass_gev, "mass_gev")
    out = np.empty(masses.size)
    mu2 = MUON_MASS_GEV**2
    for i, m in enumerate(masses):
        r2 = m * m / mu2
        # the integrand changes on the scale z ~ 1 − r for light bosons: tell quad where
        points = [max(0.0, 1.0 - 10.0 * math.sqrt(r2)), max(0.0, 1.0 - math.sqrt(r2))] if r2 < 1.0 else None
        out[i] = quad(lambda z: z * (1.0 - z) ** 2 / ((1.0 - z) ** 2 + r2 * z), 0.0, 1.0, points=points, epsabs=0.0, epsrel=1e-10, limit=200)[0]
    return out


def dark_photon_delta_a(epsilon, mass_gev) -> np.ndarray:
    """Δa_μ of a dark photon of kinetic mixing ε and mass m_X (GeV): (ε²α/π)·I(m_X)."""
    return np.asarray(epsilon, dtype=float) ** 2 * ALPHA / math.pi * loop_integral(mass_gev)


def dark_photon_band(delta: float, delta_err: float, mass_gev, n_sigma: float = 2.0) -> Band:
    """ε(m_X) band that gives Δa_μ ± n_σ·error."""
    lo, hi = _delta_range(delta, delta_err, n_sigma)
    m = _masses(mass_gev, "mass_gev")
    lower, upper = _edges_coupling(lo, hi, ALPHA / math.pi * loop_integral(m))
    return Band("m_X [GeV]", m, "epsilon", lower, upper, n_sigma)


def lmu_ltau_delta_a(coupling, mass_gev) -> np.ndarray:
    """Δa_μ of an L_μ − L_τ gauge boson of coupling g' and mass m_Z' (GeV): g'²/(4π²)·I(m_Z')."""
    return np.asarray(coupling, dtype=float) ** 2 / (4.0 * math.pi**2) * loop_integral(mass_gev)


def lmu_ltau_band(delta: float, delta_err: float, mass_gev, n_sigma: float = 2.0) -> Band:
    """g'(m_Z') band that gives Δa_μ ± n_σ·error."""
    lo, hi = _delta_range(delta, delta_err, n_sigma)
    m = _masses(mass_gev, "mass_gev")
    lower, upper = _edges_coupling(lo, hi, loop_integral(m) / (4.0 * math.pi**2))
    return Band("m_Z' [GeV]", m, "g'", lower, upper, n_sigma)


def _leptoquark_unit(mass_gev: np.ndarray, top_mass_gev: float) -> np.ndarray:
    m = _masses(mass_gev, "mass_gev")
    return MUON_MASS_GEV * top_mass_gev / (4.0 * math.pi**2 * m**2) * (np.log(m**2 / top_mass_gev**2) - 1.75)


def leptoquark_delta_a(coupling_product, mass_gev, top_mass_gev: float = TOP_MASS_GEV) -> np.ndarray:
    """Δa_μ of a scalar leptoquark S₁ with Re(λ_Lλ_R*) = ``coupling_product`` and mass m_LQ (GeV)."""
    return np.asarray(coupling_product, dtype=float) * _leptoquark_unit(mass_gev, top_mass_gev)


def leptoquark_band(delta: float, delta_err: float, mass_gev, n_sigma: float = 2.0, top_mass_gev: float = TOP_MASS_GEV) -> Band:
    """Re(λ_Lλ_R*)(m_LQ) band (linear in the couplings, so the edges are Δa ± n_σ·error over the unit)."""
    lo, hi = _delta_range(delta, delta_err, n_sigma)
    m = _masses(mass_gev, "mass_gev")
    unit = _leptoquark_unit(m, top_mass_gev)
    a, b = lo / unit, hi / unit
    return Band("m_LQ [GeV]", m, "Re(lambda_L lambda_R*)", np.minimum(a, b), np.maximum(a, b), n_sigma)


def _alp_bracket(c_gg, c_mumu: float, cutoff_gev: float) -> np.ndarray:
    return c_mumu**2 + 2.0 * ALPHA / math.pi * np.asarray(c_gg, dtype=float) * c_mumu * math.log(cutoff_gev**2 / MUON_MASS_GEV**2)


def alp_delta_a(decay_constant_gev, c_gg, c_mumu: float = 1.0, cutoff_gev: float = 1000.0) -> np.ndarray:
    """Δa_μ of a light axion-like particle: −m_μ²/(16π²f²)[c_μμ² + (2α/π)c_γγc_μμ ln(Λ²/m_μ²)]."""
    f = _masses(decay_constant_gev, "decay_constant_gev")
    return -(MUON_MASS_GEV**2) / (16.0 * math.pi**2 * f**2) * _alp_bracket(c_gg, c_mumu, cutoff_gev)


def alp_band(delta: float, delta_err: float, c_gg, c_mumu: float = 1.0, cutoff_gev: float = 1000.0, n_sigma: float = 2.0) -> Band:
    """f(c_γγ) band for fixed c_μμ and cut-off Λ; NaN where the ALP cannot give a positive Δa."""
    lo, hi = _delta_range(delta, delta_err, n_sigma)
    c = np.atleast_1d(np.asarray(c_gg, dtype=float))
    strength = -(MUON_MASS_GEV**2) / (16.0 * math.pi**2) * _alp_bracket(c, c_mumu, cutoff_gev)  # Δa·f²
    positive = strength > 0.0
    lower, upper = _edges_scale(lo, hi, np.where(positive, strength, np.nan))
    return Band("c_gamma_gamma", c, "f [GeV]", np.where(positive, lower, np.nan), np.where(positive, upper, np.nan), n_sigma)


def _mssm_strength(tan_beta) -> np.ndarray:
    tb = np.atleast_1d(np.asarray(tan_beta, dtype=float))
    if not (np.all(np.isfinite(tb)) and np.all(tb > 0.0)):
        raise ConfigError("tan_beta: must be positive and finite")
    return MUON_MASS_GEV**2 * tb / (16.0 * math.pi**2) * (G_PRIME_MZ**2 / 12.0 + 5.0 * G_WEAK_MZ**2 / 12.0)


def mssm_delta_a(mass_gev, tan_beta) -> np.ndarray:
    """Δa_μ of the MSSM bino and wino loops with universal SUSY masses m (GeV)."""
    return _mssm_strength(tan_beta) / _masses(mass_gev, "mass_gev") ** 2


def mssm_band(delta: float, delta_err: float, tan_beta, n_sigma: float = 2.0) -> Band:
    """Universal SUSY mass band m(tanβ)."""
    lo, hi = _delta_range(delta, delta_err, n_sigma)
    strength = _mssm_strength(tan_beta)
    lower, upper = _edges_scale(lo, hi, strength)
    return Band("tan beta", np.atleast_1d(np.asarray(tan_beta, dtype=float)), "m_SUSY [GeV]", lower, upper, n_sigma)


def dipole_scale_band_gev(delta: float, delta_err: float, coefficient=1.0, n_sigma: float = 2.0, suppressed: bool = False) -> Band:
    """Scale Λ of the dipole operator: 250e-11·C·(100 TeV/Λ)², or 250e-11·(170 GeV/Λ)² if ``suppressed``."""
    lo, hi = _delta_range(delta, delta_err, n_sigma)
    c = np.atleast_1d(np.asarray(coefficient, dtype=float))
    if not (np.all(np.isfinite(c)) and np.all(c > 0.0)):
        raise ConfigError("coefficient: the Wilson coefficient C must be positive and finite")
    reference_gev = 170.0 if suppressed else 1.0e5
    strength = 250e-11 * reference_gev**2 * (np.ones_like(c) if suppressed else c)
    lower, upper = _edges_scale(lo, hi, strength)
    return Band("C", c, "Lambda [GeV]", lower, upper, n_sigma)


def electron_scaling(delta_mu: float, codata_edition: int = 2018) -> float:
    """Δa_e = (m_e/m_μ)²Δa_μ for a contribution that scales with the lepton mass squared."""
    return float(delta_mu) / codata(codata_edition).muon_electron_mass_ratio ** 2


def confidence_level_percent(n_sigma: float) -> float:
    """Two-sided coverage of ±n_σ of a Gaussian, in % (2σ: 95.4)."""
    return 100.0 * math.erf(n_sigma / math.sqrt(2.0))


def verdict(delta: float, delta_err: float, n_sigma: float, lower: float, upper: float) -> str:
    """Return what the edges (``lower``, ``upper``) of a band at one grid point mean.

    Returns
    -------
    str
        ``"preferred"``: Δa_μ differs from zero by more than n_σ errors and the parameter lies in
        [lower, upper]; otherwise Δa_μ is compatible with zero and the band is the allowed region:
        ``"excluded above"`` (values above ``upper`` excluded; couplings, ``lower`` = 0),
        ``"excluded below"`` (values below ``lower`` excluded; scales, ``upper`` = inf),
        ``"excluded outside"`` (both sides excluded; a coupling of either sign);
        ``"no solution"``: no parameter value gives a Δa_μ within n_σ (both edges NaN).
    """
    lo, hi = _delta_range(delta, delta_err, n_sigma)
    if math.isnan(lower) and math.isnan(upper):
        return "no solution"
    if lo > 0.0 or hi < 0.0:
        return "preferred"
    if math.isinf(upper):
        return "excluded below"
    if lower <= 0.0 <= upper and (lower == 0.0 or math.isnan(lower)):
        return "excluded above"
    return "excluded outside"


@dataclass(frozen=True)
class Interpretation:
    """One model at one benchmark point: the band of its parameter and what it means.

    Attributes
    ----------
    model, benchmark : str
        The model and the fixed other parameters (e.g. ``"m_X = 10 MeV"``).
    parameter, unit : str
        The banded parameter and its unit (``""``: dimensionless).
    lower, upper : float
        Band edges.
    verdict : str
        See :func:`verdict`.
    n_sigma : float
    """

    model: str
    benchmark: str
    parameter: str
    unit: str
    lower: float
    upper: float
    verdict: str
    n_sigma: float

    def text(self) -> str:
        """One line in words, e.g. ``dark photon (m_X = 10 MeV): ε from 1.9e-03 to 2.6e-03 preferred at 95 % CL``."""
        unit = f" {self.unit}" if self.unit else ""
        cl = f"at {confidence_level_percent(self.n_sigma):.0f} % CL"
        where = f"{self.model} ({self.benchmark})" if self.benchmark else self.model
        if self.verdict == "preferred":
            return f"{where}: {self.parameter} from {self.lower:.3g} to {self.upper:.3g}{unit} preferred {cl}"
        if self.verdict == "excluded above":
            return f"{where}: {self.parameter} > {self.upper:.3g}{unit} excluded {cl}"
        if self.verdict == "excluded below":
            return f"{where}: {self.parameter} < {self.lower:.3g}{unit} excluded {cl}"
        if self.verdict == "excluded outside":
            return f"{where}: {self.parameter} outside {self.lower:.3g} to {self.upper:.3g}{unit} excluded {cl}"
        return f"{where}: no value of {self.parameter} gives this Δa_μ {cl}"

    def to_dict(self) -> dict:
        """JSON-able form (non-finite edges as None)."""

        def edge(v: float) -> float | None:
            return v if math.isfinite(v) else None

        return {
            "model": self.model,
            "benchmark": self.benchmark,
            "parameter": self.parameter,
            "unit": self.unit,
            "lower": edge(self.lower),
            "upper": edge(self.upper),
            "verdict": self.verdict,
            "text": self.text(),
        }


# model, benchmark, parameter, unit, band at that benchmark (a function of Δa, error, n_σ)
BENCHMARKS = (
    ("generic dipole operator", "C = 1", "Λ", "GeV", lambda d, e, n: dipole_scale_band_gev(d, e, 1.0, n)),
    ("loop- and Yukawa-suppressed dipole", "", "Λ", "GeV", lambda d, e, n: dipole_scale_band_gev(d, e, 1.0, n, suppressed=True)),
    ("dark photon", "m_X = 10 MeV", "kinetic mixing ε", "", lambda d, e, n: dark_photon_band(d, e, [0.01], n)),
    ("L_μ − L_τ gauge boson", "m_Z' = 10 MeV", "coupling g'", "", lambda d, e, n: lmu_ltau_band(d, e, [0.01], n)),
    ("scalar leptoquark S₁", "m_LQ = 2 TeV", "Re(λ_L λ_R*)", "", lambda d, e, n: leptoquark_band(d, e, [2000.0], n)),
    ("axion-like particle", "c_γγ = −50, c_μμ = 1, Λ = 1 TeV", "f", "GeV", lambda d, e, n: alp_band(d, e, [-50.0], n_sigma=n)),
    ("MSSM, universal masses", "tan β = 40", "m_SUSY", "GeV", lambda d, e, n: mssm_band(d, e, [40.0], n)),
)


def interpret(delta: float, delta_err: float, n_sigma: float = 2.0) -> list[Interpretation]:
    """Every model of :data:`BENCHMARKS` at its benchmark point for Δa_μ = ``delta`` ± ``delta_err``."""
    out = []
    for model, benchmark, parameter, unit, band_of in BENCHMARKS:
        band = band_of(delta, delta_err, n_sigma)
        lower, upper = float(band.lower[0]), float(band.upper[0])
        out.append(Interpretation(model, benchmark, parameter, unit, lower, upper, verdict(delta, delta_err, n_sigma, lower, upper), n_sigma))
    return out


def deltas(experiment: str = "WA2025", predictions: tuple[str, ...] = tuple(SM_PREDICTIONS)) -> list[tuple[str, float, float]]:
    """Δa_μ = a_μ(exp) − a_μ(SM) and its error for one experimental value against each prediction.

    Parameters
    ----------
    experiment : str
        Key of :data:`calibration.theory.EXPERIMENTS` (default: the 2025 world average).
    predictions : tuple of str
        Keys of :data:`calibration.theory.SM_PREDICTIONS` (default: all).

    Returns
    -------
    list of (str, float, float)
        (prediction key, Δa_μ, error), the errors of experiment and prediction in quadrature.
    """
    if experiment not in EXPERIMENTS:
        raise ConfigError(f"experiment: unknown value {experiment!r}; expected one of {', '.join(EXPERIMENTS)}")
    out = []
    for key in predictions:
        if key not in SM_PREDICTIONS:
            raise ConfigError(f"prediction: unknown value {key!r}; expected one of {', '.join(SM_PREDICTIONS)}")
        out.append((key, *delta_amu(EXPERIMENTS[experiment], SM_PREDICTIONS[key])))
    return out
