"""Fit functions of the ω_a analysis (SPEC §3, "Fit function family").

Times are in μs, frequencies in rad/μs; ``n0`` is the rate in counts per μs at t = 0.
"""

from __future__ import annotations

import numpy as np


def five_parameter(t_us, n0, tau_us, asym, omega_rad_per_us, phi):
    """Rate N(t) = N0 e^{-t/τ}[1 + A cos(ωt + φ)] in counts per μs.

    Parameters
    ----------
    t_us : array_like
        Times in μs.
    n0 : float
        Rate at t = 0 in counts per μs.
    tau_us : float
        Dilated lifetime γτ in μs.
    asym : float
        Asymmetry A (including the polarisation).
    omega_rad_per_us : float
        Anomalous precession frequency ω_a in rad/μs.
    phi : float
        Phase in rad.
    """
    t = np.asarray(t_us, dtype=float)
    return n0 * np.exp(-t / tau_us) * (1.0 + asym * np.cos(omega_rad_per_us * t + phi))


def five_parameter_binned(edges_us, n0, tau_us, asym, omega_rad_per_us, phi):
    """Expected counts per bin: the exact integral of :func:`five_parameter` over each bin.

    Uses ∫ e^{-t/τ} cos(ωt + φ) dt = e^{-t/τ}[ω sin(ωt + φ) − cos(ωt + φ)/τ] / (ω² + 1/τ²).

    Parameters
    ----------
    edges_us : array_like
        Increasing bin edges in μs (n + 1 values for n bins).
    n0, tau_us, asym, omega_rad_per_us, phi
        As in :func:`five_parameter`.

    Returns
    -------
    numpy.ndarray
        n expected counts.
    """
    e = np.asarray(edges_us, dtype=float)
    width = np.diff(e)
    decay = np.exp(-e / tau_us)
    # τ (e^{-a/τ} − e^{-b/τ}) written with expm1 so narrow bins keep full precision
    exp_part = -tau_us * decay[:-1] * np.expm1(-width / tau_us)
    theta = omega_rad_per_us * e + phi
    antiderivative = decay * (omega_rad_per_us * np.sin(theta) - np.cos(theta) / tau_us)
    osc_part = np.diff(antiderivative) / (omega_rad_per_us**2 + tau_us**-2)
    return n0 * (exp_part + asym * osc_part)
