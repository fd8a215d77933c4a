"""Numba spin–orbit tracker: Lorentz force and Thomas–BMT spin (with EDM) in SI units.

Geometry: the ring lies in the horizontal X–Z plane, Y is vertical, B ≈ B₀ŷ. A μ⁺ at (R₀, 0, 0)
moves along +Z; the orbit angle φ = atan2(Z, X) grows with time. State of a muon, one row of a
``(n, 10)`` array: X, Y, Z [m], u = γβ (3), rest-frame spin unit vector (3), time [s].

Integrator: kick–drift–kick leapfrog (a half kick at the start and at the end, full kicks in
between); the velocity update is a Boris scheme whose magnetic rotation is applied with its exact
angle, the drift is the chord of that rotation (arc × sin(θ/2)/(θ/2), θ from B₀, so that orbits in a
uniform field close exactly), and the spin is turned by exactly the rotations applied to the
momentum plus the small anomalous rotation ω_a·dt (see :func:`kick`). In a uniform field the spin
then advances relative to the momentum by exactly −(q/m)aB·dt per step (SPEC §2 accuracy trap).

Speed: muons are tracked in blocks of :data:`LANES` (structure of arrays, one row of a flat work
array per variable); each stage of a step is a branch-free loop over the block, without libm calls
(polynomial sin, cos and atan2), which LLVM vectorises; blocks run in parallel (prange). A muon's
arithmetic does not depend on its block mates or on the thread, so results are bit-identical for any
number of threads.
"""

from __future__ import annotations

import math

import numpy as np
from numba import get_num_threads, njit, prange

from ringsim.constants import SPEED_OF_LIGHT_M_PER_S as C_LIGHT
from ringsim.fields import (
    APERTURE,
    B0,
    HEADER,
    KICK_ON,
    N_COLL,
    R0,
    azimuth_rad,
    fields_at,
    kick_span_rad,
    kicker_on,
    needs_fields_at,
    section_copies,
    static_field_constants,
    static_fields,
)

N_STATE = 10
LANES = 32  # muons per block: four AVX-512 vectors of float64 (a shorter loop is unrolled, not vectorised)
TWO_PI = 2.0 * math.pi
INV_C = 1.0 / C_LIGHT
QUEUES_PER_THREAD, QUEUE_BLOCKS = 2, 8  # queues of track_to_times: per thread, and at least this many blocks of muons each
INV_TWO_PI = 1.0 / TWO_PI
_SIN = tuple((-1) ** k / math.factorial(2 * k + 1) for k in range(11))  # Taylor coefficients: 1e-18 on [−π/2, π/2]
_COS = tuple((-1) ** k / math.factorial(2 * k) for k in range(11))

# rows of a block's work array (each LANES long): the state columns 0–9, then
_DT, _PHI, _PHI_OLD, _STEP, _N_STEPS, _LOST_T, _LOST_PHI, _INSIDE, _CROSSED = range(N_STATE, N_STATE + 9)
_LO, _HI = N_STATE + 9, N_STATE + 10  # azimuth span of the next kick
_E = N_STATE + 11  # E (3 rows), B (3 rows) for the next kick
_SNAP = _E + 6  # synchronised u and spin (6 rows) of a snapshot
N_ROWS = _SNAP + 6


@njit(cache=True, inline="always")
def _horner(x, c):
    """c[0] + c[1]x + … + c[10]x¹⁰."""
    return c[0] + x * (c[1] + x * (c[2] + x * (c[3] + x * (c[4] + x * (c[5] + x * (c[6] + x * (c[7] + x * (c[8] + x * (c[9] + x * c[10])))))))))


@njit(cache=True, error_model="numpy", inline="always")
def _sin_cos(x):
    """sin x and cos x: Taylor series of x/2 reduced to [−π/2, π/2], then the double angle (no libm call, so loops vectorise)."""
    r = 0.5 * x - math.pi * math.floor(x * INV_TWO_PI + 0.5)
    r2 = r * r
    s = r * _horner(r2, _SIN)
    c = _horner(r2, _COS)
    return 2.0 * s * c, (c - s) * (c + s)


