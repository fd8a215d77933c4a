"""Fits of decay-time histograms with iminuit: binned extended Poisson likelihood or least squares.

The fit is always done in the true parameterisation ω = ω_ref(1 + R·1e-6), R in ppm; a
:class:`~analysis.blinding.Blinder` only changes what is reported (R_blind = R_true + ΔR and the
blinded ω_ref(1 + R_blind·1e-6)), so blinded and unblinded fits are numerically identical.

:func:`fit_wiggle` fits any :mod:`analysis.models` model with the compiled model and its analytic
gradient: the extended binned Poisson likelihood for counts, the scaled Poisson likelihood (or least
squares) for weighted histograms. Without start values it finds its own: a five-parameter fit, then the FFT of its
residuals locates the CBO, vertical-waist and vertical-betatron frequencies near the expected ones,
whose amplitudes and phases are seeded by linear least squares on the relative residuals; the
parameters are then released in stages (shapes fixed, then all free). Errors and correlations come
from the Fisher information J^T V^{-1} J at the minimum (the expected Hessian; V = μ for the Poisson
likelihood, sμ for the scaled one, the given variances for least squares). Every failure raises a one-line FitError.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from iminuit import Minuit
from iminuit.util import IMinuitWarning
from scipy.special import xlogy

from analysis.blinding import Blinder
from analysis.models import CBO_OSCILLATING, INDEX, NEUTRAL, BinnedModel, LossSpectrum, Model, parse_model
from ringsim.errors import ConfigError, FitError, InputError

MIN_BINS_PER_PARAMETER = 2  # the window needs at least this many non-empty bins per free parameter
MIN_ENTRIES = 100.0


@dataclass
class FitResult:
    """Outcome of an ω_a fit.

    Attributes
    ----------
    omega_a : float
        ω_a in rad/μs; the blinded value ω_ref(1 + R_ppm·1e-6) when ``blinded``.
    omega_a_err : float
        Standard error of ω_a in rad/μs (HESSE).
    R_ppm : float
        Fitted R in ppm relative to ω_ref (blinded when ``blinded``).
    blinded : bool
        Whether ``R_ppm`` and ``omega_a`` carry the blinding offset.
    chi2 : float
        Poisson deviance 2Σ[μ − n + n ln(n/μ)] at the minimum (not Pearson's χ²).
    ndf : int
        Number of fitted bins minus number of free parameters.
    params, errors : dict
        Parameter name → value and → HESSE error (R_ppm in place of ω; N0 in counts per μs).
    correlation : dict
        Parameter name → parameter name → correlation coefficient.
    start_us, end_us : float
        Lower edge of the first and upper edge of the last fitted bin, in μs.
    n_entries : float
        Sum of the counts in the fitted bins.
    method : str
        Histogramming method the counts came from (T, A, Q or R).
    model : str
        Name of the fit function.
    expected_counts : numpy.ndarray
        Fitted expectation per bin of the window (true-space model; kept out of repr and
        :meth:`to_dict`), for plots and residuals.
    chi2_definition : str
        ``"poisson_deviance"``, ``"scaled_poisson_deviance"``, ``"least_squares"`` or
        ``"binomial_deviance"``.
    fixed : tuple of str
        Parameters held fixed (error 0, absent from the correlation matrix).
    covariance : numpy.ndarray or None
        Covariance of the free parameters (order of ``correlation``), not in :meth:`to_dict`.
    omega_sensitivity : numpy.ndarray or None
        ∂ω_a/∂n_b in rad/μs per unit content of each bin of the window (linear response of the
        fit), used for correlated-sample uncertainties; not in :meth:`to_dict`.
    """

    omega_a: float
    omega_a_err: float
    R_ppm: float
    blinded: bool
    chi2: float
    ndf: int
    params: dict
    errors: dict
    correlation: dict
    start_us: float
    end_us: float
    n_entries: float
    method: str
    model: str
    expected_counts: np.ndarray = field(repr=False, compare=False)
    chi2_definition: str = "poisson_deviance"
    fixed: tuple[str, ...] = ()
    covariance: np.ndarray | None = field(default=None, repr=False, compare=False)
    omega_sensitivity: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        """JSON-able dictionary with the command-line contract keys (``omega_a``, …, ``errors``)."""
        return {
            "omega_a": self.omega_a,
            "omega_a_err": self.omega_a_err,
            "omega_a_unit": "rad/us",
            "R_ppm": self.R_ppm,
            "blinded": self.blinded,
            "chi2": self.chi2,
            "chi2_definition": self.chi2_definition,
            "ndf": self.ndf,
            "params": dict(self.params),
            "errors": dict(self.errors),
            "correlation": {k: dict(v) for k, v in self.correlation.items()},
            "start_us": self.start_us,
            "end_us": self.end_us,
            "n_entries": self.n_entries,
            "method": self.method,
            "model": self.model,
            "fixed": list(self.fixed),
        }


def validated_histogram(counts, edges_us, allow_negative: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Return counts and edges (μs) as float arrays; InputError unless 1-D, one more edge, finite, counts ≥ 0 (unless ``allow_negative``), edges increasing."""
    n = np.asarray(counts, dtype=float)
    e = np.asarray(edges_us, dtype=float)
    if n.ndim != 1 or e.ndim != 1 or e.size != n.size + 1:
        raise InputError(f"fit: need 1-D counts and one more edge than counts, got shapes {n.shape} and {e.shape}")
    if not (np.all(np.isfinite(n)) and (allow_negative or np.all(n >= 0.0))):
        raise InputError("fit: counts must be finite and non-negative" + (" (negative bins need their variances)" if not allow_negative else ""))
    if not (np.all(np.isfinite(e)) and np.all(np.diff(e) > 0.0)):
        raise InputError("fit: edges_us must be finite and strictly increasing")
    return n, e


def window_slice(e: np.ndarray, start_us: float, end_us: float) -> slice:
    """Slice of the bins lying entirely inside [start_us, end_us] (edges within 1e-6 of a bin count as inside)."""
    if not (math.isfinite(start_us) and math.isfinite(end_us) and end_us > start_us):
        raise InputError(f"fit: need finite start_us < end_us, got {start_us!r}, {end_us!r}")
    tol = 1e-6 * float(np.min(np.diff(e)))
    i0 = int(np.searchsorted(e, start_us - tol, side="left"))
    i1 = int(np.searchsorted(e, end_us + tol, side="right")) - 1
    return slice(i0, max(i0, i1))


def _five_parameter_start(n: np.ndarray, e: np.ndarray, omega_ref_rad_per_us: float, tau_guess_us: float) -> dict:
    """Start values: τ from a weighted fit of log rates, N0 from the sum, A and φ by projection."""
    width = np.diff(e)
    centre = 0.5 * (e[:-1] + e[1:])
    filled = n > 0.0
    slope, _ = np.polyfit(centre[filled], np.log(n[filled] / width[filled]), 1, w=np.sqrt(n[filled]))
    tau = -1.0 / slope if slope < 0.0 else math.inf
    if not 0.1 * tau_guess_us < tau < 10.0 * tau_guess_us:
        tau = tau_guess_us
    shape = -tau * np.exp(-e[:-1] / tau) * np.expm1(-width / tau)  # ∫ e^{-t/τ} dt over each bin
    n0 = float(np.sum(n) / np.sum(shape))
    mu0 = n0 * shape
    phase = omega_ref_rad_per_us * centre
    basis = np.stack([np.cos(phase), np.sin(phase)], axis=1) * np.sqrt(mu0)[:, None]
    (c, s), *_ = np.linalg.lstsq(basis, (n / mu0 - 1.0) * np.sqrt(mu0), rcond=None)
    return {
        "N0": n0,
        "tau_us": tau,
        "A": min(math.hypot(c, s), 0.9),
        "R_ppm": 0.0,
        "phi": math.atan2(-s, c),
    }


def fit_five_parameter(
    counts,
    edges_us,
    start_us: float,
    end_us: float,
    omega_ref_rad_per_us: float,
    tau_guess_us: float,
    blinder: Blinder | None = None,
    *,
    method: str = "T",
) -> FitResult:
    """Fit N(t) = N0 e^{-t/τ}[1 + A cos(ωt + φ)], ω = ω_ref(1 + R·1e-6), to a time histogram.

    The 5-parameter case of :func:`fit_wiggle` (extended binned Poisson likelihood, bin-integrated
    model, MIGRAD).

    Parameters
    ----------
    counts : array_like
        Entries per bin (non-negative).
    edges_us : array_like
        Bin edges in μs, one more than ``counts``.
    start_us, end_us : float
        Fit window in μs; the bins lying entirely inside it are fitted.
    omega_ref_rad_per_us : float
        Reference frequency ω_ref in rad/μs (start value of ω; R is measured from it).
    tau_guess_us : float
        Expected γτ in μs; used as start value when the log-rate fit gives a lifetime more than
        a factor 10 away from it (or no decay at all).
    blinder : Blinder, optional
        Report blinded R and ω_a; ``None`` means unblinded. Its ω_ref must equal
        ``omega_ref_rad_per_us``.
    method : str
        Histogramming method recorded in the result.

    Returns
    -------
    FitResult
        The result and the errors of :func:`fit_wiggle` with model ``"5"``.
    """
    return fit_wiggle(counts, edges_us, "5", start_us=start_us, end_us=end_us, omega_ref_rad_per_us=omega_ref_rad_per_us, tau_guess_us=tau_guess_us, blinder=blinder, method=method)


LIFETIMES = ("tau_us", "tau_cbo_us", "tau_vw_us", "tau_y_us", "cbo_tau_A_us", "cbo_tau_B_us")
# held fixed in the first stage of an automatically started fit
SHAPE_PARAMETERS = ("omega_cbo", "tau_cbo_us", "c_cbo", "cbo_dA_rad", "cbo_tau_A_us", "cbo_dB_rad", "cbo_tau_B_us", "omega_vw", "tau_vw_us", "omega_y", "tau_y_us")
ENVELOPE_GRID_US = (10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0)  # envelope lifetimes tried for the seeds
FFT_PADDING = 8  # zero padding of the residual FFT (finer frequency grid)
HINT_HALF_WIDTH = 0.1  # FFT peak search: ± this fraction around an expected frequency
PEAK_POWER_OVER_MEDIAN = 12.0  # a peak weaker than this × the median FFT power is noise: use the hint
CBO_T_START = {"cbo_dA_rad": 0.0, "cbo_tau_A_us": 80.0, "cbo_dB_rad": 0.0, "cbo_tau_B_us": 8.0}  # τ_A, τ_B: docs/physics.md §3 typical
PENALTY = 1e30  # cost returned where the model is not positive
COSTS = ("poisson", "scaled_poisson", "least_squares")


class PoissonCost:
    """Poisson deviance 2Σ[m − n + n ln(n/m)], m = μ/s, of counts n against a :class:`BinnedModel` (−2 ln L + const).

    ``scale`` s (per bin, or 1) turns the model's μ into the mean of the counts, for the scaled
    Poisson likelihood of weighted histograms (:class:`ScaledPoissonCost`).
    """

    definition = "poisson_deviance"

    def __init__(self, counts: np.ndarray, binned: BinnedModel, scale: np.ndarray | float = 1.0):
        self.counts = counts
        self.binned = binned
        self.scale = scale

    def _deviance(self, mu: np.ndarray) -> float:
        if not np.all(mu > 0.0):
            return PENALTY
        m, n = mu / self.scale, self.counts
        return 2.0 * float(np.sum(m - n + xlogy(n, n / m)))

    def value(self, p: np.ndarray) -> float:
        """Return the cost at the full parameter vector ``p``."""
        return self._deviance(self.binned.expected(p))

    def value_and_gradient(self, p: np.ndarray, active: np.ndarray) -> tuple[float, np.ndarray]:
        """Return the cost and its gradient in the ``active`` parameters."""
        mu, jac = self.binned.expected_and_jacobian(p, active)
        if not np.all(mu > 0.0):
            return PENALTY, np.zeros(active.size)
        return self._deviance(mu), 2.0 * (jac.T @ ((1.0 - self.counts * self.scale / mu) / self.scale))

    def response(self, p: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return (expected, Jacobian, inverse variance per bin) at ``p``; information = J^T diag(w) J."""
        mu, jac = self.binned.expected_and_jacobian(p, active)
        return mu, jac, 1.0 / (self.scale * mu)


class LeastSquaresCost:
    """χ² = Σ (y − μ)²/σ² with fixed variances σ² per bin (weighted or pileup-subtracted histograms)."""

    definition = "least_squares"

    def __init__(self, values: np.ndarray, variance: np.ndarray, binned: BinnedModel):
        self.values = values
        self.inverse_variance = 1.0 / variance
        self.binned = binned

    def value(self, p: np.ndarray) -> float:
        """Return the cost at the full parameter vector ``p``."""
        r = self.values - self.binned.expected(p)
        return float(np.sum(r * r * self.inverse_variance))

    def value_and_gradient(self, p: np.ndarray, active: np.ndarray) -> tuple[float, np.ndarray]:
        """Return the cost and its gradient in the ``active`` parameters."""
        mu, jac = self.binned.expected_and_jacobian(p, active)
        r = (self.values - mu) * self.inverse_variance
        return float(np.sum(r * (self.values - mu))), -2.0 * (jac.T @ r)

    def response(self, p: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return (expected, Jacobian, inverse variance per bin) at ``p`` for the ``active`` parameters."""
        mu, jac = self.binned.expected_and_jacobian(p, active)
        return mu, jac, self.inverse_variance


class ScaledPoissonCost(PoissonCost):
    """Scaled Poisson likelihood of a weighted histogram (Bohm & Zech, NIM A 748 (2014) 1).

    Each bin with content y = Σw and variance v = Σw² is treated as ñ = y/s effective Poisson counts
    with mean μ/s, s = v/y; bins without a positive content and variance get the median s of the
    others, and negative contents (possible after pileup subtraction) count as ñ = 0. Exact for
    equal weights, and free of the low-count bias of least squares with data variances.
    """

    definition = "scaled_poisson_deviance"

    def __init__(self, values: np.ndarray, variance: np.ndarray, binned: BinnedModel):
        good = (values > 0.0) & (variance > 0.0)
        typical = float(np.median(variance[good] / values[good])) if np.any(good) else 1.0
        scale = np.where(good, variance / np.where(good, values, 1.0), typical)
        super().__init__(np.maximum(values, 0.0) / scale, binned, scale)


class _Objective:
    """Minuit's view of a cost: the model's parameters in, value and gradient out.

    Values alone skip the Jacobian (line searches); a gradient at the last point reuses nothing but
    costs one evaluation with the Jacobian.
    """

    def __init__(self, cost, template: np.ndarray, index: np.ndarray):
        self.cost, self.template, self.index = cost, template, index
        self._x = None
        self._result = (0.0, np.zeros(index.size))

    def full(self, x) -> np.ndarray:
        p = self.template.copy()
        p[self.index] = x
        return p

    def value(self, x) -> float:
        x = np.asarray(x, dtype=float)
        if self._x is not None and np.array_equal(x, self._x):
            return self._result[0]
        return self.cost.value(self.full(x)) if np.all(np.isfinite(x)) else PENALTY

    def gradient(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        if self._x is None or not np.array_equal(x, self._x):
            if np.all(np.isfinite(x)):
                self._result = self.cost.value_and_gradient(self.full(x), self.index)
            else:
                self._result = (PENALTY, np.zeros(self.index.size))
            self._x = x.copy()
        return self._result[1]


def _covariance(information: np.ndarray, names: Sequence[str], label: str) -> np.ndarray:
    """Inverse of a Fisher information matrix, via a scaled Cholesky factorisation; FitError if singular."""
    scale = np.sqrt(np.abs(np.diag(information)))
    if not np.all(np.isfinite(information)) or np.any(scale == 0.0):
        flat = [k for k, s in zip(names, scale) if s == 0.0]
        raise FitError(f"{label}: the data do not constrain {', '.join(flat) or 'the parameters'}; fix them or use a smaller model")
    try:
        chol = np.linalg.cholesky(information / np.outer(scale, scale))
    except np.linalg.LinAlgError:
        raise FitError(f"{label}: the Fisher information is not positive definite (degenerate parameters); fix some or use a smaller model") from None
    inv = np.linalg.inv(chol)
    return (inv.T @ inv) / np.outer(scale, scale)


def _steps(cost, objective: _Objective, x: np.ndarray, free: np.ndarray) -> np.ndarray:
    """Return initial step sizes: Fisher errors at ``x`` where the information allows, else 1 % (or 0.01)."""
    fallback = np.where(x != 0.0, 1e-2 * np.abs(x), 1e-2)
    _, jac, w = cost.response(objective.full(x), objective.index[free])
    info = (jac.T * w) @ jac
    try:
        err = np.sqrt(np.diag(_covariance(info, [""] * int(free.sum()), "")))
    except FitError:
        return fallback
    steps = fallback.copy()
    steps[free] = np.where(np.isfinite(err) & (err > 0.0), err, fallback[free])
    return steps


def run_minuit(cost, model: Model, values: dict, stages: Sequence[set[str]], label: str) -> tuple[dict, list[str], np.ndarray, float]:
    """Minimise ``cost`` over the model's parameters with MIGRAD, releasing parameters in stages.

    MIGRAD runs with strategy 0: the covariance is not Minuit's but the Fisher information at the
    minimum, so Minuit's own Hessian at strategy ≥ 1 (n² calls) would be wasted.

    Parameters
    ----------
    cost
        Object with ``value(p_full)`` and ``value_and_gradient(p_full, active)`` (on a −2 ln L or χ²
        scale) and ``response(p_full, active) -> (expected, jacobian, inverse_variance)``.
    model : Model
        The fit function.
    values : dict
        Start value of every model parameter.
    stages : sequence of set of str
        Parameters held fixed in each successive MIGRAD; the last set is the fixed set of the result.
    label : str
        Prefix of error messages.

    Returns
    -------
    values, free_names, covariance, fval
        Best values of all model parameters, the free ones, their covariance (Fisher information at
        the minimum) and the cost there.

    Raises
    ------
    FitError
        The last MIGRAD is invalid, the covariance is singular, or a lifetime ends within half an
        error of zero.
    """
    names = list(model.names)
    index = model.index
    template = model.full_vector(values)
    objective = _Objective(cost, template, index)
    x = np.array([values[k] for k in names], dtype=float)
    m = Minuit(objective.value, x, grad=objective.gradient, name=names)
    m.errordef = Minuit.LEAST_SQUARES  # costs are on the −2 ln L (or χ²) scale
    m.strategy = 0
    for k in names:
        if k in LIFETIMES or k == "N0":
            m.limits[k] = (0.0, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IMinuitWarning)
        for i, fixed in enumerate(stages):
            free = np.array([k not in fixed for k in names])
            for k, f in zip(names, free):
                m.fixed[k] = not f
            m.errors = _steps(cost, objective, np.array(m.values), free)
            m.migrad()
            last = i == len(stages) - 1
            if last and not (m.valid and m.fmin.is_valid):
                raise FitError(f"{label}: MIGRAD did not converge (edm={m.fmin.edm:.3g}, fval={m.fval:.6g}, calls={m.nfcn})")
    best = {k: float(v) for k, v in zip(names, m.values)}
    free_names = [k for k in names if k not in stages[-1]]
    active = np.array([INDEX[k] for k in free_names], dtype=np.int64)
    _, jac, w = cost.response(objective.full(np.array(m.values)), active)
    covariance = _covariance((jac.T * w) @ jac, free_names, label)
    errors = np.sqrt(np.diag(covariance))
    low = [k for k, err in zip(free_names, errors) if (k in LIFETIMES or k == "N0") and best[k] < 0.5 * err]
    if low:
        raise FitError(
            f"{label}: parameter(s) {', '.join(low)} ended within half an error of zero: the data do not show that term (e.g. no CBO in a fast-mode run with fastmodel.cbo_amplitude_m = 0); fix it with --fix NAME=VALUE or fit a smaller model"
        )
    return best, free_names, covariance, float(m.fval)


def _linear_seed(residual: np.ndarray, weight: np.ndarray, columns: list[np.ndarray]) -> tuple[np.ndarray, float]:
    """Weighted linear least squares of ``residual`` on ``columns``: coefficients and χ² reduction."""
    x = np.stack(columns, axis=1) * np.sqrt(weight)[:, None]
    y = residual * np.sqrt(weight)
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    return coef, float(y @ y - np.sum((y - x @ coef) ** 2))


def _amplitude_phase(a: float, b: float) -> tuple[float, float]:
    """Return (A, φ) with A cos(x + φ) = a cos x + b sin x."""
    return math.hypot(a, b), math.atan2(-b, a)


def _peak_frequency_mhz(pulls: np.ndarray, step_us: float, lo_mhz: float, hi_mhz: float) -> float | None:
    """Frequency (MHz) of the largest FFT magnitude of ``pulls`` in [lo, hi], parabolically refined; None if there is no peak above PEAK_POWER_OVER_MEDIAN × the median power."""
    n_pad = FFT_PADDING * pulls.size
    spectrum = np.abs(np.fft.rfft(pulls - pulls.mean(), n=n_pad))
    freq = np.fft.rfftfreq(n_pad, d=step_us)
    inside = np.flatnonzero((freq >= lo_mhz) & (freq <= hi_mhz))
    if inside.size < 3:
        return None
    k = int(inside[np.argmax(spectrum[inside])])
    if spectrum[k] ** 2 < PEAK_POWER_OVER_MEDIAN * np.median(spectrum**2):
        return None
    if 0 < k < spectrum.size - 1:
        y0, y1, y2 = np.log(spectrum[k - 1 : k + 2] + 1e-300)
        denom = y0 - 2.0 * y1 + y2
        shift = 0.5 * (y0 - y2) / denom if denom < 0.0 else 0.0
        return float(freq[k] + shift * (freq[1] - freq[0]))
    return float(freq[k])


def _search_bands(hints: dict[str, float]) -> dict[str, tuple[float, float]]:
    """FFT search band of each expected frequency: ± HINT_HALF_WIDTH, cut halfway to its neighbours."""
    bands = {}
    for key, f in hints.items():
        half = HINT_HALF_WIDTH * f
        for other, g in hints.items():
            if other != key and g != f:
                half = min(half, 0.5 * abs(g - f))
        bands[key] = (f - half, f + half)
    return bands


def seed_beam_terms(counts: np.ndarray, edges_us: np.ndarray, variance: np.ndarray, base: dict, model: Model, omega_ref_rad_per_us: float, frequencies_mhz: dict) -> dict:
    """Start values of the beam terms from the residuals of a five-parameter fit.

    The FFT of the pulls (n − μ5)/σ locates the CBO, vertical-waist and vertical-betatron
    frequencies within ± HINT_HALF_WIDTH of ``frequencies_mhz`` (keys ``cbo``, ``vw``, ``y``, MHz);
    each group's amplitudes and phases then come from a weighted linear fit of the relative
    residual n/μ5 − 1 to its linearised terms, for the envelope lifetime of ENVELOPE_GRID_US that
    explains most of it.

    Returns
    -------
    dict
        Start values of every non-base parameter of ``model``.
    """
    base_model = parse_model("5")
    mu5 = BinnedModel(base_model, edges_us, omega_ref_rad_per_us).expected(base_model.full_vector(base))
    centre = 0.5 * (edges_us[:-1] + edges_us[1:])
    step = float(np.median(np.diff(edges_us)))
    residual = counts / mu5 - 1.0
    weight = mu5**2 / variance
    pulls = (counts - mu5) / np.sqrt(variance)
    groups = []
    if set(CBO_OSCILLATING) & set(model.terms):
        groups.append("cbo")
    groups += [g for g in ("vw", "y") if g in model.terms]
    missing = [g for g in groups if g not in frequencies_mhz]
    if missing:
        raise ConfigError(f"fit model {model.name}: give the expected frequency of {', '.join(missing)} (MHz) to seed the fit")
    bands = _search_bands({g: float(frequencies_mhz[g]) for g in groups})
    asym = base["A"]
    psi = omega_ref_rad_per_us * (1.0 + base["R_ppm"] * 1e-6) * centre + base["phi"]
    wiggle = 1.0 + asym * np.cos(psi)
    seeds = {}
    for group in groups:
        f = _peak_frequency_mhz(pulls, step, *bands[group]) or float(frequencies_mhz[group])
        omega = 2.0 * math.pi * f
        if group == "cbo":
            parts = [t for t in ("cbo_n", "cbo_a", "cbo_phi", "cbo2") if t in model.terms]
        else:
            parts = [group]

        def columns(tau, omega=omega, parts=parts):
            env = np.exp(-centre / tau)
            th = omega * centre
            cols = {
                "cbo_n": [env * np.cos(th), env * np.sin(th)],
                "cbo_a": [asym * env * np.cos(psi) * np.cos(th) / wiggle, asym * env * np.cos(psi) * np.sin(th) / wiggle],
                "cbo_phi": [-asym * env * np.sin(psi) * np.cos(th) / wiggle, -asym * env * np.sin(psi) * np.sin(th) / wiggle],
                "cbo2": [env**2 * np.cos(2 * th), env**2 * np.sin(2 * th)],
                "vw": [env * np.cos(th), env * np.sin(th)],
                "y": [env * np.cos(th), env * np.sin(th)],
            }
            return [c for part in parts for c in cols[part]]

        tried = [(tau, *_linear_seed(residual, weight, columns(tau))) for tau in ENVELOPE_GRID_US]
        tau, coef, _ = max(tried, key=lambda item: item[2])
        residual = residual - np.stack(columns(tau), axis=1) @ coef
        names = {
            "cbo_n": ("A_cbo_N", "phi_cbo_N"),
            "cbo_a": ("A_cbo_A", "phi_cbo_A"),
            "cbo_phi": ("A_cbo_phi", "phi_cbo_phi"),
            "cbo2": ("A_2cbo", "phi_2cbo"),
            "vw": ("A_vw", "phi_vw"),
            "y": ("A_y", "phi_y"),
        }
        for j, part in enumerate(parts):
            amp, phase = _amplitude_phase(coef[2 * j], coef[2 * j + 1])
            seeds[names[part][0]], seeds[names[part][1]] = amp, phase
        if group == "cbo":
            seeds["omega_cbo"], seeds["tau_cbo_us"] = omega, tau
        else:
            seeds[f"omega_{group}"], seeds[f"tau_{group}_us"] = omega, tau
    seeds |= {"c_cbo": 0.0, "k_loss": 0.0} | CBO_T_START
    return {k: seeds[k] for k in model.names if k not in base}


def true_space(values: dict | None, blinder: Blinder | None) -> dict:
    """Return fixed or start values in the fit's true parameterisation: a given R_ppm is a blinded R when ``blinder`` is set."""
    values = dict(values or {})
    if blinder is not None and "R_ppm" in values:
        values["R_ppm"] = blinder.true_r(values["R_ppm"])
    return values


def _validated_variance(variance, shape: tuple[int, ...]) -> np.ndarray:
    v = np.asarray(variance, dtype=float)
    if v.shape != shape:
        raise InputError(f"fit: variance has shape {v.shape}, expected one per bin {shape}")
    if not (np.all(np.isfinite(v)) and np.all(v >= 0.0)):
        raise InputError("fit: variances must be finite and non-negative")
    return v


def fit_wiggle(
    counts,
    edges_us,
    model: str | Model = "5",
    *,
    start_us: float,
    end_us: float,
    omega_ref_rad_per_us: float,
    tau_guess_us: float,
    variance=None,
    blinder: Blinder | None = None,
    method: str = "T",
    loss: LossSpectrum | None = None,
    frequencies_mhz: dict | None = None,
    start: dict | None = None,
    fixed: dict | None = None,
    cost: str | None = None,
) -> FitResult:
    """Fit a model of :mod:`analysis.models` to a time histogram.

    Parameters
    ----------
    counts : array_like
        Bin contents: counts (Poisson likelihood) or, with ``variance``, a weighted histogram (A-
        and Q-method sums, pileup-subtracted counts).
    edges_us : array_like
        Bin edges in μs, one more than ``counts``.
    model : str or Model
        Preset or combination (see :func:`analysis.models.parse_model`).
    start_us, end_us : float
        Fit window in μs; the bins lying entirely inside it are fitted.
    omega_ref_rad_per_us : float
        ω_ref in rad/μs; R is measured from it.
    tau_guess_us : float
        Expected γτ in μs (start value if the data's own estimate is off by more than 10×).
    variance : array_like, optional
        Variance of each bin (Σw² for weighted histograms, plus the pileup histogram's variance
        after pileup subtraction); ``None`` selects the extended binned Poisson likelihood. An empty
        bin (content and variance 0) gets the variance of one typical entry, the median Σw²/|Σw|.
    blinder : Blinder, optional
        Report blinded R and ω_a.
    method : str
        Recorded in the result.
    loss : LossSpectrum, optional
        Lost-muon spectrum, required by models with the ``loss`` term.
    frequencies_mhz : dict, optional
        Expected beam frequencies (keys ``cbo``, ``vw``, ``y``) for the automatic start values, e.g.
        from :func:`analysis.models.beam_frequencies_mhz`.
    start : dict, optional
        Start values; parameters not given are found automatically. When all are given the fit is
        a single MIGRAD with every non-fixed parameter free.
    fixed : dict, optional
        Parameters held at the given values. In ``start`` and ``fixed`` R_ppm is the reported R:
        a blinded R when ``blinder`` is given (see :func:`true_space`).
    cost : str, optional
        ``"poisson"`` (the default without ``variance``), ``"scaled_poisson"`` (the default with
        it, see :class:`ScaledPoissonCost`) or ``"least_squares"`` (χ² with the given variances).

    Returns
    -------
    FitResult

    Raises
    ------
    InputError
        Malformed histogram, variance or window.
    ConfigError
        Bad ω_ref or τ guess, unknown model or cost, unknown fixed parameter, missing loss
        spectrum or frequency hint, a blinder for another ω_ref.
    FitError
        Too little data in the window, no convergence, a singular covariance.
    """
    model = parse_model(model) if isinstance(model, str) else model
    label = f"{method}-method fit (model {model.name})"
    n_all, e_all = validated_histogram(counts, edges_us, allow_negative=variance is not None)
    var_all = None if variance is None else _validated_variance(variance, n_all.shape)
    if not (math.isfinite(omega_ref_rad_per_us) and omega_ref_rad_per_us > 0.0):
        raise ConfigError(f"{label}: omega_ref_rad_per_us must be finite and > 0, got {omega_ref_rad_per_us!r}")
    if not (math.isfinite(tau_guess_us) and tau_guess_us > 0.0):
        raise ConfigError(f"{label}: tau_guess_us must be finite and > 0, got {tau_guess_us!r}")
    if blinder is not None and not math.isclose(blinder.omega_ref_rad_per_us, omega_ref_rad_per_us, rel_tol=1e-12):
        raise ConfigError(f"{label}: blinder omega_ref {blinder.omega_ref_rad_per_us!r} differs from omega_ref_rad_per_us {omega_ref_rad_per_us!r}")
    fixed = true_space(fixed, blinder)
    start = true_space(start, blinder)
    unknown = sorted(set(fixed) - set(model.names)) + sorted(set(start) - set(model.names))
    if unknown:
        raise ConfigError(f"{label}: model has no parameter(s) {', '.join(unknown)}; it has {', '.join(model.names)}")
    if "loss" in model.terms and loss is None:
        raise ConfigError(f"{label}: the loss term needs a lost-muon spectrum")
    window = window_slice(e_all, start_us, end_us)
    # a weighted histogram with negative bins in the window (e.g. after pileup subtraction) is fitted by least squares
    cost_name = cost or ("poisson" if variance is None else "scaled_poisson" if np.all(n_all[window] >= 0.0) else "least_squares")
    if cost_name not in COSTS:
        raise ConfigError(f"{label}: unknown cost {cost_name!r}; costs: {', '.join(COSTS)}")
    if (cost_name == "poisson") != (variance is None):
        raise ConfigError(f"{label}: cost {cost_name!r} needs {'no variance' if cost_name == 'poisson' else 'a variance'}")
    n, e = n_all[window], e_all[window.start : window.stop + 1]
    var = None if var_all is None else var_all[window]
    n_free = model.n_parameters - len(fixed)
    n_filled = int(np.count_nonzero(n))
    entries = float(np.sum(n)) if var is None else float(np.sum(n) ** 2 / max(np.sum(var), 1e-300))
    if entries < MIN_ENTRIES or n_filled < MIN_BINS_PER_PARAMETER * n_free:
        raise FitError(
            f"{label}: window {start_us}..{end_us} us holds {entries:g} (effective) entries in {n_filled} non-empty bins, "
            f"need >= {MIN_ENTRIES:g} entries and >= {MIN_BINS_PER_PARAMETER * n_free} non-empty bins"
        )
    if var is not None:
        empty = (var <= 0.0) & (n == 0.0)
        if np.any((var <= 0.0) & ~empty):
            raise FitError(f"{label}: {np.count_nonzero((var <= 0.0) & ~empty)} bins of the window have content but zero variance")
        if np.any(empty):
            filled = (var > 0.0) & (n != 0.0)
            var = np.where(empty, float(np.median(var[filled] / np.abs(n[filled]))) if np.any(filled) else 1.0, var)  # one typical entry
    fit_var = var if var is not None else np.maximum(n, 1.0)

    def cost_for(m: Model, edges, values_, variance_):
        binned = BinnedModel(m, edges, omega_ref_rad_per_us, loss if "loss" in m.terms else None)
        if cost_name == "poisson":
            return PoissonCost(values_, binned)
        return (ScaledPoissonCost if cost_name == "scaled_poisson" else LeastSquaresCost)(values_, variance_, binned)

    cost = cost_for(model, e, n, var)
    user_fixed = set(fixed)
    values = dict(NEUTRAL)
    auto = not set(model.names) <= set(start) | user_fixed
    stages: list[set[str]] = [user_fixed]
    if auto:
        base_model = parse_model("5")
        base_start = _five_parameter_start(n, e, omega_ref_rad_per_us, tau_guess_us) | {k: v for k, v in (start | fixed).items() if k in base_model.names}
        base_fixed = user_fixed & set(base_model.names)
        base, *_ = run_minuit(cost_for(base_model, e, n, var), base_model, base_start, [base_fixed], label + " [5-parameter start]")
        values |= base
        if model.n_parameters > 5:
            values |= seed_beam_terms(n, e, fit_var, base, model, omega_ref_rad_per_us, frequencies_mhz or {})
            stages = [user_fixed | (set(SHAPE_PARAMETERS) & set(model.names)), user_fixed]
    values |= start | fixed
    best, free_names, covariance, fval = run_minuit(cost, model, values, stages, label)

    p_best = model.full_vector(best)
    active = np.array([INDEX[k] for k in free_names], dtype=np.int64)
    mu, jac, w = cost.response(p_best, active)
    errors = errors_from_covariance(model.names, free_names, covariance)
    i_r = free_names.index("R_ppm") if "R_ppm" in free_names else None
    sensitivity = None if i_r is None else omega_ref_rad_per_us * 1e-6 * (covariance[i_r] @ (jac.T * w))
    return result_from_minimum(
        best,
        errors,
        free_names,
        covariance,
        fval,
        blinder,
        omega_ref_rad_per_us,
        ndf=int(n.size - len(free_names)),
        edges_us=e,
        n_entries=float(np.sum(n)),
        method=method,
        model=model,
        expected_counts=mu,
        chi2_definition=cost.definition,
        fixed=tuple(k for k in model.names if k in user_fixed),
        omega_sensitivity=sensitivity,
    )


def errors_from_covariance(names, free_names, covariance) -> dict:
    """Parameter errors: √diag of the covariance for free parameters, 0 for fixed ones."""
    return dict.fromkeys(names, 0.0) | {k: float(x) for k, x in zip(free_names, np.sqrt(np.diag(covariance)))}


def result_from_minimum(
    best, errors, free_names, covariance, fval, blinder, omega_ref_rad_per_us, *, ndf, edges_us, n_entries, method, model, expected_counts, chi2_definition, fixed, omega_sensitivity=None
) -> FitResult:
    """Return the FitResult of a minimum found in the true parameterisation; blinding applied to what is reported."""
    reported = {k: math.remainder(v, 2.0 * math.pi) if k.startswith("phi") else v for k, v in best.items()}  # phases in (−π, π]
    if blinder is not None:
        reported["R_ppm"] = blinder.blind_r(best["R_ppm"])
    scale = np.sqrt(np.diag(covariance))
    corr = covariance / np.outer(scale, scale)
    return FitResult(
        omega_a=omega_ref_rad_per_us * (1.0 + reported["R_ppm"] * 1e-6),
        omega_a_err=omega_ref_rad_per_us * errors["R_ppm"] * 1e-6,
        R_ppm=reported["R_ppm"],
        blinded=blinder is not None,
        chi2=fval,
        ndf=ndf,
        params=reported,
        errors=errors,
        correlation={a: {b: float(corr[i, j]) for j, b in enumerate(free_names)} for i, a in enumerate(free_names)},
        start_us=float(edges_us[0]),
        end_us=float(edges_us[-1]),
        n_entries=n_entries,
        method=method,
        model=model.name,
        expected_counts=expected_counts,
        chi2_definition=chi2_definition,
        fixed=fixed,
        covariance=covariance,
        omega_sensitivity=omega_sensitivity,
    )
