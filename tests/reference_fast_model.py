"""Reference implementation of the fast-mode ring model in numpy, for tests only.

The package evaluates this model once, inside the numba kernel of :mod:`ringsim.fast_generation`; the tests
compare the kernel with this plain, per-array transcription of the same formulas. The model:

Each muon circulates at ω_c = βc/(R₀ + x_e) and its spin turns relative to its momentum at its own
ω_a from the Thomas–BMT equation at its equilibrium radius (docs/physics.md §2): with electrostatic focusing
ω_a = (e/m)[aB − (a − 1/(γ²−1)) βκx_e/c], with magnetic focusing ω_a = (e/m) a B₀(1 − n x_e/R₀),
both reduced by the pitch factor 1 − n A_y²/(4R₀²) (docs/physics.md §4). These are the effects the corrections
C_e and C_p undo. The decay position follows the betatron motion (tunes of the ring's linear optics)
plus a coherent radial oscillation A e^{−t/τ} cos(ν_x θ + φ) (the CBO left by the kick) whose
parameters :func:`calibrate_from_tracking` measures on a tracked sample; a fraction of the muons is
lost before decaying, at times ∝ e^{−t/τ_loss}.
"""

from __future__ import annotations

import math

import numpy as np

from ringsim.beam import Beam, vertical_amplitude_m
from ringsim.config import SimConfig
from ringsim.constants import SPEED_OF_LIGHT_M_PER_S
from ringsim.decay import DecayStates
from ringsim.optics import model_tunes
from ringsim.rings import RingKinematics


def muon_omega_a_rad_per_s(cfg: SimConfig, kin: RingKinematics, beam: Beam, q_over_m: float) -> np.ndarray:
    """Anomalous precession frequency of each muon at its equilibrium radius, with the pitch factor."""
    r0, n, b0, a = cfg.ring.radius_m, cfg.ring.field_index, cfg.ring.field_t, cfg.muon.a_mu
    u_abs = kin.gamma * kin.beta * (1.0 + beam.delta_p)
    gamma = np.sqrt(1.0 + u_abs**2)
    beta = u_abs / gamma
    if cfg.ring.focusing == "electric":
        kappa = n * kin.beta * SPEED_OF_LIGHT_M_PER_S * b0 / r0
        omega = q_over_m * (a * b0 - (a - 1.0 / (gamma**2 - 1.0)) * beta * kappa * beam.x_e_m / SPEED_OF_LIGHT_M_PER_S)
    else:
        omega = q_over_m * a * b0 * (1.0 - n * beam.x_e_m / r0)
    a_y = vertical_amplitude_m(beam, n, r0)
    return omega * (1.0 - n * a_y**2 / (4.0 * r0**2))


def decay_states(cfg: SimConfig, kin: RingKinematics, beam: Beam, lifetime_s: np.ndarray, q_over_m: float) -> DecayStates:
    """Muon states after living ``lifetime_s`` (lab time since its injection), from the parametric model.

    :mod:`ringsim.fast_generation` evaluates the same model per muon inside its kernel; the tests compare
    the two.
    """
    r0, fm = cfg.ring.radius_m, cfg.fastmodel
    u_abs = kin.gamma * kin.beta * (1.0 + beam.delta_p)
    beta = u_abs / np.sqrt(1.0 + u_abs**2)
    turn_angle = beta * SPEED_OF_LIGHT_M_PER_S / (r0 + beam.x_e_m) * lifetime_s
    azimuth = np.mod(turn_angle, 2.0 * math.pi)
    nu_x, nu_y = model_tunes(cfg)
    x = beam.x_e_m + beam.x_beta_m * np.cos(nu_x * turn_angle) + beam.xp_beta * r0 / nu_x * np.sin(nu_x * turn_angle)
    x += fm.cbo_amplitude_m * np.exp(-lifetime_s * 1e6 / fm.cbo_tau_us) * np.cos(nu_x * turn_angle + fm.cbo_phase_rad)
    y = beam.y_m * np.cos(nu_y * turn_angle) + beam.yp * r0 / nu_y * np.sin(nu_y * turn_angle)
    spin_phase = cfg.beam.spin_phase_rad + muon_omega_a_rad_per_s(cfg, kin, beam, q_over_m) * lifetime_s
    cos_a, sin_a = np.cos(azimuth), np.sin(azimuth)
    ux_hat, uz_hat = -sin_a, cos_a  # tangent, along +Z at azimuth 0
    u = np.stack([u_abs * ux_hat, np.zeros_like(u_abs), u_abs * uz_hat], axis=1)
    c, s = np.cos(spin_phase), np.sin(spin_phase)  # rotation of û about −ŷ by the spin phase
    spin = np.stack([c * ux_hat - s * uz_hat, np.zeros_like(c), c * uz_hat + s * ux_hat], axis=1)
    position = np.stack([(r0 + x) * cos_a, y, (r0 + x) * sin_a], axis=1)
    return DecayStates(position_m=position, u=u, spin=spin)