@njit(cache=True, inline="always")
def _root(x):
    """√|x|: the vector square-root instruction (math.sqrt of an expression LLVM cannot prove non-negative calls libm)."""
    return math.sqrt(abs(x))


@njit(cache=True, error_model="numpy", inline="always")
def _q_axis(wx, wy, wz, h):
    """Unit quaternion of the rotation about ω by the angle |ω|·h."""
    w = _root(wx * wx + wy * wy + wz * wz)
    s, c = _sin_cos(0.5 * w * h)
    s = s / w if w > 0.0 else 0.5 * h  # sin(wh/2)/w → h/2 for w → 0
    return c, wx * s, wy * s, wz * s


@njit(cache=True, error_model="numpy", inline="always")
def _q_between(ax, ay, az, bx, by, bz):
    """Quaternion (not normalised) of the minimal rotation taking the direction of a to the direction of b."""
    cx, cy, cz = ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx
    w = _root((ax * ax + ay * ay + az * az) * (bx * bx + by * by + bz * bz)) + ax * bx + ay * by + az * bz
    return w, cx, cy, cz


@njit(cache=True, error_model="numpy", inline="always")
def _q_mul(a0, a1, a2, a3, b0, b1, b2, b3):
    """Hamilton product a·b (rotation b first, then a)."""
    return (
        a0 * b0 - a1 * b1 - a2 * b2 - a3 * b3,
        a0 * b1 + a1 * b0 + a2 * b3 - a3 * b2,
        a0 * b2 - a1 * b3 + a2 * b0 + a3 * b1,
        a0 * b3 + a1 * b2 - a2 * b1 + a3 * b0,
    )


@njit(cache=True, error_model="numpy", inline="always")
def _q_apply(q0, q1, q2, q3, vx, vy, vz):
    """Rotate v by the unit quaternion q."""
    tx = 2.0 * (q2 * vz - q3 * vy)
    ty = 2.0 * (q3 * vx - q1 * vz)
    tz = 2.0 * (q1 * vy - q2 * vx)
    return vx + q0 * tx + (q2 * tz - q3 * ty), vy + q0 * ty + (q3 * tx - q1 * tz), vz + q0 * tz + (q1 * ty - q2 * tx)


