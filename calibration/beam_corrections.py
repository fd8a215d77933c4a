"""Beam-dynamics corrections to ω_a from the stored-muon distribution (docs/physics.md §4).

- Electric-field correction C_e = 2n(1−n)β²⟨x_e²⟩/R0², x_e the equilibrium-radius offset.
- Pitch correction C_p = n⟨y²⟩/(2R0²) = n⟨A_y²⟩/(4R0²), y the vertical position, A_y its
  betatron amplitude (from truth, or from tracker measurements with their resolution unfolded).
- Phase-drift corrections C_ml (lost muons), C_dd (differential decay) and C_pa (phase acceptance):
  each is −(1/ω_a) d⟨φ⟩/dt of the mean spin phase of the decaying population, the slope taken
  with the weights of the ω_a fit (:func:`calibration.transients.phase_slope`).

Corrections are dimensionless (multiply by 1e9 for ppb) and are returned with the statistical
error of the sample mean they are built from. Optional weights (e.g. decay or acceptance weights)
are relative weights, not frequencies: the error is that of the weighted mean,
√(N/(N−1) Σ w²(q − q̄)²)/Σw, which is s/√N for equal weights.
"""

from __future__ import annotations

import math

import numpy as np

from calibration.transients import phase_slope, transient_kernel
from ringsim.constants import MUON_LIFETIME_S
from ringsim.errors import ConfigError, InputError

