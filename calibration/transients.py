"""Time-dependent effects averaged over the muon decays in the ω_a fit window (docs/physics.md §4).

A perturbation that changes during the fill reaches the fitted ω_a through the spin phase it adds.
A fit of N(t) = N₀e^{−t/γτ}[1 + A cos(ωt + φ)] estimates ω from the phase with Fisher weights
w(t) ∝ N(t)A² (the cos² of the wiggle averages to ½), so a phase drift δφ(t) shifts it by the
weighted least-squares slope

    Δω = ∫ w(t)(t − t̄) δφ(t) dt / ∫ w(t)(t − t̄)² dt,   w(t) = e^{−t/γτ} on [t₁, t₂].

A relative field perturbation δ(t) = δB(t)/B adds δφ(t) = ω∫₀ᵗ δ dt', hence Δω/ω = ∫ K(t) δ(t) dt with
the kernel K(t) = ∫_t^{t₂} w(s)(s − t̄) ds / ∫ w(s)(s − t̄)² ds on the window (∫K = 1; the phase
gathered before t₁ is absorbed by φ). This "phase" weighting is what the fit reports; the "decay"
weighting e^{−t/γτ}/∫e^{−t/γτ} is the plain average over the decays, which agrees with it for slow
perturbations. The corrections B_k (kicker eddy currents) and B_q (ESQ plate vibration) are these
averages of the measured transient fields; C_ml, C_pa and C_dd are −Δω/ω of phase drifts.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ringsim.errors import ConfigError, FitError, InputError

__all__ = [
    "TRANSIENT_MODELS",
    "esq_vibration",
    "fit_transient",
    "kicker_eddy_current",
    "phase_slope",
    "transient_average",
    "transient_correction",
    "transient_kernel",
]

WEIGHTINGS = ("phase", "decay")
GRID_POINTS = 8001  # trapezoid points over the fit window (resolve transients of ≳ 1 μs)


def _check_window(start_us: float, end_us: float, gamma_tau_us: float) -> tuple[float, float, float]:
    start_us, end_us, gamma_tau_us = float(start_us), float(end_us), float(gamma_tau_us)
    if not (math.isfinite(start_us) and start_us >= 0.0 and math.isfinite(end_us) and end_us > start_us):
        raise ConfigError(f"fit window: expected 0 <= start_us < end_us, got {start_us!r}, {end_us!r}")
    if not (math.isfinite(gamma_tau_us) and gamma_tau_us > 0.0):
        raise ConfigError(f"gamma_tau_us: expected a positive lifetime in μs, got {gamma_tau_us!r}")
    return start_us, end_us, gamma_tau_us


def _trapezoid_weights(t: np.ndarray) -> np.ndarray:
    dt = np.diff(t)
    w = np.zeros_like(t)
    w[:-1] += 0.5 * dt
    w[1:] += 0.5 * dt
    return w


def phase_slope(t_us, phase_rad, start_us: float, end_us: float, gamma_tau_us: float, phase_err_rad=None) -> tuple[float, float]:
    """Fit-equivalent slope d⟨φ⟩/dt (rad/μs) of a phase sampled at ``t_us``, and its error.

    The samples inside [start_us, end_us] are combined with the weights w(t)·Δt, w = e^{−t/γτ}
    (trapezoid quadrature of the continuous weighted least-squares slope), so the result is the ω
    shift a fit over that window would report. ``phase_err_rad`` (independent errors of the samples)
    gives the error by linear propagation; without it the error is 0.
    """
    start_us, end_us, gamma_tau_us = _check_window(start_us, end_us, gamma_tau_us)
    t = np.asarray(t_us, dtype=float)
    phi = np.asarray(phase_rad, dtype=float)
    if t.ndim != 1 or phi.shape != t.shape:
        raise InputError(f"phase_rad: expected a 1-D array matching t_us {t.shape}, got {phi.shape}")
    if not (np.all(np.isfinite(t)) and np.all(np.diff(t) > 0.0)):
        raise InputError("t_us: must be finite and strictly increasing")
    inside = (t >= start_us) & (t <= end_us)
    if np.count_nonzero(inside) < 3:
        raise InputError(f"t_us: need at least 3 samples inside the fit window {start_us}..{end_us} us")
    tw = t[inside]
    w = np.exp(-(tw - start_us) / gamma_tau_us) * _trapezoid_weights(tw)
    t_bar = np.dot(w, tw) / w.sum()
    coeff = w * (tw - t_bar) / np.dot(w, (tw - t_bar) ** 2)
    if not np.all(np.isfinite(phi[inside])):
        raise InputError("phase_rad: non-finite values inside the fit window")
    slope = float(np.dot(coeff, phi[inside]))
    if phase_err_rad is None:
        return slope, 0.0
    err = np.asarray(phase_err_rad, dtype=float)
    if err.shape != t.shape or not np.all(np.isfinite(err[inside])) or np.any(err[inside] < 0.0):
        raise InputError(f"phase_err_rad: expected finite errors >= 0 matching t_us {t.shape}")
    return slope, float(math.sqrt(np.dot(coeff**2, err[inside] ** 2)))


def transient_kernel(start_us: float, end_us: float, gamma_tau_us: float, weighting: str = "phase", n_points: int = GRID_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Time grid (μs) over the fit window and the kernel K(t) (1/μs, ∫K dt = 1) of the chosen weighting."""
    start_us, end_us, gamma_tau_us = _check_window(start_us, end_us, gamma_tau_us)
    if weighting not in WEIGHTINGS:
        raise ConfigError(f"weighting: expected one of {', '.join(WEIGHTINGS)}, got {weighting!r}")
    t = np.linspace(start_us, end_us, n_points)
    w = np.exp(-(t - start_us) / gamma_tau_us)
    q = _trapezoid_weights(t)
    if weighting == "decay":
        return t, w / np.dot(q, w)
    t_bar = np.dot(q * w, t) / np.dot(q, w)
    integrand = w * (t - t_bar)
    # K(t) = ∫_t^{t2} integrand ds / ∫ w (s − t̄)² ds, cumulative trapezoid from the end
    tail = np.concatenate([np.cumsum((0.5 * (integrand[1:] + integrand[:-1]) * np.diff(t))[::-1])[::-1], [0.0]])
    return t, tail / np.dot(q, w * (t - t_bar) ** 2)


