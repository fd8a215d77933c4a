"""Software blinding of ω_a (docs/physics.md §3 "Blinding"; the algorithm of the Fermilab Blinders library).

A fit reports R in ppm with ω = ω_ref[1 + (R − ΔR)·1e-6], where the offset ΔR is derived
deterministically from a secret string. The fitters work in the true parameterisation
ω = ω_ref(1 + R_true·1e-6) and report R_blind = R_true + ΔR, so blinding never changes the fit
itself and unblinding with the secret restores the unblinded ω exactly (up to rounding).
ΔR is kept in a private attribute and never appears in a repr, a str or a result dictionary.
The offset is one frequency shift ω_B·ΔR_B·1e-6 per secret (ω_B = 2π × 0.2291 MHz, ΔR_B drawn
from the secret), expressed for a fit's own reference as ΔR = ΔR_B·ω_B/ω_ref: fits of one file
with two references (two ring presets) then report the same blinded ω, and comparing them
reveals nothing. For ω_ref = ω_B, ΔR = ΔR_B (docs/physics.md §3).
Values a user gives for R (fixed or start values) are blinded R too: :meth:`Blinder.true_r`
carries them into the true parameterisation, so fixing R = 0 fits at R_blind = 0, not at ΔR.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

from ringsim.errors import ConfigError

BLINDING_OMEGA_RAD_PER_US = 2.0 * math.pi * 0.2291  # ω_ref of the Blinders algorithm, docs/physics.md §3
BOX_HALF_WIDTH_PPM = 24.0
TAIL_SIGMA_PPM = 1.0
# probability of the uniform box, 48/(48 + √(2π)): the density is continuous at |ΔR| = 24 ppm
BOX_PROBABILITY = 2.0 * BOX_HALF_WIDTH_PPM / (2.0 * BOX_HALF_WIDTH_PPM + math.sqrt(2.0 * math.pi) * TAIL_SIGMA_PPM)


def _delta_r_ppm(secret: str) -> float:
    """Blinding offset ΔR in ppm from a secret: sha256 → seed → numpy Generator."""
    seed = int.from_bytes(hashlib.sha256(secret.encode("utf-8")).digest(), "big")
    rng = np.random.default_rng(seed)
    if rng.random() < BOX_PROBABILITY:
        return float(rng.uniform(-BOX_HALF_WIDTH_PPM, BOX_HALF_WIDTH_PPM))
    sign = 1.0 if rng.random() < 0.5 else -1.0
    return sign * (BOX_HALF_WIDTH_PPM + TAIL_SIGMA_PPM * abs(float(rng.standard_normal())))


class Blinder:
    """Hides ω_a behind an offset ΔR derived from a secret string.

    Parameters
    ----------
    secret : str
        Non-empty blinding string; the same string always gives the same ΔR.
    omega_ref_rad_per_us : float
        Reference frequency ω_ref in rad/μs (Fermilab: 2π × 0.2291 MHz).
    """

    __slots__ = ("__delta_r_ppm", "_omega_ref_rad_per_us")

    def __init__(self, secret: str, omega_ref_rad_per_us: float):
        if not isinstance(secret, str) or not secret:
            raise ConfigError("blinding: the blinding secret must be a non-empty string")
        if not (math.isfinite(omega_ref_rad_per_us) and omega_ref_rad_per_us > 0.0):
            raise ConfigError(f"blinding: omega_ref_rad_per_us must be a finite number > 0, got {omega_ref_rad_per_us!r}")
        self._omega_ref_rad_per_us = float(omega_ref_rad_per_us)
        self.__delta_r_ppm = _delta_r_ppm(secret) * BLINDING_OMEGA_RAD_PER_US / self._omega_ref_rad_per_us

    def __repr__(self) -> str:
        """Show the blinding without its secret or offset."""
        return f"Blinder(secret=<hidden>, omega_ref_rad_per_us={self._omega_ref_rad_per_us!r})"

    @property
    def omega_ref_rad_per_us(self) -> float:
        """Reference frequency ω_ref in rad/μs."""
        return self._omega_ref_rad_per_us

    def blind_r(self, r_true_ppm: float) -> float:
        """Blinded R in ppm, R_true + ΔR, for a true R_true = (ω/ω_ref − 1)·1e6."""
        return r_true_ppm + self.__delta_r_ppm

    def true_r(self, r_ppm_blinded: float) -> float:
        """Return true R in ppm, R_blind − ΔR, of a blinded R (a value fixed or started in blinded space)."""
        return r_ppm_blinded - self.__delta_r_ppm

    def omega_from_r(self, r_ppm: float) -> float:
        """Return true frequency ω = ω_ref[1 + (R − ΔR)·1e-6] in rad/μs for a blinded R in ppm."""
        return self._omega_ref_rad_per_us * (1.0 + (r_ppm - self.__delta_r_ppm) * 1e-6)

    def r_from_omega(self, omega_rad_per_us: float) -> float:
        """Blinded R in ppm for a true frequency in rad/μs (inverse of :meth:`omega_from_r`)."""
        return self.blind_r((omega_rad_per_us / self._omega_ref_rad_per_us - 1.0) * 1e6)

    def blinded_omega(self, omega_rad_per_us: float) -> float:
        """Blinded frequency ω_ref(1 + R_blind·1e-6) in rad/μs for a true frequency in rad/μs."""
        return self._omega_ref_rad_per_us * (1.0 + self.r_from_omega(omega_rad_per_us) * 1e-6)

    def unblind_r(self, r_ppm_blinded: float) -> float:
        """Unblind: the true ω in rad/μs of a fit that reported ``r_ppm_blinded`` (= :meth:`omega_from_r`)."""
        return self.omega_from_r(r_ppm_blinded)
