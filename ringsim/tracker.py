"""Numba spin–orbit tracker: Lorentz force and Thomas–BMT spin (with EDM) in SI units.

Geometry: the ring lies in the horizontal X–Z plane, Y is vertical, B ≈ B₀ŷ. A μ⁺ at (R₀, 0, 0)
moves along +Z; the orbit angle φ = atan2(Z, X) grows with time. State of a muon, one row of a
``(n, 10)`` array: X, Y, Z [m], u = γβ (3), rest-frame spin unit vector (3), time [s].

Integrator: kick–drift–kick leapfrog with variable steps (a kick of (h_before + h_after)/2 at each
point, half a step at the start and at the end). The kick turns the momentum about B by the exact
angle on either side of the electric impulse, which falls at the point itself (a fraction
h_before/(h_before + h_after) of the rotation); the drift is the chord of the gyration
(horizontally arc × sin(θ/2)/(θ/2), θ from B₀; vertically the full arc), so that orbits in a
uniform field close exactly; the spin is turned by exactly the rotations applied to the momentum
plus the small anomalous rotation ω_a·h (see :func:`kick`). In a uniform field the spin then
advances relative to the momentum by exactly −(q/m)aB·h per step (docs/physics.md §2 accuracy trap).

Steps are region-adaptive (:func:`step_plan`): where the field is the uniform B₀ŷ alone (the gaps
between discrete ESQ plates) a step is exact for any length, so one step crosses a gap; in the
fields the steps divide each segment equally, ≤ dt_max; steps land on the ESQ edges, on the
collimator azimuths (where the aperture is checked) and on the requested stop times. The ESQ
focusing of a kick is the plates' share of its azimuth span, so it stays right for a muon that
lands slightly off a node.

Speed: muons are tracked in blocks of :data:`LANES` (structure of arrays, one row of a flat work
array per variable); each stage of a step is a branch-free loop over the block, without libm calls
(polynomial sin, cos and atan2), which LLVM vectorises; blocks run in parallel (prange). A ring
without electric field takes the cheaper magnetic-only kick (chosen per ring, not per block). The
stage loops let LLVM fuse multiply–adds (``fastmath={"contract"}``: one rounding instead of two). A
muon's arithmetic does not depend on its block mates or on the thread, so results are bit-identical
for any number of threads.
"""

from __future__ import annotations

import math

import numpy as np
from numba import get_num_threads, njit, prange

from ringsim.constants import SPEED_OF_LIGHT_M_PER_S as C_LIGHT
from ringsim.ring_fields import (
    APERTURE,
    B0,
    B_RADIAL,
    FOC,
    HEADER,
    KICK_ON,
    KICK_T0,
    KICK_WIDTH,
    N_COLL,
    N_SEC,
    OMEGA_C,
    R0,
    azimuth_rad,
    fields_at,
    kick_span_rad,
    kicker_field_t,
    needs_fields_at,
    section_copies,
    static_field_constants,
    static_fields,
)

N_STATE = 10
FUSED = {"contract"}  # LLVM may fuse a·b + c into one rounding (FMA): deterministic, per lane, thread-independent
LANES = 32  # muons per block: four AVX-512 vectors of float64 (a shorter loop is unrolled, not vectorised)
TWO_PI = 2.0 * math.pi
INV_C = 1.0 / C_LIGHT
QUEUES_PER_THREAD, QUEUE_BLOCKS = 2, 8  # queues of track_to_times: per thread, and at least this many blocks of muons each
INV_TWO_PI = 1.0 / TWO_PI
_SIN = tuple((-1) ** k / math.factorial(2 * k + 1) for k in range(8))  # Taylor coefficients to x¹⁵ and x¹⁴, used on [−π/4, π/4] (:func:`_sin_cos`)
_COS = tuple((-1) ** k / math.factorial(2 * k) for k in range(8))
MAX_STEP_RAD = math.pi / 3.0  # longest step, as an angle of the orbit (keeps the polynomial sin and cos exact)

# rows of a block's work array (each LANES long): the state columns 0–9, then end and next stop
# times, previous and next step, kick duration, electric impulse position, landing flag, done flag,
# loss time and azimuth, azimuth now and before the step, collimator crossed, kick azimuth span,
# its part inside the plates, steps taken
(_T_END, _T_STOP, _HP, _HN, _KH, _F, _LAND, _DONE, _LOST_T, _LOST_PHI, _PHI, _PHI_OLD, _CROSSED, _LO, _HI, _INSIDE, _N_DRIFT) = range(N_STATE, N_STATE + 17)
_E = N_STATE + 17  # E (3 rows), B (3 rows) for the next kick
_SNAP = _E + 6  # synchronised u and spin (6 rows) of a snapshot
N_ROWS = _SNAP + 6


@njit(cache=True, inline="always")
def _horner(x, c):
    """c[0] + c[1]x + … + c[7]x⁷."""
    return c[0] + x * (c[1] + x * (c[2] + x * (c[3] + x * (c[4] + x * (c[5] + x * (c[6] + x * c[7]))))))