def transient_average(delta: Callable[[np.ndarray], np.ndarray], start_us: float, end_us: float, gamma_tau_us: float, weighting: str = "phase") -> float:
    """Effective relative shift ∫K(t)δ(t)dt of ω_a from a transient δ(t) (any unit; returns the same).

    Parameters
    ----------
    delta : callable
        δ(t_us) → relative field perturbation at the times t_us (array in, array out).
    start_us, end_us : float
        Fit window, μs.
    gamma_tau_us : float
        Dilated muon lifetime γτ, μs.
    weighting : str
        ``"phase"`` (what a fit of ω reports, default) or ``"decay"`` (plain average over the decays).
    """
    t, kernel = transient_kernel(start_us, end_us, gamma_tau_us, weighting)
    values = np.asarray(delta(t), dtype=float)
    if values.shape != t.shape or not np.all(np.isfinite(values)):
        raise InputError("delta: must return finite values, one per time")
    return float(np.dot(_trapezoid_weights(t), kernel * values))


def kicker_eddy_current(t_us, amplitude, tau_us):
    """Kicker eddy-current field δB/B = B_k0·e^{−t/τ} (t from the kicker pulse, μs; amplitude in any unit)."""
    return amplitude * np.exp(-np.asarray(t_us, dtype=float) / tau_us)


