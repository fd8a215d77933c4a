"""Fast mode in numba: muon → decay positron → station → measured cluster, fill by fill.

Fills run in parallel (``prange``), each from its own counter-based random streams
(:func:`ringsim.vecmath.uniform`, keys from the block's ``SeedSequence``). Within a fill, the beam
(the collimated Gaussian of :func:`ringsim.beam.sample_beam`) and, in batches of muons, the
exponential lifetime, the parametric loss, the decay state of the parametric ring model of
the reference model of the tests (tests/reference_fast_model.py), the Michel positron (:mod:`ringsim.decay`) and the
response draws are computed in loops that LLVM vectorises; then each positron is followed to its
first calorimeter face (:func:`ringsim.detectors.calorimeter.calorimeter_hits_batch`, a batch at a time) or decay sector and
gets the detector response of :mod:`ringsim.detectors.response` (efficiency, energy and time
resolution, gain), or across the silicon vanes (:mod:`ringsim.detectors.vanes`: crossings, then
:func:`~ringsim.detectors.vanes.track_response`). The hits of a fill are merged per station within the
resolving time (pileup; vane tracks are not merged) and ordered by time. Every draw is a pure function
of (fill, muon or beam candidate, purpose, vane crossing), so the
output is bit-identical for any number of threads, and muon ``i`` of a fill is the same whatever
number of muons of the fill is used.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from ringsim.config import SimConfig
from ringsim.constants import MUON_LIFETIME_S, SPEED_OF_LIGHT_M_PER_S
from ringsim.decay import rest_frame_cos_theta
from ringsim.detectors.calorimeter import CalorimeterGeometry, batch_scratch, calorimeter_hits_batch
from ringsim.detectors.vanes import VaneGeometry, _track_crossings, smeared_momentum, track_response
from ringsim.errors import ConfigError
from ringsim.optics import model_tunes, smooth_tunes
from ringsim.random_streams import seed_sequence
from ringsim.rings import RingKinematics
from ringsim.vecmath import atan, exp, log, sincos_reduced, uniform

TWO_PI = 2.0 * math.pi
# columns of the per-hit truth table
_T_MEAS, _E_MEAS, _E_TRUE, _T_DECAY, _DELTA, _X_E, _X, _Y, _SPIN, _T0, _X_HIT, _Y_HIT, _ANGLE, _STATION = range(14)
N_HIT_COLUMNS = 14
# columns of the per-muon truth table (simulate_fills(..., truth=True)), named as the truth tree's branches
TRUTH_COLUMNS = ("t0_ns", "delta_p", "lost", "time_ns", "azimuth_rad", "x_m", "y_m", "spin_phase_rad", "energy_mev", "vertical_angle_rad", "station")
_TR_T0, _TR_DELTA, _TR_LOST, _TR_TIME, _TR_AZIMUTH, _TR_X, _TR_Y, _TR_SPIN, _TR_ENERGY, _TR_ANGLE, _TR_STATION = range(len(TRUTH_COLUMNS))
N_TRUTH_COLUMNS = len(TRUTH_COLUMNS)
SECTORS, CALORIMETERS, VANES = 0, 1, 2  # FastParams.detector: station of the decay sector, calorimeter faces, vane tracker
DETECTOR_CODES = {"simple": SECTORS, "calorimeters": CALORIMETERS, "vanes": VANES}


class FastParams(NamedTuple):
    """Every number the fast-mode kernel needs (SI unless the name says otherwise)."""

    radius_m: float
    gamma_beta: float  # design u = γβ
    momentum_offset: float
    momentum_spread: float
    x_width_m: float  # rms radial betatron offset
    y_width_m: float
    bunch_length_ns: float
    aperture_m: float
    dispersion: float  # x_e/δ = R₀/(1 − n)
    nu_x_beam: float  # smooth tunes of the beam's matched slopes
    nu_y_beam: float
    nu_x: float  # tunes of the fast model
    nu_y: float
    cbo_amplitude_m: float
    cbo_tau_us: float
    cbo_cos_phase: float
    cbo_sin_phase: float
    loss_fraction: float
    loss_tau_s: float
    lifetime_s: float  # muon lifetime at rest
    spin_phase_rad: float
    polarization: float
    muon_mass_mev: float
    electric: bool
    q_over_m: float  # C/kg
    a_mu: float
    field_t: float
    field_index: float
    kappa: float  # electric focusing gradient n β c B₀/R₀
    detector: int  # SECTORS, CALORIMETERS or VANES
    n_stations: int  # sectors, calorimeters or vanes
    face_inner_m: float
    face_outer_m: float
    face_half_height_m: float
    chamber_outer_m: float
    chamber_inner_m: float
    efficiency: float
    resolution_stochastic: float
    resolution_constant: float
    time_resolution_ns: float
    resolving_time_ns: float
    gain_sag: float
    gain_sag_tau_us: float
    gain_drift_per_kfill: float
    energy_min_mev: float
    vane_r_min_m: float  # the vane tracker (ringsim.detectors.vanes.VaneGeometry)
    vane_r_max_m: float
    vane_half_height_m: float
    vane_radius_m_per_mev: float
    vane_flight_ns_per_rad_per_mev: float
    vane_efficiency: float  # per crossing
    vane_readout_window_ns: float
    vane_min_vanes: int
    vane_time_bin_ns: float
    vane_momentum_resolution: float
    vane_angle_resolution_rad: float


MAX_PHASE_RAD = 1e6  # range of ringsim.vecmath.sincos_reduced
LONGEST_LIFE = 53.0 * math.log(2.0)  # lifetimes in units of γτ: −ln of the smallest uniform draw, 2⁻⁵³


def _check_phase_range(cfg: SimConfig, kin: RingKinematics, q_over_m: float, tune_max: float) -> None:
    """Raise ConfigError unless the turn and spin phases of the longest possible lifetime stay within :data:`MAX_PHASE_RAD`."""
    ring = cfg.ring
    x_max = ring.aperture_radius_m  # equilibrium offsets and Δp/p inside the aperture
    u_max = kin.gamma * kin.beta * (1.0 + abs(cfg.beam.momentum_offset) + x_max * (1.0 - ring.field_index) / ring.radius_m)
    life_s = LONGEST_LIFE * math.sqrt(1.0 + u_max * u_max) * MUON_LIFETIME_S
    turn_rad = SPEED_OF_LIGHT_M_PER_S / (ring.radius_m - x_max) * life_s * tune_max
    a = cfg.muon.a_mu
    u_min = max(kin.gamma * kin.beta * (1.0 - abs(cfg.beam.momentum_offset) - x_max * (1.0 - ring.field_index) / ring.radius_m), 1e-3)
    omega_max = q_over_m * ring.field_t * (abs(a) + (abs(a) + 1.0 / (u_min * u_min)) * ring.field_index * x_max / ring.radius_m)
    spin_rad = abs(cfg.beam.spin_phase_rad) + omega_max * life_s
    if max(turn_rad, spin_rad) >= MAX_PHASE_RAD:
        raise ConfigError(
            f"fast mode: the longest lifetime reaches a turn or spin phase of {max(turn_rad, spin_rad):.3g} rad, above the kernel's {MAX_PHASE_RAD:.0e} (ring radius, tunes or a_mu out of range)"
        )


def fast_params(cfg: SimConfig, kin: RingKinematics, q_over_m: float, muon_mass_mev: float) -> FastParams:
    """Kernel parameters of a configuration (any detector model; the other models' fields are unused)."""
    ring, b, fm, det = cfg.ring, cfg.beam, cfg.fastmodel, cfg.detector
    nu_x_beam, nu_y_beam = smooth_tunes(ring.field_index)
    nu_x, nu_y = model_tunes(cfg)
    geo = CalorimeterGeometry(n_stations=ring.n_detectors)
    vg = VaneGeometry.from_config(cfg) if det.model == "vanes" else VaneGeometry()
    _check_phase_range(cfg, kin, q_over_m, max(1.0, nu_x, nu_y))
    return FastParams(
        radius_m=ring.radius_m,
        gamma_beta=kin.gamma * kin.beta,
        momentum_offset=b.momentum_offset,
        momentum_spread=b.momentum_spread,
        x_width_m=b.radial_betatron_width_m,
        y_width_m=b.vertical_width_m,
        bunch_length_ns=b.bunch_length_ns,
        aperture_m=ring.aperture_radius_m,
        dispersion=ring.radius_m / (1.0 - ring.field_index),
        nu_x_beam=nu_x_beam,
        nu_y_beam=nu_y_beam,
        nu_x=nu_x,
        nu_y=nu_y,
        cbo_amplitude_m=fm.cbo_amplitude_m,
        cbo_tau_us=fm.cbo_tau_us,
        cbo_cos_phase=math.cos(fm.cbo_phase_rad),
        cbo_sin_phase=math.sin(fm.cbo_phase_rad),
        loss_fraction=fm.loss_fraction,
        loss_tau_s=fm.loss_tau_us * 1e-6,
        lifetime_s=MUON_LIFETIME_S,
        spin_phase_rad=b.spin_phase_rad,
        polarization=b.polarization,
        muon_mass_mev=muon_mass_mev,
        electric=ring.focusing == "electric",
        q_over_m=q_over_m,
        a_mu=cfg.muon.a_mu,
        field_t=ring.field_t,
        field_index=ring.field_index,
        kappa=ring.field_index * kin.beta * SPEED_OF_LIGHT_M_PER_S * ring.field_t / ring.radius_m,
        detector=DETECTOR_CODES[det.model],
        n_stations=ring.n_detectors,
        face_inner_m=geo.inner_x_m,
        face_outer_m=geo.outer_x_m,
        face_half_height_m=geo.half_height_m,
        chamber_outer_m=geo.chamber_outer_x_m,
        chamber_inner_m=geo.chamber_inner_x_m,
        efficiency=det.efficiency,
        resolution_stochastic=det.energy_resolution_stochastic,
        resolution_constant=det.energy_resolution_constant,
        time_resolution_ns=det.time_resolution_ns,
        resolving_time_ns=det.resolving_time_ns,
        gain_sag=det.gain_sag_amplitude,
        gain_sag_tau_us=det.gain_sag_tau_us,
        gain_drift_per_kfill=det.gain_drift_per_kfill,
        energy_min_mev=det.energy_min_mev,
        vane_r_min_m=vg.r_min_m,
        vane_r_max_m=vg.r_max_m,
        vane_half_height_m=vg.half_height_m,
        vane_radius_m_per_mev=vg.radius_m_per_mev,
        vane_flight_ns_per_rad_per_mev=vg.flight_ns_per_rad_per_mev,
        vane_efficiency=vg.efficiency,
        vane_readout_window_ns=vg.readout_window_ns,
        vane_min_vanes=vg.min_vanes,
        vane_time_bin_ns=vg.time_bin_ns,
        vane_momentum_resolution=vg.momentum_resolution,
        vane_angle_resolution_rad=vg.vertical_angle_resolution_rad,
    )


def fill_streams(seed: int, block: int, n_fills: int) -> np.ndarray:
    """Random streams (n_fills, 6) of the fills of a block, from ``SeedSequence(seed, spawn_key=(block,))``.

    Row f holds (key, stride) of the fill's beam stream, of its muon stream and of its vane-crossing
    stream (:func:`ringsim.vecmath.uniform`). Strides are odd, and one whose bits change fewer than
    24 times along its length gets every other bit flipped (SplitMix64's rule against weak strides).
    """
    streams = seed_sequence(seed, block).generate_state(6 * n_fills, np.uint64).reshape(n_fills, 6)
    stride = streams[:, 1::2] | np.uint64(1)
    flips = np.unpackbits((stride ^ (stride >> np.uint64(1))).view(np.uint8)).reshape(stride.shape + (64,)).sum(axis=-1)
    streams[:, 1::2] = np.where(flips < 24, stride ^ np.uint64(0xAAAAAAAAAAAAAAAA), stride)
    return streams


BATCH = 256  # muons per vectorised pass (its scratch tables stay in the core's caches)
# unused doubles after the beam and decay tables of a fill. The decay loop ran 2.5 times slower when the
# table it writes lay less than ≈ 64 kB after the table it reads (128 kB after, or before it: full speed);
# a worker thread's allocator places a fill's tables so, which cost a second thread most of its gain
_SCRATCH_GUARD = 1 << 14
BEAM_DRAWS = 6  # per beam candidate: three Box–Muller pairs
# per muon: lifetime, loss (flag, time, azimuth), Michel energy (four order-statistic draws and the branch),
# cosθ, azimuth about the spin, efficiency, energy and time resolution (a Box–Muller pair)
_D_LIFE, _D_LOSS, _D_LOSS_T, _D_LOSS_PHI, _D_MICHEL, _D_BRANCH, _D_COS, _D_PHI, _D_EFF, _D_RES = 0, 1, 2, 3, 4, 8, 9, 10, 11, 12
MUON_DRAWS = 14
# rows of the beam table and of a batch's decay table
_B_X_BETA, _B_W_X, _B_Y0, _B_W_Y, _B_DELTA, _B_T0, _B_AY2 = range(7)
_PX, _PY, _PZ, _DX, _DY, _DZ, _ENERGY, _DECAY_NS, _XD, _YD, _SPIN_D, _AZIMUTH, _ANGLE_D, _LOSS_NS, _LOSS_PHI, _G_E, _G_T, _U_EFF = range(18)
N_DECAY_ROWS = 18


@njit(cache=True, inline="always", error_model="numpy")
def _normal_pair(u1, u2):
    """Box–Muller: two independent standard normals from two uniforms in (0, 1), and their squared radius."""
    r2 = -2.0 * log(u1)
    f = math.sqrt(r2)
    s, c = sincos_reduced(TWO_PI * u2)
    return f * c, f * s, r2


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _beam(p, key, stride, n_muons, beam):
    """Return the collimated Gaussian beam of a fill: candidates 0, 1, … of the beam stream inside the aperture, in order.

    Candidate c draws (x_β, x′R₀/ν), (y, y′R₀/ν) and (Δp/p, t₀) as Box–Muller pairs of draws 6c … 6c + 5;
    rows of ``beam`` (``_B_*``, n_muons columns) receive the accepted ones. Returns the number of candidates drawn.
    """
    cand = np.empty((8, BATCH))
    x_beta, w_x, y0, w_y, delta, t0, a_x, a_y2 = cand[0], cand[1], cand[2], cand[3], cand[4], cand[5], cand[6], cand[7]
    aperture2 = p.aperture_m * p.aperture_m
    n = 0
    first = 0
    while n < n_muons:
        for j in range(BATCH):  # vectorised
            d = (first + j) * BEAM_DRAWS
            g1, g2, r2 = _normal_pair(uniform(key, stride, d), uniform(key, stride, d + 1))
            x_beta[j], w_x[j], a_x[j] = p.x_width_m * g1, p.x_width_m * g2, p.x_width_m * math.sqrt(r2)
            g1, g2, r2 = _normal_pair(uniform(key, stride, d + 2), uniform(key, stride, d + 3))
            y0[j], w_y[j], a_y2[j] = p.y_width_m * g1, p.y_width_m * g2, p.y_width_m * p.y_width_m * r2
            g1, g2, r2 = _normal_pair(uniform(key, stride, d + 4), uniform(key, stride, d + 5))
            delta[j], t0[j] = p.momentum_offset + p.momentum_spread * g1, p.bunch_length_ns * g2
        for j in range(BATCH):
            if n < n_muons and (abs(p.dispersion * delta[j]) + a_x[j]) ** 2 + a_y2[j] <= aperture2:
                beam[_B_X_BETA, n], beam[_B_W_X, n], beam[_B_Y0, n], beam[_B_W_Y, n] = x_beta[j], w_x[j], y0[j], w_y[j]
                beam[_B_DELTA, n], beam[_B_T0, n], beam[_B_AY2, n] = delta[j], t0[j], a_y2[j]
                n += 1
        first += BATCH
    return first


@njit(cache=True, inline="always", error_model="numpy")
def _michel_fraction(u1, u2, u3, u4, u_branch):
    """Return x = 2E*/m_μ of the Michel spectrum from uniforms, exactly and without branches.

    CDF 2x³ − x⁴ = ⅔·x³ + ⅓·(4x³ − 3x⁴): with probability ⅔ the largest of three uniforms, else the
    second largest of four.
    """
    largest3 = max(u1, max(u2, u3))
    second4 = max(min(max(u1, u2), max(u3, u4)), max(min(u1, u2), min(u3, u4)))
    return largest3 if u_branch < 2.0 / 3.0 else second4


@njit(cache=True, inline="always", error_model="numpy")
def _lab_positron(gamma, beta, sin_a, cos_a, sin_psi, cos_psi, x, cos_t, cos_phi, sin_phi, muon_mass_mev):
    """:func:`ringsim.decay.boost_positron` for a muon moving along t̂ = (−sin a, 0, cos a) with its spin in the plane.

    The spin is ŝ = cos ψ t̂ − sin ψ r̂ (r̂ = (cos a, 0, sin a)); the rest-frame positron n = cosθ ŝ +
    sinθ (cos φ ê₁ + sin φ ŷ) with ê₁ = sin ψ t̂ + cos ψ r̂ (boost_positron's frame for sin ψ > 0; φ → φ + π
    otherwise). Returns (energy [MeV], direction) in the lab.
    """
    sin_t = math.sqrt(max(0.0, 1.0 - cos_t * cos_t))
    n_par = cos_t * cos_psi + cos_phi * sin_t * sin_psi  # n·t̂
    n_rad = cos_phi * sin_t * cos_psi - cos_t * sin_psi  # n·r̂
    e_star = 0.5 * muon_mass_mev * x
    energy = gamma * e_star * (1.0 + beta * n_par)
    p_par = gamma * e_star * (n_par + beta)  # along t̂; the transverse parts are not boosted
    p_rad = e_star * n_rad
    return energy, (-p_par * sin_a + p_rad * cos_a) / energy, e_star * sin_phi * sin_t / energy, (p_par * cos_a + p_rad * sin_a) / energy


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _decays(p, key, stride, first, n, beam, out):
    """Decay state, lab positron and response draws of muons ``first`` … ``first + n − 1`` of a fill (vectorised).

    Reads the beam table, writes the rows ``_PX`` … of ``out`` (columns 0 … n − 1): decay point [m] and
    positron direction and energy [MeV] (the ring model and the :mod:`ringsim.decay` formulas),
    decay time [ns], radial and vertical offset [m], spin angle, azimuth, the positron's vertical angle, loss time [ns] (+inf if not lost
    before decaying) and azimuth, the resolution normals and the efficiency draw.
    """
    r0 = p.radius_m
    c = SPEED_OF_LIGHT_M_PER_S
    x_slope = p.nu_x_beam / p.nu_x  # (x′R₀/ν_x) of the model from the beam's (x′R₀/ν_x,beam)
    y_slope = p.nu_y_beam / p.nu_y
    px, py, pz, dx, dy, dz = out[_PX], out[_PY], out[_PZ], out[_DX], out[_DY], out[_DZ]
    energy, decay_ns, x_d, y_d, spin_d, azimuth, angle = out[_ENERGY], out[_DECAY_NS], out[_XD], out[_YD], out[_SPIN_D], out[_AZIMUTH], out[_ANGLE_D]
    loss_ns, loss_phi, g_e, g_t, u_eff = out[_LOSS_NS], out[_LOSS_PHI], out[_G_E], out[_G_T], out[_U_EFF]
    for j in range(n):  # vectorised
        i = first + j
        d = i * MUON_DRAWS
        delta, t0_ns, a_y2 = beam[_B_DELTA, i], beam[_B_T0, i], beam[_B_AY2, i]
        x_e = p.dispersion * delta
        u_abs = p.gamma_beta * (1.0 + delta)
        gam = math.sqrt(1.0 + u_abs * u_abs)
        beta = u_abs / gam
        life_s = -log(uniform(key, stride, d + _D_LIFE)) * gam * p.lifetime_s
        loss_s = -log(uniform(key, stride, d + _D_LOSS_T)) * p.loss_tau_s
        lost = (uniform(key, stride, d + _D_LOSS) < p.loss_fraction) & (loss_s < life_s)
        loss_ns[j] = t0_ns + loss_s * 1e9 if lost else np.inf
        loss_phi[j] = TWO_PI * uniform(key, stride, d + _D_LOSS_PHI)
        # decay state
        theta = beta * c / (r0 + x_e) * life_s
        sin_a, cos_a = sincos_reduced(theta)
        sx, cx = sincos_reduced(p.nu_x * theta)
        sy, cy = sincos_reduced(p.nu_y * theta)
        x = x_e + beam[_B_X_BETA, i] * cx + beam[_B_W_X, i] * x_slope * sx
        x += p.cbo_amplitude_m * exp(-life_s * 1e6 / p.cbo_tau_us) * (cx * p.cbo_cos_phase - sx * p.cbo_sin_phase)
        y = beam[_B_Y0, i] * cy + beam[_B_W_Y, i] * y_slope * sy
        # ω_a at the equilibrium radius, pitch factor
        omega_e = p.q_over_m * (p.a_mu * p.field_t - (p.a_mu - 1.0 / (u_abs * u_abs)) * beta * p.kappa * x_e / c)
        omega_b = p.q_over_m * p.a_mu * p.field_t * (1.0 - p.field_index * x_e / r0)
        omega = (omega_e if p.electric else omega_b) * (1.0 - p.field_index * a_y2 / (4.0 * r0 * r0))
        spin = p.spin_phase_rad + omega * life_s
        ss, cs = sincos_reduced(spin)
        # Michel decay in the rest frame (ringsim.decay), boosted with u along (−sin a, 0, cos a)
        xe = _michel_fraction(
            uniform(key, stride, d + _D_MICHEL),
            uniform(key, stride, d + _D_MICHEL + 1),
            uniform(key, stride, d + _D_MICHEL + 2),
            uniform(key, stride, d + _D_MICHEL + 3),
            uniform(key, stride, d + _D_BRANCH),
        )
        cos_t = rest_frame_cos_theta(xe, p.polarization, uniform(key, stride, d + _D_COS))
        sin_phi, cos_phi = sincos_reduced(TWO_PI * uniform(key, stride, d + _D_PHI))
        energy[j], dx[j], dy[j], dz[j] = _lab_positron(gam, beta, sin_a, cos_a, ss, cs, xe, cos_t, cos_phi, sin_phi, p.muon_mass_mev)
        px[j], py[j], pz[j] = (r0 + x) * cos_a, y, (r0 + x) * sin_a
        decay_ns[j] = t0_ns + life_s * 1e9
        x_d[j], y_d[j] = x, y
        spin_d[j] = spin - TWO_PI * math.floor(spin / TWO_PI + 0.5)  # wrapped to [−π, π)
        azimuth[j] = theta - TWO_PI * math.floor(theta / TWO_PI)
        angle[j] = atan(dy[j] / math.sqrt(dx[j] * dx[j] + dz[j] * dz[j]))  # vertical angle
        g_e[j], g_t[j], _ = _normal_pair(uniform(key, stride, d + _D_RES), uniform(key, stride, d + _D_RES + 1))
        u_eff[j] = uniform(key, stride, d + _D_EFF)


@njit(cache=True, inline="always")
def _face_hits(p, out, n, cos_az, sin_az, work, index, station, face):
    """Find the calorimeter faces the first ``n`` decays of ``out`` reach: ``station`` and ``face`` (flight time [ns], x, y [m]) as :func:`calorimeter_hits_batch` fills them."""
    calorimeter_hits_batch(
        out[_PX],
        out[_PY],
        out[_PZ],
        out[_DX],
        out[_DY],
        out[_DZ],
        out[_ENERGY],
        n,
        p.field_t,
        p.radius_m,
        cos_az,
        sin_az,
        p.face_inner_m,
        p.face_outer_m,
        p.face_half_height_m,
        p.chamber_outer_m,
        p.chamber_inner_m,
        work,
        index,
        station,
        face[0],
        face[1],
        face[2],
    )


@njit(cache=True, error_model="numpy")
def _simulate_fill(p, streams, n_muons, fill, cos_az, sin_az, hits, lost, truth):
    """Follow ``n_muons`` muons of one fill; returns the number of hits and of lost muons.

    ``streams``: the fill's row of :func:`fill_streams`. The beam, the decays and the calorimeter faces
    are computed in vectorised batches, the vane track and the hit rows muon by muon. Hit rows go to ``hits``
    (columns ``_T_MEAS`` …), lost muons to ``lost`` (time [ns], azimuth, Δp/p), and, unless ``truth`` has
    no rows, every muon's truth to row i of ``truth`` (columns ``_TR_*``, :func:`_truth_row`). With the vanes,
    (``cos_az``, ``sin_az``) are the vane directions, crossing k of muon i is detected by draw
    i·2n_vanes + k of the vane stream (a helix crosses each vane at most twice, so the draws of
    different muons never overlap), the momentum and angle smearing use the muon's resolution
    normals, and a hit row is a reconstructed track (time, momentum, angle, first detected vane). When
    the whole turn after the decay lies in the readout window, only the crossing times up to the first
    one with a passing efficiency draw are computed (the others only enter through the window).
    """
    beam = np.empty(7 * n_muons + _SCRATCH_GUARD)[: 7 * n_muons].reshape(7, n_muons)
    _beam(p, streams[0], streams[1], n_muons, beam)
    out = np.empty(N_DECAY_ROWS * BATCH + _SCRATCH_GUARD)[: N_DECAY_ROWS * BATCH].reshape(N_DECAY_ROWS, BATCH)
    work, index = batch_scratch(BATCH)  # the calorimeter faces of a batch: scratch tables and (station, flight time, x, y)
    face_station, face_hit = np.empty(BATCH, dtype=np.int64), np.empty((3, BATCH))
    max_crossings = 2 * cos_az.size
    alpha, r_vane, y_vane, t_vane, u_vane = np.empty(max_crossings), np.empty(max_crossings), np.empty(max_crossings), np.empty(max_crossings), np.empty(max_crossings)
    vane = np.empty(max_crossings, dtype=np.int32)
    drift = 1.0 + p.gain_drift_per_kfill * fill * 1e-3
    sector = TWO_PI / p.n_stations
    n_hits = 0
    n_lost = 0
    with_truth = truth.shape[0] > 0
    for first in range(0, n_muons, BATCH):
        n = min(BATCH, n_muons - first)
        _decays(p, streams[2], streams[3], first, n, beam, out)
        if p.detector == CALORIMETERS:
            _face_hits(p, out, n, cos_az, sin_az, work, index, face_station, face_hit)
        for j in range(n):
            i = first + j
            is_lost = out[_LOSS_NS, j] < np.inf
            if with_truth:
                _truth_row(truth[i], out[:, j], beam[:, i], is_lost)
            if is_lost:
                lost[n_lost, 0], lost[n_lost, 1], lost[n_lost, 2] = out[_LOSS_NS, j], out[_LOSS_PHI, j], beam[_B_DELTA, i]
                n_lost += 1
                continue
            e_true = out[_ENERGY, j]
            dx, dy, dz = out[_DX, j], out[_DY, j], out[_DZ, j]
            if p.detector == VANES:
                recordable = smeared_momentum(e_true, p.vane_momentum_resolution, out[_G_E, j]) >= p.energy_min_mev
                if not (recordable or with_truth):
                    continue  # not recorded, whatever its crossings
                decay_ns = out[_DECAY_NS, j]
                ns_per_rad = p.vane_flight_ns_per_rad_per_mev * e_true
                n_angles = max_crossings if recordable else 0  # (0: only the first vane crossed, for the truth)
                if recordable and decay_ns >= 0.0 and decay_ns + TWO_PI * ns_per_rad < p.vane_readout_window_ns:
                    # the whole turn is read out: only the time of the first crossing whose efficiency draw passes matters
                    n_angles = 1
                    while n_angles < max_crossings and uniform(streams[4], streams[5], i * max_crossings + n_angles - 1) >= p.vane_efficiency:
                        n_angles += 1
                m = _track_crossings(
                    out[_PX, j],
                    out[_PY, j],
                    out[_PZ, j],
                    dx,
                    dy,
                    dz,
                    e_true,
                    cos_az,
                    sin_az,
                    p.vane_r_min_m,
                    p.vane_r_max_m,
                    p.vane_half_height_m,
                    p.vane_radius_m_per_mev,
                    alpha,
                    vane,
                    r_vane,
                    y_vane,
                    n_angles,
                )
                if with_truth and m > 0:
                    truth[i, _TR_STATION] = vane[0]
                if not recordable or m < p.vane_min_vanes:
                    continue
                for k in range(m):
                    t_vane[k] = decay_ns + alpha[k] * ns_per_rad if k < n_angles else decay_ns  # a time in the window
                    u_vane[k] = uniform(streams[4], streams[5], i * max_crossings + k)
                n_detected, station, momentum, t_reco, angle_reco = track_response(
                    t_vane[:m],
                    vane[:m],
                    u_vane[:m],
                    decay_ns,
                    e_true,
                    out[_ANGLE_D, j],
                    out[_G_E, j],
                    out[_G_T, j],
                    p.vane_efficiency,
                    p.vane_readout_window_ns,
                    p.vane_min_vanes,
                    p.vane_time_bin_ns,
                    p.vane_momentum_resolution,
                    p.vane_angle_resolution_rad,
                )
                if n_detected < p.vane_min_vanes:
                    continue
                _hit_row(hits[n_hits], t_reco, momentum, e_true, out[:, j], beam[:, i], p.dispersion, 0.0, 0.0, angle_reco, station)
                n_hits += 1
                continue
            if p.detector == CALORIMETERS:
                station, flight_ns, x_hit, y_hit = face_station[j], face_hit[0, j], face_hit[1, j], face_hit[2, j]
            else:
                station, flight_ns, x_hit, y_hit = min(int(out[_AZIMUTH, j] / sector), p.n_stations - 1), 0.0, 0.0, 0.0
            if with_truth:
                truth[i, _TR_STATION] = station
            if station < 0:
                continue
            # detector response (ringsim.detectors.response.respond)
            if out[_U_EFF, j] >= p.efficiency:
                continue
            e_gev = max(e_true, 1e-6) * 1e-3
            sigma = e_true * math.sqrt(p.resolution_stochastic * p.resolution_stochastic / e_gev + p.resolution_constant * p.resolution_constant)
            t_meas = out[_DECAY_NS, j] + flight_ns + p.time_resolution_ns * out[_G_T, j]
            gain = drift
            if p.gain_sag != 0.0:
                gain *= 1.0 - p.gain_sag * math.exp(-t_meas * 1e-3 / p.gain_sag_tau_us)
            _hit_row(hits[n_hits], t_meas, (e_true + sigma * out[_G_E, j]) * gain, e_true, out[:, j], beam[:, i], p.dispersion, x_hit, y_hit, out[_ANGLE_D, j], station)
            n_hits += 1
    return n_hits, n_lost


@njit(cache=True, inline="always")
def _truth_row(row, decay, muon, is_lost):
    """Fill the truth row of one muon from its decay and beam columns.

    Injection time [ns], Δp/p, lost (1) or not (0), decay or loss time [ns] and azimuth [rad], decay
    position x, y [m], spin angle, positron energy [MeV] and vertical angle (NaN for a lost muon),
    station (−1 until the detector step sets it).
    """
    row[_TR_T0] = muon[_B_T0]
    row[_TR_DELTA] = muon[_B_DELTA]
    row[_TR_LOST] = 1.0 if is_lost else 0.0
    row[_TR_TIME] = decay[_LOSS_NS] if is_lost else decay[_DECAY_NS]
    row[_TR_AZIMUTH] = decay[_LOSS_PHI] if is_lost else decay[_AZIMUTH]
    row[_TR_X] = np.nan if is_lost else decay[_XD]
    row[_TR_Y] = np.nan if is_lost else decay[_YD]
    row[_TR_SPIN] = np.nan if is_lost else decay[_SPIN_D]
    row[_TR_ENERGY] = np.nan if is_lost else decay[_ENERGY]
    row[_TR_ANGLE] = np.nan if is_lost else decay[_ANGLE_D]
    row[_TR_STATION] = -1.0


@njit(cache=True, inline="always")
def _hit_row(h, t_meas, e_meas, e_true, decay, muon, dispersion, x_hit, y_hit, angle, station):
    """Hit row ``h`` from the measured time [ns] and energy [MeV], the muon's decay column and beam column, the hit position [m], angle and station."""
    h[_T_MEAS] = t_meas
    h[_E_MEAS] = e_meas
    h[_E_TRUE] = e_true
    h[_T_DECAY] = decay[_DECAY_NS]
    h[_DELTA] = muon[_B_DELTA]
    h[_X_E] = dispersion * muon[_B_DELTA]
    h[_X] = decay[_XD]
    h[_Y] = decay[_YD]
    h[_SPIN] = decay[_SPIN_D]
    h[_T0] = muon[_B_T0]
    h[_X_HIT] = x_hit
    h[_Y_HIT] = y_hit
    h[_ANGLE] = angle
    h[_STATION] = station


@njit(cache=True, error_model="numpy")
def time_order(t_ns, tau_ns):
    """Return the indices that sort ``t_ns`` (stable): bucket sort on 1 − e^{−t/τ}, then insertion sort (O(n) for decay times).

    The buckets only set the speed: the insertion sort puts any bucket order right.
    """
    n = t_ns.size
    bucket = np.empty(n, dtype=np.int64)
    start = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):  # vectorised
        bucket[i] = min(int(n * (1.0 - exp(-min(max(t_ns[i], 0.0) / tau_ns, 700.0)))), n - 1)
    for i in range(n):
        start[bucket[i] + 1] += 1
    for b in range(n):
        start[b + 1] += start[b]
    order = np.empty(n, dtype=np.int64)
    for i in range(n):
        order[start[bucket[i]]] = i
        start[bucket[i]] += 1
    for i in range(1, n):  # buckets are in time order: only the order inside each remains to fix
        k = order[i]
        t = t_ns[k]
        j = i
        while j > 0 and t_ns[order[j - 1]] > t:
            order[j] = order[j - 1]
            j -= 1
        order[j] = k
    return order


