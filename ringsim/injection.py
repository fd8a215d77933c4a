"""Three-dimensional spiral injection into the J-PARC 3 T solenoid (docs/physics.md §5, seed 004 ref. [124]).

A μ⁺ of 300 MeV/c enters the fringe field of ``ringsim.jparc_solenoid`` above the storage plane with a
downward pitch (≈ 0.46 rad at y = 0.45 m). The radial field B_ρ > 0 there exerts
F_y = q v_φ B_ρ > 0, converting vertical into azimuthal momentum while the muon spirals down (a
magnetic mirror), so that it reaches the storage plane with a small pitch (10 mrad by default).
A pulsed kicker, two pairs of one-turn coils with opposite currents above and below the plane
(radial field localised within |y| ≲ 0.1 m, half-sine pulse), removes that pitch so that the muon
stays in the weak-focusing storage region; without it the muon passes through the plane.

Design: the reference muon is tracked backwards in time from the storage plane (centred orbit,
design pitch, kicker off) up to the entry height; the kicker start and peak are then tuned
(grid, then Nelder–Mead) so that the forward-tracked reference ends with zero vertical betatron
amplitude. The incoming beam is a Gaussian cloud around the reference entry state, X–Y coupled
so that its canonical angular momentum matches (see :func:`entry_states`). Times are counted
from the reference's entry. The electric field induced by the pulsed kicker is neglected.

Tracking: fixed steps T_c/``steps_per_turn``, leapfrog as in ``ringsim.tracker`` built on its
``kick`` (exact rotations of u = γβ and of the spin), with the chord drift; positions and time on
integer steps, u and spin on half steps. With 64 steps per turn the canonical angular momentum is
conserved to 1e-4 through the fringe (second order in the step) and far better in the storage
region. States are rows (X, Y, Z [m], u (3), spin (3), t [s]); Y is the solenoid axis.

Simulation option: with ``beam.injection = "spiral"`` (the J-PARC preset's default; track mode
only, it needs ``ring.field_model = "solenoid"``) ``ringsim simulate`` starts each block's stored
muons from :func:`spiral_beam` instead of the Gaussian beam at the storage plane, and reports the
injection efficiency (:func:`injection_efficiency`) in the run's provenance (``spiral_injection``)
and in its printed summary. The kicker is tuned once per configuration (cached).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from numba import njit, prange
from scipy.optimize import minimize

from ringsim.beam import Beam
from ringsim.config import SimConfig
from ringsim.constants import A_MU_DEFAULT, SPEED_OF_LIGHT_M_PER_S, codata
from ringsim.errors import ConfigError
from ringsim.jparc_solenoid import CoilGeometry, coil_set_jparc, field_index_at, field_solenoid, flux_solenoid, loop_field_rz
from ringsim.rings import ring_kinematics
from ringsim.tracker import N_STATE, kick

C_LIGHT = SPEED_OF_LIGHT_M_PER_S
EFFICIENCY_MUONS = 2000  # bunch of the efficiency reported for a configuration


@dataclass(frozen=True)
class KickerGeometry:
    """Two pairs of one-turn coils, each pair at ±height with opposite currents.

    Seed 004: "two pairs of one-turn coils" [V]; radii and heights are choices of this model [U]. The
    current ratio of the pairs cancels ∂B_ρ/∂ρ at (R₀, 0).
    """

    inner_radius_m: float = 0.27  # [U]
    inner_height_m: float = 0.12  # [U]
    outer_radius_m: float = 0.43  # [U]
    outer_height_m: float = 0.12  # [U]


@dataclass(frozen=True)
class InjectionParams:
    """Injection design, incoming beam and storage-region definition (times from the reference entry)."""

    coils: CoilGeometry = field(default_factory=CoilGeometry)
    kicker: KickerGeometry = field(default_factory=KickerGeometry)
    momentum_mev: float = 300.0  # docs/physics.md §5 [V]
    storage_pitch_rad: float = 0.01  # reference pitch at the storage plane, kicker off [U]
    entry_height_m: float = 0.45  # beam entry above the storage plane (B ≈ 0.82 B₀) [U]
    kicker_duration_ns: float = 108.0  # half-sine pulse length, docs/physics.md §5 [V]
    kicker_peak_t: float | None = None  # peak B_ρ at (R₀, 0); None: tuned on the reference [U]
    kicker_start_ns: float | None = None  # pulse start after the reference entry; None: tuned
    momentum_spread: float = 1.0e-4  # rms Δp/p [U]
    position_sigma_m: float = 1.0e-3  # rms transverse position at entry [U]
    angle_sigma_rad: float = 1.0e-5  # rms angle: thermal muonium p_T ≈ √(2mkT) = 2.3 keV/c at 300 K [C]
    bunch_length_ns: float = 1.0  # rms entry-time spread [U]
    angular_momentum_spread: float = 0.0  # rms relative spread of the canonical angular momentum [U]
    storage_half_height_m: float = 0.03  # |y| of the storage region [U]
    storage_half_width_m: float = 0.015  # |ρ − R₀| of the storage region [U]
    steps_per_turn: int = 64  # time step T_c / steps_per_turn
    settle_ns: float = 20.0  # tracked after the kicker pulse ends
    a_mu: float = A_MU_DEFAULT  # docs/physics.md §1 [V]
    edm_eta: float = 0.0
    codata_edition: int = 2018

    def __post_init__(self):
        """Check the parameters; ConfigError naming the first one out of range."""
        positive = ("momentum_mev", "storage_pitch_rad", "entry_height_m", "kicker_duration_ns", "storage_half_height_m", "storage_half_width_m")
        for name in positive:
            if not getattr(self, name) > 0.0:
                raise ConfigError(f"InjectionParams.{name}: expected a positive number, got {getattr(self, name)!r}")
        for name in ("momentum_spread", "position_sigma_m", "angle_sigma_rad", "bunch_length_ns", "angular_momentum_spread", "settle_ns"):
            if not getattr(self, name) >= 0.0:
                raise ConfigError(f"InjectionParams.{name}: expected a number >= 0, got {getattr(self, name)!r}")
        if not (isinstance(self.steps_per_turn, int) and self.steps_per_turn >= 8):
            raise ConfigError(f"InjectionParams.steps_per_turn: expected an integer >= 8, got {self.steps_per_turn!r}")
        if self.kicker_peak_t is not None and not math.isfinite(self.kicker_peak_t):
            raise ConfigError(f"InjectionParams.kicker_peak_t: expected a finite number or None, got {self.kicker_peak_t!r}")
        if self.kicker_start_ns is not None and not math.isfinite(self.kicker_start_ns):
            raise ConfigError(f"InjectionParams.kicker_start_ns: expected a finite number or None, got {self.kicker_start_ns!r}")


@dataclass(frozen=True)
class InjectionReport:
    """Outcome of :func:`inject`."""

    efficiency: float  # stored fraction
    vertical_amplitude_m: np.ndarray  # linear vertical betatron amplitude of each stored muon
    radial_amplitude_m: np.ndarray  # |x_e| + radial betatron amplitude of each stored muon
    arrival_time_ns: np.ndarray  # per muon: first time it reaches |y| ≤ storage half-height (NaN: never)
    kicker_start_ns: float
    kicker_peak_t: float
    reference_entry: np.ndarray  # state row of the design muon at entry (t = 0)


# --------------------------------------------------------------------------- kernels


@njit(cache=True)
def _fields(x, y, z, t, coil_r, coil_y, coil_i, kick_r, kick_y, kick_i, kick_start_s, kick_len_s):
    """Solenoid plus kicker field [T] at (x, y, z) [m] and time t [s]; the kicker is a half-sine."""
    bx, by, bz = field_solenoid(x, y, z, coil_r, coil_y, coil_i)
    phase = (t - kick_start_s) / kick_len_s
    if 0.0 < phase < 1.0:
        g = math.sin(math.pi * phase)
        kx, ky, kz = field_solenoid(x, y, z, kick_r, kick_y, kick_i)
        bx += g * kx
        by += g * ky
        bz += g * kz
    return bx, by, bz


@njit(cache=True)
def _track_one(st, n_steps, dt, coil_r, coil_y, coil_i, kick_r, kick_y, kick_i, kick_start_s, kick_len_s, q_over_m, a_mu, eta, y_arrival_m, record, rec_every):
    """Leapfrog one state row in place (``dt`` may be negative); returns the first time |y| ≤ y_arrival."""
    px, py, pz, ux, uy, uz, sx, sy, sz, t = st[0], st[1], st[2], st[3], st[4], st[5], st[6], st[7], st[8], st[9]
    arrival = np.nan if abs(py) > y_arrival_m else t
    b = _fields(px, py, pz, t, coil_r, coil_y, coil_i, kick_r, kick_y, kick_i, kick_start_s, kick_len_s)
    ux, uy, uz, sx, sy, sz = kick(ux, uy, uz, sx, sy, sz, 0.0, 0.0, 0.0, b[0], b[1], b[2], -0.5 * dt, q_over_m, a_mu, eta)
    n_rec = 0
    for i in range(n_steps):
        if i > 0:
            b = _fields(px, py, pz, t, coil_r, coil_y, coil_i, kick_r, kick_y, kick_i, kick_start_s, kick_len_s)
        ux, uy, uz, sx, sy, sz = kick(ux, uy, uz, sx, sy, sz, 0.0, 0.0, 0.0, b[0], b[1], b[2], dt, q_over_m, a_mu, eta)
        g = math.sqrt(1.0 + ux * ux + uy * uy + uz * uz)
        half_theta = 0.5 * abs(q_over_m * dt) * math.sqrt(b[0] * b[0] + b[1] * b[1] + b[2] * b[2]) / g
        drift = C_LIGHT * dt / g * (math.sin(half_theta) / half_theta if half_theta > 0.0 else 1.0)
        px += ux * drift
        py += uy * drift
        pz += uz * drift
        t += dt
        if math.isnan(arrival) and abs(py) <= y_arrival_m:
            arrival = t
        if record.shape[0] > 0 and (i + 1) % rec_every == 0 and n_rec < record.shape[0]:
            b = _fields(px, py, pz, t, coil_r, coil_y, coil_i, kick_r, kick_y, kick_i, kick_start_s, kick_len_s)
            r = kick(ux, uy, uz, sx, sy, sz, 0.0, 0.0, 0.0, b[0], b[1], b[2], 0.5 * dt, q_over_m, a_mu, eta)
            record[n_rec, 0], record[n_rec, 1], record[n_rec, 2] = px, py, pz
            record[n_rec, 3], record[n_rec, 4], record[n_rec, 5] = r[0], r[1], r[2]
            record[n_rec, 6], record[n_rec, 7], record[n_rec, 8] = r[3], r[4], r[5]
            record[n_rec, 9] = t
            n_rec += 1
    b = _fields(px, py, pz, t, coil_r, coil_y, coil_i, kick_r, kick_y, kick_i, kick_start_s, kick_len_s)
    ux, uy, uz, sx, sy, sz = kick(ux, uy, uz, sx, sy, sz, 0.0, 0.0, 0.0, b[0], b[1], b[2], 0.5 * dt, q_over_m, a_mu, eta)
    st[0], st[1], st[2], st[3], st[4], st[5], st[6], st[7], st[8], st[9] = px, py, pz, ux, uy, uz, sx, sy, sz, t
    return arrival


@njit(cache=True, parallel=True)
def track_in_solenoid(states, n_steps, dt_s, coil_r, coil_y, coil_i, kick_r, kick_y, kick_i, kick_start_s, kick_len_s, q_over_m, a_mu, eta, y_arrival_m, n_records, rec_every):
    """Track every row of ``states`` (in place) for ``n_steps`` of ``dt_s`` in the solenoid plus kicker.

    The kicker coils (``kick_*``, currents at the pulse peak) are on for kick_start_s < t <
    kick_start_s + kick_len_s with a half-sine profile. Returns (arrival times [s]: first time
    |y| ≤ ``y_arrival_m``, NaN if never; records (n, n_records, 10) of the state every
    ``rec_every`` steps).
    """
    n = states.shape[0]
    arrival = np.empty(n)
    out = np.full((n, n_records, N_STATE), np.nan)
    for i in prange(n):
        arrival[i] = _track_one(states[i], n_steps, dt_s, coil_r, coil_y, coil_i, kick_r, kick_y, kick_i, kick_start_s, kick_len_s, q_over_m, a_mu, eta, y_arrival_m, out[i], rec_every)
    return arrival, out


# --------------------------------------------------------------------------- design


def kicker_coils(geom: KickerGeometry, radius_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kicker loop radii [m], heights [m] and currents [A] giving B_ρ = 1 T at (R₀, 0).

    The lower loop of each pair carries +I, the upper −I, so that B_ρ > 0 near the plane: a μ⁺
    moving along +φ is pushed up (F_y = q v_φ B_ρ).
    """
    step = 1e-4

    def pair_br(rho, a, h):
        return loop_field_rz(rho, h, a, 1.0)[0] - loop_field_rz(rho, -h, a, 1.0)[0]

    pairs = ((geom.inner_radius_m, geom.inner_height_m), (geom.outer_radius_m, geom.outer_height_m))
    value = np.array([pair_br(radius_m, a, h) for a, h in pairs])
    slope = np.array([(pair_br(radius_m + step, a, h) - pair_br(radius_m - step, a, h)) / (2.0 * step) for a, h in pairs])
    # currents (c_in, c_out): B_ρ = 1 T and ∂B_ρ/∂ρ = 0 at (R₀, 0)
    c_in, c_out = np.linalg.solve(np.array([value, slope]), np.array([1.0, 0.0]))
    kick_r = np.array([geom.inner_radius_m, geom.inner_radius_m, geom.outer_radius_m, geom.outer_radius_m])
    kick_y = np.array([-geom.inner_height_m, geom.inner_height_m, -geom.outer_height_m, geom.outer_height_m])
    kick_i = np.array([c_in, -c_in, c_out, -c_out])
    return kick_r, kick_y, kick_i


