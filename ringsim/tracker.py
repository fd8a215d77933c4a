"""Numba spin–orbit tracker: Lorentz force and Thomas–BMT spin (with EDM) in SI units.

Geometry: the ring lies in the horizontal X–Z plane, Y is vertical, B ≈ B₀ŷ. A μ⁺ at (R₀, 0, 0)
moves along +Z; the orbit angle φ = atan2(Z, X) grows with time. State of a muon, one row of a
``(n, 10)`` array: X, Y, Z [m], u = γβ (3), rest-frame spin unit vector (3), time [s].

Integrator: leapfrog, started with the half-step offset; the velocity update is a Boris scheme whose
magnetic rotation is applied with its exact angle (Rodrigues), the drift is the chord of that
rotation (arc × sin(θ/2)/(θ/2), so that orbits in a uniform field close exactly), and the spin is
turned by exactly the rotations applied to the momentum plus the small anomalous rotation ω_a·dt
(see :func:`kick`). In a uniform field the spin then advances relative to the momentum by exactly
−(q/m)aB·dt per step (SPEC §2 accuracy trap).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ringsim.constants import SPEED_OF_LIGHT_M_PER_S as C_LIGHT
from ringsim.fields import APERTURE, B0, N_COLL, R0, collimator_crossed, fields_at

N_STATE = 10


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
def _q_axis(wx, wy, wz, h):
    """Unit quaternion of the rotation about ω by the angle |ω|·h."""
    w = math.sqrt(wx * wx + wy * wy + wz * wz)
    if w == 0.0:
        return 1.0, 0.0, 0.0, 0.0
    half = 0.5 * w * h
    s = math.sin(half) / w
    return math.cos(half), wx * s, wy * s, wz * s


@njit(cache=True, inline="always")
def _q_between(ax, ay, az, bx, by, bz):
    """Unit quaternion of the minimal rotation taking the direction of a to the direction of b."""
    cx, cy, cz = ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx
    w = math.sqrt((ax * ax + ay * ay + az * az) * (bx * bx + by * by + bz * bz)) + ax * bx + ay * by + az * bz
    n = math.sqrt(w * w + cx * cx + cy * cy + cz * cz)
    return w / n, cx / n, cy / n, cz / n


@njit(cache=True, inline="always")
def _q_mul(a0, a1, a2, a3, b0, b1, b2, b3):
    """Hamilton product a·b (rotation b first, then a)."""
    return (
        a0 * b0 - a1 * b1 - a2 * b2 - a3 * b3,
        a0 * b1 + a1 * b0 + a2 * b3 - a3 * b2,
        a0 * b2 - a1 * b3 + a2 * b0 + a3 * b1,
        a0 * b3 + a1 * b2 - a2 * b1 + a3 * b0,
    )


@njit(cache=True, inline="always")
def _q_apply(q0, q1, q2, q3, vx, vy, vz):
    """Rotate v by the unit quaternion q."""
    tx = 2.0 * (q2 * vz - q3 * vy)
    ty = 2.0 * (q3 * vx - q1 * vz)
    tz = 2.0 * (q1 * vy - q2 * vx)
    return vx + q0 * tx + (q2 * tz - q3 * ty), vy + q0 * ty + (q3 * tx - q1 * tz), vz + q0 * tz + (q1 * ty - q2 * tx)


@njit(cache=True, inline="always")
def kick(ux, uy, uz, sx, sy, sz, ex, ey, ez, bx, by, bz, h, q_over_m, a_mu, eta):
    """Advance u = γβ and the spin over a time h in fixed fields E, B.

    Momentum: half electric kick, exact magnetic rotation, half electric kick. The spin undergoes
    the same three rotations of the momentum direction (Thomas–BMT minus ω_a is exactly the
    rotation rate of the momentum), with the anomalous rotation ω_a·h inserted half-way through the
    magnetic rotation, where ω_a is evaluated (mid-step velocity):
    ω_a = −(q/m)[aB − (aγ/(γ+1))(β·B)β − (a − 1/(γ²−1))(β×E)/c
                 + (η/2)(E/c + β×B − (γ/(γ+1))(β·E/c)β)].
    Only the small ω_a is discretised: the spin follows the momentum exactly, and the magic
    cancellation of the electric term holds for any step size. Rotations are composed as
    quaternions and applied to the spin once.
    """
    k = 0.5 * q_over_m * h / C_LIGHT
    ox, oy, oz = ux, uy, uz
    ax, ay, az = ux + k * ex, uy + k * ey, uz + k * ez
    g = math.sqrt(1.0 + ax * ax + ay * ay + az * az)
    hb = _q_axis(-q_over_m * bx / g, -q_over_m * by / g, -q_over_m * bz / g, 0.5 * h)  # half the magnetic rotation
    fb = _q_mul(hb[0], hb[1], hb[2], hb[3], hb[0], hb[1], hb[2], hb[3])
    rx, ry, rz = _q_apply(fb[0], fb[1], fb[2], fb[3], ax, ay, az)
    ux, uy, uz = rx + k * ex, ry + k * ey, rz + k * ez
    # anomalous precession vector at the mid-step velocity: direction of u_old + u_new, magnitude
    # of |u| (the chord average would be short by cos(θ/2) and spoil a − 1/(γ²−1) at order θ²)
    mx, my, mz = ox + ux, oy + uy, oz + uz
    mn = math.sqrt(mx * mx + my * my + mz * mz)
    m2 = 0.5 * (ox * ox + oy * oy + oz * oz + ux * ux + uy * uy + uz * uz)
    gm = math.sqrt(1.0 + m2)
    scale = math.sqrt(m2) / (gm * mn) if mn > 0.0 else 0.0
    btx, bty, btz = mx * scale, my * scale, mz * scale
    bdb = btx * bx + bty * by + btz * bz
    bde = (btx * ex + bty * ey + btz * ez) / C_LIGHT
    bxe_x = (bty * ez - btz * ey) / C_LIGHT
    bxe_y = (btz * ex - btx * ez) / C_LIGHT
    bxe_z = (btx * ey - bty * ex) / C_LIGHT
    c_bb = a_mu * gm / (gm + 1.0) * bdb
    c_e = a_mu - 1.0 / (gm * gm - 1.0) if m2 > 0.0 else a_mu
    c_edm = gm / (gm + 1.0) * bde
    he = 0.5 * eta
    wx = -q_over_m * (a_mu * bx - c_bb * btx - c_e * bxe_x + he * (ex / C_LIGHT + bty * bz - btz * by - c_edm * btx))
    wy = -q_over_m * (a_mu * by - c_bb * bty - c_e * bxe_y + he * (ey / C_LIGHT + btz * bx - btx * bz - c_edm * bty))
    wz = -q_over_m * (a_mu * bz - c_bb * btz - c_e * bxe_z + he * (ez / C_LIGHT + btx * by - bty * bx - c_edm * btz))
    qa = _q_axis(wx, wy, wz, h)
    q = _q_between(ox, oy, oz, ax, ay, az)  # first electric half kick
    q = _q_mul(hb[0], hb[1], hb[2], hb[3], q[0], q[1], q[2], q[3])
    q = _q_mul(qa[0], qa[1], qa[2], qa[3], q[0], q[1], q[2], q[3])
    q = _q_mul(hb[0], hb[1], hb[2], hb[3], q[0], q[1], q[2], q[3])
    f2 = _q_between(rx, ry, rz, ux, uy, uz)  # second electric half kick
    q = _q_mul(f2[0], f2[1], f2[2], f2[3], q[0], q[1], q[2], q[3])
    sx, sy, sz = _q_apply(q[0], q[1], q[2], q[3], sx, sy, sz)
    return ux, uy, uz, sx, sy, sz


@njit(cache=True)
def _advance(st, n_steps, dt, record, rec_every, ring, q_over_m, a_mu, eta):
    """Track one state row ``st`` for ``n_steps`` of ``dt`` seconds (in place).

    ``ring`` is the array of :func:`ringsim.fields.ring_parameters`. Positions and the time are on
    integer steps, u and spin on half steps during the loop; both start and end synchronised. The
    muon is lost when it is outside the circular aperture at a collimator (or anywhere, if the ring
    has no collimators). Returns (loss time [s], loss azimuth [rad]), NaN for a stored muon. Every
    ``rec_every`` steps the synchronised state is written to ``record`` (if it has rows).
    """
    r0, aperture, check_everywhere = ring[R0], ring[APERTURE], ring[N_COLL] == 0.0
    px, py, pz, ux, uy, uz, sx, sy, sz, t = st[0], st[1], st[2], st[3], st[4], st[5], st[6], st[7], st[8], st[9]
    f = fields_at(px, py, pz, t, dt, ring)
    ux, uy, uz, sx, sy, sz = kick(ux, uy, uz, sx, sy, sz, f[0], f[1], f[2], f[3], f[4], f[5], -0.5 * dt, q_over_m, a_mu, eta)
    lost_t, lost_phi = np.nan, np.nan
    n_rec = 0
    phi = math.atan2(pz, px)
    for i in range(n_steps):
        if i > 0:
            f = fields_at(px, py, pz, t, dt, ring)
        ux, uy, uz, sx, sy, sz = kick(ux, uy, uz, sx, sy, sz, f[0], f[1], f[2], f[3], f[4], f[5], dt, q_over_m, a_mu, eta)
        g = math.sqrt(1.0 + ux * ux + uy * uy + uz * uz)
        # the chord of an exact rotation by θ is shorter than the arc by sin(θ/2)/(θ/2); θ from the
        # central field B₀: a factor that depended on the position would break symplecticity
        half_theta = 0.5 * abs(q_over_m) * ring[B0] / g * dt
        drift = C_LIGHT * dt / g * (math.sin(half_theta) / half_theta if half_theta > 0.0 else 1.0)
        px += ux * drift
        py += uy * drift
        pz += uz * drift
        t += dt
        new_phi = phi if check_everywhere else math.atan2(pz, px)
        if check_everywhere or collimator_crossed(phi, new_phi, ring):
            xr = math.sqrt(px * px + pz * pz) - r0
            if xr * xr + py * py > aperture * aperture:
                lost_t, lost_phi = t, math.atan2(pz, px) % (2.0 * math.pi)
                break
        phi = new_phi
        if record.shape[0] > 0 and (i + 1) % rec_every == 0 and n_rec < record.shape[0]:
            f = fields_at(px, py, pz, t, dt, ring)
            r = kick(ux, uy, uz, sx, sy, sz, f[0], f[1], f[2], f[3], f[4], f[5], 0.5 * dt, q_over_m, a_mu, eta)
            record[n_rec, 0], record[n_rec, 1], record[n_rec, 2] = px, py, pz
            record[n_rec, 3], record[n_rec, 4], record[n_rec, 5] = r[0], r[1], r[2]
            record[n_rec, 6], record[n_rec, 7], record[n_rec, 8] = r[3], r[4], r[5]
            record[n_rec, 9] = t
            n_rec += 1
    f = fields_at(px, py, pz, t, dt, ring)
    ux, uy, uz, sx, sy, sz = kick(ux, uy, uz, sx, sy, sz, f[0], f[1], f[2], f[3], f[4], f[5], 0.5 * dt, q_over_m, a_mu, eta)
    st[0], st[1], st[2], st[3], st[4], st[5], st[6], st[7], st[8], st[9] = px, py, pz, ux, uy, uz, sx, sy, sz, t
    return lost_t, lost_phi


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
        lost[i], _ = _advance(states[i], n_steps, durations_s[i] / n_steps, empty, 1, ring, q_over_m, a_mu, eta)
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


N_DIAG = 8
DIAG_COLUMNS = ("omega_a_rad_per_s", "x_mean_m", "x2_mean_m2", "y_mean_m", "y2_mean_m2", "lost_time_s", "lost_azimuth_rad", "duration_s")


@njit(cache=True)
def _diagnose(st, n_steps, dt, sample_every, ring, q_over_m, a_mu, eta, out):
    """Track one muon and fill ``out`` (see :data:`DIAG_COLUMNS`).

    ω_a is the least-squares slope of the unwrapped spin angle to the momentum (horizontal plane)
    sampled every ``sample_every`` steps; the orbit moments are averages over the same samples.
    """
    rec = np.empty((1, N_STATE))
    t_start = st[9]
    n = 0.0
    s_t = s_p = s_tt = s_tp = 0.0
    s_x = s_x2 = s_y = s_y2 = 0.0
    prev = 0.0
    turns = 0.0
    done = 0
    lost_t, lost_phi = np.nan, np.nan
    while done < n_steps:
        chunk = min(sample_every, n_steps - done)
        lost_t, lost_phi = _advance(st, chunk, dt, rec[:0], 1, ring, q_over_m, a_mu, eta)
        done += chunk
        if not np.isnan(lost_t):
            break
        ux, uz = st[3], st[5]
        un = math.sqrt(ux * ux + uz * uz)
        cos_p = (st[6] * ux + st[8] * uz) / un
        sin_p = (-st[6] * uz + st[8] * ux) / un
        raw = math.atan2(sin_p, cos_p)
        if n > 0.0:
            d = raw - prev
            if d < -math.pi:
                turns += 1.0
            elif d > math.pi:
                turns -= 1.0
        prev = raw
        phase = raw + 2.0 * math.pi * turns
        tt = st[9] - t_start
        x = math.sqrt(st[0] * st[0] + st[2] * st[2]) - ring[R0]
        n += 1.0
        s_t += tt
        s_p += phase
        s_tt += tt * tt
        s_tp += tt * phase
        s_x += x
        s_x2 += x * x
        s_y += st[1]
        s_y2 += st[1] * st[1]
    denom = n * s_tt - s_t * s_t
    out[0] = (n * s_tp - s_t * s_p) / denom if n > 2.0 and denom > 0.0 else np.nan
    out[1] = s_x / n if n > 0.0 else np.nan
    out[2] = s_x2 / n if n > 0.0 else np.nan
    out[3] = s_y / n if n > 0.0 else np.nan
    out[4] = s_y2 / n if n > 0.0 else np.nan
    out[5] = lost_t
    out[6] = lost_phi
    out[7] = st[9] - t_start


@njit(cache=True, parallel=True)
def track_diagnostics(states, n_steps, dt_s, sample_every, ring, q_over_m, a_mu, eta):
    """Per-muon diagnostics without decays (columns :data:`DIAG_COLUMNS`); states advance in place.

    The ω_a of a beam is the mean of the column ``omega_a_rad_per_s``: with 10⁴ muons its statistical
    error is the spread of the individual shifts over 100 (ppb level for Fermilab beams).
    """
    n = states.shape[0]
    out = np.full((n, N_DIAG), np.nan)
    for i in prange(n):
        _diagnose(states[i], n_steps, dt_s, sample_every, ring, q_over_m, a_mu, eta, out[i])
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
