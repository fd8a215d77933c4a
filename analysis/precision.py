"""Optimal statistical precision of ω_a from the Fisher information (docs/physics.md §5, §6)."""

from __future__ import annotations

import math

import numpy as np

from ringsim.errors import ConfigError

GAUSS_NODES = 16  # Gauss–Legendre nodes per sub-interval
SUBINTERVALS_PER_SCALE = 8  # sub-intervals per oscillation period and per lifetime
INFINITE_END_LIFETIMES = 40.0  # an infinite window end is truncated at this many γτ (e^{-40} ≈ 4e-18)


def _check(n_positrons, asymmetry, polarization, omega_a_rad_per_us, gamma_tau_us) -> float:
    """Validate the common arguments and return the effective asymmetry A·P."""
    for name, value in (
        ("n_positrons", n_positrons),
        ("omega_a_rad_per_us", omega_a_rad_per_us),
        ("gamma_tau_us", gamma_tau_us),
    ):
        if not (math.isfinite(value) and value > 0.0):
            raise ConfigError(f"precision: {name} must be finite and > 0, got {value!r}")
    ap = asymmetry * polarization
    if not (math.isfinite(ap) and 0.0 < abs(ap) <= 1.0):
        raise ConfigError(f"precision: need 0 < |asymmetry*polarization| <= 1, got {asymmetry!r}*{polarization!r}")
    return ap


def simple_omega_precision(n_positrons: float, asymmetry: float, polarization: float, omega_a_rad_per_us: float, gamma_tau_us: float) -> float:
    """Large-ωγτ approximation δω/ω = √2/(ω γτ A P √N) of the relative precision (docs/physics.md §6).

    Parameters
    ----------
    n_positrons : float
        Positrons recorded over t ∈ [0, ∞).
    asymmetry, polarization : float
        Decay asymmetry A (for P = 1) and muon polarisation P.
    omega_a_rad_per_us : float
        ω_a in rad/μs.
    gamma_tau_us : float
        Dilated lifetime γτ in μs.
    """
    ap = _check(n_positrons, asymmetry, polarization, omega_a_rad_per_us, gamma_tau_us)
    return math.sqrt(2.0) / (omega_a_rad_per_us * gamma_tau_us * abs(ap) * math.sqrt(n_positrons))


def fisher_omega_precision(
    n_positrons: float,
    asymmetry: float,
    polarization: float,
    omega_a_rad_per_us: float,
    gamma_tau_us: float,
    start_us: float = 0.0,
    end_us: float = math.inf,
    *,
    phi_rad: float = 0.0,
) -> float:
    """Relative precision δω/ω of the five-parameter fit from the Fisher information.

    The rate f(t) = N0 e^{-t/γτ}[1 + AP cos(ωt + φ)] with N0 = n_positrons/γτ is fitted
    to unbinned data in [start_us, end_us] by an extended Poisson likelihood with N0, γτ, AP, ω
    and φ free; I_ij = ∫ ∂_i f ∂_j f / f dt is integrated by Gauss–Legendre quadrature on
    sub-intervals of 1/8 period (or 1/8 lifetime), an infinite end truncated at 40 γτ.

    Parameters
    ----------
    n_positrons : float
        Positrons that would be recorded over t ∈ [0, ∞); the window only restricts the data.
    asymmetry, polarization, omega_a_rad_per_us, gamma_tau_us : float
        As in :func:`simple_omega_precision`.
    start_us, end_us : float
        Fit window in μs (``end_us`` may be ``inf``).
    phi_rad : float
        Phase φ at t = 0 in rad (the result depends on it at the percent level).

    Returns
    -------
    float
        δω/ω (dimensionless).
    """
    ap = _check(n_positrons, asymmetry, polarization, omega_a_rad_per_us, gamma_tau_us)
    if not (math.isfinite(start_us) and start_us >= 0.0 and end_us > start_us):
        raise ConfigError(f"precision: need 0 <= start_us < end_us, got {start_us!r}, {end_us!r}")
    if not math.isfinite(phi_rad):
        raise ConfigError(f"precision: phi_rad must be finite, got {phi_rad!r}")
    tau, omega = gamma_tau_us, omega_a_rad_per_us
    end = min(end_us, start_us + INFINITE_END_LIFETIMES * tau)
    step = min(2.0 * math.pi / omega, tau) / SUBINTERVALS_PER_SCALE
    n_sub = math.ceil((end - start_us) / step)
    bounds = np.linspace(start_us, end, n_sub + 1)
    x, w = np.polynomial.legendre.leggauss(GAUSS_NODES)
    half = 0.5 * np.diff(bounds)
    t = ((bounds[:-1] + half)[:, None] + half[:, None] * x[None, :]).ravel()
    weight = (half[:, None] * w[None, :]).ravel()

    n0 = n_positrons / tau
    decay = n0 * np.exp(-t / tau)
    cos, sin = np.cos(omega * t + phi_rad), np.sin(omega * t + phi_rad)
    f = decay * (1.0 + ap * cos)
    grads = np.stack(
        [
            f / n0,  # ∂/∂N0
            f * t / tau**2,  # ∂/∂γτ
            decay * cos,  # ∂/∂(AP)
            -decay * ap * t * sin,  # ∂/∂ω
            -decay * ap * sin,  # ∂/∂φ
        ]
    )
    fisher = (grads * (weight / f)) @ grads.T
    scale = np.sqrt(np.diag(fisher))
    covariance = np.linalg.inv(fisher / np.outer(scale, scale)) / np.outer(scale, scale)
    return math.sqrt(covariance[3, 3]) / omega