@dataclass(frozen=True)
class _Setup:
    q_over_m: float
    u0: float  # |u| = γβ of the nominal momentum
    dt_s: float
    nu_x: float
    nu_y: float
    u_ref_orbit: float  # γβ of the orbit of radius R₀ in B₀


def _setup(params: InjectionParams) -> _Setup:
    mass_mev = codata(params.codata_edition).muon_mass_mev
    q_over_m = codata(params.codata_edition).muon_charge_over_mass_c_per_kg
    u0 = params.momentum_mev / mass_mev
    gamma = math.sqrt(1.0 + u0 * u0)
    b0 = params.coils.field_t
    period_s = 2.0 * math.pi * gamma / (q_over_m * b0)
    _, n_index = field_index_at(params.coils.radius_m, *coil_set_jparc(params.coils))
    u_ref_orbit = q_over_m * b0 * params.coils.radius_m / C_LIGHT
    return _Setup(q_over_m, u0, period_s / params.steps_per_turn, math.sqrt(1.0 - n_index), math.sqrt(n_index), u_ref_orbit)


def _steps(duration_s: float, setup: _Setup) -> int:
    return max(1, int(math.ceil(duration_s / setup.dt_s)))


def _run(states, n_steps, params, setup, kick_peak_t, kick_start_s, n_records=0, rec_every=1, dt_sign=1.0):
    kick_r, kick_y, kick_i = kicker_coils(params.kicker, params.coils.radius_m)
    return track_in_solenoid(
        states,
        n_steps,
        dt_sign * setup.dt_s,
        *coil_set_jparc(params.coils),
        kick_r,
        kick_y,
        kick_peak_t * kick_i,
        kick_start_s,
        params.kicker_duration_ns * 1e-9,
        setup.q_over_m,
        params.a_mu,
        params.edm_eta,
        params.storage_half_height_m,
        n_records,
        rec_every,
    )