@njit(cache=True, error_model="numpy", inline="always")
def _sin_cos(x):
    """Return sin x and cos x for |x| ≤ π/2: Taylor series of x/2, then the double angle (no libm call, so loops vectorise).

    Error below 2e-15 on [−π/2, π/2] and 4e-16 on [−π/4, π/4]; the tracker's angles (half a step
    rotation, ≤ :data:`MAX_STEP_RAD`/2) stay within ±π/5.
    """
    r = 0.5 * x
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
    """Return the unit quaternion of the rotation about ω by the angle |ω|·h."""
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
def _omega_a(btx, bty, btz, gm, m2, ecx, ecy, ecz, bx, by, bz, q_over_m, a_mu, eta):
    """Anomalous precession vector ω_a [rad/s] for the velocity β (γ = gm, (γβ)² = m2), E/c and B [T] (see :func:`kick`)."""
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
    return wx, wy, wz


@njit(cache=True, error_model="numpy", inline="always")
def _kick_at(ux, uy, uz, sx, sy, sz, ex, ey, ez, bx, by, bz, h, f, q_over_m, a_mu, eta):
    """:func:`kick` with the electric impulse after the fraction f of the magnetic rotation (f = ½: :func:`kick`).

    Momentum: magnetic rotation over f·h, the whole electric impulse (q/m)E·h, magnetic rotation
    over (1 − f)·h (each with its own γ). The spin undergoes the same rotations of the momentum
    direction and, on either side of the electric one, half the anomalous rotation ω_a·h, with ω_a
    at the velocity of the impulse (direction of the mean of the momenta before and after it, mean
    |u|²). In a uniform magnetic field (E = 0) this is exact for any h and f.
    """
    ecx, ecy, ecz = ex * INV_C, ey * INV_C, ez * INV_C  # E/c [T]
    k = q_over_m * h
    g0 = _root(1.0 + ux * ux + uy * uy + uz * uz)
    qg = -q_over_m / g0
    r1 = _q_axis(qg * bx, qg * by, qg * bz, f * h)
    ax, ay, az = _q_apply(r1[0], r1[1], r1[2], r1[3], ux, uy, uz)
    cx, cy, cz = ax + k * ecx, ay + k * ecy, az + k * ecz
    a2 = ax * ax + ay * ay + az * az
    c2 = cx * cx + cy * cy + cz * cz
    qg = -q_over_m / _root(1.0 + c2)
    r2 = _q_axis(qg * bx, qg * by, qg * bz, (1.0 - f) * h)
    ux, uy, uz = _q_apply(r2[0], r2[1], r2[2], r2[3], cx, cy, cz)
    mx, my, mz = ax + cx, ay + cy, az + cz
    mn2 = mx * mx + my * my + mz * mz
    m2 = 0.5 * (a2 + c2)
    scale = _root(m2 / ((1.0 + m2) * mn2)) if mn2 > 0.0 else 0.0
    w = _omega_a(mx * scale, my * scale, mz * scale, _root(1.0 + m2), m2, ecx, ecy, ecz, bx, by, bz, q_over_m, a_mu, eta)
    qa = _q_axis(w[0], w[1], w[2], 0.5 * h)
    qe = _q_between(ax, ay, az, cx, cy, cz)
    q = _q_mul(qa[0], qa[1], qa[2], qa[3], r1[0], r1[1], r1[2], r1[3])
    q = _q_mul(qe[0], qe[1], qe[2], qe[3], q[0], q[1], q[2], q[3])
    q = _q_mul(qa[0], qa[1], qa[2], qa[3], q[0], q[1], q[2], q[3])
    q = _q_mul(r2[0], r2[1], r2[2], r2[3], q[0], q[1], q[2], q[3])
    inv_n = 1.0 / _root(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3])  # the electric factor is not normalised
    sx, sy, sz = _q_apply(q[0] * inv_n, q[1] * inv_n, q[2] * inv_n, q[3] * inv_n, sx, sy, sz)
    return ux, uy, uz, sx, sy, sz


@njit(cache=True, error_model="numpy", inline="always")
def _kick_magnetic(ux, uy, uz, sx, sy, sz, bx, by, bz, h, q_over_m, a_mu, eta):
    """:func:`kick` for E = 0: the exact magnetic rotation, ω_a at its half-way velocity inserted half-way."""
    u2 = ux * ux + uy * uy + uz * uz
    g0 = _root(1.0 + u2)
    qg = -q_over_m / g0
    hb = _q_axis(qg * bx, qg * by, qg * bz, 0.5 * h)
    mx, my, mz = _q_apply(hb[0], hb[1], hb[2], hb[3], ux, uy, uz)
    inv_g = 1.0 / g0
    w = _omega_a(mx * inv_g, my * inv_g, mz * inv_g, g0, u2, 0.0, 0.0, 0.0, bx, by, bz, q_over_m, a_mu, eta)
    qa = _q_axis(w[0], w[1], w[2], h)
    ux, uy, uz = _q_apply(hb[0], hb[1], hb[2], hb[3], mx, my, mz)
    q = _q_mul(qa[0], qa[1], qa[2], qa[3], hb[0], hb[1], hb[2], hb[3])
    q = _q_mul(hb[0], hb[1], hb[2], hb[3], q[0], q[1], q[2], q[3])
    sx, sy, sz = _q_apply(q[0], q[1], q[2], q[3], sx, sy, sz)
    return ux, uy, uz, sx, sy, sz