@njit(cache=True, error_model="numpy", inline="always")
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
    ecx, ecy, ecz = ex * INV_C, ey * INV_C, ez * INV_C  # E/c [T]
    k = 0.5 * q_over_m * h
    ox, oy, oz = ux, uy, uz
    ax, ay, az = ux + k * ecx, uy + k * ecy, uz + k * ecz
    qg = -q_over_m / _root(1.0 + ax * ax + ay * ay + az * az)
    hb = _q_axis(qg * bx, qg * by, qg * bz, 0.5 * h)  # half the magnetic rotation
    fb = _q_mul(hb[0], hb[1], hb[2], hb[3], hb[0], hb[1], hb[2], hb[3])
    rx, ry, rz = _q_apply(fb[0], fb[1], fb[2], fb[3], ax, ay, az)
    ux, uy, uz = rx + k * ecx, ry + k * ecy, rz + k * ecz
    # anomalous precession vector at the mid-step velocity: direction of u_old + u_new, magnitude
    # of |u| (the chord average would be short by cos(θ/2) and spoil a − 1/(γ²−1) at order θ²)
    mx, my, mz = ox + ux, oy + uy, oz + uz
    mn2 = mx * mx + my * my + mz * mz
    m2 = 0.5 * (ox * ox + oy * oy + oz * oz + ux * ux + uy * uy + uz * uz)
    gm = _root(1.0 + m2)
    scale = _root(m2 / ((1.0 + m2) * mn2)) if mn2 > 0.0 else 0.0
    btx, bty, btz = mx * scale, my * scale, mz * scale
    bdb = btx * bx + bty * by + btz * bz
    bde = btx * ecx + bty * ecy + btz * ecz
    bxe_x = bty * ecz - btz * ecy
    bxe_y = btz * ecx - btx * ecz
    bxe_z = btx * ecy - bty * ecx
    gg = gm / (gm + 1.0)
    c_bb = a_mu * gg * bdb
    c_e = a_mu - 1.0 / m2 if m2 > 0.0 else a_mu  # γ² − 1 = (γβ)²
    c_edm = gg * bde
    he = 0.5 * eta
    wx = -q_over_m * (a_mu * bx - c_bb * btx - c_e * bxe_x + he * (ecx + bty * bz - btz * by - c_edm * btx))
    wy = -q_over_m * (a_mu * by - c_bb * bty - c_e * bxe_y + he * (ecy + btz * bx - btx * bz - c_edm * bty))
    wz = -q_over_m * (a_mu * bz - c_bb * btz - c_e * bxe_z + he * (ecz + btx * by - bty * bx - c_edm * btz))
    qa = _q_axis(wx, wy, wz, h)
    q = _q_between(ox, oy, oz, ax, ay, az)  # first electric half kick
    q = _q_mul(hb[0], hb[1], hb[2], hb[3], q[0], q[1], q[2], q[3])
    q = _q_mul(qa[0], qa[1], qa[2], qa[3], q[0], q[1], q[2], q[3])
    q = _q_mul(hb[0], hb[1], hb[2], hb[3], q[0], q[1], q[2], q[3])
    f2 = _q_between(rx, ry, rz, ux, uy, uz)  # second electric half kick
    q = _q_mul(f2[0], f2[1], f2[2], f2[3], q[0], q[1], q[2], q[3])
    inv_n = 1.0 / _root(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3])  # the electric factors are not normalised
    sx, sy, sz = _q_apply(q[0] * inv_n, q[1] * inv_n, q[2] * inv_n, q[3] * inv_n, sx, sy, sz)
    return ux, uy, uz, sx, sy, sz


# --- blocks of LANES muons: w[row * LANES + lane] ------------------------------------------------


@njit(cache=True, error_model="numpy")
def _load_lane(w, j, states, i, n_steps, dt_s):
    """Put muon ``states[i]`` into lane j; i < 0 makes an idle lane (dt = 0, no steps) from the row 0."""
    L = LANES
    src = max(i, 0)
    for c in range(N_STATE):
        w[c * L + j] = states[src, c]
    w[_DT * L + j] = dt_s[src] if i >= 0 else 0.0
    w[_STEP * L + j] = 0.0
    w[_N_STEPS * L + j] = n_steps[src] if i >= 0 else 0.0
    w[_LOST_T * L + j] = np.nan
    w[_LOST_PHI * L + j] = np.nan
    w[_PHI * L + j] = azimuth_rad(states[src, 0], states[src, 2])


@njit(cache=True)
def _store_lane(w, j, states, i, lost_s):
    """Copy lane j back into ``states[i]`` and its loss time into ``lost_s[i]``."""
    L = LANES
    for c in range(N_STATE):
        states[i, c] = w[c * L + j]
    lost_s[i] = w[_LOST_T * L + j]


@njit(cache=True)
def _load_block(w, states, rows, n_steps, dt_s):
    """Fill a work array with the muons ``states[rows]`` (at most LANES; the other lanes idle)."""
    w[:] = 0.0
    for j in range(LANES):
        _load_lane(w, j, states, rows[j] if j < rows.size else -1, n_steps, dt_s)


@njit(cache=True)
def _store_block(w, states, rows, lost_s):
    """Copy the block's muons back into ``states[rows]`` and their loss times into ``lost_s[rows]``."""
    for j in range(rows.size):
        _store_lane(w, j, states, rows[j], lost_s)


