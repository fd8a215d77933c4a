"""Binned Poisson-likelihood fits of decay-time histograms with iminuit.

The fit is always done in the true parameterisation ω = ω_ref(1 + R·1e-6), R in ppm; a
:class:`~analysis.blinding.Blinder` only changes what is reported (R_blind = R_true + ΔR and the
blinded ω_ref(1 + R_blind·1e-6)), so blinded and unblinded fits are numerically identical.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from iminuit import Minuit
from iminuit.util import IMinuitWarning
from scipy.special import xlogy

from analysis.blinding import Blinder
from analysis.models import five_parameter_binned
from ringsim.errors import ConfigError, FitError, InputError

FIVE_PARAMETER_NAMES = ("N0", "tau_us", "A", "R_ppm", "phi")
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

    def to_dict(self) -> dict:
        """JSON-able dictionary with the command-line contract keys (``omega_a``, …, ``errors``)."""
        return {
            "omega_a": self.omega_a,
            "omega_a_err": self.omega_a_err,
            "omega_a_unit": "rad/us",
            "R_ppm": self.R_ppm,
            "blinded": self.blinded,
            "chi2": self.chi2,
            "chi2_definition": "poisson_deviance",
            "ndf": self.ndf,
            "params": dict(self.params),
            "errors": dict(self.errors),
            "correlation": {k: dict(v) for k, v in self.correlation.items()},
            "start_us": self.start_us,
            "end_us": self.end_us,
            "n_entries": self.n_entries,
            "method": self.method,
            "model": self.model,
        }


def _validated_histogram(counts, edges_us) -> tuple[np.ndarray, np.ndarray]:
    n = np.asarray(counts, dtype=float)
    e = np.asarray(edges_us, dtype=float)
    if n.ndim != 1 or e.ndim != 1 or e.size != n.size + 1:
        raise InputError(f"fit: need 1-D counts and one more edge than counts, got shapes {n.shape} and {e.shape}")
    if not (np.all(np.isfinite(n)) and np.all(n >= 0.0)):
        raise InputError("fit: counts must be finite and non-negative")
    if not (np.all(np.isfinite(e)) and np.all(np.diff(e) > 0.0)):
        raise InputError("fit: edges_us must be finite and strictly increasing")
    return n, e


def _window(n: np.ndarray, e: np.ndarray, start_us: float, end_us: float) -> tuple[np.ndarray, np.ndarray]:
    """Counts and edges of the bins lying entirely inside [start_us, end_us]."""
    if not (math.isfinite(start_us) and math.isfinite(end_us) and end_us > start_us):
        raise InputError(f"fit: need finite start_us < end_us, got {start_us!r}, {end_us!r}")
    tol = 1e-6 * float(np.min(np.diff(e)))
    i0 = int(np.searchsorted(e, start_us - tol, side="left"))
    i1 = int(np.searchsorted(e, end_us + tol, side="right")) - 1
    if i1 <= i0:
        return n[:0], e[:1]
    return n[i0:i1], e[i0 : i1 + 1]


def _minimize_binned_poisson(
    counts: np.ndarray,
    edges_us: np.ndarray,
    expected: Callable[..., np.ndarray],
    names: Sequence[str],
    start: dict,
    steps: dict,
    limits: dict,
    label: str,
) -> Minuit:
    """Minimise the Poisson deviance of ``expected(edges_us, *params)`` against ``counts``.

    Raises :class:`FitError` unless MIGRAD converges with an accurate HESSE covariance and no
    parameter at a limit.
    """

    def deviance(*p):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            mu = expected(edges_us, *p)
            return 2.0 * float(np.sum(mu - counts + xlogy(counts, counts / mu)))

    m = Minuit(deviance, *(start[k] for k in names), name=list(names))
    m.errordef = Minuit.LEAST_SQUARES  # the deviance is −2 ln L + const
    for k in names:
        m.errors[k] = steps[k]
    for k, lim in limits.items():
        m.limits[k] = lim
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IMinuitWarning)
        m.migrad()
        if not (m.valid and m.fmin.is_valid):
            raise FitError(f"{label}: MIGRAD did not converge (edm={m.fmin.edm:.3g}, fval={m.fval:.6g})")
        m.hesse()
    if not (m.valid and m.fmin.has_accurate_covar and m.fmin.has_posdef_covar):
        raise FitError(f"{label}: HESSE covariance is not accurate or not positive definite")
    at_limit = [
        p.name
        for p in m.params
        if p.has_limits
        and min(
            p.value - (p.lower_limit if p.has_lower_limit else -math.inf),
            (p.upper_limit if p.has_upper_limit else math.inf) - p.value,
        )
        < 0.5 * p.error  # the criterion of iminuit's FMin.has_parameters_at_limit
    ]
    if at_limit:
        raise FitError(f"{label}: parameter(s) {', '.join(at_limit)} ended within half an error of a limit")
    return m


def _five_parameter_start(
    n: np.ndarray, e: np.ndarray, omega_ref_rad_per_us: float, tau_guess_us: float
) -> dict:
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

    Extended binned Poisson likelihood with the exact bin-integrated model
    (:func:`analysis.models.five_parameter_binned`), minimised by MIGRAD, errors by HESSE.

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

    Raises
    ------
    InputError
        Malformed histogram or window.
    ConfigError
        Non-positive ω_ref or τ guess, or a blinder built for another ω_ref.
    FitError
        Too few entries or non-empty bins in the window, no convergence, or an inaccurate covariance.
    """
    label = "five-parameter fit"
    n_all, e_all = _validated_histogram(counts, edges_us)
    if not (math.isfinite(omega_ref_rad_per_us) and omega_ref_rad_per_us > 0.0):
        raise ConfigError(f"{label}: omega_ref_rad_per_us must be finite and > 0, got {omega_ref_rad_per_us!r}")
    if not (math.isfinite(tau_guess_us) and tau_guess_us > 0.0):
        raise ConfigError(f"{label}: tau_guess_us must be finite and > 0, got {tau_guess_us!r}")
    if blinder is not None and not math.isclose(blinder.omega_ref_rad_per_us, omega_ref_rad_per_us, rel_tol=1e-12):
        raise ConfigError(
            f"{label}: blinder omega_ref {blinder.omega_ref_rad_per_us!r} differs from "
            f"omega_ref_rad_per_us {omega_ref_rad_per_us!r}"
        )
    n, e = _window(n_all, e_all, start_us, end_us)
    names = FIVE_PARAMETER_NAMES
    n_entries = float(np.sum(n))
    n_filled = int(np.count_nonzero(n))
    if n_entries < MIN_ENTRIES or n_filled < MIN_BINS_PER_PARAMETER * len(names):
        raise FitError(
            f"{label}: window {start_us}..{end_us} us holds {n_entries:g} entries in {n_filled} non-empty bins, "
            f"need >= {MIN_ENTRIES:g} entries and >= {MIN_BINS_PER_PARAMETER * len(names)} non-empty bins"
        )

    def expected(edges, n0, tau_us, asym, r_ppm, phi):
        return five_parameter_binned(edges, n0, tau_us, asym, omega_ref_rad_per_us * (1.0 + r_ppm * 1e-6), phi)

    start = _five_parameter_start(n, e, omega_ref_rad_per_us, tau_guess_us)
    steps = {
        "N0": 1e-2 * start["N0"],
        "tau_us": 1e-2 * start["tau_us"],
        "A": 1e-2,
        "R_ppm": 1e4 / (omega_ref_rad_per_us * (e[-1] - e[0])),  # 0.01 rad of phase over the window
        "phi": 1e-2,
    }
    limits = {"N0": (0.0, None), "tau_us": (0.0, None), "A": (-1.0, 1.0)}
    m = _minimize_binned_poisson(n, e, expected, names, start, steps, limits, label)

    values = {k: float(m.values[k]) for k in names}
    errors = {k: float(m.errors[k]) for k in names}
    expected_counts = expected(e, *(values[k] for k in names))
    if blinder is not None:
        values["R_ppm"] = blinder.blind_r(values["R_ppm"])
    corr = np.asarray(m.covariance.correlation())
    return FitResult(
        omega_a=omega_ref_rad_per_us * (1.0 + values["R_ppm"] * 1e-6),
        omega_a_err=omega_ref_rad_per_us * errors["R_ppm"] * 1e-6,
        R_ppm=values["R_ppm"],
        blinded=blinder is not None,
        chi2=float(m.fval),
        ndf=int(n.size - len(names)),
        params=values,
        errors=errors,
        correlation={a: {b: float(corr[i, j]) for j, b in enumerate(names)} for i, a in enumerate(names)},
        start_us=float(e[0]),
        end_us=float(e[-1]),
        n_entries=n_entries,
        method=method,
        model="five_parameter",
        expected_counts=expected_counts,
    )