@lru_cache(maxsize=16)
def _reference(params: InjectionParams) -> tuple[np.ndarray, float]:
    """(entry state of the design muon at t = 0, its kicker-off time to reach the storage plane [s])."""
    setup = _setup(params)
    th = params.storage_pitch_rad
    st = np.zeros((1, N_STATE))
    # centred orbit of the horizontal momentum u0 cos θ in B0: radius R0 cos θ (u_ref_orbit ↔ R0)
    st[0, 0] = params.coils.radius_m * setup.u0 * math.cos(th) / setup.u_ref_orbit
    st[0, 3:6] = setup.u0 * np.array([0.0, -math.sin(th), math.cos(th)])
    st[0, 6:9] = st[0, 3:6] / setup.u0
    # backwards in time, chunk by chunk, until the entry height is passed
    t_back = 0.0
    for _ in range(100_000):
        prev = st.copy()
        _run(st, 10, params, setup, 0.0, 0.0, dt_sign=-1.0)
        t_back += 10 * setup.dt_s
        if st[0, 1] >= params.entry_height_m:
            break
        if st[0, 1] < prev[0, 1] - 1e-12:
            raise ConfigError(f"InjectionParams.storage_pitch_rad={th}: the design muon is reflected by the mirror field before y = {params.entry_height_m} m; expected a larger pitch")
    else:  # pragma: no cover - guarded by the reflection check
        raise ConfigError("InjectionParams.entry_height_m: the design muon never reaches the entry height")
    # refine: step back to the chunk start and go to the first step beyond the entry height
    st = prev
    t_back -= 10 * setup.dt_s
    while st[0, 1] < params.entry_height_m:
        _run(st, 1, params, setup, 0.0, 0.0, dt_sign=-1.0)
        t_back += setup.dt_s
    st[0, 9] = 0.0
    return st[0].copy(), t_back


