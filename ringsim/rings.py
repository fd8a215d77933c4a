"""Design kinematics of a ring: momentum, γ, revolution and anomalous-precession frequencies."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ringsim.config import SimConfig
from ringsim.constants import MUON_LIFETIME_S, SPEED_OF_LIGHT_M_PER_S, codata


@dataclass(frozen=True)
class RingKinematics:
    """Quantities of the design orbit (radius R0 in the central field B), for a μ⁺."""

    radius_m: float
    field_t: float
    field_index: float
    momentum_mev: float
    gamma: float
    beta: float
    omega_c_rad_per_s: float
    omega_a_rad_per_s: float
    gamma_tau_s: float
    e_max_mev: float

    @property
    def cyclotron_period_ns(self) -> float:
        """Cyclotron period 2π/ω_c in ns."""
        return 2.0 * math.pi / self.omega_c_rad_per_s * 1e9

    @property
    def omega_a_rad_per_us(self) -> float:
        """ω_a in rad/μs."""
        return self.omega_a_rad_per_s * 1e-6

    @property
    def gamma_tau_us(self) -> float:
        """Dilated lifetime γτ in μs."""
        return self.gamma_tau_s * 1e6

    @property
    def dispersion_m(self) -> float:
        """Equilibrium-radius offset per unit Δp/p, R0/(1−n)."""
        return self.radius_m / (1.0 - self.field_index)


def ring_kinematics(cfg: SimConfig, codata_edition: int = 2018) -> RingKinematics:
    """Design kinematics from the configured radius and field; ω_a is the field-only a_μ(e/m)B."""
    cd = codata(codata_edition)
    mass_mev = cd.muon_mass_mev
    momentum_mev = SPEED_OF_LIGHT_M_PER_S * cfg.ring.field_t * cfg.ring.radius_m * 1e-6
    gamma = math.hypot(1.0, momentum_mev / mass_mev)
    beta = math.sqrt(1.0 - 1.0 / gamma**2)
    q_over_m = cd.muon_charge_over_mass_c_per_kg
    return RingKinematics(
        radius_m=cfg.ring.radius_m,
        field_t=cfg.ring.field_t,
        field_index=cfg.ring.field_index,
        momentum_mev=momentum_mev,
        gamma=gamma,
        beta=beta,
        omega_c_rad_per_s=q_over_m * cfg.ring.field_t / gamma,
        omega_a_rad_per_s=cfg.muon.a_mu * q_over_m * cfg.ring.field_t,
        gamma_tau_s=gamma * MUON_LIFETIME_S,
        e_max_mev=0.5 * gamma * (1.0 + beta) * mass_mev,
    )
