"""Fast mode: the state of each muon at its decay from a parametric ring model, without tracking turns.

Each muon circulates at ω_c = βc/(R₀ + x_e) and its spin turns relative to its momentum at its own
ω_a from the Thomas–BMT equation at its equilibrium radius (SPEC §2): with electrostatic focusing
ω_a = (e/m)[aB − (a − 1/(γ²−1)) βκx_e/c], with magnetic focusing ω_a = (e/m) a B₀(1 − n x_e/R₀),
both reduced by the pitch factor 1 − n A_y²/(4R₀²) (SPEC §4). These are the effects the corrections
C_e and C_p undo. The decay position follows the betatron motion (tunes of the ring's linear optics)
plus a coherent radial oscillation A e^{−t/τ} cos(ν_x θ + φ) (the CBO left by the kick) whose
parameters :func:`calibrate_from_tracking` measures on a tracked sample; a fraction of the muons is
lost before decaying, at times ∝ e^{−t/τ_loss}.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ringsim.beam import Beam, vertical_amplitude_m
from ringsim.config import SimConfig
from ringsim.constants import SPEED_OF_LIGHT_M_PER_S
from ringsim.optics import one_turn_tunes
from ringsim.rings import RingKinematics


@dataclass(frozen=True)
class DecayStates:
    """Muon states at decay: position (n, 3) [m], u = γβ (n, 3), rest-frame spin (n, 3)."""

    position_m: np.ndarray
    u: np.ndarray
    spin: np.ndarray

    @property
    def azimuth_rad(self) -> np.ndarray:
        return np.mod(np.arctan2(self.position_m[:, 2], self.position_m[:, 0]), 2.0 * math.pi)

    @property
    def y_m(self) -> np.ndarray:
        return self.position_m[:, 1]


def model_tunes(cfg: SimConfig) -> tuple[float, float]:
    """Tunes used by fast mode: the configured ones, else those of the ring's linear optics."""
    nu_x, nu_y = one_turn_tunes(cfg)
    fm = cfg.fastmodel
    return fm.tune_x or nu_x, fm.tune_y or nu_y


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

    :mod:`ringsim.fastgen` evaluates the same model (with :func:`muon_omega_a_rad_per_s`) per muon
    inside its kernel: change both.
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


@dataclass(frozen=True)
class CboCalibration:
    """Coherent betatron motion measured on a tracked beam: x_c(θ) = A e^{−t/τ} cos(ν_x θ + φ)."""

    amplitude_m: float
    amplitude_err_m: float
    phase_rad: float
    tune_x: float
    tune_x_err: float
    tau_us: float

    def overrides(self) -> list[str]:
        """Configuration overrides that make fast mode reproduce this motion."""
        return [f"fastmodel.cbo_amplitude_m={self.amplitude_m!r}", f"fastmodel.cbo_phase_rad={self.phase_rad!r}", f"fastmodel.tune_x={self.tune_x!r}", f"fastmodel.cbo_tau_us={self.tau_us!r}"]


def centroid_versus_turn_angle(x_m: np.ndarray, turn_angle_rad: np.ndarray, bin_rad: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean radial offset of the beam in bins of the turn angle θ (NaN rows of lost muons ignored)."""
    ok = np.isfinite(x_m)
    idx = (turn_angle_rad[ok] / bin_rad).astype(np.int64)
    sums = np.bincount(idx, weights=x_m[ok])
    counts = np.bincount(idx)
    keep = counts > 0
    return (np.flatnonzero(keep) + 0.5) * bin_rad, sums[keep] / counts[keep]


def fit_coherent_oscillation(theta_rad: np.ndarray, centroid_m: np.ndarray, tune_guess: float) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares fit of c + A e^{−θ/Θ} cos(ν θ + φ) (θ in rad); returns values and errors of (c, A, ν, φ, Θ)."""
    from scipy.optimize import curve_fit

    def model(th, c, a, nu, phi, decay):
        return c + a * np.exp(-th / decay) * np.cos(nu * th + phi)

    # start values: amplitude and phase from a projection at the guessed tune
    cos_t, sin_t = np.cos(tune_guess * theta_rad), np.sin(tune_guess * theta_rad)
    dc = centroid_m - centroid_m.mean()
    a_c, a_s = 2 * np.mean(dc * cos_t), 2 * np.mean(dc * sin_t)
    p0 = [centroid_m.mean(), math.hypot(a_c, a_s), tune_guess, math.atan2(-a_s, a_c), 1e3 * theta_rad.max()]
    values, cov = curve_fit(model, theta_rad, centroid_m, p0=p0, maxfev=20000)
    return values, np.sqrt(np.diag(cov))


def calibrate_from_tracking(cfg: SimConfig, n_muons: int = 2000, n_turns: int = 300, seed: int = 0, steps_per_turn: int | None = None) -> CboCalibration:
    """Track a beam through the configured injection and kick; fit its coherent radial oscillation.

    The centroid is taken against each muon's own turn angle θ (the variable of the fast model),
    from the first turn after the kicker pulse.
    """
    from ringsim.beam import initial_states, muon_charge_over_mass, sample_beam
    from ringsim.fields import ring_parameters
    from ringsim.rings import ring_kinematics
    from ringsim.tracker import radial_vertical_offsets_m, track_recorded

    kin = ring_kinematics(cfg)
    steps = steps_per_turn or cfg.tracking.steps_per_turn
    period = 2 * math.pi / kin.omega_c_rad_per_s
    beam = sample_beam(cfg, n_muons, np.random.default_rng(seed))
    every = max(1, steps // 8)
    rec = track_recorded(initial_states(cfg, kin, beam), n_turns * steps, period / steps, every, ring_parameters(cfg, kin), muon_charge_over_mass(), cfg.muon.a_mu, cfg.muon.edm_eta)
    x, _ = radial_vertical_offsets_m(rec[:, :, :3], cfg.ring.radius_m)
    stored = np.isfinite(x[:, -1])
    x = x[stored] - beam.x_e_m[stored, None]
    t_own = rec[stored, :, 9] - beam.t0_ns[stored, None] * 1e-9
    theta = kin.omega_c_rad_per_s * t_own
    after_kick = theta > 2 * math.pi
    centres, centroid = centroid_versus_turn_angle(x[after_kick], theta[after_kick], 2 * math.pi / 8)
    values, errors = fit_coherent_oscillation(centres, centroid, model_tunes(cfg)[0])
    _, amp, nu, phi, decay = values
    if amp < 0:
        amp, phi = -amp, phi + math.pi
    return CboCalibration(
        amplitude_m=float(amp),
        amplitude_err_m=float(errors[1]),
        phase_rad=float(math.remainder(phi, 2 * math.pi)),
        tune_x=float(nu),
        tune_x_err=float(errors[2]),
        tau_us=float(min(decay / kin.omega_c_rad_per_s * 1e6, 1e9)) if decay > 0 else 1e9,  # ≤ 0: no measurable decoherence
    )