def betatron_amplitudes(states: np.ndarray, params: InjectionParams = InjectionParams()) -> tuple[np.ndarray, np.ndarray]:
    """Linear betatron invariants: vertical A_y and radial |x_e| + A_x [m] of each state row (ν_y = √n, ν_x = √(1 − n))."""
    setup = _setup(params)
    r0 = params.coils.radius_m
    x, y, z = states[:, 0], states[:, 1], states[:, 2]
    ux, uy, uz = states[:, 3], states[:, 4], states[:, 5]
    rho = np.hypot(x, z)
    u_rho = (x * ux + z * uz) / rho
    u_phi = (x * uz - z * ux) / rho
    u_h = np.hypot(u_rho, u_phi)
    a_y = np.hypot(y, uy / u_phi * r0 / setup.nu_y)
    x_e = r0 * (u_h / setup.u_ref_orbit - 1.0) / setup.nu_x**2
    a_x = np.hypot(rho - r0 - x_e, u_rho / u_phi * r0 / setup.nu_x)
    return a_y, np.abs(x_e) + a_x


@lru_cache(maxsize=16)
def tune_kicker(params: InjectionParams) -> tuple[float, float]:
    """Kicker (start [ns], peak B_ρ [T]) that leaves the design muon with zero vertical amplitude."""
    setup = _setup(params)
    entry, t_plane_s = _reference(params)
    tau_s = params.kicker_duration_ns * 1e-9
    r0, b0 = params.coils.radius_m, params.coils.field_t
    th = params.storage_pitch_rad

    def amplitude(x):
        start_s, peak_t = x[0] * 1e-9, x[1] * 1e-3
        st = entry[None, :].copy()
        _run(st, _steps(start_s + tau_s + params.settle_ns * 1e-9, setup), params, setup, peak_t, start_s)
        a_y, _ = betatron_amplitudes(st, params)
        return a_y[0] / params.storage_half_height_m

    # coarse grid: pulse ending around the kicker-off arrival at the plane, peak field that stops
    # the design pitch over ≈ 0.15 m (θ² R0 B0 / (2 B_k)); then Nelder–Mead
    t_plane_ns, tau_ns = t_plane_s * 1e9, params.kicker_duration_ns
    peak_mt = th * th * r0 * b0 / (2.0 * 0.15) * 1e3
    grid = [(t_plane_ns + f * tau_ns, k * peak_mt) for f in np.linspace(-1.0, 0.0, 11) for k in (0.5, 1.0, 2.0, 4.0)]
    best = min(grid, key=amplitude)
    bounds = [(t_plane_ns - 1.5 * tau_ns, t_plane_ns + 0.5 * tau_ns), (0.0, 8.0 * peak_mt)]
    res = minimize(amplitude, np.array(best), method="Nelder-Mead", bounds=bounds, options={"xatol": 1e-4, "fatol": 1e-7, "maxiter": 600})
    return float(res.x[0]), float(res.x[1] * 1e-3)