@njit(cache=True, error_model="numpy", inline="always")
def kick(ux, uy, uz, sx, sy, sz, ex, ey, ez, bx, by, bz, h, q_over_m, a_mu, eta):
    """Advance u = γβ and the spin over a time h [s] in fixed fields E [V/m], B [T].

    Momentum: half the magnetic rotation (exact angle), the whole electric impulse, the other half.
    The spin undergoes the same rotations of the momentum direction (Thomas–BMT minus ω_a is
    exactly the rotation rate of the momentum), with the anomalous rotation ω_a·h split on either
    side of the electric one, where ω_a is evaluated (velocity of the impulse):
    ω_a = −(q/m)[aB − (aγ/(γ+1))(β·B)β − (a − 1/(γ²−1))(β×E)/c
                 + (η/2)(E/c + β×B − (γ/(γ+1))(β·E/c)β)].
    Only the small ω_a is discretised: the spin follows the momentum exactly, and the magic
    cancellation of the electric term holds for any step size. Rotations are composed as
    quaternions and applied to the spin once. See :func:`_kick_at` for an off-centre impulse.
    Rotation angles |q B h/(γm)| up to π (polynomial sin and cos: 2e-15).
    """
    return _kick_at(ux, uy, uz, sx, sy, sz, ex, ey, ez, bx, by, bz, h, 0.5, q_over_m, a_mu, eta)


# --- region-adaptive step plan ---------------------------------------------------------------------
PLAN_BINS = 4096  # azimuth bins of the table that finds a muon's next node
GAP_GAIN = 0.25  # fraction of a muon's offset from the node schedule taken up by a gap step
NODE_TOLERANCE = 0.2  # a node less than this fraction of the longest field step ahead counts as reached


def step_plan(ring, dt_max_s):
    """Azimuth nodes of the region-adaptive steps: (nodes [rad], segment times [s], lookup table, tolerance [rad]).

    Where the ring's static field is the uniform B₀ŷ alone — the gaps between discrete ESQ plates
    (or the whole ring without focusing), with no perturbation, radial field or RC recovery — a
    kick–drift–kick step is exact for any length, so a muon crosses a gap in one step. Nodes are the
    ends of the field regions (plates closer than one field step ω_c·dt_max are one region), the
    collimator azimuths, equal divisions of the field segments into parts ≤ ω_c·dt_max and of gaps
    into parts ≤ :data:`MAX_STEP_RAD`. A muon steps from node to node in the design time of the
    segment (its length/ω_c; ≤ dt_max in the fields): a fixed schedule, the same for every muon,
    keeps the integrator symplectic. Across a gap the step also takes up :data:`GAP_GAIN` of the
    muon's offset from the node (its slip from the schedule), so that it stays within a fraction of
    a degree of the nodes; the gap step is exact whatever its length. (Taking up the whole offset
    makes the steps depend on the betatron phase: the amplitude then drifts by ~5e-4 in 10⁴ turns.)
    A muon that starts or stops inside a segment steps to its next node. ``field_step_s[k]`` is the
    design time of the segment that ends at node k, negative for a gap. Other rings return no
    nodes: steps of ≤ dt_max in time.
    ``nodes`` holds three copies (+0, +2π, +4π); ``table[b]`` is the first node beyond the start of
    azimuth bin b plus the tolerance.
    """
    code = int(ring[FOC])
    none = np.empty(0), np.empty(0), np.zeros(PLAN_BINS + 1, dtype=np.int64), 0.0
    if needs_fields_at(ring) or ring[B_RADIAL] != 0.0 or code not in (2, 3):
        return none
    step_rad = ring[OMEGA_C] * dt_max_s
    sec = ring[HEADER + int(ring[N_COLL]) : HEADER + int(ring[N_COLL]) + 2 * int(ring[N_SEC])].reshape(-1, 2) if code == 2 else np.empty((0, 2))
    pieces = []
    for a, b in sec:
        a0 = a % TWO_PI
        b0 = a0 + (b - a)
        pieces += [(a0, min(b0, TWO_PI))] + ([(0.0, b0 - TWO_PI)] if b0 > TWO_PI else [])
    merged: list[list[float]] = []
    for a, b in sorted(pieces):
        if merged and a - merged[-1][1] < step_rad:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    if len(merged) > 1 and merged[0][0] + TWO_PI - merged[-1][1] < step_rad:
        last = merged.pop()
        merged[0][0] = last[0] - TWO_PI
    if len(merged) == 1 and merged[0][1] - merged[0][0] > TWO_PI - step_rad:
        return none  # no gap worth a step of its own

    def inside(phi):
        return any((phi - a) % TWO_PI < b - a for a, b in merged)

    points = [p % TWO_PI for ab in merged for p in ab] + list(ring[HEADER : HEADER + int(ring[N_COLL])] % TWO_PI)
    nodes = np.unique(np.round(np.asarray(points if points else [0.0], dtype=float), 12))
    split = []
    for k in range(nodes.size):
        a, b = nodes[k - 1], nodes[k]
        length = (b - a) % TWO_PI or TWO_PI
        n = math.ceil(length / (MAX_STEP_RAD if not inside(a + 0.5 * length) else step_rad) - 1e-9)
        split += [(a + length * i / n) % TWO_PI for i in range(1, n)]
    nodes = np.unique(np.concatenate([nodes, split]))
    length = (nodes - np.roll(nodes, 1)) % TWO_PI
    length[length == 0.0] = TWO_PI  # a single node
    field_step_s = np.array([(1.0 if inside(nodes[k - 1] + 0.5 * length[k]) else -1.0) * length[k] / ring[OMEGA_C] for k in range(nodes.size)])
    tol = NODE_TOLERANCE * step_rad
    ext = np.concatenate([nodes, nodes + TWO_PI, nodes + 2.0 * TWO_PI])
    table = np.searchsorted(ext, np.arange(PLAN_BINS + 1) * (TWO_PI / PLAN_BINS) + tol, side="right")  # + φ = 2π
    return ext, np.tile(field_step_s, 3), table.astype(np.int64), tol


