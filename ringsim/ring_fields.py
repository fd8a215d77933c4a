"""Ring fields for the tracker: one float64 array describes a ring; one numba function evaluates it.

Coordinates: ring in the X–Z plane, Y vertical; x = ρ − R₀ (radial), y = Y, φ = atan2(Z, X).

- Focusing: continuous electrostatic (E = κ(x r̂ − y ŷ) everywhere, κ = nβcB₀/R₀), discrete
  electrostatic stations (local κ = κ̄/coverage inside the plates, zero in the gaps), magnetic weak
  focusing (B_y = B₀(1 − n x/R₀), B_r = −B₀ n y/R₀), the solenoid coil model, or none.
- Solenoid (``ring.field_model = "solenoid"``): the axisymmetric field of the current loops of
  ``ringsim.jparc_solenoid`` from its mid-plane profile f(ρ) = B_y(ρ, 0) (a polynomial in x fitted to the
  loops over |x| ≤ 4 cm). With ∂B_ρ/∂y = ∂B_y/∂ρ (curl-free) and ∂(ρB_ρ)/ρ∂ρ + ∂B_y/∂y = 0
  (divergence-free), B_y even and B_ρ odd in y: B_y = Σ a_k y²ᵏ, B_ρ = Σ a_k′ y²ᵏ⁺¹/(2k + 1), a₀ = f,
  a_{k+1} = −(a_k″ + a_k′/ρ)/((2k + 1)(2k + 2)) (so B_y = f − (y²/2)(f″ + f′/ρ) + O(y⁴)), tabulated
  as polynomials in x and y (:func:`ringsim.jparc_solenoid.offplane_expansion`: to y¹⁰ in B_y and y¹¹
  in B_ρ, total degree 12): exactly curl-free, divergence of the order of the neglected terms; within
  |x|, |y| ≤ 3 cm it is the loops' field to 3e-10 T (tests/test_jparc.py).
- The ESQ voltage may recover during the fill: κ(t) = κ₀(1 − f e^{−t/τ_RC}) (Run-1 RC effect).
- ESQ scraping: early in the fill the plate voltages are asymmetric, which displaces the field
  centre to (x_s(t), y_s(t)): E_r = κ(t)(x − x_s), E_y = −κ(t)(y − y_s); x_s, y_s are constant up to
  t₁ and return linearly to zero by t₂ (ramp-back), zero afterwards.
- Kicker: ΔB_y = −B_k sin(π(t − t₀)/w) inside its azimuth range during the pulse (an outward kick).
- Static perturbations: 2-D multipoles B_y + iB_x += B₀Σ(b_k + i a_k)((x + iy)/r₀)^k, an azimuthal
  modulation B₀ ε cos(mφ) of B_y, and a uniform radial field.

Hard edges (ESQ plates, kicker) enter through the fraction of the kick interval's azimuth span that
lies inside them, so the integrated focusing is right for any step size.

:func:`fields_at` evaluates everything, one muon at a time. The tracker's vectorised blocks use the
branch-free :func:`static_fields` (with :func:`azimuth_rad`, :func:`section_copies`, and
:func:`kicker_field_t` during the kicker pulse) wherever :func:`needs_fields_at` is false, and
:func:`fields_at` otherwise.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ringsim.config import SimConfig
from ringsim.constants import SPEED_OF_LIGHT_M_PER_S
from ringsim.jparc_solenoid import CoilGeometry, midplane_polynomial, offplane_expansion
from ringsim.rings import RingKinematics

FOCUSING_CODES = {"continuous": 0, "magnetic": 1, "discrete": 2, "none": 3, "solenoid": 4}

# layout of the ring array (header, then collimator azimuths, ESQ sections, multipoles, solenoid tables)
B0, NIDX, R0, FOC, KAPPA, APERTURE = 0, 1, 2, 3, 4, 5
RC_FRAC, RC_TAU = 6, 7
KICK_ON, KICK_PHI1, KICK_PHI2, KICK_B, KICK_T0, KICK_WIDTH = 8, 9, 10, 11, 12, 13
MULT_R0, AZ_EPS, AZ_M, B_RADIAL = 14, 15, 16, 17
N_COLL, N_SEC, N_MULT, OMEGA_C = 18, 19, 20, 21
N_POLY = 22  # solenoid: coefficients per table row (powers of x, total degree N_POLY − 1); the B_y and B_ρ tables (SOLENOID_TERMS rows each) follow the multipoles
SCRAPE_X, SCRAPE_Y, SCRAPE_T1, SCRAPE_T2 = 23, 24, 25, 26  # field-centre offsets [m], end of the plateau and of the ramp [s]
HEADER = 28
SOLENOID_TERMS = 6  # powers of y² kept in the solenoid expansion
TWO_PI = 2.0 * math.pi


def focusing_code(cfg: SimConfig) -> int:
    """Return the tracker's focusing code (:data:`FOCUSING_CODES`) of a configuration."""
    if cfg.ring.field_model == "solenoid":
        return FOCUSING_CODES["solenoid"]
    if cfg.ring.focusing == "magnetic":
        return FOCUSING_CODES["magnetic"]
    return FOCUSING_CODES[cfg.esq.model]