# --------------------------------------------------------------------------- beam and injection


def canonical_angular_momentum_m(states: np.ndarray, params: InjectionParams = InjectionParams()) -> np.ndarray:
    """L/(mc) = ρ u_φ − (q/mc) Ψ(ρ, y)/2π [m] of state rows in the solenoid field (conserved there)."""
    q_over_mc = codata(params.codata_edition).muon_charge_over_mass_c_per_kg / C_LIGHT
    coils = coil_set_jparc(params.coils)
    x, z = states[:, 0], states[:, 2]
    rho = np.hypot(x, z)
    u_phi = (x * states[:, 5] - z * states[:, 3]) / rho
    psi = np.array([flux_solenoid(r, y, *coils) for r, y in zip(rho, states[:, 1])])
    return rho * u_phi - q_over_mc * psi / (2.0 * math.pi)


def entry_states(n_muons: int, seed: int, params: InjectionParams = InjectionParams()) -> np.ndarray:
    """Incoming beam at the entry: state rows (n, 10) around the reference entry state.

    Gaussian position and angle offsets in the plane normal to the reference momentum, Δp/p and an
    entry-time spread (the time column); spin along the momentum. The beam is X–Y coupled as the
    J-PARC transport line is designed to deliver it: the azimuthal momentum of each muon is set so
    that its canonical angular momentum is the reference's times (1 + Δp/p)², the value that gives
    the same pitch at the storage plane, times (1 + ε) with ε of rms ``angular_momentum_spread``;
    the pitch takes up the rest of |u|.
    """
    if n_muons < 1:
        raise ConfigError(f"entry_states: n_muons expected >= 1, got {n_muons}")
    setup = _setup(params)
    entry, _ = _reference(params)
    rng = np.random.default_rng(seed)
    e1 = entry[3:6] / np.linalg.norm(entry[3:6])
    e2 = np.cross([0.0, 1.0, 0.0], e1)
    e2 /= np.linalg.norm(e2)
    e3 = np.cross(e1, e2)
    pos = rng.normal(0.0, params.position_sigma_m, (n_muons, 2))
    ang = rng.normal(0.0, params.angle_sigma_rad, (n_muons, 2))
    delta = rng.normal(0.0, params.momentum_spread, n_muons)
    t0 = rng.normal(0.0, params.bunch_length_ns * 1e-9, n_muons)
    spread = rng.normal(0.0, params.angular_momentum_spread, n_muons)
    direction = e1 + ang[:, :1] * e2 + ang[:, 1:] * e3
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    u_abs = setup.u0 * (1.0 + delta)
    st = np.zeros((n_muons, N_STATE))
    st[:, 0:3] = entry[0:3] + pos[:, :1] * e2 + pos[:, 1:] * e3
    st[:, 3:6] = u_abs[:, None] * direction
    # X–Y coupling: match the canonical angular momentum, keep the radial momentum
    target = canonical_angular_momentum_m(entry[None, :], params)[0] * (1.0 + delta) ** 2 * (1.0 + spread)
    x, z = st[:, 0], st[:, 2]
    rho = np.hypot(x, z)
    u_rho = (x * st[:, 3] + z * st[:, 5]) / rho
    st[:, 3:6] = 0.0
    u_phi = (target - canonical_angular_momentum_m(st, params)) / rho
    u_y2 = u_abs**2 - u_rho**2 - u_phi**2
    if np.any(u_y2 <= 0.0):
        raise ConfigError("InjectionParams: the beam spread leaves no downward momentum for some muons; expected smaller spreads")
    u_y = -np.sqrt(u_y2)
    st[:, 3] = (u_rho * x - u_phi * z) / rho
    st[:, 4] = u_y
    st[:, 5] = (u_rho * z + u_phi * x) / rho
    st[:, 6:9] = st[:, 3:6] / u_abs[:, None]
    st[:, 9] = t0
    return st