@njit(cache=True)
def merged_order(fill_a, t_a, fill_b, t_b):
    """Return the indices into the concatenation (a, b) of two (fill, time)-ordered samples that order it by (fill, time); ties keep a first."""
    n_a, n_b = fill_a.size, fill_b.size
    order = np.empty(n_a + n_b, dtype=np.int64)
    i = j = 0
    for k in range(n_a + n_b):
        if j == n_b or (i < n_a and (fill_a[i] < fill_b[j] or (fill_a[i] == fill_b[j] and t_a[i] <= t_b[j]))):
            order[k] = i
            i += 1
        else:
            order[k] = n_a + j
            j += 1
    return order


@njit(cache=True)
def _merge_fill(hits, n_hits, n_stations, resolving_ns, energy_min_mev, sort_tau_ns, clusters):
    """Pileup merging of one fill's hits per station, then the recorded clusters in time order.

    Hits of a station closer than ``resolving_ns`` to the previous one merge (summed energy,
    energy-weighted time, listed under the earliest hit); ``sort_tau_ns`` is the time scale of the
    hit times (γτ), which only sets the speed of the time ordering. Rows of ``clusters``: (time [ns],
    energy [MeV], number of hits, row of the first hit); returns the number of recorded clusters
    (energy ≥ ``energy_min_mev``, time ≥ 0).
    """
    order = time_order(hits[:n_hits, _T_MEAS], sort_tau_ns)
    open_cluster = np.full(n_stations, -1, dtype=np.int64)
    last_t = np.zeros(n_stations)
    n_clusters = 0
    for h in order:
        st = int(hits[h, _STATION])
        t, e = hits[h, _T_MEAS], hits[h, _E_MEAS]
        k = open_cluster[st]
        if k >= 0 and t - last_t[st] <= resolving_ns:
            clusters[k, 0] += e * t
            clusters[k, 1] += e
            clusters[k, 2] += 1.0
        else:
            k = n_clusters
            n_clusters += 1
            open_cluster[st] = k
            clusters[k, 0] = e * t
            clusters[k, 1] = e
            clusters[k, 2] = 1.0
            clusters[k, 3] = h
        last_t[st] = t
    n_kept = 0
    for k in range(n_clusters):
        e_sum, n_c, first = clusters[k, 1], clusters[k, 2], clusters[k, 3]
        t_c = clusters[k, 0] / e_sum if e_sum > 0.0 else hits[int(first), _T_MEAS]
        if e_sum < energy_min_mev or t_c < 0.0:
            continue
        # insertion into time order: cluster times differ from first-hit times by less than the pileup span
        j = n_kept
        while j > 0 and clusters[j - 1, 0] > t_c:
            clusters[j, :] = clusters[j - 1, :]
            j -= 1
        clusters[j, 0], clusters[j, 1], clusters[j, 2], clusters[j, 3] = t_c, e_sum, n_c, first
        n_kept += 1
    return n_kept