# --- blocks of LANES muons: w[row * LANES + lane] ------------------------------------------------


@njit(cache=True, error_model="numpy")
def _load_lane(w, j, states, i, t_end_s):
    """Put muon ``states[i]`` into lane j, to be tracked to ``t_end_s[i]``; i < 0 makes an idle lane from the row 0."""
    L = LANES
    src = max(i, 0)
    for c in range(N_STATE):
        w[c * L + j] = states[src, c]
    t = states[src, 9]
    w[_T_END * L + j] = t_end_s[src] if i >= 0 else t
    w[_T_STOP * L + j] = w[_T_END * L + j]
    w[_HP * L + j] = 0.0
    w[_HN * L + j] = 0.0
    w[_DONE * L + j] = 0.0 if i >= 0 else 1.0
    w[_N_DRIFT * L + j] = 0.0
    w[_LOST_T * L + j] = np.nan
    w[_LOST_PHI * L + j] = np.nan
    w[_PHI * L + j] = azimuth_rad(states[src, 0], states[src, 2])


@njit(cache=True)
def _store_lane(w, j, states, i, lost_s, steps):
    """Copy lane j back into ``states[i]``, its loss time into ``lost_s[i]`` and its number of steps into ``steps[i]``."""
    L = LANES
    for c in range(N_STATE):
        states[i, c] = w[c * L + j]
    lost_s[i] = w[_LOST_T * L + j]
    steps[i] = w[_N_DRIFT * L + j]


@njit(cache=True, error_model="numpy")
def _block_plan(w, nodes, field_step_s, table, tol, dt_max_s, kick_end_s, inv_omega_c, finish):
    """Next step HN of each lane and the duration KH of the kick before it.

    A lane short of its stop steps to the next node (see :func:`step_plan`; across a gap in equal
    steps ≤ dt_max while the kicker pulse is on; without nodes equal steps ≤ dt_max) and lands
    exactly on its stop time; KH = (HP + HN)/2. A lane at its end (``finish``) takes its final kick HP/2
    and is done; a lane waiting at a stop does nothing.
    """
    L = LANES
    bins_per_rad = PLAN_BINS / TWO_PI
    inv_dt = 1.0 / dt_max_s
    tol_t = tol * inv_omega_c
    slack = 1e-6  # steps of at most dt_max·(1 + 1e-6/n): the rounding of times and azimuths never adds a step
    if nodes.size > 0:  # azimuth to the next node (row _LO) and the design time up to it (row _HI; < 0 across a gap)
        for j in range(L):
            phi = w[_PHI * L + j]
            k = table[int(phi * bins_per_rad)]
            k = k + 1 if nodes[k] <= phi + tol else k
            k = k + 1 if nodes[k] <= phi + tol else k
            w[_LO * L + j] = nodes[k] - phi
            w[_HI * L + j] = field_step_s[k]
        for j in range(L):
            dphi_t = w[_LO * L + j] * inv_omega_c
            design = abs(w[_HI * L + j])
            step = design + GAP_GAIN * (dphi_t - design) if w[_HI * L + j] < 0.0 else design
            step = step if dphi_t > design - tol_t else dphi_t  # the rest of a segment entered in its middle
            n = max(1.0, np.ceil(step * inv_dt - slack))  # during the kicker pulse a gap takes steps ≤ dt_max
            w[_HN * L + j] = step / n if w[_HI * L + j] < 0.0 and w[9 * L + j] < kick_end_s else step
    else:
        for j in range(L):
            rem = w[_T_STOP * L + j] - w[9 * L + j]
            w[_HN * L + j] = rem / max(1.0, np.ceil(rem * inv_dt - slack))
    for j in range(L):
        stop = w[_T_STOP * L + j]
        rem = stop - w[9 * L + j]
        done = w[_DONE * L + j] > 0.0
        moving = rem > 0.0 and not done
        final = finish and not done and not rem > 0.0 and not stop < w[_T_END * L + j]
        h = w[_HN * L + j]
        land = not h < rem
        h = rem if land else h
        w[_HN * L + j] = h if moving else 0.0
        w[_LAND * L + j] = 1.0 if land else 0.0
        hp = w[_HP * L + j]
        w[_KH * L + j] = 0.5 * (hp + h) if moving else (0.5 * hp if final else 0.0)
        w[_DONE * L + j] = 1.0 if final or done else 0.0