@njit(cache=True, error_model="numpy")
def _block_fields(w, ring, sections, slow):
    """E and B at each lane's position and time, for a kick interval of its dt (rows _E…_E+5)."""
    L = LANES
    if slow:
        for j in range(L):
            f = fields_at(w[j], w[L + j], w[2 * L + j], w[9 * L + j], w[_DT * L + j], ring)
            for c in range(6):
                w[(_E + c) * L + j] = f[c]
        return
    consts = static_field_constants(ring)
    omega_c = consts[5]
    if consts[6]:  # discrete ESQ: measure of the kick's azimuth span inside the plates
        for j in range(L):
            w[_INSIDE * L + j] = 0.0
            w[_LO * L + j], w[_HI * L + j] = kick_span_rad(w[_PHI * L + j], w[_DT * L + j], omega_c)
        for s in range(sections.size // 2):
            a, b = sections[2 * s], sections[2 * s + 1]
            for j in range(L):
                w[_INSIDE * L + j] += max(min(w[_HI * L + j], b) - max(w[_LO * L + j], a), 0.0)
    for j in range(L):
        f = static_fields(w[j], w[L + j], w[2 * L + j], w[_INSIDE * L + j], w[_DT * L + j], consts)
        w[_E * L + j], w[(_E + 1) * L + j], w[(_E + 2) * L + j] = f[0], f[1], f[2]
        w[(_E + 3) * L + j], w[(_E + 4) * L + j], w[(_E + 5) * L + j] = f[3], f[4], f[5]
    if ring[KICK_ON] > 0.0:
        for j in range(L):
            if kicker_on(w[9 * L + j], ring):
                f = fields_at(w[j], w[L + j], w[2 * L + j], w[9 * L + j], w[_DT * L + j], ring)
                for c in range(6):
                    w[(_E + c) * L + j] = f[c]


@njit(cache=True, error_model="numpy", inline="always")
def _lane_kick(w, j, h, q_over_m, a_mu, eta):
    """:func:`kick` of lane j over h [s] with the fields of rows _E…; returns u and spin."""
    L = LANES
    return kick(
        w[3 * L + j], w[4 * L + j], w[5 * L + j], w[6 * L + j], w[7 * L + j], w[8 * L + j],
        w[_E * L + j], w[(_E + 1) * L + j], w[(_E + 2) * L + j], w[(_E + 3) * L + j], w[(_E + 4) * L + j], w[(_E + 5) * L + j],
        h, q_over_m, a_mu, eta,
    )


@njit(cache=True, error_model="numpy")
def _block_kick(w, q_over_m, a_mu, eta):
    """Kick of each lane at its current point: dt/2 at its first and last point, dt in between, none once finished."""
    L = LANES
    for j in range(L):
        step, n = w[_STEP * L + j], w[_N_STEPS * L + j]
        weight = (0.5 if 0.0 < step <= n else 0.0) + (0.5 if step < n else 0.0)  # (dt_before + dt_after)/2
        r = _lane_kick(w, j, weight * w[_DT * L + j], q_over_m, a_mu, eta)
        w[3 * L + j], w[4 * L + j], w[5 * L + j] = r[0], r[1], r[2]
        w[6 * L + j], w[7 * L + j], w[8 * L + j] = r[3], r[4], r[5]


@njit(cache=True, error_model="numpy")
def _block_snapshot(w, ring, sections, slow, q_over_m, a_mu, eta):
    """Synchronised u and spin (rows _SNAP…) at the lanes' current points: a dt/2 kick that is not kept."""
    L = LANES
    _block_fields(w, ring, sections, slow)
    for j in range(L):
        r = _lane_kick(w, j, 0.5 * w[_DT * L + j], q_over_m, a_mu, eta)
        for c in range(6):
            w[(_SNAP + c) * L + j] = r[c]


@njit(cache=True, error_model="numpy")
def _block_drift(w, ring, collimators, q_over_m):
    """Chord drift over dt of each lane that has steps left, then the aperture check (at collimators, or anywhere without)."""
    L = LANES
    r0, aperture, half_omega0 = ring[R0], ring[APERTURE], 0.5 * abs(q_over_m) * ring[B0]
    everywhere = 1.0 if collimators.size == 0 else 0.0
    for j in range(L):
        h = w[_DT * L + j] if w[_STEP * L + j] < w[_N_STEPS * L + j] else 0.0
        ux, uy, uz = w[3 * L + j], w[4 * L + j], w[5 * L + j]
        inv_g = 1.0 / _root(1.0 + ux * ux + uy * uy + uz * uz)
        # the chord of an exact rotation by θ is shorter than the arc by sin(θ/2)/(θ/2); θ from the
        # central field B₀: a factor that depended on the position would break symplecticity
        half_theta = half_omega0 * inv_g * h
        s, _ = _sin_cos(half_theta)
        drift = C_LIGHT * h * inv_g * (s / half_theta if half_theta > 0.0 else 1.0)
        px, pz = w[j] + ux * drift, w[2 * L + j] + uz * drift
        w[j], w[L + j], w[2 * L + j] = px, w[L + j] + uy * drift, pz
        w[9 * L + j] += h
        w[_PHI_OLD * L + j] = w[_PHI * L + j]
        w[_PHI * L + j] = azimuth_rad(px, pz)
        w[_CROSSED * L + j] = everywhere
    for c in range(collimators.size):
        az = collimators[c]
        for j in range(L):
            d_after = w[_PHI * L + j] - az
            d_after -= TWO_PI * math.floor(d_after * INV_TWO_PI)
            d_before = w[_PHI_OLD * L + j] - az
            d_before -= TWO_PI * math.floor(d_before * INV_TWO_PI)
            w[_CROSSED * L + j] = 1.0 if d_after < d_before else w[_CROSSED * L + j]
    for j in range(L):
        step, px, py, pz = w[_STEP * L + j], w[j], w[L + j], w[2 * L + j]
        xr = _root(px * px + pz * pz) - r0
        lost = step < w[_N_STEPS * L + j] and w[_CROSSED * L + j] > 0.0 and xr * xr + py * py > aperture * aperture
        w[_LOST_T * L + j] = w[9 * L + j] if lost else w[_LOST_T * L + j]
        w[_LOST_PHI * L + j] = w[_PHI * L + j] if lost else w[_LOST_PHI * L + j]
        w[_N_STEPS * L + j] = step + 1.0 if lost else w[_N_STEPS * L + j]  # only the final half kick is left
        w[_STEP * L + j] = step + 1.0


@njit(cache=True)
def _finished(w, j):
    """Whether lane j has taken its final kick."""
    return w[_STEP * LANES + j] > w[_N_STEPS * LANES + j]


@njit(cache=True)
def _iterate(w, ring, sections, collimators, slow, q_over_m, a_mu, eta):
    """One leapfrog iteration of a block: fields, kick, drift and aperture check.

    After k iterations a lane that is not lost has drifted k steps (position and time on the step,
    u and spin half a step behind); the iteration after its last drift is its final half kick.
    A lost lane takes that final half kick at the loss point and stops.
    """
    _block_fields(w, ring, sections, slow)
    _block_kick(w, q_over_m, a_mu, eta)
    _block_drift(w, ring, collimators, q_over_m)


@njit(cache=True)
def _run_block(w, n_iter, ring, sections, collimators, q_over_m, a_mu, eta):
    """Up to ``n_iter`` iterations of :func:`_iterate`, fewer if every lane has finished."""
    slow = needs_fields_at(ring)
    for _ in range(n_iter):
        for j in range(LANES):
            if not _finished(w, j):
                break
        else:
            return
        _iterate(w, ring, sections, collimators, slow, q_over_m, a_mu, eta)


@njit(cache=True)
def _run_queue(states, queue, n_steps, dt_s, ring, sections, collimators, q_over_m, a_mu, eta, lost_s):
    """Track the muons ``states[queue]`` to their last step with one block whose finished lanes take the next muon."""
    slow = needs_fields_at(ring)
    w = np.zeros(N_ROWS * LANES)
    muon = np.full(LANES, -1)
    taken = 0
    for j in range(LANES):
        if taken < queue.size:
            muon[j] = queue[taken]
            taken += 1
        _load_lane(w, j, states, muon[j], n_steps, dt_s)
    busy = True
    while busy:
        _iterate(w, ring, sections, collimators, slow, q_over_m, a_mu, eta)
        busy = False
        for j in range(LANES):
            if _finished(w, j) and muon[j] >= 0:
                _store_lane(w, j, states, muon[j], lost_s)
                muon[j] = queue[taken] if taken < queue.size else -1
                taken += 1
                _load_lane(w, j, states, muon[j], n_steps, dt_s)
            busy = busy or muon[j] >= 0


@njit(cache=True)
def _collimator_azimuths(ring):
    """Collimator azimuths [rad] in [0, 2π)."""
    az = ring[HEADER : HEADER + int(ring[N_COLL])].copy()
    return az - TWO_PI * np.floor(az / TWO_PI)


def track_to_times(states, durations_s, dt_max_s, ring, q_over_m, a_mu, eta):
    """Track every muon (rows of ``states``, modified in place) for its own duration.

    Each muon takes ceil(duration/dt_max) equal steps, so it ends exactly at its decay time.
    Returns the loss times [s] (NaN for muons that stayed inside the aperture). The muons, longest
    first, are dealt to a few queues per thread; a muon's result depends on nothing else.
    """
    n_queues = max(1, min(QUEUES_PER_THREAD * get_num_threads(), len(states) // (QUEUE_BLOCKS * LANES)))
    return _track_to_times(states, np.asarray(durations_s, dtype=float), float(dt_max_s), ring, q_over_m, a_mu, eta, n_queues)


@njit(cache=True, parallel=True)
def _track_to_times(states, durations_s, dt_max_s, ring, q_over_m, a_mu, eta, n_queues):
    """:func:`track_to_times` with ``n_queues`` queues."""
    n = states.shape[0]
    n_steps = np.empty(n)
    dt_s = np.empty(n)
    for i in range(n):
        n_steps[i] = max(1, int(math.ceil(durations_s[i] / dt_max_s)))
        dt_s[i] = durations_s[i] / n_steps[i]
    order = np.argsort(-n_steps, kind="mergesort")
    lost = np.full(n, np.nan)
    sections, collimators = section_copies(ring), _collimator_azimuths(ring)
    for q in prange(n_queues):
        _run_queue(states, order[q::n_queues], n_steps, dt_s, ring, sections, collimators, q_over_m, a_mu, eta, lost)
    return lost


@njit(cache=True, parallel=True)
def track_recorded(states, n_steps, dt_s, rec_every, ring, q_over_m, a_mu, eta):
    """Track every muon for ``n_steps`` and return its state every ``rec_every`` steps.

    Returns an array (n_muons, n_steps // rec_every, 10); rows after a loss stay NaN.
    """
    n = states.shape[0]
    n_rec = n_steps // rec_every
    out = np.full((n, n_rec, N_STATE), np.nan)
    steps = np.full(n, float(n_steps))
    dts = np.full(n, dt_s)
    lost = np.empty(n)
    sections, collimators = section_copies(ring), _collimator_azimuths(ring)
    slow = needs_fields_at(ring)
    L = LANES
    for b in prange((n + L - 1) // L):
        rows = np.arange(b * L, min(n, (b + 1) * L))
        w = np.empty(N_ROWS * L)
        _load_block(w, states, rows, steps, dts)
        for r in range(n_rec):
            _run_block(w, rec_every, ring, sections, collimators, q_over_m, a_mu, eta)
            _block_snapshot(w, ring, sections, slow, q_over_m, a_mu, eta)
            for j in range(rows.size):
                if np.isnan(w[_LOST_T * L + j]):
                    for c in range(3):
                        out[rows[j], r, c] = w[c * L + j]
                    for c in range(6):
                        out[rows[j], r, 3 + c] = w[(_SNAP + c) * L + j]
                    out[rows[j], r, 9] = w[9 * L + j]
        _run_block(w, 2**62, ring, sections, collimators, q_over_m, a_mu, eta)
        _store_block(w, states, rows, lost)
    return out


N_DIAG = 8
DIAG_COLUMNS = ("omega_a_rad_per_s", "x_mean_m", "x2_mean_m2", "y_mean_m", "y2_mean_m2", "lost_time_s", "lost_azimuth_rad", "duration_s")
_N_ACC = 12  # per-lane sums of a diagnostics block: n, t, φ, t², tφ, x, x², y, y², previous raw φ, turns, start time


@njit(cache=True)
def _accumulate(acc, w, j, r0):
    """Add lane j's synchronised sample (position, time, snapshot u and spin) to its sums ``acc[j]``."""
    L = LANES
    a = acc[j]
    ux, uz = w[(_SNAP + 0) * L + j], w[(_SNAP + 2) * L + j]
    sx, sz = w[(_SNAP + 3) * L + j], w[(_SNAP + 5) * L + j]
    un = math.sqrt(ux * ux + uz * uz)
    raw = math.atan2((-sx * uz + sz * ux) / un, (sx * ux + sz * uz) / un)
    if a[0] > 0.0:
        d = raw - a[9]
        if d < -math.pi:
            a[10] += 1.0
        elif d > math.pi:
            a[10] -= 1.0
    a[9] = raw
    phase = raw + 2.0 * math.pi * a[10]
    tt = w[9 * L + j] - a[11]
    px, py, pz = w[j], w[L + j], w[2 * L + j]
    x = math.sqrt(px * px + pz * pz) - r0
    a[0] += 1.0
    a[1] += tt
    a[2] += phase
    a[3] += tt * tt
    a[4] += tt * phase
    a[5] += x
    a[6] += x * x
    a[7] += py
    a[8] += py * py


@njit(cache=True, parallel=True)
def track_diagnostics(states, n_steps, dt_s, sample_every, ring, q_over_m, a_mu, eta):
    """Per-muon diagnostics without decays (columns :data:`DIAG_COLUMNS`); states advance in place.

    ω_a is the least-squares slope of the unwrapped spin angle to the momentum (horizontal plane)
    sampled every ``sample_every`` steps and at the end; the orbit moments are averages over the
    same samples. The ω_a of a beam is the mean of the column ``omega_a_rad_per_s``: with 10⁴ muons
    its statistical error is the spread of the individual shifts over 100 (ppb level for Fermilab beams).
    """
    n = states.shape[0]
    out = np.full((n, N_DIAG), np.nan)
    steps = np.full(n, float(n_steps))
    dts = np.full(n, dt_s)
    lost = np.empty(n)
    sections, collimators = section_copies(ring), _collimator_azimuths(ring)
    slow = needs_fields_at(ring)
    L = LANES
    for b in prange((n + L - 1) // L):
        rows = np.arange(b * L, min(n, (b + 1) * L))
        w = np.empty(N_ROWS * L)
        _load_block(w, states, rows, steps, dts)
        acc = np.zeros((L, _N_ACC))
        for j in range(L):
            acc[j, 11] = w[9 * L + j]
        done = 0
        while done < n_steps:
            chunk = min(sample_every, n_steps - done)
            _run_block(w, chunk, ring, sections, collimators, q_over_m, a_mu, eta)
            done += chunk
            _block_snapshot(w, ring, sections, slow, q_over_m, a_mu, eta)
            for j in range(rows.size):
                if np.isnan(w[_LOST_T * L + j]):
                    _accumulate(acc, w, j, ring[R0])
        _run_block(w, 2**62, ring, sections, collimators, q_over_m, a_mu, eta)
        _store_block(w, states, rows, lost)
        for j in range(rows.size):
            a, o = acc[j], out[rows[j]]
            cnt = a[0]
            denom = cnt * a[3] - a[1] * a[1]
            o[0] = (cnt * a[4] - a[1] * a[2]) / denom if cnt > 2.0 and denom > 0.0 else np.nan
            if cnt > 0.0:
                o[1], o[2], o[3], o[4] = a[5] / cnt, a[6] / cnt, a[7] / cnt, a[8] / cnt
            o[5] = w[_LOST_T * L + j]
            o[6] = w[_LOST_PHI * L + j]
            o[7] = w[9 * L + j] - a[11]
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