@njit(cache=True)
def _order_fill(hits, n_hits, energy_min_mev, sort_tau_ns, clusters):
    """Order one fill's hits as clusters without merging (vane tracks), in time order; return their number.

    Rows of ``clusters`` and the selection (energy ≥ ``energy_min_mev``, time ≥ 0) as in :func:`_merge_fill`.
    """
    n_kept = 0
    for h in time_order(hits[:n_hits, _T_MEAS], sort_tau_ns):
        t, e = hits[h, _T_MEAS], hits[h, _E_MEAS]
        if e < energy_min_mev or t < 0.0:
            continue
        clusters[n_kept, 0], clusters[n_kept, 1], clusters[n_kept, 2], clusters[n_kept, 3] = t, e, 1.0, h
        n_kept += 1
    return n_kept


@njit(cache=True, inline="always")
def _write_clusters(hits, clusters, n_recorded, fill, row, events):
    """Write the recorded clusters of one fill (rows of ``clusters`` → hits) into the event arrays from ``row`` on."""
    time_ns, energy, calo, fill_no, n_merged, x_hit, y_hit, hemisphere, angle, e_true, decay_ns, delta, x_e, x, y, spin, t0 = events
    for j in range(n_recorded):
        i = row + j
        cl = clusters[j]
        h = hits[int(cl[3])]
        time_ns[i] = cl[0]
        energy[i] = cl[1]
        n_merged[i] = cl[2]
        calo[i] = h[_STATION]
        fill_no[i] = fill
        x_hit[i] = h[_X_HIT]
        y_hit[i] = h[_Y_HIT]
        angle[i] = h[_ANGLE]
        hemisphere[i] = 1 if h[_ANGLE] >= 0.0 else -1
        e_true[i] = h[_E_TRUE]
        decay_ns[i] = h[_T_DECAY]
        delta[i] = h[_DELTA]
        x_e[i] = h[_X_E]
        x[i] = h[_X]
        y[i] = h[_Y]
        spin[i] = h[_SPIN]
        t0[i] = h[_T0]