def inject(n_muons: int, seed: int, params: InjectionParams = InjectionParams()) -> tuple[np.ndarray, np.ndarray, InjectionReport]:
    """Track an incoming bunch through the spiral injection and the kicker pulse.

    Returns the states at the end (kicker pulse end plus ``settle_ns``), the stored mask
    (vertical amplitude ≤ storage half-height and |x_e| + radial amplitude ≤ half-width, from the
    linear betatron invariants with ν_y = √n, ν_x = √(1 − n)) and an :class:`InjectionReport`.
    """
    setup = _setup(params)
    if params.kicker_peak_t is None or params.kicker_start_ns is None:
        start_ns, peak_t = tune_kicker(params)
    else:
        start_ns, peak_t = params.kicker_start_ns, params.kicker_peak_t
    states = entry_states(n_muons, seed, params)
    t_end_s = (start_ns + params.kicker_duration_ns + params.settle_ns) * 1e-9
    # every muon takes the same steps; the entry-time spread shifts each clock
    arrival_s, _ = _run(states, _steps(t_end_s, setup), params, setup, peak_t, start_ns * 1e-9)
    a_y, a_x = betatron_amplitudes(states, params)
    stored = (a_y <= params.storage_half_height_m) & (a_x <= params.storage_half_width_m)
    report = InjectionReport(
        efficiency=float(stored.mean()),
        vertical_amplitude_m=a_y[stored],
        radial_amplitude_m=a_x[stored],
        arrival_time_ns=arrival_s * 1e9,
        kicker_start_ns=start_ns,
        kicker_peak_t=peak_t,
        reference_entry=_reference(params)[0],
    )
    return states, stored, report


