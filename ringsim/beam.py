"""Stored-beam phase space: momentum spread, betatron amplitudes, injection times, polarisation.

The beam is matched to the smooth-approximation focusing of the ring: radial betatron motion
x_β = A_x cos ψ_x with tune ν_x = √(1 − n), vertical y = A_y cos ψ_y with ν_y = √n, around the
equilibrium radius offset x_e = R₀ δ/(1 − n) of a muon with Δp/p = δ (docs/physics.md §3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ringsim.config import SimConfig
from ringsim.constants import codata
from ringsim.errors import ConfigError
from ringsim.optics import smooth_tunes
from ringsim.rings import RingKinematics
from ringsim.tracker import N_STATE


@dataclass(frozen=True)
class Beam:
    """Per-muon initial conditions (arrays of length n); times in ns, lengths in m."""

    delta_p: np.ndarray  # Δp/p
    x_e_m: np.ndarray  # equilibrium radius offset
    x_beta_m: np.ndarray  # radial betatron offset at injection
    xp_beta: np.ndarray  # radial slope dx/ds at injection
    y_m: np.ndarray  # vertical offset at injection
    yp: np.ndarray  # vertical slope dy/ds at injection
    t0_ns: np.ndarray  # injection time of the muon relative to the bunch centre


def sample_beam(cfg: SimConfig, n: int, rng: np.random.Generator) -> Beam:
    """Draw ``n`` stored muons from the configured Gaussian beam (matched betatron ellipses).

    The Gaussian widths are those before collimation: a muon is kept only if its orbit stays
    inside the circular aperture at every betatron phase, (|x_e| + A_x)² + A_y² ≤ a².
    The fused fast-mode kernel (:mod:`ringsim.fast_generation`) draws its beam by the same rule: change both.
    """
    parts: list[np.ndarray] = []
    kept = 0
    while kept < n:
        cols, ok = _candidates(cfg, max(1024, int(1.3 * (n - kept))), rng)
        parts.append(cols[:, ok])
        kept += int(ok.sum())
    cols = np.concatenate(parts, axis=1)[:, :n]
    return Beam(*cols)


def _candidates(cfg: SimConfig, m: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``m`` muons of the Gaussian beam before collimation (rows: the fields of :class:`Beam`) and which fit the aperture."""
    b = cfg.beam
    r0, nidx, aperture = cfg.ring.radius_m, cfg.ring.field_index, cfg.ring.aperture_radius_m
    nu_x, nu_y = smooth_tunes(nidx)
    delta = rng.normal(b.momentum_offset, b.momentum_spread, m)
    x_beta = rng.normal(0.0, b.radial_betatron_width_m, m)
    xp = rng.normal(0.0, b.radial_betatron_width_m * nu_x / r0, m)
    y = rng.normal(0.0, b.vertical_width_m, m)
    yp = rng.normal(0.0, b.vertical_width_m * nu_y / r0, m)
    t0 = rng.normal(0.0, b.bunch_length_ns, m)
    x_e = r0 * delta / (1.0 - nidx)
    a_x = np.hypot(x_beta, xp * r0 / nu_x)
    a_y = np.hypot(y, yp * r0 / nu_y)
    ok = (np.abs(x_e) + a_x) ** 2 + a_y**2 <= aperture**2
    return np.stack([delta, x_e, x_beta, xp, y, yp, t0]), ok


def check_beam_fits_aperture(cfg: SimConfig, n_trial: int = 1 << 16) -> None:
    """Raise ConfigError if none of ``n_trial`` muons of the configured beam fits inside the aperture.

    Both beam samplers draw until enough muons are kept; without this check a beam that (almost)
    never fits would make them run forever.
    """
    if not np.any(_candidates(cfg, n_trial, np.random.default_rng(0))[1]):
        b, ring = cfg.beam, cfg.ring
        raise ConfigError(
            f"beam: none of {n_trial} muons fits inside the {ring.aperture_radius_m * 1e3:g} mm aperture (momentum_offset {b.momentum_offset:g}, widths {b.radial_betatron_width_m:g} m, {b.vertical_width_m:g} m)"
        )


def vertical_amplitude_m(beam: Beam, field_index: float, radius_m: float) -> np.ndarray:
    """Vertical betatron amplitude A_y = √(y² + (y′R₀/ν_y)²)."""
    nu_y = math.sqrt(field_index)
    return np.hypot(beam.y_m, beam.yp * radius_m / nu_y)


def initial_states(cfg: SimConfig, kin: RingKinematics, beam: Beam) -> np.ndarray:
    """Tracker state rows (n, 10) at the injection azimuth φ = 0, at each muon's injection time.

    Spin: in the horizontal plane at ``beam.spin_phase_rad`` to the momentum (rest-frame unit vector).
    """
    n = beam.delta_p.size
    st = np.zeros((n, N_STATE))
    p_abs = kin.gamma * kin.beta * (1.0 + beam.delta_p)  # |u| = γβ
    # direction: mostly +Z at (R₀ + x, y, 0), slopes in radial (X) and vertical (Y)
    dx, dy = beam.xp_beta, beam.yp
    norm = np.sqrt(1.0 + dx**2 + dy**2)
    offset = cfg.kicker.injection_offset_m if cfg.kicker.enabled else 0.0  # inflector exit, before the kick
    st[:, 0] = cfg.ring.radius_m + beam.x_e_m + beam.x_beta_m + offset
    st[:, 1] = beam.y_m
    st[:, 9] = beam.t0_ns * 1e-9  # lab time: the bunch centre passes the injection point at t = 0
    st[:, 3] = p_abs * dx / norm
    st[:, 4] = p_abs * dy / norm
    st[:, 5] = p_abs / norm
    phase = cfg.beam.spin_phase_rad
    # rotate the horizontal momentum direction by the spin phase about −ŷ
    uh = np.hypot(st[:, 3], st[:, 5])
    ux, uz = st[:, 3] / uh, st[:, 5] / uh
    st[:, 6] = math.cos(phase) * ux - math.sin(phase) * uz
    st[:, 8] = math.cos(phase) * uz + math.sin(phase) * ux
    return st


def muon_charge_over_mass(codata_edition: int = 2018) -> float:
    """q/m of the μ⁺ in C/kg."""
    return codata(codata_edition).muon_charge_over_mass_c_per_kg