@njit(cache=True)
def _close_gaps(a, start, count, out_start):
    """Move the runs a[start[f] : start[f] + count[f]] to a[out_start[f] …] (out_start ≤ start); returns the filled head."""
    for f in range(count.size):
        if out_start[f] < start[f]:
            a[out_start[f] : out_start[f] + count[f]] = a[start[f] : start[f] + count[f]]
    return a[: out_start[count.size]]


@njit(cache=True, parallel=True)
def simulate_fills(p, streams, fill_muons, first_fill, cos_az, sin_az, n_groups, truth=False):
    """Simulate the recorded clusters, lost muons and (if ``truth``) the truth of every muon of consecutive fills, fills in parallel.

    ``streams`` (n_fills, 6) are the fills' random streams (:func:`fill_streams`), ``fill_muons`` the muons to follow in
    each fill, ``first_fill`` the number of the first, (``cos_az``, ``sin_az``) the radial directions
    of the calorimeter faces or of the vanes. Returns the event branches (time_ns, energy_mev,
    calo, fill, n_hits, x_hit_m, y_hit_m, hemisphere, vertical_angle_rad, truth_energy_mev,
    truth_decay_time_ns, truth_delta_p, truth_x_e_m, truth_x_m, truth_y_m, truth_spin_phase_rad,
    truth_t0_ns), ordered by fill and time, the lost muons (time_ns, azimuth_rad, fill, truth_delta_p),
    and the truth table (one row per muon in fill order, columns ``_TR_*``; no rows unless ``truth``).
    The fills are split into ``n_groups`` contiguous groups (one per thread); a group works in scratch
    tables of its own and writes its fills' clusters one after the other from the row of its first muon
    on; the groups' runs are then moved together (the result does not depend on ``n_groups``).
    """
    n_fills = fill_muons.size
    start = np.zeros(n_fills + 1, dtype=np.int64)
    for f in range(n_fills):
        start[f + 1] = start[f] + fill_muons[f]
    total = start[n_fills]
    f4 = np.float32
    events = (
        np.empty(total),
        np.empty(total, dtype=f4),
        np.empty(total, dtype=np.int16),
        np.empty(total, dtype=np.int64),
        np.empty(total, dtype=np.int8),
        np.empty(total, dtype=f4),
        np.empty(total, dtype=f4),
        np.empty(total, dtype=np.int8),
        np.empty(total, dtype=f4),
        np.empty(total, dtype=f4),
        np.empty(total),
        np.empty(total, dtype=f4),
        np.empty(total, dtype=f4),
        np.empty(total, dtype=f4),
        np.empty(total, dtype=f4),
        np.empty(total, dtype=f4),
        np.empty(total, dtype=f4),
    )
    lost = np.empty((total, 3))
    truth_rows = np.empty((total if truth else 0, N_TRUTH_COLUMNS))
    n_lost = np.zeros(n_fills, dtype=np.int64)
    sort_tau_ns = math.sqrt(1.0 + p.gamma_beta * p.gamma_beta) * p.lifetime_s * 1e9
    n_groups = max(1, min(n_groups, n_fills))
    group_fill = np.empty(n_groups + 1, dtype=np.int64)  # group g: fills group_fill[g] … group_fill[g + 1] − 1
    for g in range(n_groups + 1):
        group_fill[g] = g * n_fills // n_groups
    group_start = start[group_fill[:n_groups]]
    group_recorded = np.zeros(n_groups, dtype=np.int64)
    for g in prange(n_groups):
        f0, f1 = group_fill[g], group_fill[g + 1]
        largest = fill_muons[f0:f1].max() if f1 > f0 else 0
        hits = np.empty((largest, N_HIT_COLUMNS))
        clusters = np.empty((largest, 4))
        row = group_start[g]
        for f in range(f0, f1):
            a, b = start[f], start[f + 1]
            nh, n_lost[f] = _simulate_fill(p, streams[f], fill_muons[f], first_fill + f, cos_az, sin_az, hits, lost[a:b], truth_rows[a:b] if truth else truth_rows)
            if p.detector == VANES:
                n_recorded = _order_fill(hits, nh, p.energy_min_mev, sort_tau_ns, clusters)
            else:
                n_recorded = _merge_fill(hits, nh, p.n_stations, p.resolving_time_ns, p.energy_min_mev, sort_tau_ns, clusters)
            _write_clusters(hits, clusters, n_recorded, first_fill + f, row, events)
            row += n_recorded
        group_recorded[g] = row - group_start[g]
    out_start = np.zeros(n_groups + 1, dtype=np.int64)
    for g in range(n_groups):
        out_start[g + 1] = out_start[g] + group_recorded[g]
    lost_start = np.zeros(n_fills + 1, dtype=np.int64)
    for f in range(n_fills):
        lost_start[f + 1] = lost_start[f] + n_lost[f]
    packed = (
        _close_gaps(events[0], group_start, group_recorded, out_start),
        _close_gaps(events[1], group_start, group_recorded, out_start),
        _close_gaps(events[2], group_start, group_recorded, out_start),
        _close_gaps(events[3], group_start, group_recorded, out_start),
        _close_gaps(events[4], group_start, group_recorded, out_start),
        _close_gaps(events[5], group_start, group_recorded, out_start),
        _close_gaps(events[6], group_start, group_recorded, out_start),
        _close_gaps(events[7], group_start, group_recorded, out_start),
        _close_gaps(events[8], group_start, group_recorded, out_start),
        _close_gaps(events[9], group_start, group_recorded, out_start),
        _close_gaps(events[10], group_start, group_recorded, out_start),
        _close_gaps(events[11], group_start, group_recorded, out_start),
        _close_gaps(events[12], group_start, group_recorded, out_start),
        _close_gaps(events[13], group_start, group_recorded, out_start),
        _close_gaps(events[14], group_start, group_recorded, out_start),
        _close_gaps(events[15], group_start, group_recorded, out_start),
        _close_gaps(events[16], group_start, group_recorded, out_start),
    )
    m = lost_start[n_fills]
    lost_time, lost_phi, lost_delta = np.empty(m), np.empty(m, dtype=np.float32), np.empty(m, dtype=np.float32)
    lost_fill = np.empty(m, dtype=np.int64)
    for f in range(n_fills):
        a = start[f]
        for j in range(n_lost[f]):
            i = lost_start[f] + j
            lost_time[i] = lost[a + j, 0]
            lost_phi[i] = lost[a + j, 1]
            lost_fill[i] = first_fill + f
            lost_delta[i] = lost[a + j, 2]
    return packed, (lost_time, lost_phi, lost_fill, lost_delta), truth_rows
