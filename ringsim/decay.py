"""Polarised Michel decay μ⁺ → e⁺ ν ν̄ (tree level, m_e neglected), sampled and integrated.

Rest frame (docs/physics.md §6): d²Γ/(dx dcosθ) ∝ x²[(3 − 2x) + P cosθ (2x − 1)], x = 2E*/m_μ, θ the
angle between the positron and the muon spin. Positrons are boosted with the muon's actual
velocity (no β → 1 approximation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange
from scipy import integrate

from ringsim.errors import ConfigError


@njit(cache=True, inline="always", error_model="numpy")
def rest_frame_cos_theta(x, polarization, u):
    """cosθ of a rest-frame positron of energy fraction ``x`` by inverse CDF of the uniform ``u``."""
    k = polarization * (2.0 * x - 1.0) / (3.0 - 2.0 * x)  # density of cosθ ∝ 1 + k cosθ, |k| ≤ 1
    disc = (1.0 - k) * (1.0 - k) + 4.0 * k * u  # a product, not a power: the fast-mode loops stay vectorised
    return (k - 2.0 + 4.0 * u) / (1.0 + math.sqrt(disc))  # stable as k → 0


@njit(cache=True)
def sample_rest_frame(polarization):
    """Draw (x, cosθ) from the polarised Michel density using numba's per-thread RNG."""
    while True:
        x = np.random.random()
        if 2.0 * np.random.random() < x * x * (6.0 - 4.0 * x):
            break
    return x, rest_frame_cos_theta(x, polarization, np.random.random())


@njit(cache=True)
def boost_positron(ux, uy, uz, sx, sy, sz, x, cos_t, cos_phi, sin_phi, muon_mass_mev):
    """Lab positron of a rest-frame decay at (x, cosθ to the spin, azimuth φ about it).

    Parameters: the muon's u = γβ, its rest-frame spin direction (unit vector, lab axes), the
    energy fraction x = 2E*/m_μ, cosθ, and cos φ, sin φ. Returns (energy_mev, dir_x, dir_y, dir_z).
    """
    sin_t = math.sqrt(max(0.0, 1.0 - cos_t * cos_t))
    # orthonormal basis (e1, e2) perpendicular to the spin, e1 along the momentum's part
    # perpendicular to it: the decay frame then turns with the muon, so nearby muons (correlated
    # samples of a systematic study) get nearby positrons
    u_dot_s = ux * sx + uy * sy + uz * sz
    e1x, e1y, e1z = ux - u_dot_s * sx, uy - u_dot_s * sy, uz - u_dot_s * sz
    norm = math.sqrt(e1x * e1x + e1y * e1y + e1z * e1z)
    if norm < 1e-9 * (1.0 + math.sqrt(ux * ux + uy * uy + uz * uz)):
        if abs(sx) < 0.9:
            e1x, e1y, e1z = 0.0, sz, -sy
        else:
            e1x, e1y, e1z = -sz, 0.0, sx
        norm = math.sqrt(e1x * e1x + e1y * e1y + e1z * e1z)
    e1x /= norm
    e1y /= norm
    e1z /= norm
    e2x = sy * e1z - sz * e1y
    e2y = sz * e1x - sx * e1z
    e2z = sx * e1y - sy * e1x
    cp = cos_phi * sin_t
    sp = sin_phi * sin_t
    nx = cos_t * sx + cp * e1x + sp * e2x
    ny = cos_t * sy + cp * e1y + sp * e2y
    nz = cos_t * sz + cp * e1z + sp * e2z
    e_star = 0.5 * muon_mass_mev * x  # = |p*| for a massless positron
    u2 = ux * ux + uy * uy + uz * uz
    gamma = math.sqrt(1.0 + u2)
    if u2 == 0.0:
        return e_star, nx, ny, nz
    u_abs = math.sqrt(u2)
    bx, by, bz = ux / u_abs, uy / u_abs, uz / u_abs  # boost direction
    beta = u_abs / gamma
    n_par = nx * bx + ny * by + nz * bz
    energy = gamma * e_star * (1.0 + beta * n_par)
    coef = e_star * ((gamma - 1.0) * n_par + gamma * beta)
    px = e_star * nx + coef * bx
    py = e_star * ny + coef * by
    pz = e_star * nz + coef * bz
    return energy, px / energy, py / energy, pz / energy


@njit(cache=True)
def decay_positron(ux, uy, uz, sx, sy, sz, polarization, muon_mass_mev):
    """Sample one decay positron in the lab with numba's per-thread RNG.

    Parameters: the muon's u = γβ, its rest-frame spin direction (unit vector, lab axes), its
    polarisation. Returns (energy_mev, dir_x, dir_y, dir_z) of the positron in the lab.
    """
    x, cos_t = sample_rest_frame(polarization)
    phi = 2.0 * math.pi * np.random.random()
    return boost_positron(ux, uy, uz, sx, sy, sz, x, cos_t, math.cos(phi), math.sin(phi), muon_mass_mev)


