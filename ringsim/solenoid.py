"""J-PARC 3 T storage solenoid as a sum of coaxial circular current loops (exactly Maxwellian).

Geometry as in ``ringsim.tracker``: the solenoid axis is Y (vertical), the storage orbit lies in
the X–Z plane at ρ = √(X² + Z²) = R₀. Each loop of radius a at height y_c carries I ampere-turns
(I > 0 gives +ŷ field at its centre); its field in closed form with the complete elliptic
integrals K(m), E(m) (Smythe; Simpson et al., NASA TM 2001-211107):

    B_y = μ₀I / (2π s) [K + (a² − ρ² − z²) / ((a − ρ)² + z²) E],
    B_ρ = μ₀I z / (2π ρ s) [−K + (a² + ρ² + z²) / ((a − ρ)² + z²) E],
    s = √((a + ρ)² + z²),  m = 4aρ / s²,  z = Y − y_c,

which is divergence- and curl-free away from the wire. K and E are computed with the
arithmetic–geometric mean so that the field is callable from numba kernels.

The coil set is a pure-coil model of the MRI-type magnet: the real magnet has an iron yoke and
shim coils, which are not modelled. Its currents are fitted (linear least squares) so that in the
storage plane B_y(ρ, 0) = B₀ (1 − n (ρ − R₀)/R₀) over the storage region, which gives B₀ and the
field index n at R₀; above the coils the field falls off, which the spiral injection
(``ringsim.injection``) uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numba import njit

MU0_T_M_PER_A = 1.256_637_062_12e-6  # vacuum permeability (CODATA 2018) [V]


@njit(cache=True, inline="always")
def ellipk_ellipe(m):
    """Complete elliptic integrals (K(m), E(m)) of parameter m = k² in [0, 1), by the AGM.

    K = π / (2 AGM(1, √(1 − m))) and E = K (1 − Σₙ 2ⁿ⁻¹ cₙ²) with c₀² = m,
    cₙ₊₁ = (aₙ − bₙ)/2 (Abramowitz & Stegun 17.6).
    """
    a = 1.0
    b = math.sqrt(1.0 - m)
    c2_sum = 0.5 * m
    weight = 0.5
    for _ in range(40):
        c = 0.5 * (a - b)
        weight *= 2.0
        c2_sum += weight * c * c
        a, b = 0.5 * (a + b), math.sqrt(a * b)
        if abs(c) < 1e-17 * a:
            break
    k = 0.5 * math.pi / a
    return k, k * (1.0 - c2_sum)


@njit(cache=True, inline="always")
def loop_field_rz(rho, z, a, current):
    """(B_ρ, B_y) [T] of one loop of radius ``a`` [m] carrying ``current`` [A] at (ρ, z) from its centre."""
    s2 = (a + rho) * (a + rho) + z * z
    d2 = (a - rho) * (a - rho) + z * z
    m = 4.0 * a * rho / s2
    k, e = ellipk_ellipe(m)
    pref = MU0_T_M_PER_A * current / (2.0 * math.pi * math.sqrt(s2))
    b_y = pref * (k + (a * a - rho * rho - z * z) / d2 * e)
    if rho < 1e-12 * a:
        return 0.0, b_y
    b_rho = pref * z / rho * (-k + (a * a + rho * rho + z * z) / d2 * e)
    return b_rho, b_y


@njit(cache=True)
def field_solenoid(x, y, z, coil_r, coil_y, coil_current):
    """Field (B_x, B_y, B_z) [T] at (x, y, z) [m] of coaxial loops on the Y axis.

    ``coil_r`` [m], ``coil_y`` [m] and ``coil_current`` [A] are arrays of the loop radii, heights
    and ampere-turns.
    """
    rho = math.sqrt(x * x + z * z)
    b_rho = 0.0
    b_y = 0.0
    for i in range(coil_r.shape[0]):
        br, by = loop_field_rz(rho, y - coil_y[i], coil_r[i], coil_current[i])
        b_rho += br
        b_y += by
    if rho == 0.0:
        return 0.0, b_y, 0.0
    return b_rho * x / rho, b_y, b_rho * z / rho


@dataclass(frozen=True)
class CoilGeometry:
    """Loop pairs placed symmetrically at ±height; each pair gets one fitted current.

    The radii and heights are a pure-coil stand-in for the J-PARC MRI-type magnet (main coils of
    ~1 m radius, storage region at R₀ = 0.334 m, injection through the top) [U]; the fit targets
    are from SPEC §5 [V].
    """

    radii_m: tuple[float, ...] = (0.95, 0.95, 0.80, 0.65, 0.55)  # [U]
    heights_m: tuple[float, ...] = (0.45, 0.20, 0.40, 0.35, 0.30)  # [U]
    field_t: float = 3.0  # B₀ at (R₀, 0), SPEC §5 [V]
    radius_m: float = 0.33356  # R₀, SPEC §5 [V]
    field_index: float = 1.5e-4  # n = −(R₀/B)∂B_y/∂ρ, public coil model, SPEC §5 [V]
    fit_half_width_m: float = 0.045  # radial range ±45 mm fitted in the storage plane [U]


@lru_cache(maxsize=8)
def _fitted_coils(geom: CoilGeometry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_pairs = len(geom.radii_m)
    rho = geom.radius_m + np.linspace(-geom.fit_half_width_m, geom.fit_half_width_m, 61)
    target = geom.field_t * (1.0 - geom.field_index * (rho - geom.radius_m) / geom.radius_m)
    design = np.empty((rho.size, n_pairs))
    for j, (a, h) in enumerate(zip(geom.radii_m, geom.heights_m)):
        for i, r in enumerate(rho):
            design[i, j] = loop_field_rz(r, -h, a, 1.0)[1] + loop_field_rz(r, h, a, 1.0)[1]
    scale = np.abs(design).max(axis=0)
    currents = np.linalg.lstsq(design / scale, target, rcond=None)[0] / scale
    coil_r = np.repeat(np.asarray(geom.radii_m, float), 2)
    coil_y = np.ravel(np.column_stack([geom.heights_m, -np.asarray(geom.heights_m, float)]))
    coil_i = np.repeat(currents, 2)
    for arr in (coil_r, coil_y, coil_i):
        arr.setflags(write=False)
    return coil_r, coil_y, coil_i


def coil_set_jparc(geom: CoilGeometry = CoilGeometry()) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Loop radii [m], heights [m] and ampere-turns [A] of the fitted J-PARC coil set (read-only)."""
    return _fitted_coils(geom)


def field_index_at(rho_m: float, coil_r, coil_y, coil_current, step_m: float = 1e-4) -> tuple[float, float]:
    """(B_y [T], n = −(ρ/B_y)∂B_y/∂ρ) in the plane y = 0 at radius ρ, by a central difference."""
    b_plus = field_solenoid(rho_m + step_m, 0.0, 0.0, coil_r, coil_y, coil_current)[1]
    b_minus = field_solenoid(rho_m - step_m, 0.0, 0.0, coil_r, coil_y, coil_current)[1]
    b = field_solenoid(rho_m, 0.0, 0.0, coil_r, coil_y, coil_current)[1]
    return b, -rho_m / b * (b_plus - b_minus) / (2.0 * step_m)