def design_kick_rad(cfg: SimConfig) -> float:
    """Kick that cancels the slope of a muon injected at the offset, at the kicker centre (smooth tunes)."""
    nu_x = math.sqrt(1.0 - cfg.ring.field_index)
    phi_c = math.radians(0.5 * (cfg.kicker.start_deg + cfg.kicker.end_deg))
    return cfg.kicker.injection_offset_m * nu_x / cfg.ring.radius_m * math.sin(nu_x * phi_c)


def ring_parameters(cfg: SimConfig, kin: RingKinematics) -> np.ndarray:
    """Return the tracker's description of the ring (see the module docstring and the index constants)."""
    ring, esq, kick, pert = cfg.ring, cfg.esq, cfg.kicker, cfg.perturbations
    code = focusing_code(cfg)
    kappa = ring.field_index * kin.beta * SPEED_OF_LIGHT_M_PER_S * ring.field_t / ring.radius_m
    sections: list[tuple[float, float]] = []
    if code == FOCUSING_CODES["discrete"]:
        for start in esq.station_start_deg:
            short_end = start + esq.short_deg
            long_start = short_end + esq.gap_deg
            sections += [(start, short_end), (long_start, long_start + esq.long_deg)]
        coverage = sum(b - a for a, b in sections) / 360.0
        kappa /= coverage
    head = np.zeros(HEADER)
    head[[B0, NIDX, R0, FOC, KAPPA, APERTURE]] = [ring.field_t, ring.field_index, ring.radius_m, code, kappa, ring.aperture_radius_m]
    head[[RC_FRAC, RC_TAU]] = [esq.rc_fraction, esq.rc_tau_us * 1e-6]
    if esq.scrape_x_m != 0.0 or esq.scrape_y_m != 0.0:
        t1 = esq.scrape_us * 1e-6
        head[[SCRAPE_X, SCRAPE_Y, SCRAPE_T1, SCRAPE_T2]] = [esq.scrape_x_m, esq.scrape_y_m, t1, t1 + esq.scrape_ramp_us * 1e-6]
    tables = np.zeros((2, SOLENOID_TERMS, 0))
    if code == FOCUSING_CODES["solenoid"]:
        geometry = CoilGeometry(field_t=ring.field_t, radius_m=ring.radius_m, field_index=ring.field_index)
        tables = np.stack(offplane_expansion(midplane_polynomial(geometry), ring.radius_m, SOLENOID_TERMS))
    head[N_POLY] = tables.shape[2]
    if kick.enabled and kick.strength > 0.0:
        phi1, phi2 = math.radians(kick.start_deg), math.radians(kick.end_deg)
        b_kick = design_kick_rad(cfg) * kick.strength * ring.field_t / (phi2 - phi1)
        width = kick.pulse_ns * 1e-9
        t_pass = 0.5 * (phi1 + phi2) / kin.omega_c_rad_per_s
        head[[KICK_ON, KICK_PHI1, KICK_PHI2, KICK_B, KICK_T0, KICK_WIDTH]] = [1.0, phi1, phi2, b_kick, t_pass - 0.5 * width, width]
    n_mult = max(len(pert.normal_ppm), len(pert.skew_ppm))
    normal = np.zeros(n_mult)
    skew = np.zeros(n_mult)
    normal[: len(pert.normal_ppm)] = pert.normal_ppm
    skew[: len(pert.skew_ppm)] = pert.skew_ppm
    head[[MULT_R0, AZ_EPS, AZ_M, B_RADIAL]] = [pert.reference_radius_m, pert.azimuthal_ppm * 1e-6, pert.azimuthal_harmonic, pert.radial_field_ppm * 1e-6 * ring.field_t]
    head[[N_COLL, N_SEC, N_MULT, OMEGA_C]] = [len(cfg.collimators.azimuth_deg), len(sections), n_mult, kin.omega_c_rad_per_s]
    collimators = np.radians(np.asarray(cfg.collimators.azimuth_deg, dtype=float)) % TWO_PI
    sec = np.radians(np.asarray(sections, dtype=float).reshape(-1))
    mult = np.stack([normal, skew], axis=1).reshape(-1) * 1e-6
    return np.concatenate([head, collimators, sec, mult, tables.reshape(-1)])