@njit(cache=True, parallel=True)
def decay_positrons(block_starts, block_seeds, u, s, polarization, muon_mass_mev):
    """Lab energy [MeV] and unit direction (n, 3) of the decay positron of every muon.

    Muons ``block_starts[i]:block_starts[i+1]`` draw from numba's generator seeded with
    ``block_seeds[i]``, so results are identical for any thread count. ``u`` (n, 3) is γβ and ``s``
    (n, 3) the rest-frame spin at decay.
    """
    n = u.shape[0]
    energy = np.zeros(n)
    direction = np.zeros((n, 3))
    for b in prange(block_seeds.size):
        np.random.seed(block_seeds[b])
        for i in range(block_starts[b], block_starts[b + 1]):
            e, dx, dy, dz = decay_positron(u[i, 0], u[i, 1], u[i, 2], s[i, 0], s[i, 1], s[i, 2], polarization, muon_mass_mev)
            energy[i] = e
            direction[i, 0], direction[i, 1], direction[i, 2] = dx, dy, dz
    return energy, direction


@dataclass(frozen=True)
class DecayStates:
    """Muon states at decay: position (n, 3) [m], u = γβ (n, 3), rest-frame spin (n, 3)."""

    position_m: np.ndarray
    u: np.ndarray
    spin: np.ndarray

    @property
    def azimuth_rad(self) -> np.ndarray:
        """Azimuth of each decay position in [0, 2π) rad, atan2(z, x)."""
        return np.mod(np.arctan2(self.position_m[:, 2], self.position_m[:, 0]), 2.0 * math.pi)

    @property
    def y_m(self) -> np.ndarray:
        """Vertical position of each decay in m."""
        return self.position_m[:, 1]


def _cos_limits(x, gamma, beta, e_lo_over_m, e_hi_over_m):
    """Range of cosα (positron to boost axis) that puts a rest-frame x into the lab window."""
    scale = 0.5 * gamma * x
    lo = (e_lo_over_m / scale - 1.0) / beta
    hi = (e_hi_over_m / scale - 1.0) / beta
    return min(max(lo, -1.0), 1.0), min(max(hi, -1.0), 1.0)


def lab_fraction_and_asymmetry(gamma: float, energy_lo_mev: float, energy_hi_mev: float, muon_mass_mev: float) -> tuple[float, float]:
    """Fraction of decays with lab energy in [lo, hi] and their asymmetry A (for P = 1).

    The number in the window varies with the spin angle ψ to the momentum as N₀[1 + A P cos ψ].
    Integrals over cosα are analytic; the x integral uses adaptive quadrature.
    """
    if not (gamma >= 1.0 and math.isfinite(gamma)):
        raise ConfigError(f"gamma: expected a finite number ≥ 1, got {gamma!r}")
    if not (0.0 <= energy_lo_mev < energy_hi_mev):
        raise ConfigError(f"energy window: expected 0 ≤ lo < hi, got ({energy_lo_mev}, {energy_hi_mev}) MeV")
    beta = math.sqrt(max(0.0, 1.0 - 1.0 / gamma**2))
    beta = max(beta, 1e-12)
    lo_m, hi_m = energy_lo_mev / muon_mass_mev, energy_hi_mev / muon_mass_mev

    def number(x):
        c_lo, c_hi = _cos_limits(x, gamma, beta, lo_m, hi_m)
        return x * x * (3.0 - 2.0 * x) * (c_hi - c_lo)

    def asymmetric(x):
        c_lo, c_hi = _cos_limits(x, gamma, beta, lo_m, hi_m)
        return x * x * (2.0 * x - 1.0) * 0.5 * (c_hi * c_hi - c_lo * c_lo)

    # kinks where a cos limit reaches ±1: x = 2E/(γ m (1 ± β))
    kinks = [2.0 * e / (gamma * (1.0 + s * beta)) for e in (lo_m, hi_m) for s in (1.0, -1.0)]
    points = sorted(k for k in kinks if 0.0 < k < 1.0)
    opts = dict(points=points or None, limit=200, epsabs=1e-13, epsrel=1e-11)
    n_in = integrate.quad(number, 0.0, 1.0, **opts)[0]
    a_in = integrate.quad(asymmetric, 0.0, 1.0, **opts)[0]
    total = 1.0  # ∫∫ x²(3 − 2x) dx dcosα over the full range
    if n_in <= 0.0:
        return 0.0, 0.0
    return n_in / total, a_in / n_in