def track_stored(states: np.ndarray, n_turns: int, params: InjectionParams = InjectionParams(), samples_per_turn: int = 4) -> np.ndarray:
    """Track states (copied) for ``n_turns`` cyclotron periods in the solenoid alone (kicker off).

    Returns records (n, n_turns · samples_per_turn, 10).
    """
    if params.steps_per_turn % samples_per_turn:
        raise ConfigError(f"track_stored: samples_per_turn={samples_per_turn} must divide steps_per_turn={params.steps_per_turn}")
    setup = _setup(params)
    st = np.array(states, dtype=float, copy=True)
    n_rec = n_turns * samples_per_turn
    _, rec = _run(st, n_turns * params.steps_per_turn, params, setup, 0.0, 0.0, n_rec, params.steps_per_turn // samples_per_turn)
    return rec


# --------------------------------------------------------------------------- simulation option


def config_params(cfg: SimConfig, codata_edition: int = 2018) -> InjectionParams:
    """Return the injection design of a configuration.

    Coils fitted to the ring's B₀, R₀ and n, the ring's momentum, rms Δp/p and bunch length from
    ``[beam]``, a_μ and η from ``[muon]``; the rest the :class:`InjectionParams` defaults (the
    beam's mean offset, betatron widths and spin phase do not apply: the injection shapes the
    stored beam, spins start along the momentum).
    """
    ring = cfg.ring
    coils = CoilGeometry(field_t=ring.field_t, radius_m=ring.radius_m, field_index=ring.field_index)
    return InjectionParams(
        coils=coils,
        momentum_mev=ring_kinematics(cfg, codata_edition).momentum_mev,
        momentum_spread=cfg.beam.momentum_spread,
        bunch_length_ns=cfg.beam.bunch_length_ns,
        a_mu=cfg.muon.a_mu,
        edm_eta=cfg.muon.edm_eta,
        codata_edition=codata_edition,
    )


def _kept(states: np.ndarray, stored: np.ndarray, params: InjectionParams, aperture_m: float) -> np.ndarray:
    """Return the mask of the stored muons whose orbit also stays inside the ring's circular aperture, (|x_e| + A_x)² + A_y² ≤ a²."""
    a_y, a_x = betatron_amplitudes(states, params)
    return stored & (a_x**2 + a_y**2 <= aperture_m**2)


def spiral_beam(cfg: SimConfig, n_muons: int, rng: np.random.Generator, codata_edition: int = 2018) -> tuple[np.ndarray, Beam, int]:
    """``n_muons`` stored muons after the spiral injection, for ``beam.injection = "spiral"``.

    Bunches (seeded from ``rng``) are injected until enough muons are stored (see :func:`inject`,
    and inside the ring's aperture as for the Gaussian beam); the first ``n_muons`` are kept.
    Returns their tracker state rows at the end of the injection, with times from the nominal
    injection (t = 0 when the design muon, kicker off, reaches the storage plane), their
    :class:`~ringsim.beam.Beam` (Δp/p, x_e, radial and vertical offsets and slopes there;
    ``t0_ns`` = that start time) and the number of muons injected. The decay clock may start at
    the end of the injection: the lifetime is memoryless, and muons that decay earlier are not stored.
    """
    params = config_params(cfg, codata_edition)
    setup = _setup(params)
    t_plane_s = _reference(params)[1]
    parts, injected, kept = [], 0, 0
    while kept < n_muons:
        batch = max(64, int(1.15 * (n_muons - kept) / max(injection_efficiency(cfg, codata_edition), 0.05)))
        states, stored, _ = inject(batch, int(rng.integers(2**62)), params)
        ok = _kept(states, stored, params, cfg.ring.aperture_radius_m)
        parts.append(states[ok])
        injected += batch
        kept += int(ok.sum())
    st = np.concatenate(parts)[:n_muons]
    st[:, 9] -= t_plane_s
    x, z = st[:, 0], st[:, 2]
    rho = np.hypot(x, z)
    u_rho = (x * st[:, 3] + z * st[:, 5]) / rho
    u_phi = (x * st[:, 5] - z * st[:, 3]) / rho
    delta = np.linalg.norm(st[:, 3:6], axis=1) / setup.u0 - 1.0
    x_e = params.coils.radius_m * (np.hypot(u_rho, u_phi) / setup.u_ref_orbit - 1.0) / setup.nu_x**2
    beam = Beam(delta, x_e, rho - params.coils.radius_m - x_e, u_rho / u_phi, st[:, 1].copy(), st[:, 4] / u_phi, st[:, 9] * 1e9)
    return st, beam, injected


@lru_cache(maxsize=8)
def injection_efficiency(cfg: SimConfig, codata_edition: int = 2018, n_muons: int = EFFICIENCY_MUONS, seed: int = 0) -> float:
    """Return the stored fraction of the spiral injection of a configuration (as :func:`spiral_beam` stores), from one bunch of ``n_muons``."""
    params = config_params(cfg, codata_edition)
    states, stored, _ = inject(n_muons, seed, params)
    return float(_kept(states, stored, params, cfg.ring.aperture_radius_m).mean())


def injection_summary(cfg: SimConfig, mode: str, codata_edition: int = 2018) -> dict:
    """Provenance entries of a run with the spiral injection (track mode): its stored fraction and kicker settings; {} otherwise."""
    if mode != "track" or cfg.beam.injection != "spiral":
        return {}
    start_ns, peak_t = tune_kicker(config_params(cfg, codata_edition))
    spiral = {"efficiency": injection_efficiency(cfg, codata_edition), "efficiency_muons": EFFICIENCY_MUONS, "kicker_start_ns": start_ns, "kicker_peak_t": peak_t}
    return {"spiral_injection": spiral}
