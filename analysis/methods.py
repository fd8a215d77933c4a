"""The ω_a histogramming methods T, A, Q and R (docs/physics.md §3, §6), per-station and energy-binned fits.

- **T**: count positrons with E ≥ threshold (Poisson histogram).
- **A**: weight each positron by the asymmetry A(E) of its energy. A(E) is measured from the data
  by default (:func:`measure_asymmetry`: in each energy bin, a linear fit of the counts to
  c0·∫e^{−t/τ} + c1·∫e^{−t/τ}cos ψ + c2·∫e^{−t/τ}sin ψ with τ, ω, φ of a reference fit; A = c1/c0,
  the in-phase asymmetry), or taken from the Michel integral of ringsim
  (:func:`michel_asymmetry`, ideal acceptance, P = 1). Energy bins with A ≤ 0 get weight 0: the
  weighted histogram's normalisation must stay positive (Fermilab's A-method also cut at 1 GeV).
  The optimal weight is A(E) (Fisher information Σ A(E_i)², docs/physics.md §6); its overall scale is free.
- **Q**: weight each positron by its energy, no threshold (energy-integrated).
- **R**: split the positrons at random into four sets with probabilities ∝ 1, 1, e^{T/2τ}, e^{−T/2τ}
  (T = T_a = 2π/ω_ref, τ = γτ); histogram the last two at t − T/2 and t + T/2; V = sets 1 + 2,
  U = sets 3 + 4. R(t) = (V − U)/(V + U) ≈ A cos(ωt + φ) cancels the slow terms. Given n = V + U in
  a bin, V is binomial with p = μ_V/(μ_V + μ_U); :func:`fit_ratio` maximises this binomial likelihood
  (equivalently least squares of R with the variance (1 − R²)/n) with μ_V, μ_U the exact bin
  integrals of the full model at the shifted times; N0 cancels, and τ and k_loss (slow terms R
  cannot see) are fixed, by default at the values of a fit of V. A beam term at frequency ω_x
  survives in R only by the factor 1 − cos(ω_x T/2); the vertical-waist and vertical-betatron
  terms are held at their V-fit values when that factor is below ``R_SUPPRESSED`` (Fermilab's
  f_vw·T_a/2 ≈ 5.01 turns: the waist cancels in R almost completely).

Weighted histograms (A, Q, and any after pileup subtraction) are fitted by least squares with the
variance Σw² per bin.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import xlogy

from analysis.blinding import Blinder
from analysis.fitting import PENALTY, FitResult, errors_from_covariance, fit_wiggle, result_from_minimum, run_minuit, true_space, validated_histogram, window_slice
from analysis.models import INDEX, TERMS, BinnedModel, LossSpectrum, Model, five_parameter_binned, parse_model
from ringsim.errors import ConfigError, FitError, InputError

METHODS = ("T", "A", "Q", "R")
MIN_ASYMMETRY_ENTRIES = 1000.0  # energy bins with fewer entries in the window get no A-method weight
R_SUPPRESSED = 0.1  # a beam term whose R-method factor 1 − cos(ω T/2) is below this is fixed in R fits


@dataclass(frozen=True)
class AsymmetryWeights:
    """A(E) in energy bins, used as A-method weights (zero outside the bins and where A ≤ 0).

    Attributes
    ----------
    energy_edges_mev : numpy.ndarray
        Energy-bin edges in MeV.
    asymmetry : numpy.ndarray
        A in each bin (including the polarisation when measured).
    error : numpy.ndarray
        Its statistical error (zeros for the Michel calculation).
    source : str
        ``"fit"`` (measured) or ``"michel"``.
    """

    energy_edges_mev: np.ndarray
    asymmetry: np.ndarray
    error: np.ndarray
    source: str

    def weight(self, energy_mev) -> np.ndarray:
        """Weight max(A(E), 0) of each energy; 0 outside the binned range."""
        e = np.asarray(energy_mev, dtype=float)
        i = np.searchsorted(self.energy_edges_mev, e, side="right") - 1
        inside = (i >= 0) & (i < self.asymmetry.size)
        return np.where(inside, np.maximum(self.asymmetry[np.clip(i, 0, self.asymmetry.size - 1)], 0.0), 0.0)


def energy_bin_weights(method: str, energy_edges_mev, *, threshold_mev: float = 0.0, energy_max_mev: float = math.inf, asymmetry: AsymmetryWeights | None = None) -> np.ndarray:
    """Weight of each energy bin for a method applied to a time × energy histogram.

    T: 1 for bins with lower edge ≥ threshold (and upper edge ≤ ``energy_max_mev``); Q: the bin's
    centre energy for bins with lower edge ≥ threshold; A: max(A, 0) at the bin centre.
    """
    e = np.asarray(energy_edges_mev, dtype=float)
    lo, hi = e[:-1], e[1:]
    inside = (lo >= threshold_mev - 1e-9 * max(1.0, abs(threshold_mev))) & (hi <= energy_max_mev * (1 + 1e-12))
    if method == "T":
        return inside.astype(float)
    if method == "Q":
        return np.where(inside, 0.5 * (lo + hi), 0.0)
    if method == "A":
        if asymmetry is None:
            raise ConfigError("A-method: asymmetry weights are required")
        return np.where(inside, asymmetry.weight(0.5 * (lo + hi)), 0.0)
    raise ConfigError(f"method: {method!r} is not one of T, A, Q (R needs hits)")


def hit_weights(method: str, energy_mev, *, threshold_mev: float = 0.0, energy_max_mev: float = math.inf, asymmetry: AsymmetryWeights | None = None) -> np.ndarray:
    """Weight of each hit: T and R 1 inside [threshold, max); Q its energy above the threshold; A max(A(E), 0)."""
    e = np.asarray(energy_mev, dtype=float)
    inside = (e >= threshold_mev) & (e < energy_max_mev)
    if method in ("T", "R"):
        return inside.astype(float)
    if method == "Q":
        return np.where(inside, e, 0.0)
    if method == "A":
        if asymmetry is None:
            raise ConfigError("A-method: asymmetry weights are required")
        return np.where(inside, asymmetry.weight(e), 0.0)
    raise ConfigError(f"method: {method!r} is not one of {', '.join(METHODS)}")


def collapse_energy(counts2d, energy_weights) -> tuple[np.ndarray, np.ndarray]:
    """Weighted time histogram Σ_E w_E n_{t,E} from a time × energy histogram, and its variance Σ_E w_E² n_{t,E}."""
    n = np.asarray(counts2d, dtype=float)
    w = np.asarray(energy_weights, dtype=float)
    if n.ndim != 2 or w.shape != (n.shape[1],):
        raise InputError(f"method histogram: need a (time, energy) histogram and one weight per energy bin, got {n.shape}, {w.shape}")
    return n @ w, n @ (w * w)


def measure_asymmetry(counts2d, time_edges_us, energy_edges_mev, *, start_us: float, end_us: float, omega_rad_per_us: float, phi: float, tau_us: float) -> AsymmetryWeights:
    """A(E) in each energy bin from the data, with ω, φ and τ of a reference fit.

    Each energy bin's counts in the window are fitted by weighted linear least squares (two passes,
    weights 1/prediction) to c0 I0 + c1 Ic + c2 Is with I0, Ic, Is the bin integrals of
    e^{−t/τ}, e^{−t/τ}cos(ωt + φ), e^{−t/τ}sin(ωt + φ); A = c1/c0 is the asymmetry in phase with
    the reference (negative below A's zero crossing). Bins with < MIN_ASYMMETRY_ENTRIES entries get
    A = 0 with error ∞. Linear, so it never fails to converge.
    """
    n = np.asarray(counts2d, dtype=float)
    e_t = np.asarray(time_edges_us, dtype=float)
    window = window_slice(e_t, start_us, end_us)
    n = n[window]
    e = e_t[window.start : window.stop + 1]
    i0 = five_parameter_binned(e, 1.0, tau_us, 0.0, omega_rad_per_us, phi)
    ic = five_parameter_binned(e, 1.0, tau_us, 1.0, omega_rad_per_us, phi) - i0
    is_ = five_parameter_binned(e, 1.0, tau_us, 1.0, omega_rad_per_us, phi - 0.5 * math.pi) - i0
    design = np.stack([i0, ic, is_], axis=1)
    asym = np.zeros(n.shape[1])
    err = np.full(n.shape[1], math.inf)
    for k in range(n.shape[1]):
        y = n[:, k]
        if y.sum() < MIN_ASYMMETRY_ENTRIES:
            continue
        var = np.maximum(y, 1.0)
        for _ in range(2):
            x = design / np.sqrt(var)[:, None]
            cov = np.linalg.inv(x.T @ x)
            coef = cov @ (x.T @ (y / np.sqrt(var)))
            var = np.maximum(design @ coef, 1e-9)
        asym[k] = coef[1] / coef[0]
        grad = np.array([-coef[1] / coef[0] ** 2, 1.0 / coef[0], 0.0])
        err[k] = math.sqrt(grad @ cov @ grad)
    return AsymmetryWeights(np.asarray(energy_edges_mev, dtype=float), asym, err, "fit")


def michel_asymmetry(energy_edges_mev, gamma: float, muon_mass_mev: float) -> AsymmetryWeights:
    """A(E) of each energy bin from ringsim's Michel integral (boosted exactly, ideal acceptance, P = 1)."""
    from ringsim.decay import lab_fraction_and_asymmetry

    e = np.asarray(energy_edges_mev, dtype=float)
    asym = np.array([lab_fraction_and_asymmetry(gamma, lo, hi, muon_mass_mev)[1] for lo, hi in zip(e[:-1], e[1:])])
    return AsymmetryWeights(e, asym, np.zeros_like(asym), "michel")


def ratio_histograms(t_us, edges_us, half_period_us: float, weighting_tau_us: float, seed=None) -> tuple[np.ndarray, np.ndarray]:
    """V and U histograms of the R method from hit times (μs).

    Returns
    -------
    v, u : numpy.ndarray
        Counts of sets 1 + 2 at t, and of set 3 at t − T/2 plus set 4 at t + T/2.
    """
    if not (math.isfinite(half_period_us) and half_period_us > 0.0 and math.isfinite(weighting_tau_us) and weighting_tau_us > 0.0):
        raise ConfigError(f"R-method: need half period and weighting lifetime > 0, got {half_period_us!r}, {weighting_tau_us!r}")
    t = np.asarray(t_us, dtype=float)
    s = math.exp(half_period_us / weighting_tau_us)
    cumulative = np.cumsum([1.0, 1.0, s, 1.0 / s]) / (2.0 + s + 1.0 / s)
    subset = np.searchsorted(cumulative, np.random.default_rng(seed).uniform(size=t.size), side="right")
    shifted = np.where(subset == 2, t - half_period_us, np.where(subset == 3, t + half_period_us, t))
    v, _ = np.histogram(shifted[subset < 2], bins=edges_us)
    u, _ = np.histogram(shifted[subset >= 2], bins=edges_us)
    return v.astype(float), u.astype(float)


class BinomialRatioCost:
    """Binomial deviance of V given V + U, with p = p_v μ(t) / (p_v μ(t) + p_+ μ(t + T/2) + p_− μ(t − T/2))."""

    definition = "binomial_deviance"

    def __init__(self, v: np.ndarray, u: np.ndarray, binned: tuple[BinnedModel, BinnedModel, BinnedModel], probabilities: tuple[float, float, float]):
        self.v, self.u, self.binned, self.probabilities = v, u, binned, probabilities

    def _probability(self, p: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        (m0, j0), (mp, jp), (mm, jm) = (b.expected_and_jacobian(p, active) for b in self.binned)
        pv, pp, pm = self.probabilities
        a, b = pv * m0, pp * mp + pm * mm
        total = a + b
        jac = (pv * j0 * b[:, None] - a[:, None] * (pp * jp + pm * jm)) / (total**2)[:, None]
        return a / total, jac

    def _deviance(self, prob: np.ndarray) -> float:
        if not np.all((prob > 0.0) & (prob < 1.0)):
            return PENALTY
        n = np.maximum(self.v + self.u, 1e-300)  # empty bins contribute 0 (xlogy(0, ·) = 0)
        return 2.0 * float(np.sum(xlogy(self.v, self.v / (n * prob)) + xlogy(self.u, self.u / (n * (1.0 - prob)))))

    def value(self, p: np.ndarray) -> float:
        """Return the binomial deviance of the V and U histograms at the full parameter vector ``p``."""
        pv, pp, pm = self.probabilities
        a = pv * self.binned[0].expected(p)
        return self._deviance(a / (a + pp * self.binned[1].expected(p) + pm * self.binned[2].expected(p)))

    def value_and_gradient(self, p: np.ndarray, active: np.ndarray) -> tuple[float, np.ndarray]:
        """Return the deviance at ``p`` and its gradient with respect to the ``active`` full indices."""
        prob, jac = self._probability(p, active)
        if not np.all((prob > 0.0) & (prob < 1.0)):
            return PENALTY, np.zeros(active.size)
        return self._deviance(prob), -2.0 * (jac.T @ (self.v / prob - self.u / (1.0 - prob)))

    def response(self, p: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the expected R = 2p − 1, ∂p/∂θ and the weights n/(p(1 − p))."""
        prob, jac = self._probability(p, active)
        return 2.0 * prob - 1.0, jac, (self.v + self.u) / (prob * (1.0 - prob))


def fit_ratio(
    v,
    u,
    edges_us,
    model: str | Model = "5",
    *,
    start_us: float,
    end_us: float,
    omega_ref_rad_per_us: float,
    half_period_us: float,
    weighting_tau_us: float,
    tau_guess_us: float,
    blinder: Blinder | None = None,
    loss: LossSpectrum | None = None,
    frequencies_mhz: dict | None = None,
    start: dict | None = None,
    fixed: dict | None = None,
) -> FitResult:
    """R-method fit of V and U histograms (see :func:`ratio_histograms`) by the binomial likelihood.

    Without complete ``start`` values, V is first fitted alone with :func:`fit_wiggle` (automatic
    start values); its τ and k_loss, and the beam terms R suppresses (see the module notes), are
    then held fixed and N0 cancels. ``fixed`` overrides those choices. The result's ``expected_counts`` is the fitted R(t),
    ``chi2`` the binomial deviance.

    Raises
    ------
    InputError, ConfigError, FitError
        As :func:`fit_wiggle`; also V and U of different shapes.
    """
    model = parse_model(model) if isinstance(model, str) else model
    label = f"R-method fit (model {model.name})"
    v_all, e_all = validated_histogram(v, edges_us)
    u_all, _ = validated_histogram(u, edges_us)
    if not (math.isfinite(half_period_us) and half_period_us > 0.0 and math.isfinite(weighting_tau_us) and weighting_tau_us > 0.0):
        raise ConfigError(f"{label}: need half period and weighting lifetime > 0, got {half_period_us!r}, {weighting_tau_us!r}")
    fixed = true_space(fixed, blinder)  # a given R_ppm is blinded when blinder is set
    start = true_space(start, blinder)
    if not set(model.names) <= set(start) | set(fixed):
        pre = fit_wiggle(
            v_all,
            e_all,
            model,
            start_us=start_us,
            end_us=end_us,
            omega_ref_rad_per_us=omega_ref_rad_per_us,
            tau_guess_us=tau_guess_us,
            loss=loss,
            frequencies_mhz=frequencies_mhz,
            fixed={k: x for k, x in fixed.items() if k != "N0"},
        )
        start = pre.params | start
        slow = ["N0", "tau_us"] + (["k_loss"] if "k_loss" in model.names else [])
        for term in ("vw", "y"):
            if term in model.terms and 1.0 - math.cos(pre.params[f"omega_{term}"] * half_period_us) < R_SUPPRESSED:
                slow += list(TERMS[term])
        fixed = {k: pre.params[k] for k in slow} | fixed
    fixed.setdefault("N0", start.get("N0", 1.0))
    unknown = sorted((set(fixed) | set(start)) - set(model.names))
    if unknown:
        raise ConfigError(f"{label}: model has no parameter(s) {', '.join(unknown)}")
    window = window_slice(e_all, start_us, end_us)
    vv, uu = v_all[window], u_all[window]
    e = e_all[window.start : window.stop + 1]
    n_free = model.n_parameters - len(fixed)
    if float(np.sum(vv + uu)) < 100.0 or np.count_nonzero(vv + uu) < 2 * n_free:
        raise FitError(f"{label}: window {start_us}..{end_us} us holds too few entries for {n_free} free parameters")
    s = math.exp(half_period_us / weighting_tau_us)
    total = 2.0 + s + 1.0 / s
    binned = tuple(BinnedModel(model, e, omega_ref_rad_per_us, loss, shift) for shift in (0.0, half_period_us, -half_period_us))
    cost = BinomialRatioCost(vv, uu, binned, (2.0 / total, s / total, 1.0 / (s * total)))
    values = start | fixed
    best, free_names, covariance, fval = run_minuit(cost, model, values, [set(fixed)], label)
    active = np.array([INDEX[k] for k in free_names], dtype=np.int64)
    ratio, _, _ = cost.response(model.full_vector(best), active)
    return result_from_minimum(
        best,
        errors_from_covariance(model.names, free_names, covariance),
        free_names,
        covariance,
        fval,
        blinder,
        omega_ref_rad_per_us,
        ndf=int(vv.size - len(free_names)),
        edges_us=e,
        n_entries=float(np.sum(vv + uu)),
        method="R",
        model=model,
        expected_counts=ratio,
        chi2_definition=cost.definition,
        fixed=tuple(k for k in model.names if k in fixed),
    )


def energy_binned_fits(counts2d, time_edges_us, energy_edges_mev, fit: Callable[[np.ndarray, np.ndarray], FitResult]) -> list[tuple[float, float, FitResult]]:
    """Fit each energy bin's time histogram with ``fit(counts, edges_us)``: list of (lo, hi, result).

    Raises
    ------
    FitError
        Naming the energy bin whose fit failed.
    """
    n = np.asarray(counts2d, dtype=float)
    e = np.asarray(energy_edges_mev, dtype=float)
    out = []
    for k in range(n.shape[1]):
        try:
            out.append((float(e[k]), float(e[k + 1]), fit(n[:, k], np.asarray(time_edges_us, dtype=float))))
        except FitError as exc:
            raise FitError(f"energy bin {e[k]:g}-{e[k + 1]:g} MeV: {exc}") from None
    return out


def per_station_fits(calo, fit_selection: Callable[[np.ndarray], FitResult]) -> dict[int, FitResult]:
    """Fit each calorimeter's hits: ``fit_selection(mask)`` for the mask of each station in ``calo``.

    Raises
    ------
    FitError
        Naming the station whose fit failed.
    """
    c = np.asarray(calo)
    out = {}
    for station in np.unique(c).tolist():
        try:
            out[int(station)] = fit_selection(c == station)
        except FitError as exc:
            raise FitError(f"station {station}: {exc}") from None
    return out