@njit(cache=True, inline="always")
def _overlap(lo, hi, a, b):
    """Length of [lo, hi] ∩ ([a, b] + 2πk) for the k nearest."""
    total = 0.0
    for k in (-1.0, 0.0, 1.0):
        s = max(lo, a + k * TWO_PI)
        e = min(hi, b + k * TWO_PI)
        if e > s:
            total += e - s
    return total


@njit(cache=True, inline="always")
def _scrape_offsets_m(t, ring):
    """Field-centre offsets (x_s, y_s) [m] of the ESQ at time t [s]: constant to t₁, linear to zero at t₂."""
    if t < ring[SCRAPE_T1]:
        return ring[SCRAPE_X], ring[SCRAPE_Y]
    if t < ring[SCRAPE_T2]:
        w = (ring[SCRAPE_T2] - t) / (ring[SCRAPE_T2] - ring[SCRAPE_T1])
        return w * ring[SCRAPE_X], w * ring[SCRAPE_Y]
    return 0.0, 0.0


@njit(cache=True)
def _solenoid_field(x, y, ring):
    """(B_y, B_ρ) [T] of the solenoid model at ρ = R₀ + x, height y (tables in the module docstring)."""
    m = int(ring[N_POLY])
    base = HEADER + int(ring[N_COLL]) + 2 * int(ring[N_SEC]) + 2 * int(ring[N_MULT])
    y2 = y * y
    b_y = 0.0
    b_rho = 0.0
    for k in range(SOLENOID_TERMS - 1, -1, -1):
        p = 0.0
        q = 0.0
        for j in range(m - 2 * k - 1, -1, -1):  # row k: total degree m − 1 in (x, y)
            p = p * x + ring[base + k * m + j]
            q = q * x + ring[base + (SOLENOID_TERMS + k) * m + j]
        b_y = b_y * y2 + p
        b_rho = b_rho * y2 + q
    return b_y, b_rho * y