__all__ = [
    "differential_decay_correction",
    "electric_field_correction",
    "equilibrium_radius_offset_m",
    "lost_muon_correction",
    "omega_a_shift_from_spins",
    "phase_acceptance_correction",
    "phase_drift_correction",
    "phase_momentum_slope",
    "pitch_correction",
    "pitch_correction_from_amplitudes",
    "pitch_correction_from_tracker",
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


def electric_field_correction(x_e_m, field_index: float, radius_m: float, beta: float, weights=None) -> tuple[float, float]:
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
    field_index, radius_m, weights
        As in :func:`electric_field_correction`.

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


def pitch_correction_from_amplitudes(y_amplitude_m, field_index: float, radius_m: float, weights=None) -> tuple[float, float]:
    """Pitch correction C_p = n⟨A_y²⟩/(4R0²) from vertical betatron amplitudes, with its error.

    ``y_amplitude_m`` holds samples of the vertical betatron amplitude A_y (m); the other parameters
    and the result are as in :func:`pitch_correction`.
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


def pitch_correction_from_tracker(y_measured_m, resolution_m: float, resolution_err_m: float, field_index: float, radius_m: float) -> tuple[float, float]:
    """C_p = n(⟨y_meas²⟩ − σ_res²)/(2R0²) from tracker-measured vertical positions, with its error.

    The tracker's Gaussian position resolution σ_res (m) adds σ_res² to ⟨y²⟩; its uncertainty
    ``resolution_err_m`` enters the error as n·2σ_res·δσ_res/(2R0²), in quadrature with the
    statistical error.
    """
    resolution_m, resolution_err_m = float(resolution_m), float(resolution_err_m)
    if not (math.isfinite(resolution_m) and resolution_m >= 0.0 and math.isfinite(resolution_err_m) and resolution_err_m >= 0.0):
        raise ConfigError(f"resolution_m, resolution_err_m: expected finite values >= 0, got {resolution_m!r}, {resolution_err_m!r}")
    smeared, stat = pitch_correction(y_measured_m, field_index, radius_m)
    prefactor = field_index / (2.0 * radius_m**2)
    return smeared - prefactor * resolution_m**2, math.hypot(stat, prefactor * 2.0 * resolution_m * resolution_err_m)


def _check_omega(omega_a_rad_per_us: float) -> float:
    omega = float(omega_a_rad_per_us)
    if not (math.isfinite(omega) and omega > 0.0):
        raise ConfigError(f"omega_a_rad_per_us: must be a positive finite frequency, got {omega_a_rad_per_us!r}")
    return omega


def phase_drift_correction(t_us, mean_phase_rad, omega_a_rad_per_us: float, start_us: float, end_us: float, gamma_tau_us: float, phase_err_rad=None) -> tuple[float, float]:
    """Correction −(1/ω_a) d⟨φ⟩/dt for a mean spin phase ⟨φ⟩(t) of the decaying muons, with its error.

    The slope is the one a fit of ω_a over [start_us, end_us] would absorb
    (:func:`calibration.transients.phase_slope`); ``phase_err_rad`` are independent errors of the
    samples of ⟨φ⟩. Dimensionless (×1e9 for ppb).
    """
    omega = _check_omega(omega_a_rad_per_us)
    slope, err = phase_slope(t_us, mean_phase_rad, start_us, end_us, gamma_tau_us, phase_err_rad)
    return -slope / omega, err / omega


def phase_momentum_slope(delta_p, phase_rad) -> tuple[float, float]:
    """Least-squares slope k = dφ/dδ (rad per unit Δp/p) of spin phase against momentum offset, with its error."""
    delta = _samples("delta_p", delta_p)
    phase = _samples("phase_rad", phase_rad)
    if phase.shape != delta.shape:
        raise InputError(f"phase_rad: expected shape {delta.shape} matching delta_p, got {phase.shape}")
    d = delta - delta.mean()
    sxx = float(np.dot(d, d))
    if not sxx > 0.0:
        raise InputError("delta_p: all samples are equal; the phase-momentum slope is undefined")
    k = float(np.dot(d, phase - phase.mean()) / sxx)
    resid = phase - phase.mean() - k * d
    dof = max(delta.size - 2, 1)
    return k, float(math.sqrt(np.dot(resid, resid) / dof / sxx))


def lost_muon_correction(
    loss_time_us,
    loss_phase_rad,
    population_phase_rad,
    omega_a_rad_per_us: float,
    start_us: float,
    end_us: float,
    gamma_tau_us: float,
    loss_weight=1.0,
) -> tuple[float, float]:
    """C_ml: −(1/ω_a) d⟨φ⟩/dt of the stored muons as muons of different phase are lost, with its error.

    ⟨φ⟩(t) = (Σ_pop φ − Σ_{t_L<t} w_L φ_L)/(N_pop − Σ_{t_L<t} w_L), where the population is a
    sample of the muons stored at t = 0 and each recorded loss stands for w_L of its muons. For
    losses recorded in a run where muons also decay, w_L = k_loss·e^{t_L/γτ} (the Λ(t) weighting of
    docs/physics.md §3). Error: first order in the lost fraction, C ≈ Σ_L w_L(φ_L − φ̄)K(t_L)/(N ω_a) with K
    the fit kernel of :func:`calibration.transients.transient_kernel`, from the spread of φ_L.

    Parameters
    ----------
    loss_time_us, loss_phase_rad : array_like
        Loss time (μs) and spin phase (rad, relative to the common phase) of each lost muon.
    population_phase_rad : array_like
        Phases of the muons stored at t = 0 (the lost ones included).
    omega_a_rad_per_us, start_us, end_us, gamma_tau_us : float
        ω_a (rad/μs) and the fit window and γτ (μs).
    loss_weight : float or array_like
        Muons of the population sample represented by each recorded loss.
    """
    omega = _check_omega(omega_a_rad_per_us)
    population = _samples("population_phase_rad", population_phase_rad)
    t_loss = np.asarray(loss_time_us, dtype=float)
    phi_loss = np.asarray(loss_phase_rad, dtype=float)
    if t_loss.ndim != 1 or phi_loss.shape != t_loss.shape:
        raise InputError(f"loss_phase_rad: expected a 1-D array matching loss_time_us {t_loss.shape}, got {phi_loss.shape}")
    if not (np.all(np.isfinite(t_loss)) and np.all(np.isfinite(phi_loss))):
        raise InputError("loss_time_us, loss_phase_rad: contain non-finite values")
    weight = np.broadcast_to(np.asarray(loss_weight, dtype=float), t_loss.shape)
    if not (np.all(np.isfinite(weight)) and np.all(weight >= 0.0)):
        raise InputError("loss_weight: must be finite and >= 0")
    n_pop = float(population.size)
    if weight.sum() >= n_pop:
        raise InputError(f"loss_weight: the recorded losses ({weight.sum():g} muons) exhaust the population ({n_pop:g})")
    order = np.argsort(t_loss)
    cum_w = np.concatenate([[0.0], np.cumsum(weight[order])])
    cum_wphi = np.concatenate([[0.0], np.cumsum((weight * phi_loss)[order])])
    t, kernel = transient_kernel(start_us, end_us, gamma_tau_us)
    idx = np.searchsorted(t_loss[order], t, side="right")
    mean_phase = (population.sum() - cum_wphi[idx]) / (n_pop - cum_w[idx])
    value, _ = phase_drift_correction(t, mean_phase, omega, start_us, end_us, gamma_tau_us)
    k_loss = np.interp(t_loss, t, kernel, left=0.0, right=0.0)
    err = math.sqrt(float(np.sum((weight * (phi_loss - population.mean()) * k_loss) ** 2))) / (n_pop * omega)
    return value, err


def differential_decay_correction(
    delta_p,
    phase_per_delta_rad: float,
    phase_per_delta_err_rad: float,
    gamma_magic: float,
    omega_a_rad_per_us: float,
    start_us: float,
    end_us: float,
) -> tuple[float, float]:
    """C_dd: −(1/ω_a) d⟨φ⟩/dt from momentum-dependent decay and a phase–momentum correlation φ = kδ.

    Muons of momentum offset δ have γ(δ) = √(1 + (γ₀β₀(1+δ))²) and decay at the rate
    e^{−t/γ(δ)τ}/γ(δ)τ, so the mean δ of the decays drifts, ⟨δ⟩(t) ≈ β²σ_δ²(t/γ₀τ − 1), and with
    it the mean phase k⟨δ⟩(t). ``delta_p`` samples the stored muons at t = 0. Error: the error of k
    and the sampling error of σ_δ² (fourth moment), in quadrature.

    Parameters
    ----------
    delta_p : array_like
        Momentum offsets Δp/p of the stored muons.
    phase_per_delta_rad, phase_per_delta_err_rad : float
        k = dφ/dδ (rad) and its error (:func:`phase_momentum_slope`).
    gamma_magic : float
        γ₀ of the design momentum.
    omega_a_rad_per_us, start_us, end_us : float
        ω_a (rad/μs) and the fit window (μs).
    """
    omega = _check_omega(omega_a_rad_per_us)
    delta = _samples("delta_p", delta_p)
    gamma0 = float(gamma_magic)
    if not (math.isfinite(gamma0) and gamma0 > 1.0):
        raise ConfigError(f"gamma_magic: must be a Lorentz factor > 1, got {gamma_magic!r}")
    k, k_err = float(phase_per_delta_rad), float(phase_per_delta_err_rad)
    if not (math.isfinite(k) and math.isfinite(k_err) and k_err >= 0.0):
        raise ConfigError(f"phase_per_delta_rad, phase_per_delta_err_rad: expected finite values (error >= 0), got {k!r}, {k_err!r}")
    tau_us = MUON_LIFETIME_S * 1e6
    u0 = math.sqrt(gamma0**2 - 1.0)
    gamma_tau_us = gamma0 * tau_us
    d = delta - delta.mean()
    # the samples in 2048 bins of δ (the drift of ⟨δ⟩ is smooth in t: 401 times suffice)
    counts, edges = np.histogram(d, bins=2048)
    filled = counts > 0
    d_bin = np.bincount(np.clip(np.searchsorted(edges, d, side="right") - 1, 0, 2047), weights=d, minlength=2048)[filled] / counts[filled]
    gamma = np.sqrt(1.0 + (u0 * (1.0 + delta.mean() + d_bin)) ** 2)
    t = np.linspace(start_us, end_us, 401)
    # log-rate relative to the design muon, so that the exponentials stay finite over any window
    log_rate = np.log(counts[filled] * gamma0 / gamma)[None, :] - t[:, None] * (1.0 / (gamma * tau_us) - 1.0 / gamma_tau_us)[None, :]
    rate = np.exp(log_rate - log_rate.max(axis=1, keepdims=True))
    mean_delta = (rate @ d_bin) / rate.sum(axis=1)
    slope, _ = phase_slope(t, mean_delta, start_us, end_us, gamma_tau_us)
    var = float(np.mean(d**2))
    rel_sampling = math.sqrt(max(float(np.mean(d**4)) - var**2, 0.0) / delta.size) / var if var > 0.0 else 0.0
    value = -k * slope / omega
    return value, math.hypot(slope * k_err, value * omega * rel_sampling) / omega


def phase_acceptance_correction(
    t_us, moments, moment_errs, phase_coefficients, phase_coefficient_errs, omega_a_rad_per_us: float, start_us: float, end_us: float, gamma_tau_us: float
) -> tuple[float, float]:
    """C_pa: −(1/ω_a) d⟨φ⟩/dt from a beam distribution that changes during the fill, with its error.

    The detected phase depends on the decay position, φ(x, y) = φ₀ + Σ_j c_j f_j(x, y) (e.g. f = x,
    x², y²), so the mean phase of the decays is ⟨φ⟩(t) = φ₀ + Σ_j c_j⟨f_j⟩(t).

    Parameters
    ----------
    t_us : array_like
        Times (μs) at which the beam moments are known, increasing.
    moments, moment_errs : array_like
        ⟨f_j⟩(t), shape (n_times, n_terms), and their independent errors (same unit as f_j).
    phase_coefficients, phase_coefficient_errs : array_like
        c_j (rad per unit of f_j) and their errors, shape (n_terms,).
    omega_a_rad_per_us, start_us, end_us, gamma_tau_us : float
        ω_a (rad/μs), fit window and γτ (μs).
    """
    omega = _check_omega(omega_a_rad_per_us)
    t = np.asarray(t_us, dtype=float)
    m = np.asarray(moments, dtype=float)
    m_err = np.asarray(moment_errs, dtype=float)
    c = np.atleast_1d(np.asarray(phase_coefficients, dtype=float))
    c_err = np.atleast_1d(np.asarray(phase_coefficient_errs, dtype=float))
    if m.ndim != 2 or m.shape[0] != t.size or m.shape[1] != c.size or m_err.shape != m.shape or c_err.shape != c.shape:
        raise InputError(f"moments: expected shape (n_times={t.size}, n_terms={c.size}) with matching errors, got {m.shape}, {m_err.shape}, {c_err.shape}")
    if not (np.all(np.isfinite(m)) and np.all(np.isfinite(m_err)) and np.all(np.isfinite(c)) and np.all(np.isfinite(c_err))):
        raise InputError("moments, phase_coefficients: contain non-finite values")
    slope, slope_from_moments = phase_slope(t, m @ c, start_us, end_us, gamma_tau_us, np.sqrt((m_err**2) @ (c**2)))
    slope_per_term = np.array([phase_slope(t, m[:, j], start_us, end_us, gamma_tau_us)[0] for j in range(c.size)])
    err = math.hypot(slope_from_moments, float(np.sqrt(np.sum((slope_per_term * c_err) ** 2))))
    return -slope / omega, err / omega