@njit(cache=True, error_model="numpy", fastmath=FUSED)
def _block_fields(w, ring, sections, slow, kick_end_s):
    """E and B (rows _E…_E+5) for each lane's kick KH over the azimuth span of its half steps, and F.

    F = HP/(HP + HN): the fraction of the kick's magnetic rotation before its electric impulse, which
    falls at the lane's point, where E is evaluated (the chord of the next drift needs the momentum
    rotated by exactly HN/2 beyond the point). ``kick_end_s``: end of the kicker pulse.
    """
    L = LANES
    consts = static_field_constants(ring)
    omega_c = consts[5]
    for j in range(L):
        hp, kh = w[_HP * L + j], w[_KH * L + j]
        w[_F * L + j] = 0.5 * hp / kh if kh > 0.0 else 0.5
        w[_LO * L + j], w[_HI * L + j] = kick_span_rad(w[_PHI * L + j], hp, w[_HN * L + j], omega_c)
    if slow:
        for j in range(L):
            f = fields_at(w[j], w[L + j], w[2 * L + j], w[9 * L + j], w[_KH * L + j], ring)
            for c in range(6):
                w[(_E + c) * L + j] = f[c]
    else:
        if consts[6]:  # discrete ESQ: measure of the kick's azimuth span inside the plates
            for j in range(L):
                w[_INSIDE * L + j] = 0.0
            for s in range(sections.size // 2):
                a, b = sections[2 * s], sections[2 * s + 1]
                for j in range(L):
                    w[_INSIDE * L + j] += max(min(w[_HI * L + j], b) - max(w[_LO * L + j], a), 0.0)
        for j in range(L):
            f = static_fields(w[j], w[L + j], w[2 * L + j], w[_INSIDE * L + j], w[_KH * L + j], consts)
            for c in range(6):
                w[(_E + c) * L + j] = f[c]
        if ring[KICK_ON] > 0.0:
            pulse = 0.0  # lanes before the end of the kicker pulse
            for j in range(L):
                pulse += 1.0 if w[9 * L + j] < kick_end_s else 0.0
            if pulse > 0.0:
                for j in range(L):
                    w[(_E + 4) * L + j] += kicker_field_t(w[_LO * L + j], w[_HI * L + j], w[9 * L + j], ring)


@njit(cache=True)
def _needs_azimuth(ring, nodes, collimators):
    """Whether the steps need the muons' azimuths: step nodes, collimators, ESQ plates or kicker."""
    return nodes.size > 0 or collimators.size > 0 or int(ring[FOC]) == 2 or ring[KICK_ON] > 0.0


@njit(cache=True)
def _electric(ring):
    """Whether the ring has an electric field (ESQs): otherwise every kick is :func:`_kick_magnetic`.

    Decided per ring, not per block, so that a muon's arithmetic does not depend on its block mates.
    """
    code = int(ring[FOC])
    return code == 0 or code == 2


@njit(cache=True, error_model="numpy", inline="always")
def _lane_kick(w, j, electric, q_over_m, a_mu, eta):
    """Kick of duration KH of lane j with the fields of rows _E…: :func:`_kick_at`, or :func:`_kick_magnetic` in a ring without E."""
    L = LANES
    if electric:
        ux, uy, uz, sx, sy, sz = w[3 * L + j], w[4 * L + j], w[5 * L + j], w[6 * L + j], w[7 * L + j], w[8 * L + j]
        ex, ey, ez, bx, by, bz = w[_E * L + j], w[(_E + 1) * L + j], w[(_E + 2) * L + j], w[(_E + 3) * L + j], w[(_E + 4) * L + j], w[(_E + 5) * L + j]
        return _kick_at(ux, uy, uz, sx, sy, sz, ex, ey, ez, bx, by, bz, w[_KH * L + j], w[_F * L + j], q_over_m, a_mu, eta)
    ux, uy, uz, sx, sy, sz = w[3 * L + j], w[4 * L + j], w[5 * L + j], w[6 * L + j], w[7 * L + j], w[8 * L + j]
    bx, by, bz = w[(_E + 3) * L + j], w[(_E + 4) * L + j], w[(_E + 5) * L + j]
    return _kick_magnetic(ux, uy, uz, sx, sy, sz, bx, by, bz, w[_KH * L + j], q_over_m, a_mu, eta)


@njit(cache=True, error_model="numpy", fastmath=FUSED)
def _block_kick(w, electric, q_over_m, a_mu, eta):
    """Kick of each lane (:func:`_lane_kick`): u and spin advance."""
    L = LANES
    for j in range(L):
        r = _lane_kick(w, j, electric, q_over_m, a_mu, eta)
        w[3 * L + j], w[4 * L + j], w[5 * L + j] = r[0], r[1], r[2]
        w[6 * L + j], w[7 * L + j], w[8 * L + j] = r[3], r[4], r[5]


@njit(cache=True, error_model="numpy", fastmath=FUSED)
def _block_snapshot(w, plan, ring, sections, slow, q_over_m, a_mu, eta):
    """Store the synchronised u and spin (rows _SNAP…) of lanes waiting at a stop: a kick HP/2 that is not kept."""
    L = LANES
    kick_end_s = plan[4]
    for j in range(L):
        w[_HN * L + j] = 0.0
        w[_KH * L + j] = 0.5 * w[_HP * L + j]
    _block_fields(w, ring, sections, slow, kick_end_s)
    electric = _electric(ring)
    for j in range(L):
        r = _lane_kick(w, j, electric, q_over_m, a_mu, eta)
        for c in range(6):
            w[(_SNAP + c) * L + j] = r[c]


@njit(cache=True, error_model="numpy", fastmath=FUSED)
def _block_drift(w, ring, collimators, tol, q_over_m, need_phi):
    """Drift over HN of each moving lane (the chord of its gyration), then the aperture check.

    The aperture is checked at the end of a step that passes a collimator azimuth less the node
    tolerance (the step lands on the collimator), or after every step in a ring without collimators.
    A lost muon's end and stop become its loss time. The azimuth is updated where ``need_phi``.
    """
    L = LANES
    r0, aperture, half_omega0 = ring[R0], ring[APERTURE], 0.5 * abs(q_over_m) * ring[B0]
    everywhere = 1.0 if collimators.size == 0 else 0.0
    for j in range(L):
        h = w[_HN * L + j]
        ux, uy, uz = w[3 * L + j], w[4 * L + j], w[5 * L + j]
        inv_g = 1.0 / _root(1.0 + ux * ux + uy * uy + uz * uz)
        # in the horizontal plane, the chord of an exact rotation by θ is shorter than the arc by
        # sin(θ/2)/(θ/2); θ from the central field B₀: a factor that depended on the position would
        # break symplecticity. Vertically a helix advances by the full arc.
        half_theta = half_omega0 * inv_g * h
        s, _ = _sin_cos(half_theta)
        arc = C_LIGHT * h * inv_g
        chord = arc * (s / half_theta if half_theta > 0.0 else 1.0)
        px, pz = w[j] + ux * chord, w[2 * L + j] + uz * chord
        w[j], w[L + j], w[2 * L + j] = px, w[L + j] + uy * arc, pz
        w[9 * L + j] = w[_T_STOP * L + j] if w[_LAND * L + j] > 0.0 else w[9 * L + j] + h
        w[_HP * L + j] = h if h > 0.0 else w[_HP * L + j]
        w[_N_DRIFT * L + j] += 1.0 if h > 0.0 else 0.0
        w[_CROSSED * L + j] = everywhere
    if need_phi:
        for j in range(L):
            w[_PHI_OLD * L + j] = w[_PHI * L + j]
            w[_PHI * L + j] = azimuth_rad(w[j], w[2 * L + j])
    for c in range(collimators.size):
        az = collimators[c] - tol
        for j in range(L):
            d_after = w[_PHI * L + j] - az
            d_after -= TWO_PI * math.floor(d_after * INV_TWO_PI)
            d_before = w[_PHI_OLD * L + j] - az
            d_before -= TWO_PI * math.floor(d_before * INV_TWO_PI)
            w[_CROSSED * L + j] = 1.0 if d_after < d_before else w[_CROSSED * L + j]
    for j in range(L):
        px, py, pz, t = w[j], w[L + j], w[2 * L + j], w[9 * L + j]
        xr = _root(px * px + pz * pz) - r0
        lost = w[_HN * L + j] > 0.0 and w[_CROSSED * L + j] > 0.0 and xr * xr + py * py > aperture * aperture
        w[_LOST_T * L + j] = t if lost else w[_LOST_T * L + j]
        w[_LOST_PHI * L + j] = w[_PHI * L + j] if lost else w[_LOST_PHI * L + j]
        w[_T_END * L + j] = t if lost else w[_T_END * L + j]
        w[_T_STOP * L + j] = t if lost else w[_T_STOP * L + j]


@njit(cache=True)
def _busy(w, j, finish):
    """Whether lane j has steps left before its stop (or, with ``finish``, its final kick)."""
    L = LANES
    if w[_DONE * L + j] > 0.0:
        return False
    return w[9 * L + j] < w[_T_STOP * L + j] or (finish and not w[_T_STOP * L + j] < w[_T_END * L + j])


@njit(cache=True)
def _iterate(w, plan, ring, sections, collimators, slow, q_over_m, a_mu, eta, finish):
    """One leapfrog iteration of a block: step plan, fields, kick, drift and aperture check.

    After an iteration a moving lane has drifted one step (position and time at the step's end,
    u and spin half a step behind); a lane at its end takes its final kick and is done.
    """
    nodes, field_step_s, table, tol, kick_end_s, dt_step_s, inv_omega_c = plan
    _block_plan(w, nodes, field_step_s, table, tol, dt_step_s, kick_end_s, inv_omega_c, finish)
    _block_fields(w, ring, sections, slow, kick_end_s)
    _block_kick(w, _electric(ring), q_over_m, a_mu, eta)
    _block_drift(w, ring, collimators, tol, q_over_m, _needs_azimuth(ring, nodes, collimators))


@njit(cache=True)
def _run_block(w, plan, ring, sections, collimators, q_over_m, a_mu, eta, finish):
    """Iterate until every lane waits at its stop or, with ``finish``, is done."""
    slow = needs_fields_at(ring)
    while True:
        for j in range(LANES):
            if _busy(w, j, finish):
                break
        else:
            return
        _iterate(w, plan, ring, sections, collimators, slow, q_over_m, a_mu, eta, finish)


@njit(cache=True)
def _run_queue(states, queue, t_end_s, plan, ring, sections, collimators, q_over_m, a_mu, eta, lost_s, steps):
    """Track the muons ``states[queue]`` to their ends with one block whose finished lanes take the next muon."""
    slow = needs_fields_at(ring)
    w = np.zeros(N_ROWS * LANES)
    muon = np.full(LANES, -1)
    taken = 0
    for j in range(LANES):
        if taken < queue.size:
            muon[j] = queue[taken]
            taken += 1
        _load_lane(w, j, states, muon[j], t_end_s)
    busy = True
    while busy:
        _iterate(w, plan, ring, sections, collimators, slow, q_over_m, a_mu, eta, True)
        busy = False
        for j in range(LANES):
            if w[_DONE * LANES + j] > 0.0 and muon[j] >= 0:
                _store_lane(w, j, states, muon[j], lost_s, steps)
                muon[j] = queue[taken] if taken < queue.size else -1
                taken += 1
                _load_lane(w, j, states, muon[j], t_end_s)
            busy = busy or muon[j] >= 0


@njit(cache=True)
def _collimator_azimuths(ring):
    """Collimator azimuths [rad] in [0, 2π)."""
    az = ring[HEADER : HEADER + int(ring[N_COLL])].copy()
    return az - TWO_PI * np.floor(az / TWO_PI)


def _plan(ring, dt_max_s):
    """Return the argument ``plan`` of the kernels: :func:`step_plan`, the end of the kicker pulse [s] (−∞ without kicker), the step limit [s] and 1/ω_c [s].

    The step limit is ``dt_max_s``, or the time of an orbit angle :data:`MAX_STEP_RAD` if shorter.
    """
    dt_step_s = min(float(dt_max_s), MAX_STEP_RAD / ring[OMEGA_C])
    nodes, field_step_s, table, tol = step_plan(ring, dt_step_s)
    kick_end_s = ring[KICK_T0] + ring[KICK_WIDTH] if ring[KICK_ON] > 0.0 else -math.inf
    return nodes, field_step_s, table, float(tol), float(kick_end_s), dt_step_s, 1.0 / ring[OMEGA_C]


def track_to_times(states, durations_s, dt_max_s, ring, q_over_m, a_mu, eta):
    """Track every muon (rows of ``states``, modified in place) for its own duration.

    Steps are region-adaptive (see :func:`step_plan`): one step across a field-free gap, steps of
    ≤ ``dt_max_s`` in the fields; each muon ends exactly at its start time plus its duration.
    Returns the loss times [s] (NaN for muons that stayed inside the aperture). The muons, longest
    first, are dealt to a few queues per thread; a muon's result depends on nothing else.
    """
    return track_to_times_counted(states, durations_s, dt_max_s, ring, q_over_m, a_mu, eta)[0]


def track_to_times_counted(states, durations_s, dt_max_s, ring, q_over_m, a_mu, eta):
    """:func:`track_to_times`, returning also the number of steps each muon took: (loss times [s], steps)."""
    n_queues = max(1, min(QUEUES_PER_THREAD * get_num_threads(), len(states) // (QUEUE_BLOCKS * LANES)))
    durations_s = np.asarray(durations_s, dtype=float)
    return _track_to_times(states, durations_s, _plan(ring, dt_max_s), ring, q_over_m, a_mu, eta, n_queues)


@njit(cache=True, parallel=True)
def _track_to_times(states, durations_s, plan, ring, q_over_m, a_mu, eta, n_queues):
    """:func:`track_to_times_counted` with ``n_queues`` queues."""
    n = states.shape[0]
    t_end_s = states[:, 9] + durations_s
    order = np.argsort(-durations_s, kind="mergesort")
    lost = np.full(n, np.nan)
    steps = np.zeros(n)
    sections, collimators = section_copies(ring), _collimator_azimuths(ring)
    for q in prange(n_queues):
        _run_queue(states, order[q::n_queues], t_end_s, plan, ring, sections, collimators, q_over_m, a_mu, eta, lost, steps)
    return lost, steps


def track_recorded(states, n_steps, dt_s, rec_every, ring, q_over_m, a_mu, eta):
    """Track every muon for a time ``n_steps``·``dt_s`` and return its state every ``rec_every``·``dt_s``.

    ``dt_s`` is the longest step in the fields (region-adaptive steps as in :func:`track_to_times`;
    every record time is a step boundary, so in a ring without field-free gaps the steps are
    exactly ``dt_s``). Returns an array (n_muons, n_steps // rec_every, 10) of synchronised states;
    rows after a loss stay NaN. ``states`` advance to the end in place.
    """
    return _track_recorded(states, int(n_steps), float(dt_s), int(rec_every), _plan(ring, dt_s), ring, q_over_m, a_mu, eta)


@njit(cache=True)
def _set_stops(w, states, rows, t_rel_s):
    """Stop each lane at its start time plus ``t_rel_s`` (no later than its end)."""
    L = LANES
    for j in range(rows.size):
        w[_T_STOP * L + j] = min(states[rows[j], 9] + t_rel_s, w[_T_END * L + j])


@njit(cache=True)
def _load_rows(w, states, rows, t_end):
    """Fill a work array with the muons ``states[rows]`` (at most LANES; the other lanes idle), to be tracked to ``t_end[rows]`` [s]."""
    w[:] = 0.0
    for j in range(LANES):
        _load_lane(w, j, states, rows[j] if j < rows.size else -1, t_end)


@njit(cache=True)
def _load_block(states, b, t_end):
    """Return the rows of block ``b`` (LANES muons from row b·LANES on) and a work array loaded with them by :func:`_load_rows`."""
    rows = np.arange(b * LANES, min(states.shape[0], (b + 1) * LANES))
    w = np.empty(N_ROWS * LANES)
    _load_rows(w, states, rows, t_end)
    return rows, w


@njit(cache=True)
def _fixed_time_context(states, duration_s, ring):
    """Loss-time and step buffers, ESQ sections, collimators, slow-field flag and end times of a run of ``duration_s`` for every muon."""
    n = states.shape[0]
    return np.empty(n), np.empty(n), section_copies(ring), _collimator_azimuths(ring), needs_fields_at(ring), states[:, 9] + duration_s


@njit(cache=True)
def _advance_and_snapshot(w, states, rows, t_rel_s, plan, ring, sections, collimators, slow, q_over_m, a_mu, eta):
    """Track the block's lanes to their start time plus ``t_rel_s`` and take their synchronised u and spin (rows _SNAP…)."""
    _set_stops(w, states, rows, t_rel_s)
    _run_block(w, plan, ring, sections, collimators, q_over_m, a_mu, eta, False)
    _block_snapshot(w, plan, ring, sections, slow, q_over_m, a_mu, eta)


@njit(cache=True, parallel=True)
def _track_recorded(states, n_steps, dt_s, rec_every, plan, ring, q_over_m, a_mu, eta):
    """:func:`track_recorded`."""
    n = states.shape[0]
    n_rec = n_steps // rec_every
    out = np.full((n, n_rec, N_STATE), np.nan)
    lost, steps, sections, collimators, slow, t_end = _fixed_time_context(states, n_steps * dt_s, ring)
    L = LANES
    for b in prange((n + L - 1) // L):
        rows, w = _load_block(states, b, t_end)
        for r in range(n_rec):
            _advance_and_snapshot(w, states, rows, ((r + 1) * rec_every) * dt_s, plan, ring, sections, collimators, slow, q_over_m, a_mu, eta)
            for j in range(rows.size):
                if np.isnan(w[_LOST_T * L + j]):
                    for c in range(3):
                        out[rows[j], r, c] = w[c * L + j]
                    for c in range(6):
                        out[rows[j], r, 3 + c] = w[(_SNAP + c) * L + j]
                    out[rows[j], r, 9] = w[9 * L + j]
        _set_stops(w, states, rows, n_steps * dt_s)
        _run_block(w, plan, ring, sections, collimators, q_over_m, a_mu, eta, True)
        for j in range(rows.size):
            _store_lane(w, j, states, rows[j], lost, steps)
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


def track_diagnostics(states, n_steps, dt_s, sample_every, ring, q_over_m, a_mu, eta):
    """Per-muon diagnostics without decays (columns :data:`DIAG_COLUMNS`); states advance in place.

    Tracks for a time ``n_steps``·``dt_s`` with ``dt_s`` the longest step in the fields (steps as in
    :func:`track_recorded`). ω_a is the least-squares slope of the unwrapped spin angle to the
    momentum (horizontal plane) sampled every ``sample_every``·``dt_s`` and at the end; the orbit
    moments are averages over the same samples. The ω_a of a beam is the mean of the column
    ``omega_a_rad_per_s``: with 10⁴ muons its statistical error is the spread of the individual
    shifts over 100 (ppb level for Fermilab beams).
    """
    return _track_diagnostics(states, int(n_steps), float(dt_s), int(sample_every), _plan(ring, dt_s), ring, q_over_m, a_mu, eta)


@njit(cache=True, parallel=True)
def _track_diagnostics(states, n_steps, dt_s, sample_every, plan, ring, q_over_m, a_mu, eta):
    """:func:`track_diagnostics`."""
    n = states.shape[0]
    out = np.full((n, N_DIAG), np.nan)
    lost, steps, sections, collimators, slow, t_end = _fixed_time_context(states, n_steps * dt_s, ring)
    L = LANES
    for b in prange((n + L - 1) // L):
        rows, w = _load_block(states, b, t_end)
        acc = np.zeros((L, _N_ACC))
        for j in range(L):
            acc[j, 11] = w[9 * L + j]
        done = 0
        while done < n_steps:
            done = min(done + sample_every, n_steps)
            _advance_and_snapshot(w, states, rows, done * dt_s, plan, ring, sections, collimators, slow, q_over_m, a_mu, eta)
            for j in range(rows.size):
                if np.isnan(w[_LOST_T * L + j]):
                    _accumulate(acc, w, j, ring[R0])
        _run_block(w, plan, ring, sections, collimators, q_over_m, a_mu, eta, True)
        for j in range(rows.size):
            _store_lane(w, j, states, rows[j], lost, steps)
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
