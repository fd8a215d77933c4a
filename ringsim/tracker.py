"""Numba spin–orbit tracker: Lorentz force and Thomas–BMT spin (with EDM) in SI units.

Geometry: the ring lies in the horizontal X–Z plane, Y is vertical, B ≈ B₀ŷ. A μ⁺ at (R₀, 0, 0)
moves along +Z; the orbit angle φ = atan2(Z, X) grows with time. State of a muon, one row of a
``(n, 10)`` array: X, Y, Z [m], u = γβ (3), rest-frame spin unit vector (3), time [s].

Integrator: leapfrog, started with the half-step offset; the velocity update is a Boris scheme whose
magnetic rotation is applied with its exact angle (Rodrigues), the drift is the chord of that
rotation (arc × sin(θ/2)/(θ/2), so that orbits in a uniform field close exactly), and the spin is
rotated by the exact angle |Ω|·dt of the Thomas–BMT vector evaluated with the mid-step velocity. In a uniform field the
spin then advances relative to the momentum by exactly −(q/m)aB·dt per step (SPEC §2 accuracy trap).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ringsim.constants import SPEED_OF_LIGHT_M_PER_S as C_LIGHT

FOCUSING_CODES = {"electric": 0, "magnetic": 1}
N_STATE = 10


@njit(cache=True, inline="always")
def fields_si(px, py, pz, b0_t, field_index, radius_m, focusing, kappa_v_per_m2):
    """E [V/m] and B [T] at a point: uniform B₀ŷ plus linear weak focusing of index n.

    focusing 0: electrostatic, E = κ(x r̂ − y ŷ) with κ = nβcB₀/R₀;
    focusing 1: magnetic, B_y = B₀(1 − n x/R₀), B_r = −B₀ n y/R₀ (curl-free), E = 0.
    """
    rho = math.sqrt(px * px + pz * pz)
    rx, rz = px / rho, pz / rho
    x = rho - radius_m
    if focusing == 0:
        return kappa_v_per_m2 * x * rx, -kappa_v_per_m2 * py, kappa_v_per_m2 * x * rz, 0.0, b0_t, 0.0
    b_r = -b0_t * field_index * py / radius_m
    return 0.0, 0.0, 0.0, b_r * rx, b0_t * (1.0 - field_index * x / radius_m), b_r * rz


@njit(cache=True, inline="always")
def rotate(vx, vy, vz, wx, wy, wz, h):
    """Rotate v about the axis of ω by the exact angle |ω|·h (Rodrigues)."""
    w = math.sqrt(wx * wx + wy * wy + wz * wz)
    if w == 0.0:
        return vx, vy, vz
    kx, ky, kz = wx / w, wy / w, wz / w
    ang = w * h
    c, s = math.cos(ang), math.sin(ang)
    kdv = (kx * vx + ky * vy + kz * vz) * (1.0 - c)
    return (
        vx * c + (ky * vz - kz * vy) * s + kx * kdv,
        vy * c + (kz * vx - kx * vz) * s + ky * kdv,
        vz * c + (kx * vy - ky * vx) * s + kz * kdv,
    )


@njit(cache=True, inline="always")
def kick(ux, uy, uz, sx, sy, sz, ex, ey, ez, bx, by, bz, h, q_over_m, a_mu, eta):
    """Advance u = γβ and the spin over a time h in fixed fields E, B."""
    k = 0.5 * q_over_m * h / C_LIGHT
    ux += k * ex
    uy += k * ey
    uz += k * ez
    g = math.sqrt(1.0 + ux * ux + uy * uy + uz * uz)
    nux, nuy, nuz = rotate(ux, uy, uz, -q_over_m * bx / g, -q_over_m * by / g, -q_over_m * bz / g, h)
    # mid-step velocity: direction of u⁻ + u⁺, magnitude |u|/γ (|u| is kept by the rotation)
    mx, my, mz = ux + nux, uy + nuy, uz + nuz
    mn = math.sqrt(mx * mx + my * my + mz * mz)
    scale = math.sqrt(ux * ux + uy * uy + uz * uz) / (g * mn) if mn > 0.0 else 0.0
    btx, bty, btz = mx * scale, my * scale, mz * scale
    bdb = btx * bx + bty * by + btz * bz
    bde = (btx * ex + bty * ey + btz * ez) / C_LIGHT
    bxe_x = (bty * ez - btz * ey) / C_LIGHT
    bxe_y = (btz * ex - btx * ez) / C_LIGHT
    bxe_z = (btx * ey - bty * ex) / C_LIGHT
    bxb_x = bty * bz - btz * by
    bxb_y = btz * bx - btx * bz
    bxb_z = btx * by - bty * bx
    c_b = a_mu + 1.0 / g
    c_bb = a_mu * g / (g + 1.0)
    c_e = a_mu + 1.0 / (g + 1.0)
    c_edm = g / (g + 1.0) * bde
    half_eta = 0.5 * eta
    wx = -q_over_m * (c_b * bx - c_bb * bdb * btx - c_e * bxe_x + half_eta * (ex / C_LIGHT + bxb_x - c_edm * btx))
    wy = -q_over_m * (c_b * by - c_bb * bdb * bty - c_e * bxe_y + half_eta * (ey / C_LIGHT + bxb_y - c_edm * bty))
    wz = -q_over_m * (c_b * bz - c_bb * bdb * btz - c_e * bxe_z + half_eta * (ez / C_LIGHT + bxb_z - c_edm * btz))
    sx, sy, sz = rotate(sx, sy, sz, wx, wy, wz, h)
    return nux + k * ex, nuy + k * ey, nuz + k * ez, sx, sy, sz


@njit(cache=True)
def _advance(st, n_steps, dt, record, rec_every, ring, q_over_m, a_mu, eta):
    """Track one state row ``st`` for ``n_steps`` of ``dt`` seconds (in place).

    ``ring`` = (B₀, n, R₀, focusing code, κ, aperture radius). Positions and the time are on integer
    steps, u and spin on half steps during the loop; both start and end synchronised. Stops early
    when the muon leaves the circular aperture; returns the loss time [s] or NaN. Every
    ``rec_every`` steps the synchronised state is written to ``record`` (if it has rows).
    """
    b0, nidx, r0, foc, kappa, aperture = ring[0], ring[1], ring[2], int(ring[3]), ring[4], ring[5]
    px, py, pz, ux, uy, uz, sx, sy, sz, t = st[0], st[1], st[2], st[3], st[4], st[5], st[6], st[7], st[8], st[9]
    f = fields_si(px, py, pz, b0, nidx, r0, foc, kappa)
    ux, uy, uz, sx, sy, sz = kick(ux, uy, uz, sx, sy, sz, f[0], f[1], f[2], f[3], f[4], f[5], -0.5 * dt, q_over_m, a_mu, eta)
    lost_s = np.nan
    n_rec = 0
    for i in range(n_steps):
        if i > 0:
            f = fields_si(px, py, pz, b0, nidx, r0, foc, kappa)
        ux, uy, uz, sx, sy, sz = kick(ux, uy, uz, sx, sy, sz, f[0], f[1], f[2], f[3], f[4], f[5], dt, q_over_m, a_mu, eta)
        g = math.sqrt(1.0 + ux * ux + uy * uy + uz * uz)
        # the chord of an exact rotation by θ is shorter than the arc by sin(θ/2)/(θ/2)
        half_theta = 0.5 * abs(q_over_m) * math.sqrt(f[3] * f[3] + f[4] * f[4] + f[5] * f[5]) / g * dt
        drift = C_LIGHT * dt / g * (math.sin(half_theta) / half_theta if half_theta > 0.0 else 1.0)
        px += ux * drift
        py += uy * drift
        pz += uz * drift
        t += dt
        xr = math.sqrt(px * px + pz * pz) - r0
        if xr * xr + py * py > aperture * aperture:
            lost_s = t
            break
        if record.shape[0] > 0 and (i + 1) % rec_every == 0 and n_rec < record.shape[0]:
            f = fields_si(px, py, pz, b0, nidx, r0, foc, kappa)
            r = kick(ux, uy, uz, sx, sy, sz, f[0], f[1], f[2], f[3], f[4], f[5], 0.5 * dt, q_over_m, a_mu, eta)
            record[n_rec, 0], record[n_rec, 1], record[n_rec, 2] = px, py, pz
            record[n_rec, 3], record[n_rec, 4], record[n_rec, 5] = r[0], r[1], r[2]
            record[n_rec, 6], record[n_rec, 7], record[n_rec, 8] = r[3], r[4], r[5]
            record[n_rec, 9] = t
            n_rec += 1
    f = fields_si(px, py, pz, b0, nidx, r0, foc, kappa)
    ux, uy, uz, sx, sy, sz = kick(ux, uy, uz, sx, sy, sz, f[0], f[1], f[2], f[3], f[4], f[5], 0.5 * dt, q_over_m, a_mu, eta)
    st[0], st[1], st[2], st[3], st[4], st[5], st[6], st[7], st[8], st[9] = px, py, pz, ux, uy, uz, sx, sy, sz, t
    return lost_s


@njit(cache=True, parallel=True)
def track_to_times(states, durations_s, dt_max_s, ring, q_over_m, a_mu, eta):
    """Track every muon (rows of ``states``, modified in place) for its own duration.

    Each muon takes ceil(duration/dt_max) equal steps, so it ends exactly at its decay time.
    Returns the loss times [s] (NaN for muons that stayed inside the aperture).
    """
    n = states.shape[0]
    lost = np.empty(n)
    empty = np.empty((0, N_STATE))
    for i in prange(n):
        n_steps = max(1, int(math.ceil(durations_s[i] / dt_max_s)))
        lost[i] = _advance(states[i], n_steps, durations_s[i] / n_steps, empty, 1, ring, q_over_m, a_mu, eta)
    return lost


@njit(cache=True, parallel=True)
def track_recorded(states, n_steps, dt_s, rec_every, ring, q_over_m, a_mu, eta):
    """Track every muon for ``n_steps`` and return its state every ``rec_every`` steps.

    Returns an array (n_muons, n_steps // rec_every, 10); rows after a loss stay NaN.
    """
    n = states.shape[0]
    out = np.full((n, n_steps // rec_every, N_STATE), np.nan)
    for i in prange(n):
        _advance(states[i], n_steps, dt_s, out[i], rec_every, ring, q_over_m, a_mu, eta)
    return out


def spin_phase_rad(u: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Angle of the spin to the momentum in the horizontal plane, in the sense of the orbit (about −ŷ).

    ``u`` and ``s`` have the three components in their last axis.
    """
    uh = u[..., [0, 2]] / np.linalg.norm(u[..., [0, 2]], axis=-1, keepdims=True)
    # (−ŷ) × û = (−u_z, 0, u_x) for a horizontal û = (u_x, 0, u_z)
    cos_p = s[..., 0] * uh[..., 0] + s[..., 2] * uh[..., 1]
    sin_p = -s[..., 0] * uh[..., 1] + s[..., 2] * uh[..., 0]
    return np.arctan2(sin_p, cos_p)


def radial_vertical_offsets_m(positions: np.ndarray, radius_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Radial offset x = ρ − R₀ and vertical offset y of positions (…, 3)."""
    rho = np.hypot(positions[..., 0], positions[..., 2])
    return rho - radius_m, positions[..., 1]
