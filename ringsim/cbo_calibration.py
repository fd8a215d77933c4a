"""Calibration of fast mode's coherent betatron oscillation (CBO) on a tracked beam.

Fast mode moves each decay point by A e^{−t/τ} cos(ν_x θ + φ) (the CBO left by the kick);
:func:`calibrate_from_tracking` tracks a beam through the configured injection and kick and
measures A, φ, ν_x and τ, and :meth:`CboCalibration.overrides` gives the fast-mode settings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ringsim.config import SimConfig
from ringsim.optics import model_tunes

__all__ = ["CboCalibration", "calibrate_from_tracking", "centroid_versus_turn_angle", "fit_coherent_oscillation"]


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
        """Return the configuration overrides that make fast mode reproduce this motion."""
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
    from ringsim.ring_fields import ring_parameters
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