@njit(cache=True)
def fields_at(px, py, pz, t, h, ring):
    """E [V/m] and B [T] acting over a kick of length h [s] centred at time t [s] at position (px, py, pz)."""
    rho = math.sqrt(px * px + pz * pz)
    rx, rz = px / rho, pz / rho
    x = rho - ring[R0]
    b0 = ring[B0]
    code = int(ring[FOC])
    e_r = 0.0
    e_y = 0.0
    b_y = b0
    b_r = ring[B_RADIAL]
    need_phi = code == 2 or ring[KICK_ON] > 0.0 or ring[AZ_EPS] != 0.0
    phi = math.atan2(pz, px) % TWO_PI if need_phi else 0.0
    half_span = 0.5 * abs(h) * ring[OMEGA_C]
    if code == 0 or code == 2:
        kappa = ring[KAPPA]
        if ring[RC_FRAC] != 0.0:
            kappa *= 1.0 - ring[RC_FRAC] * math.exp(-t / ring[RC_TAU])
        if code == 2:
            inside = 0.0
            base = HEADER + int(ring[N_COLL])
            for s in range(int(ring[N_SEC])):
                inside += _overlap(phi - half_span, phi + half_span, ring[base + 2 * s], ring[base + 2 * s + 1])
            kappa *= inside / (2.0 * half_span) if half_span > 0.0 else 0.0
        x_s, y_s = _scrape_offsets_m(t, ring)
        e_r = kappa * (x - x_s)
        e_y = -kappa * (py - y_s)
    elif code == 1:
        b_y = b0 * (1.0 - ring[NIDX] * x / ring[R0])
        b_r += -b0 * ring[NIDX] * py / ring[R0]
    elif code == 4:
        b_sol, b_rho = _solenoid_field(x, py, ring)
        b_y = b_sol
        b_r += b_rho
    if ring[AZ_EPS] != 0.0:
        b_y += b0 * ring[AZ_EPS] * math.cos(ring[AZ_M] * phi)
    n_mult = int(ring[N_MULT])
    if n_mult > 0:
        base = HEADER + int(ring[N_COLL]) + 2 * int(ring[N_SEC])
        zr, zi = x / ring[MULT_R0], py / ring[MULT_R0]
        pr, pi = 1.0, 0.0
        for k in range(n_mult):
            pr, pi = pr * zr - pi * zi, pr * zi + pi * zr  # ((x + iy)/r₀)^(k+1)
            bn, an = ring[base + 2 * k], ring[base + 2 * k + 1]
            b_y += b0 * (bn * pr - an * pi)
            b_r += b0 * (bn * pi + an * pr)
    if ring[KICK_ON] > 0.0:
        tau = t - ring[KICK_T0]
        if 0.0 < tau < ring[KICK_WIDTH]:
            frac = _overlap(phi - half_span, phi + half_span, ring[KICK_PHI1], ring[KICK_PHI2]) / (2.0 * half_span) if half_span > 0.0 else 0.0
            b_y -= ring[KICK_B] * math.sin(math.pi * tau / ring[KICK_WIDTH]) * frac
    return e_r * rx, e_y, e_r * rz, b_r * rx, b_y, b_r * rz


# --- branch-free, vectorisable evaluation for the tracker's SIMD blocks ------------------------------
# cephes atan: rational approximation on |w| ≤ 0.66 (relative error ≈ 1e-16)
_ATAN_P = (-8.750608600031904122785e-1, -1.615753718733365076637e1, -7.500855792314704667340e1, -1.228866684490136173410e2, -6.485021904942025371773e1)
_ATAN_Q = (2.485846490142306297962e1, 1.650270098316988542046e2, 4.328810604912902668951e2, 4.853903996359136964868e2, 1.945506571482613964425e2)


@njit(cache=True, error_model="numpy", inline="always")
def azimuth_rad(px, pz):
    """φ = atan2(Z, X) in [0, 2π), as a polynomial (no libm call, so a loop over muons vectorises)."""
    ax, az = abs(px), abs(pz)
    hi = max(ax, az)
    z = min(ax, az) / (hi if hi > 0.0 else 1.0)
    big = z > 0.66
    w = (z - 1.0) / (z + 1.0) if big else z
    w2 = w * w
    p = (((_ATAN_P[0] * w2 + _ATAN_P[1]) * w2 + _ATAN_P[2]) * w2 + _ATAN_P[3]) * w2 + _ATAN_P[4]
    q = ((((w2 + _ATAN_Q[0]) * w2 + _ATAN_Q[1]) * w2 + _ATAN_Q[2]) * w2 + _ATAN_Q[3]) * w2 + _ATAN_Q[4]
    r = w + w * (w2 * p / q)
    r = 0.25 * math.pi + (r + 3.061616997868382943065e-17) if big else r  # π/4 + its rounding error
    r = 0.5 * math.pi - r if az > ax else r
    r = math.pi - r if px < 0.0 else r
    return TWO_PI - r if pz < 0.0 else r


