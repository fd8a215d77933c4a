"""Beam-dynamics corrections to ω_a from the stored-muon distribution (SPEC §4).

- Electric-field correction C_e = 2n(1−n)β²⟨x_e²⟩/R0², x_e the equilibrium-radius offset.
- Pitch correction C_p = n⟨y²⟩/(2R0²) = n⟨A_y²⟩/(4R0²), y the vertical position, A_y its
  betatron amplitude.

Corrections are dimensionless (multiply by 1e9 for ppb) and are returned with the statistical
error of the sample mean they are built from. Optional weights (e.g. decay or acceptance weights)
are relative weights, not frequencies: the error is that of the weighted mean,
√(N/(N−1) Σ w²(q − q̄)²)/Σw, which is s/√N for equal weights.
"""

from __future__ import annotations

import math

import numpy as np

from ringsim.errors import ConfigError, InputError

__all__ = [
    "electric_field_correction",
    "equilibrium_radius_offset_m",
    "pitch_correction",
    "pitch_correction_from_amplitudes",
]


def _check_ring(field_index: float, radius_m: float) -> tuple[float, float]:
    n = float(field_index)
    if not (math.isfinite(n) and 0.0 < n < 1.0):
        raise ConfigError(f"field_index: must be in (0, 1) for weak focusing, got {n!r}")
    radius = float(radius_m)
    if not (math.isfinite(radius) and radius > 0.0):
        raise ConfigError(f"radius_m: must be a positive finite radius in m, got {radius!r}")
    return n, radius


def _samples(name: str, values) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise InputError(f"{name}: expected a 1-D array of samples, got shape {arr.shape}")
    if arr.size < 2:
        raise InputError(f"{name}: need at least 2 samples to estimate an error, got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name}: contains {np.count_nonzero(~np.isfinite(arr))} non-finite values")
    return arr


def _mean_and_error(name: str, values: np.ndarray, weights) -> tuple[float, float]:
    """Weighted mean of ``values`` and its statistical error."""
    n = values.size
    if weights is None:
        return float(values.mean()), float(values.std(ddof=1) / math.sqrt(n))
    w = np.asarray(weights, dtype=float)
    if w.shape != values.shape:
        raise InputError(f"weights: expected shape {values.shape} matching {name}, got {w.shape}")
    if not (np.all(np.isfinite(w)) and np.all(w >= 0.0)):
        raise InputError("weights: must be finite and >= 0")
    w_sum = w.sum()
    if not w_sum > 0.0:
        raise InputError("weights: sum must be > 0")
    mean = float(np.dot(w, values) / w_sum)
    var_mean = n / (n - 1) * np.sum((w * (values - mean)) ** 2) / w_sum**2
    return mean, float(math.sqrt(var_mean))


def equilibrium_radius_offset_m(delta_p, field_index: float, radius_m: float):
    """Equilibrium-radius offset x_e = R0·δ/(1−n), m, for momentum offset δ = Δp/p (dispersion).

    Parameters
    ----------
    delta_p : float or array_like
        Fractional momentum offset Δp/p.
    field_index : float
        Ring-averaged field index n, 0 < n < 1.
    radius_m : float
        Magic (central) radius R0, m.

    Returns
    -------
    float or numpy.ndarray
        x_e in m, same shape as ``delta_p``.
    """
    n, radius = _check_ring(field_index, radius_m)
    delta = np.asarray(delta_p, dtype=float)
    if not np.all(np.isfinite(delta)):
        raise InputError("delta_p: contains non-finite values")
    x_e = radius * delta / (1.0 - n)
    return float(x_e) if x_e.ndim == 0 else x_e


def electric_field_correction(
    x_e_m, field_index: float, radius_m: float, beta: float, weights=None
) -> tuple[float, float]:
    """Electric-field correction C_e = 2n(1−n)β²⟨x_e²⟩/R0² and its statistical error.

    Parameters
    ----------
    x_e_m : array_like
        Samples of the equilibrium-radius offset x_e from R0, m.
    field_index : float
        Ring-averaged field index n, 0 < n < 1.
    radius_m : float
        Magic radius R0, m.
    beta : float
        Muon velocity β = v/c, 0 < β < 1.
    weights : array_like, optional
        Non-negative relative weights of the samples.

    Returns
    -------
    (float, float)
        C_e and its error (dimensionless).
    """
    n, radius = _check_ring(field_index, radius_m)
    beta = float(beta)
    if not (math.isfinite(beta) and 0.0 < beta < 1.0):
        raise ConfigError(f"beta: must be in (0, 1), got {beta!r}")
    x_e = _samples("x_e_m", x_e_m)
    mean_sq, mean_sq_err = _mean_and_error("x_e_m", x_e**2, weights)
    prefactor = 2.0 * n * (1.0 - n) * beta**2 / radius**2
    return prefactor * mean_sq, prefactor * mean_sq_err


def pitch_correction(y_m, field_index: float, radius_m: float, weights=None) -> tuple[float, float]:
    """Pitch correction C_p = n⟨y²⟩/(2R0²) and its statistical error.

    Parameters
    ----------
    y_m : array_like
        Samples of the vertical position about the storage plane, m (sampled uniformly in
        betatron phase, e.g. at random times).
    field_index : float
        Ring-averaged field index n, 0 < n < 1.
    radius_m : float
        Magic radius R0, m.
    weights : array_like, optional
        Non-negative relative weights of the samples.

    Returns
    -------
    (float, float)
        C_p and its error (dimensionless).
    """
    n, radius = _check_ring(field_index, radius_m)
    y = _samples("y_m", y_m)
    mean_sq, mean_sq_err = _mean_and_error("y_m", y**2, weights)
    prefactor = n / (2.0 * radius**2)
    return prefactor * mean_sq, prefactor * mean_sq_err


def pitch_correction_from_amplitudes(
    y_amplitude_m, field_index: float, radius_m: float, weights=None
) -> tuple[float, float]:
    """Pitch correction C_p = n⟨A_y²⟩/(4R0²) from vertical betatron amplitudes, with its error.

    Parameters
    ----------
    y_amplitude_m : array_like
        Samples of the vertical betatron amplitude A_y, m.
    field_index : float
        Ring-averaged field index n, 0 < n < 1.
    radius_m : float
        Magic radius R0, m.
    weights : array_like, optional
        Non-negative relative weights of the samples.

    Returns
    -------
    (float, float)
        C_p and its error (dimensionless).
    """
    # over a betatron period ⟨y²⟩ = A_y²/2
    return pitch_correction(_samples("y_amplitude_m", y_amplitude_m) / np.sqrt(2.0), field_index, radius_m, weights)


def omega_a_shift_from_spins(omega_a_rad_per_s, omega_a0_rad_per_s: float) -> tuple[float, float]:
    """Relative ω_a shift of a tracked beam, ⟨ω_a,i⟩/ω_a0 − 1, and its statistical error.

    ``omega_a_rad_per_s`` holds each muon's precession rate measured from its spin (the tracker's
    diagnostics); the shift is −(C_e + C_p + …) of that beam, measured without decays.
    """
    omega = _samples("omega_a_rad_per_s", omega_a_rad_per_s)
    if not (math.isfinite(omega_a0_rad_per_s) and omega_a0_rad_per_s > 0.0):
        raise ConfigError(f"omega_a0_rad_per_s: must be a positive finite frequency, got {omega_a0_rad_per_s!r}")
    rel = omega / omega_a0_rad_per_s - 1.0
    return float(rel.mean()), float(rel.std(ddof=1) / math.sqrt(rel.size))