def esq_vibration(t_us, amplitude, tau_us, frequency_mhz, phase_rad):
    """ESQ plate-vibration field δB/B = B_q0·e^{−t/τ} cos(2πf t + φ) (t in μs, f in MHz)."""
    t = np.asarray(t_us, dtype=float)
    return amplitude * np.exp(-t / tau_us) * np.cos(2.0 * math.pi * frequency_mhz * t + phase_rad)


TRANSIENT_MODELS: dict[str, tuple[Callable, tuple[str, ...]]] = {
    "kicker": (kicker_eddy_current, ("amplitude", "tau_us")),
    "esq": (esq_vibration, ("amplitude", "tau_us", "frequency_mhz", "phase_rad")),
}


def _model(kind: str) -> tuple[Callable, tuple[str, ...]]:
    if kind not in TRANSIENT_MODELS:
        raise ConfigError(f"transient model: expected one of {', '.join(TRANSIENT_MODELS)}, got {kind!r}")
    return TRANSIENT_MODELS[kind]


def fit_transient(kind: str, t_us, values, errors, start: dict) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares fit of a transient model to a magnetometer record.

    Parameters
    ----------
    kind : str
        ``"kicker"`` (:func:`kicker_eddy_current`) or ``"esq"`` (:func:`esq_vibration`).
    t_us, values, errors : array_like
        Times (μs), measured δB/B and their standard errors (same unit as the amplitude).
    start : dict
        Start value of every parameter of the model, by name.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Parameter values (in the model's order) and their covariance.
    """
    from scipy.optimize import curve_fit

    fn, names = _model(kind)
    missing = [n for n in names if n not in start]
    if missing:
        raise ConfigError(f"start: missing start value(s) for {', '.join(missing)} of the {kind} model")
    t = np.asarray(t_us, dtype=float)
    y = np.asarray(values, dtype=float)
    s = np.asarray(errors, dtype=float)
    if not (t.ndim == 1 and y.shape == t.shape and s.shape == t.shape and t.size > len(names)):
        raise InputError(f"transient record: expected matching 1-D t_us, values, errors with more than {len(names)} points")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(y)) and np.all(np.isfinite(s)) and np.all(s > 0.0)):
        raise InputError("transient record: values must be finite and errors > 0")
    try:
        values_fit, cov = curve_fit(fn, t, y, p0=[start[n] for n in names], sigma=s, absolute_sigma=True, maxfev=20000)
    except RuntimeError as exc:
        raise FitError(f"{kind} transient fit: {exc}") from None
    if not np.all(np.isfinite(cov)):
        raise FitError(f"{kind} transient fit: covariance is not finite (parameters not constrained by the record)")
    return values_fit, cov


def transient_correction(kind: str, params, cov, start_us: float, end_us: float, gamma_tau_us: float, weighting: str = "phase") -> tuple[float, float]:
    """B_k or B_q: the fit-window average of a fitted transient, with the error from the parameter covariance.

    Returns (value, error) in the unit of the amplitude (e.g. ppb); the error is linear propagation
    of ``cov`` through numerical derivatives of the average.
    """
    fn, names = _model(kind)
    p = np.asarray(params, dtype=float)
    c = np.asarray(cov, dtype=float)
    if p.shape != (len(names),) or c.shape != (len(names), len(names)):
        raise InputError(f"{kind} transient: expected {len(names)} parameters ({', '.join(names)}) and a matching covariance")

    def average(q):
        return transient_average(lambda t: fn(t, *q), start_us, end_us, gamma_tau_us, weighting)

    value = average(p)
    grad = np.zeros(p.size)
    for i in range(p.size):
        h = 1e-4 * max(abs(p[i]), math.sqrt(max(c[i, i], 0.0)), 1e-12)
        up, down = p.copy(), p.copy()
        up[i] += h
        down[i] -= h
        grad[i] = (average(up) - average(down)) / (2.0 * h)
    return value, float(math.sqrt(max(grad @ c @ grad, 0.0)))