@njit(cache=True)
def section_copies(ring):
    """ESQ sections (start, end) [rad] shifted by 2πk so that they cover every overlap with an interval in [0, 4π)."""
    n = int(ring[N_SEC])
    base = HEADER + int(ring[N_COLL])
    out = np.empty(6 * n)
    m = 0
    for s in range(n):
        a = ring[base + 2 * s]
        a0 = a - TWO_PI * math.floor(a / TWO_PI)
        b0 = a0 + ring[base + 2 * s + 1] - a
        for k in (-1.0, 0.0, 1.0):
            if b0 + k * TWO_PI > 0.0 and a0 + k * TWO_PI < 2.0 * TWO_PI:
                out[2 * m], out[2 * m + 1] = a0 + k * TWO_PI, b0 + k * TWO_PI
                m += 1
    return out[: 2 * m]


@njit(cache=True, error_model="numpy", inline="always")
def kick_span_rad(phi, h_before, h_after, omega_c):
    """Azimuth interval [lo, hi] of a kick at φ between steps h_before and h_after [s] (half of each), lo in [0, 2π) (see :func:`section_copies`)."""
    lo = phi - 0.5 * abs(h_before) * omega_c
    lo = lo + TWO_PI if lo < 0.0 else lo
    return lo, lo + 0.5 * (abs(h_before) + abs(h_after)) * omega_c


@njit(cache=True)
def needs_fields_at(ring):
    """Whether the ring has features that only :func:`fields_at` evaluates (RC recovery, scraping, azimuthal modulation, multipoles, solenoid)."""
    return ring[RC_FRAC] != 0.0 or ring[AZ_EPS] != 0.0 or ring[N_MULT] > 0.0 or ring[N_POLY] > 0.0 or ring[SCRAPE_X] != 0.0 or ring[SCRAPE_Y] != 0.0


@njit(cache=True)
def static_field_constants(ring):
    """(R₀ [m], B₀ [T], κ [V/m²], dB_y/dx [T/m], B_r [T], ω_c [rad/s], discrete ESQ?) for :func:`static_fields`."""
    code = int(ring[FOC])
    kappa = ring[KAPPA] if code == 0 or code == 2 else 0.0
    grad = ring[B0] * ring[NIDX] / ring[R0] if code == 1 else 0.0
    return ring[R0], ring[B0], kappa, grad, ring[B_RADIAL], ring[OMEGA_C], code == 2


@njit(cache=True, error_model="numpy", inline="always")
def static_fields(px, py, pz, inside_rad, h, consts):
    """E [V/m] and B [T] of :func:`fields_at` when :func:`needs_fields_at` is false, less the kicker (:func:`kicker_field_t`).

    ``consts`` from :func:`static_field_constants`; ``inside_rad``: measure of the azimuth span of
    the kick (length h [s]) inside the ESQ sections (discrete ESQ only). Branch-free, so that a loop
    over muons vectorises.
    """
    r0, b0, kappa, grad, b_radial, omega_c, discrete = consts
    rho = math.sqrt(px * px + pz * pz)
    rx, rz = px / rho, pz / rho
    x = rho - r0
    span = abs(h) * omega_c
    frac = inside_rad / span if span > 0.0 else 0.0
    kappa = kappa * frac if discrete else kappa
    e_r = kappa * x
    b_r = b_radial - grad * py
    return e_r * rx, -kappa * py, e_r * rz, b_r * rx, b0 - grad * x, b_r * rz


@njit(cache=True, error_model="numpy", inline="always")
def kicker_field_t(lo, hi, t, ring):
    """Kicker ΔB_y [T] of :func:`fields_at` averaged over the azimuth span [lo, hi] [rad] (lo in [0, 2π)) of a kick at time t [s]."""
    tau = t - ring[KICK_T0]
    if not (ring[KICK_ON] > 0.0 and 0.0 < tau < ring[KICK_WIDTH] and hi > lo):
        return 0.0
    return -ring[KICK_B] * math.sin(math.pi * tau / ring[KICK_WIDTH]) * _overlap(lo, hi, ring[KICK_PHI1], ring[KICK_PHI2]) / (hi - lo)
