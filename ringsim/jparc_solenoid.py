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

The coil set is a pure-coil model of the MRI-type magnet (the real magnet's iron yoke, pole
shaping and shims are not modelled): four pairs of loops, symmetric in ±Y, two of them inside the
storage orbit. Their ampere-turns are fitted at first use (linear least squares, cached) so that
B_y(R₀, 0) = B₀ and the field index at R₀ are exact and B_y(ρ, 0) follows B₀(R₀/ρ)ⁿ across the
storage region. With this geometry the field is weakly focusing in |y| ≲ 8 cm and falls off
monotonically above it (B ≈ 0.82 B₀ at y = 0.45 m), with a radial component B_ρ > 0 that slows the
vertical motion of a muon spiralling down from above (``ringsim.injection``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numba import njit

MU0_T_M_PER_A = 1.256_637_062_12e-6  # vacuum permeability (CODATA 2018) [V]


@njit(cache=True)
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


@njit(cache=True)
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
def loop_flux(rho, z, a, current):
    """Flux Ψ = 2πρA_φ [Wb] of one loop through the circle of radius ρ at axial distance z.

    A_φ = μ₀I/(πk) √(a/ρ) [(1 − k²/2)K − E] with k² = m = 4aρ/((a + ρ)² + z²) (Smythe); for
    m < 1e-3 the bracket is its series (π m²/32)(1 + 3m/4 + 75m²/1024).
    """
    if rho <= 0.0:
        return 0.0
    m = 4.0 * a * rho / ((a + rho) * (a + rho) + z * z)
    if m < 1e-3:
        bracket = math.pi * m * m / 32.0 * (1.0 + 0.75 * m + 75.0 / 1024.0 * m * m)
    else:
        k, e = ellipk_ellipe(m)
        bracket = (1.0 - 0.5 * m) * k - e
    return 2.0 * MU0_T_M_PER_A * current * math.sqrt(a * rho / m) * bracket


@njit(cache=True)
def flux_solenoid(rho, y, coil_r, coil_y, coil_current):
    """Magnetic flux [Wb] of the loops through the circle of radius ρ [m] at height y [m] (∂Ψ/∂ρ = 2πρB_y)."""
    psi = 0.0
    for i in range(coil_r.shape[0]):
        psi += loop_flux(rho, y - coil_y[i], coil_r[i], coil_current[i])
    return psi


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
    """Loop pairs at ±height (one fitted current per pair) and the fit targets.

    Radii and heights [U] come from an offline Nelder–Mead search (scipy.optimize) over pair
    positions, inner pairs at ρ ≤ 0.22 m and outer ones at ρ ≥ 0.48 m to leave the injection
    path free, minimising (with the currents of :func:`fit_currents`): the variation of n(ρ) over
    R₀ ± 15 mm and of B_ρ/y over |y| ≤ 30 mm (targets < 4 %), any rise of B_y(R₀, y) above B₀ for
    y > 0 (target 3e-5), the total ampere-turns and B_y(R₀, 0.8 m) above 0.9 B₀. The result has n
    uniform to 5e-4, B_ρ ∝ y to 2e-4 and no mirror peak; ≈ 4.9 MA-turns in all.
    """

    radii_m: tuple[float, ...] = (0.1965, 0.2193, 0.5647, 0.9822)  # [U]
    heights_m: tuple[float, ...] = (0.2254, 0.1627, 0.3403, 0.0428)  # [U]
    field_t: float = 3.0  # B₀ at (R₀, 0), docs/physics.md §5 [V]
    radius_m: float = 0.33356  # R₀, docs/physics.md §5 [V]
    field_index: float = 1.5e-4  # n = −(R₀/B)∂B_y/∂ρ, public coil model, docs/physics.md §5 [V]
    fit_half_width_m: float = 0.02  # radial range ±20 mm fitted in the storage plane [U]


def _pair_field_y(rho: np.ndarray, a: float, h: float) -> np.ndarray:
    """B_y [T] in the plane y = 0 of a pair of loops at ±h carrying 1 A each."""
    return np.array([loop_field_rz(r, -h, a, 1.0)[1] + loop_field_rz(r, h, a, 1.0)[1] for r in rho])


def fit_currents(geom: CoilGeometry) -> np.ndarray:
    """Ampere-turns [A] of each loop pair: B₀ and n exact at R₀, B₀(R₀/ρ)ⁿ in least squares.

    Null-space method: the two constraints fix a particular solution; the remaining freedom is
    fitted to the constant-index profile on R₀ ± ``fit_half_width_m`` in the plane y = 0,
    dropping directions with singular values below 1e-6 of the largest (invisible in the storage
    region), so that the solution is unique.
    """
    r0, b0, n = geom.radius_m, geom.field_t, geom.field_index
    rho = r0 + np.linspace(-geom.fit_half_width_m, geom.fit_half_width_m, 41)
    step = 1e-4
    pairs = list(zip(geom.radii_m, geom.heights_m))
    design = np.column_stack([_pair_field_y(rho, a, h) for a, h in pairs])
    at_r0 = np.column_stack([_pair_field_y(np.array([r0 - step, r0, r0 + step]), a, h) for a, h in pairs])
    constraints = np.vstack([at_r0[1], (at_r0[2] - at_r0[0]) / (2.0 * step)])
    values = np.array([b0, -n * b0 / r0])
    target = b0 * (r0 / rho) ** n
    scale = np.abs(design).max(axis=0)
    c_s = constraints / scale
    particular = np.linalg.lstsq(c_s, values, rcond=None)[0]
    null = np.linalg.svd(c_s)[2][2:].T
    a_s = design / scale
    z = np.linalg.lstsq(a_s @ null, target - a_s @ particular, rcond=1e-6)[0]
    return (particular + null @ z) / scale


@lru_cache(maxsize=8)
def _fitted_coils(geom: CoilGeometry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    currents = fit_currents(geom)
    coil_r = np.repeat(np.asarray(geom.radii_m, float), 2)
    coil_y = np.ravel(np.column_stack([geom.heights_m, -np.asarray(geom.heights_m, float)]))
    coil_i = np.repeat(currents, 2)
    return coil_r, coil_y, coil_i


def coil_set_jparc(geom: CoilGeometry = CoilGeometry()) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Loop radii [m], heights [m] and ampere-turns [A] of the fitted J-PARC coil set (copies)."""
    return tuple(arr.copy() for arr in _fitted_coils(geom))


def field_index_at(rho_m: float, coil_r, coil_y, coil_current, step_m: float = 1e-4) -> tuple[float, float]:
    """(B_y [T], n = −(ρ/B_y)∂B_y/∂ρ) in the plane y = 0 at radius ρ, by a central difference."""
    b_plus = field_solenoid(rho_m + step_m, 0.0, 0.0, coil_r, coil_y, coil_current)[1]
    b_minus = field_solenoid(rho_m - step_m, 0.0, 0.0, coil_r, coil_y, coil_current)[1]
    b = field_solenoid(rho_m, 0.0, 0.0, coil_r, coil_y, coil_current)[1]
    return b, -rho_m / b * (b_plus - b_minus) / (2.0 * step_m)


@lru_cache(maxsize=8)
def midplane_polynomial(geom: CoilGeometry, half_width_m: float = 0.04, degree: int = 12) -> tuple[float, ...]:
    """Coefficients c_k [T/mᵏ] of the mid-plane field f(x) = B_y(R₀ + x, 0) ≈ Σ c_k xᵏ of the fitted loops.

    Least squares on Chebyshev nodes over |x| ≤ ``half_width_m``.
    """
    coils = _fitted_coils(geom)
    nodes = half_width_m * np.cos(np.pi * (np.arange(4 * degree) + 0.5) / (4 * degree))
    b_y = np.array([field_solenoid(geom.radius_m + x, 0.0, 0.0, *coils)[1] for x in nodes])
    poly = np.polynomial.Polynomial.fit(nodes, b_y, degree, domain=[-half_width_m, half_width_m])
    return tuple(float(c) for c in poly.convert().coef)


def offplane_expansion(midplane: tuple[float, ...], radius_m: float, n_terms: int = 6, degree: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Tables (P, Q) with B_y = Σ_k y²ᵏ Σ_j P[k, j] xʲ and B_ρ = Σ_k y²ᵏ⁺¹ Σ_j Q[k, j] xʲ [T, m].

    Axisymmetric, curl- and divergence-free field with the mid-plane profile f = Σ c_j xʲ
    (ρ = R₀ + x): B_y = Σ a_k(ρ) y²ᵏ, B_ρ = Σ a_k′(ρ) y²ᵏ⁺¹/(2k + 1) with a₀ = f and
    a_{k+1} = −(a_k″ + a_k′/ρ)/((2k + 1)(2k + 2)), 1/ρ as its power series in x/R₀. Terms are kept
    to ``n_terms`` powers of y² and to the total degree ``degree`` in (x, y) (row k of P to
    degree − 2k, of Q to degree − 2k − 1), so that Q[k] = P[k]′/(2k + 1): the field is exactly
    curl-free; its divergence is the truncation remainder (the first neglected orders).
    """
    P = np.polynomial.Polynomial
    inv_rho = P([(-1.0) ** j / radius_m ** (j + 1) for j in range(degree + 1)])
    a = P(np.asarray(midplane, dtype=float)).cutdeg(degree)
    p_tab = np.zeros((n_terms, degree + 1))
    q_tab = np.zeros((n_terms, degree + 1))
    for k in range(n_terms):
        top = degree - 2 * k
        if top < 0:
            break
        a = a.cutdeg(top)
        d1 = a.deriv(1)
        p_tab[k, : a.coef.size] = a.coef
        q = d1 / (2 * k + 1)
        q_tab[k, : q.coef.size] = q.coef
        a = -(a.deriv(2) + (d1 * inv_rho).cutdeg(degree)) / ((2 * k + 1) * (2 * k + 2))
    return p_tab, q_tab
