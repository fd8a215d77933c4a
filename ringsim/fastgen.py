"""Fast mode in one numba pass: muon → decay positron → station → measured cluster, per fill.

Each fill of a block draws from its own xoshiro256** stream seeded from the block's
``SeedSequence``; fills run in parallel (``prange``) and each muon of a fill is followed in one
pass without temporaries: beam sample (the collimated Gaussian of :func:`ringsim.beam.sample_beam`),
exponential lifetime, parametric loss, decay state from the parametric ring model of
:mod:`ringsim.fastmc` (same formulas), Michel positron (:mod:`ringsim.decay`), first calorimeter face
(:func:`ringsim.detectors.calorimeter.calorimeter_hit`) or decay sector, and the detector response
of :mod:`ringsim.detectors.response` (efficiency, energy and time resolution, gain). The hits of a
fill are then merged per station within the resolving time (pileup) and ordered by time. Output is
bit-identical for any number of threads, and muon ``i`` of a fill is the same whatever number of
muons of the fill is used.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from ringsim.beam import tunes
from ringsim.config import SimConfig
from ringsim.constants import MUON_LIFETIME_S, SPEED_OF_LIGHT_M_PER_S
from ringsim.decay import boost_positron, rest_frame_cos_theta
from ringsim.detectors.calorimeter import CalorimeterGeometry, calorimeter_hit
from ringsim.fastmc import model_tunes
from ringsim.rings import RingKinematics

TWO_PI = 2.0 * math.pi
# columns of the per-hit truth table
_T_MEAS, _E_MEAS, _E_TRUE, _T_DECAY, _DELTA, _X_E, _X, _Y, _SPIN, _T0, _X_HIT, _Y_HIT, _ANGLE, _STATION = range(14)
N_HIT_COLUMNS = 14


class FastParams(NamedTuple):
    """Every number the fused kernel needs (SI unless the name says otherwise)."""

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
    calorimeters: bool  # else: station = sector of the decay point
    n_stations: int
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


def fast_params(cfg: SimConfig, kin: RingKinematics, q_over_m: float, muon_mass_mev: float) -> FastParams:
    """Kernel parameters of a configuration (detector model "calorimeters" or "simple")."""
    ring, b, fm, det = cfg.ring, cfg.beam, cfg.fastmodel, cfg.detector
    nu_x_beam, nu_y_beam = tunes(ring.field_index)
    nu_x, nu_y = model_tunes(cfg)
    geo = CalorimeterGeometry(n_stations=ring.n_detectors)
    return FastParams(
        radius_m=ring.radius_m, gamma_beta=kin.gamma * kin.beta, momentum_offset=b.momentum_offset, momentum_spread=b.momentum_spread,
        x_width_m=b.radial_betatron_width_m, y_width_m=b.vertical_width_m, bunch_length_ns=b.bunch_length_ns, aperture_m=ring.aperture_radius_m,
        dispersion=ring.radius_m / (1.0 - ring.field_index), nu_x_beam=nu_x_beam, nu_y_beam=nu_y_beam, nu_x=nu_x, nu_y=nu_y,
        cbo_amplitude_m=fm.cbo_amplitude_m, cbo_tau_us=fm.cbo_tau_us, cbo_cos_phase=math.cos(fm.cbo_phase_rad), cbo_sin_phase=math.sin(fm.cbo_phase_rad),
        loss_fraction=fm.loss_fraction, loss_tau_s=fm.loss_tau_us * 1e-6, lifetime_s=MUON_LIFETIME_S, spin_phase_rad=b.spin_phase_rad,
        polarization=b.polarization, muon_mass_mev=muon_mass_mev, electric=ring.focusing == "electric", q_over_m=q_over_m, a_mu=cfg.muon.a_mu,
        field_t=ring.field_t, field_index=ring.field_index, kappa=ring.field_index * kin.beta * SPEED_OF_LIGHT_M_PER_S * ring.field_t / ring.radius_m,
        calorimeters=det.model == "calorimeters", n_stations=ring.n_detectors, face_inner_m=geo.inner_x_m, face_outer_m=geo.outer_x_m,
        face_half_height_m=geo.half_height_m, chamber_outer_m=geo.chamber_outer_x_m, chamber_inner_m=geo.chamber_inner_x_m,
        efficiency=det.efficiency, resolution_stochastic=det.energy_resolution_stochastic, resolution_constant=det.energy_resolution_constant,
        time_resolution_ns=det.time_resolution_ns, resolving_time_ns=det.resolving_time_ns, gain_sag=det.gain_sag_amplitude,
        gain_sag_tau_us=det.gain_sag_tau_us, gain_drift_per_kfill=det.gain_drift_per_kfill, energy_min_mev=det.energy_min_mev,
    )


def fill_streams(seed: int, block: int, n_fills: int) -> np.ndarray:
    """xoshiro256** states (n_fills, 4) of the fills of a block, from ``SeedSequence(seed, spawn_key=(block,))``."""
    state = np.random.SeedSequence(seed, spawn_key=(block,)).generate_state(4 * n_fills, np.uint64).reshape(n_fills, 4)
    state[:, 0] |= np.uint64(1)  # never the all-zero state
    return state


@njit(cache=True, inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(cache=True, inline="always")
def _uniform(s):
    """Next double in [0, 1) of the xoshiro256** state ``s`` (uint64[4], advanced in place)."""
    result = _rotl(s[1] * np.uint64(5), 7) * np.uint64(9)
    t = s[1] << np.uint64(17)
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = _rotl(s[3], 45)
    return float(result >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True, inline="always")
def sincos(x):
    """(sin x, cos x) to a few ulp: Cody–Waite reduction by π/2 and fdlibm kernels for |x| < 10⁶, libm beyond."""
    if abs(x) >= 1e6:
        return math.sin(x), math.cos(x)
    k = math.floor(x * 0.6366197723675814 + 0.5)  # nearest multiple of π/2
    # π/2 in three 33-bit pieces (fdlibm pio2_1, pio2_2, pio2_3): k·piece is exact for |k| < 2²⁰
    r = ((x - k * 1.57079632673412561417e00) - k * 6.07710050630396597660e-11) - k * 2.02226624871116645580e-21
    z = r * r
    sin_r = r + r * z * (-1.66666666666666324348e-01 + z * (8.33333333332248946124e-03 + z * (-1.98412698298579493134e-04 + z * (2.75573137070700676789e-06 + z * (-2.50507602534068634195e-08 + z * 1.58969099521155010221e-10)))))
    cos_r = 1.0 - 0.5 * z + z * z * (4.16666666666666019037e-02 + z * (-1.38888888888741095749e-03 + z * (2.48015872894767294178e-05 + z * (-2.75573143513906633035e-07 + z * (2.08757232129817482790e-09 + z * -1.13596475577881948265e-11)))))
    q = int(k) & 3  # quadrant, without branches: (s, c), (c, −s), (−s, −c), (−c, s)
    odd = q & 1
    a = cos_r if odd else sin_r
    b = sin_r if odd else cos_r
    return (1.0 - (q & 2)) * a, (1.0 - ((q + 1) & 2)) * b


@njit(cache=True, inline="always")
def _polar_normal(s):
    """A standard normal pair in polar form (Box–Muller): R² = −2 ln(1 − u₁) and (sin, cos) of the angle 2πu₂."""
    r2 = -2.0 * math.log(1.0 - _uniform(s))
    sin_a, cos_a = sincos(TWO_PI * _uniform(s))
    return r2, sin_a, cos_a


@njit(cache=True)
def _simulate_fill(p, s, n_muons, fill, cos_az, sin_az, hits, lost):
    """Follow ``n_muons`` muons of one fill; returns the number of hits and of lost muons.

    Hit rows go to ``hits`` (columns ``_T_MEAS`` …), lost muons to ``lost`` (time [ns], azimuth, Δp/p).
    """
    r0 = p.radius_m
    c = SPEED_OF_LIGHT_M_PER_S
    x_slope = p.nu_x_beam / p.nu_x  # (x′R₀/ν_x) of the model from the beam's (x′R₀/ν_x,beam)
    y_slope = p.nu_y_beam / p.nu_y
    drift = 1.0 + p.gain_drift_per_kfill * fill * 1e-3
    sector = TWO_PI / p.n_stations
    n_hits = 0
    n_lost = 0
    for _ in range(n_muons):
        # collimated Gaussian beam: (x_β, x′R₀/ν) = σR(cos ψ, sin ψ), amplitude σR
        while True:
            r2x, sin_x, cos_x = _polar_normal(s)
            f = math.sqrt(r2x)
            x_beta, w_x = p.x_width_m * f * cos_x, p.x_width_m * f * sin_x
            r2y, sin_y, cos_y = _polar_normal(s)
            f = math.sqrt(r2y)
            y0, w_y = p.y_width_m * f * cos_y, p.y_width_m * f * sin_y
            r2, sin_d, cos_d = _polar_normal(s)
            f = math.sqrt(r2)
            g1, g2 = f * cos_d, f * sin_d
            delta = p.momentum_offset + p.momentum_spread * g1
            x_e = p.dispersion * delta
            a_x = p.x_width_m * math.sqrt(r2x)
            a_y2 = p.y_width_m * p.y_width_m * r2y
            if (abs(x_e) + a_x) ** 2 + a_y2 <= p.aperture_m * p.aperture_m:
                break
        t0_ns = p.bunch_length_ns * g2
        u_abs = p.gamma_beta * (1.0 + delta)
        gamma = math.sqrt(1.0 + u_abs * u_abs)
        beta = u_abs / gamma
        life_s = -math.log(1.0 - _uniform(s)) * gamma * p.lifetime_s
        if p.loss_fraction > 0.0 and _uniform(s) < p.loss_fraction:
            loss_s = -math.log(1.0 - _uniform(s)) * p.loss_tau_s
            if loss_s < life_s:
                lost[n_lost, 0] = t0_ns + loss_s * 1e9
                lost[n_lost, 1] = TWO_PI * _uniform(s)
                lost[n_lost, 2] = delta
                n_lost += 1
                continue
        # decay state (ringsim.fastmc.decay_states)
        theta = beta * c / (r0 + x_e) * life_s
        sin_a, cos_a = sincos(theta)
        sx, cx = sincos(p.nu_x * theta)
        x = x_e + x_beta * cx + w_x * x_slope * sx
        if p.cbo_amplitude_m > 0.0:
            x += p.cbo_amplitude_m * math.exp(-life_s * 1e6 / p.cbo_tau_us) * (cx * p.cbo_cos_phase - sx * p.cbo_sin_phase)
        sy, cy = sincos(p.nu_y * theta)
        y = y0 * cy + w_y * y_slope * sy
        # ω_a at the equilibrium radius (ringsim.fastmc.muon_omega_a_rad_per_s), pitch factor
        if p.electric:
            omega = p.q_over_m * (p.a_mu * p.field_t - (p.a_mu - 1.0 / (u_abs * u_abs)) * beta * p.kappa * x_e / c)
        else:
            omega = p.q_over_m * p.a_mu * p.field_t * (1.0 - p.field_index * x_e / r0)
        omega *= 1.0 - p.field_index * a_y2 / (4.0 * r0 * r0)
        spin = p.spin_phase_rad + omega * life_s
        ss, cs = sincos(spin)
        ux_hat, uz_hat = -sin_a, cos_a
        # Michel decay in the rest frame, boosted with u
        while True:
            xe = _uniform(s)
            if 2.0 * _uniform(s) < xe * xe * (6.0 - 4.0 * xe):
                break
        cos_t = rest_frame_cos_theta(xe, p.polarization, _uniform(s))
        sin_phi, cos_phi = sincos(TWO_PI * _uniform(s))  # azimuth about the spin
        energy, dx, dy, dz = boost_positron(
            u_abs * ux_hat, 0.0, u_abs * uz_hat, cs * ux_hat - ss * uz_hat, 0.0, cs * uz_hat + ss * ux_hat,
            xe, cos_t, cos_phi, sin_phi, p.muon_mass_mev,
        )
        if p.calorimeters:
            station, flight_ns, x_hit, y_hit = calorimeter_hit(
                (r0 + x) * cos_a, y, (r0 + x) * sin_a, dx, dy, dz, energy, p.field_t, r0, cos_az, sin_az,
                p.face_inner_m, p.face_outer_m, p.face_half_height_m, p.chamber_outer_m, p.chamber_inner_m,
            )
            if station < 0:
                continue
        else:
            station, flight_ns, x_hit, y_hit = min(int((theta % TWO_PI) / sector), p.n_stations - 1), 0.0, 0.0, 0.0
        # detector response (ringsim.detectors.response.respond)
        if p.efficiency < 1.0 and _uniform(s) >= p.efficiency:
            continue
        r2, sin_d, cos_d = _polar_normal(s)
        f = math.sqrt(r2)
        g1, g2 = f * cos_d, f * sin_d
        e_gev = max(energy, 1e-6) * 1e-3
        sigma = energy * math.sqrt(p.resolution_stochastic * p.resolution_stochastic / e_gev + p.resolution_constant * p.resolution_constant)
        decay_ns = t0_ns + life_s * 1e9
        t_meas = decay_ns + flight_ns + p.time_resolution_ns * g2
        gain = drift
        if p.gain_sag != 0.0:
            gain *= 1.0 - p.gain_sag * math.exp(-t_meas * 1e-3 / p.gain_sag_tau_us)
        hits[n_hits, _T_MEAS] = t_meas
        hits[n_hits, _E_MEAS] = (energy + sigma * g1) * gain
        hits[n_hits, _E_TRUE] = energy
        hits[n_hits, _T_DECAY] = decay_ns
        hits[n_hits, _DELTA] = delta
        hits[n_hits, _X_E] = x_e
        hits[n_hits, _X] = x
        hits[n_hits, _Y] = y
        hits[n_hits, _SPIN] = spin - TWO_PI * math.floor(spin / TWO_PI + 0.5)  # wrapped to [−π, π)
        hits[n_hits, _T0] = t0_ns
        hits[n_hits, _X_HIT] = x_hit
        hits[n_hits, _Y_HIT] = y_hit
        hits[n_hits, _ANGLE] = math.atan2(dy, math.sqrt(dx * dx + dz * dz))
        hits[n_hits, _STATION] = station
        n_hits += 1
    return n_hits, n_lost


@njit(cache=True)
def time_order(t_ns, tau_ns):
    """Indices that sort ``t_ns`` (stable): bucket sort on 1 − e^{−t/τ}, then insertion sort (O(n) for decay times)."""
    n = t_ns.size
    bucket = np.empty(n, dtype=np.int64)
    start = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        b = min(int(n * -math.expm1(-max(t_ns[i], 0.0) / tau_ns)), n - 1)
        bucket[i] = b
        start[b + 1] += 1
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


@njit(cache=True, parallel=True)
def simulate_fills(p, states, fill_muons, first_fill, cos_az, sin_az):
    """Recorded clusters and lost muons of consecutive fills, fills in parallel.

    ``states`` (n_fills, 4) are the fills' xoshiro256** states, ``fill_muons`` the muons to follow in
    each fill, ``first_fill`` the number of the first, (``cos_az``, ``sin_az``) the radial directions
    of the calorimeter faces. Returns the event branches (time_ns, energy_mev,
    calo, fill, n_hits, x_hit_m, y_hit_m, hemisphere, vertical_angle_rad, truth_energy_mev,
    truth_decay_time_ns, truth_delta_p, truth_x_e_m, truth_x_m, truth_y_m, truth_spin_phase_rad,
    truth_t0_ns), ordered by fill and time, and the lost muons (time_ns, azimuth_rad, fill, calo, truth_delta_p).
    """
    n_fills = fill_muons.size
    start = np.zeros(n_fills + 1, dtype=np.int64)
    for f in range(n_fills):
        start[f + 1] = start[f] + fill_muons[f]
    total = start[n_fills]
    hits = np.empty((total, N_HIT_COLUMNS))
    clusters = np.empty((total, 4))
    lost = np.empty((total, 3))
    n_recorded = np.zeros(n_fills, dtype=np.int64)
    n_lost = np.zeros(n_fills, dtype=np.int64)
    sort_tau_ns = math.sqrt(1.0 + p.gamma_beta * p.gamma_beta) * p.lifetime_s * 1e9
    for f in prange(n_fills):
        a, b = start[f], start[f + 1]
        padded = np.empty(24, dtype=np.uint64)  # the state in the middle of 192 bytes: no cache line shared between threads
        s = padded[8:12]
        s[:] = states[f]
        nh, n_lost[f] = _simulate_fill(p, s, fill_muons[f], first_fill + f, cos_az, sin_az, hits[a:b], lost[a:b])
        n_recorded[f] = _merge_fill(hits[a:b], nh, p.n_stations, p.resolving_time_ns, p.energy_min_mev, sort_tau_ns, clusters[a:b])
    out_start = np.zeros(n_fills + 1, dtype=np.int64)
    lost_start = np.zeros(n_fills + 1, dtype=np.int64)
    for f in range(n_fills):
        out_start[f + 1] = out_start[f] + n_recorded[f]
        lost_start[f + 1] = lost_start[f] + n_lost[f]
    n = out_start[n_fills]
    time_ns, decay_ns = np.empty(n), np.empty(n)
    energy, x_hit, y_hit, angle = np.empty(n, dtype=np.float32), np.empty(n, dtype=np.float32), np.empty(n, dtype=np.float32), np.empty(n, dtype=np.float32)
    e_true, delta, x_e, x = np.empty(n, dtype=np.float32), np.empty(n, dtype=np.float32), np.empty(n, dtype=np.float32), np.empty(n, dtype=np.float32)
    y, spin, t0 = np.empty(n, dtype=np.float32), np.empty(n, dtype=np.float32), np.empty(n, dtype=np.float32)
    calo = np.empty(n, dtype=np.int16)
    fill = np.empty(n, dtype=np.int64)
    n_merged, hemisphere = np.empty(n, dtype=np.int8), np.empty(n, dtype=np.int8)
    m = lost_start[n_fills]
    lost_time, lost_phi, lost_delta = np.empty(m), np.empty(m, dtype=np.float32), np.empty(m, dtype=np.float32)
    lost_fill = np.empty(m, dtype=np.int64)
    lost_calo = np.empty(m, dtype=np.int16)
    sector = TWO_PI / p.n_stations
    for f in prange(n_fills):
        a = start[f]
        for j in range(n_recorded[f]):
            i = out_start[f] + j
            cl = clusters[a + j]
            h = hits[a + int(cl[3])]
            time_ns[i] = cl[0]
            energy[i] = cl[1]
            n_merged[i] = cl[2]
            calo[i] = h[_STATION]
            fill[i] = first_fill + f
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
        for j in range(n_lost[f]):
            i = lost_start[f] + j
            lost_time[i] = lost[a + j, 0]
            lost_phi[i] = lost[a + j, 1]
            lost_fill[i] = first_fill + f
            lost_calo[i] = int(math.floor(lost[a + j, 1] / sector)) % p.n_stations  # first face downstream (faces at (k + 1)·sector)
            lost_delta[i] = lost[a + j, 2]
    events = (time_ns, energy, calo, fill, n_merged, x_hit, y_hit, hemisphere, angle, e_true, decay_ns, delta, x_e, x, y, spin, t0)
    return events, (lost_time, lost_phi, lost_fill, lost_calo, lost_delta)
