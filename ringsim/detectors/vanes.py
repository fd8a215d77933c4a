"""J-PARC silicon-strip vane tracker: helix propagation of decay positrons and track reconstruction.

Ring convention: the orbit lies in the X–Z plane, Y is vertical, B = +B ŷ; a positive charge turns so
that φ = atan2(Z, X) increases, and decay positrons curl inwards across the radial vanes. Positrons
are massless (p = E) and move on exact helices in the uniform field: the transverse projection is a
circle of radius ρ = p_⊥/(eB), the turning angle α grows at ω = eBc²/E whatever the pitch, and
y = y₀ + ρ α p_y/p_⊥. Vane crossings are the analytic intersections of that circle with the radial
half-planes at the vane azimuths k·2π/n_vanes, kept when r_min ≤ r ≤ r_max and |y| ≤ half_height.

Numbers are docs/physics.md §5 [V] unless marked [U] (a modelling choice of ringsim). Multiple scattering,
energy loss in the silicon and the Hough/Kalman pattern recognition are not modelled: the track
finder is a per-hit efficiency and a minimum number of hits, the fit a set of Gaussian resolutions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from ringsim.config import SimConfig
from ringsim.constants import SPEED_OF_LIGHT_M_PER_S
from ringsim.errors import ConfigError, InputError

_BLOCK = 4096  # positrons per parallel work item (hit buffers allocated once per block)


@dataclass(frozen=True)
class VaneGeometry:
    """Vane tracker geometry and response (docs/physics.md §5).

    Attributes: ``n_vanes`` radial vanes at azimuths k·2π/n_vanes [V]; active area
    ``r_min_m`` ≤ r ≤ ``r_max_m``, |y| ≤ ``half_height_m`` [V] (r_min is also the inner support that
    stops a positron); ``field_t`` uniform vertical field [V]; ``min_vanes`` hits needed for a track
    [U]; ``efficiency`` per vane crossing [U]; ``time_bin_ns`` TDC bin [V]; ``readout_window_ns``
    after injection [V]; ``momentum_resolution`` relative σ_p/p [U]; ``vertical_angle_resolution_rad``
    σ of the fitted vertical angle [U] (190 μm pitch over ~0.2 m of track).
    """

    n_vanes: int = 40
    r_min_m: float = 0.092
    r_max_m: float = 0.290
    half_height_m: float = 0.198
    field_t: float = 3.0
    min_vanes: int = 3
    efficiency: float = 0.99
    time_bin_ns: float = 5.0
    readout_window_ns: float = 40_960.0
    momentum_resolution: float = 0.01
    vertical_angle_resolution_rad: float = 1.0e-3

    def __post_init__(self):
        """Check the geometry; ConfigError naming the first field out of range."""
        checks = [
            ("n_vanes", isinstance(self.n_vanes, int) and self.n_vanes >= 1, "an integer ≥ 1"),
            ("r_min_m", 0.0 <= self.r_min_m < self.r_max_m, "0 ≤ r_min_m < r_max_m"),
            ("half_height_m", self.half_height_m > 0.0, "a positive number"),
            ("field_t", self.field_t > 0.0, "a positive number"),
            ("min_vanes", isinstance(self.min_vanes, int) and self.min_vanes >= 1, "an integer ≥ 1"),
            ("efficiency", 0.0 <= self.efficiency <= 1.0, "a number in [0, 1]"),
            ("time_bin_ns", self.time_bin_ns > 0.0, "a positive number"),
            ("readout_window_ns", self.readout_window_ns > 0.0, "a positive number"),
            ("momentum_resolution", self.momentum_resolution >= 0.0, "a number ≥ 0"),
            ("vertical_angle_resolution_rad", self.vertical_angle_resolution_rad >= 0.0, "a number ≥ 0"),
        ]
        for name, ok, expected in checks:
            value = getattr(self, name)
            if not (ok and math.isfinite(value)):
                raise ConfigError(f"VaneGeometry.{name}: expected {expected}, got {value!r}")

    @property
    def time_resolution_ns(self) -> float:
        """RMS of the time binning, time_bin_ns/√12."""
        return self.time_bin_ns / math.sqrt(12.0)

    @property
    def radius_m_per_mev(self) -> float:
        """Radius of curvature per MeV/c of transverse momentum, 1/(eB) in m/(MeV/c)."""
        return 1.0e6 / (SPEED_OF_LIGHT_M_PER_S * self.field_t)

    @property
    def flight_ns_per_rad_per_mev(self) -> float:
        """Flight time per radian of turning per MeV of energy, E/(eBc²) in ns/(rad·MeV)."""
        return 1.0e15 / (SPEED_OF_LIGHT_M_PER_S**2 * self.field_t)

    def unit_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(cos, sin) of the vane azimuths k·2π/n_vanes."""
        vane_phi = 2.0 * np.pi * np.arange(self.n_vanes) / self.n_vanes
        return np.cos(vane_phi), np.sin(vane_phi)

    @classmethod
    def from_config(cls, cfg: SimConfig) -> VaneGeometry:
        """Return the tracker of a configuration with detector model "vanes".

        ``ring.n_detectors`` vanes in ``ring.field_t``, per-crossing ``detector.efficiency``, momentum
        resolution ``detector.energy_resolution_constant``.
        """
        det = cfg.detector
        return cls(n_vanes=cfg.ring.n_detectors, field_t=cfg.ring.field_t, efficiency=det.efficiency, momentum_resolution=det.energy_resolution_constant)


@dataclass(frozen=True)
class VaneHits:
    """True vane crossings of n positrons.

    Per positron: ``n_vanes`` crossings (a vane crossed twice counts twice), ``first_time_ns`` of the
    first crossing (NaN if none), ``first_vane`` its index (−1 if none), ``hemisphere`` the sign of
    p_y (+1 up, −1 down), ``vertical_angle_rad`` = atan(p_y/p_⊥), and the inputs ``energy_mev`` and
    ``decay_time_ns``. Per crossing, in path order, positron i owning ``hit_offsets[i]:hit_offsets[i+1]``:
    ``hit_vane``, ``hit_time_ns``, ``hit_r_m`` (radius on the vane), ``hit_y_m`` (height).
    """

    n_vanes: np.ndarray
    first_time_ns: np.ndarray
    first_vane: np.ndarray
    hemisphere: np.ndarray
    vertical_angle_rad: np.ndarray
    energy_mev: np.ndarray
    decay_time_ns: np.ndarray
    hit_offsets: np.ndarray
    hit_vane: np.ndarray
    hit_time_ns: np.ndarray
    hit_r_m: np.ndarray
    hit_y_m: np.ndarray


@dataclass(frozen=True)
class VaneTracks:
    """Reconstructed tracks, one entry per positron.

    ``accepted`` (at least ``min_vanes`` detected hits in the readout window); ``momentum_mev``,
    ``time_ns`` (reconstructed decay time), ``vertical_angle_rad`` and ``hemisphere`` (sign of the
    reconstructed vertical angle, +1/−1) are NaN / 0 where not accepted; ``n_vanes`` detected hits;
    ``first_vane`` the vane of the first detected hit (−1 if none).
    """

    accepted: np.ndarray
    momentum_mev: np.ndarray
    time_ns: np.ndarray
    hemisphere: np.ndarray
    vertical_angle_rad: np.ndarray
    n_vanes: np.ndarray
    first_vane: np.ndarray


@njit(cache=True, inline="always")
def _pseudo_angle(cos_a, sin_a):
    """Return a cheap increasing function of the angle a ∈ [0, 2π) from its cosine and sine, onto [0, 4)."""
    return 1.0 - cos_a if sin_a >= 0.0 else 3.0 + cos_a


@njit(cache=True, error_model="numpy")
def _track_crossings(x0, y0, z0, dx, dy, dz, energy_mev, vane_cos, vane_sin, r_min, r_max, half_height, radius_m_per_mev, alpha, vane, r_hit, y_hit, n_angles):
    """Vane crossings of one positron, in path order: fills the buffers, returns the count.

    ``vane_cos``, ``vane_sin``: unit vectors of the vane azimuths k·2π/n. Buffers (turning angle α [rad],
    vane index, radius [m], height [m]) need 2·n_vanes entries: a circle meets a radial half-plane
    at most twice. Only the first ``n_angles`` crossings get α and y (the others hold an increasing
    function of α in ``alpha`` and no height).
    """
    h = math.sqrt(dx * dx + dz * dz)
    r0 = math.sqrt(x0 * x0 + z0 * z0)
    if h < 1e-12 or abs(y0) > half_height or r0 < r_min:
        return 0
    tx, tz = dx / h, dz / h
    rho = energy_mev * h * radius_m_per_mev
    cx, cz = x0 - rho * tz, z0 + rho * tx  # centre: left of the motion in (X, Z)
    wx, wz = tz, -tx  # unit vector from the centre to the decay point; α turns it towards (tx, tz)
    slope = rho * dy / h  # dy/dα
    # the path ends at a turn, at |y| = half_height or at the inner support: as the key of _pseudo_angle
    alpha_y = 2.0 * math.pi
    if slope > 0.0:
        alpha_y = (half_height - y0) / slope
    elif slope < 0.0:
        alpha_y = (-half_height - y0) / slope
    key_max = 4.0 if alpha_y >= 2.0 * math.pi else _pseudo_angle(math.cos(alpha_y), math.sin(alpha_y))
    d2 = cx * cx + cz * cz
    d = math.sqrt(d2)
    inv_rho = 1.0 / rho
    if d > 0.0:  # first reach of the inner support: |C + ρ e|² = r_min², i.e. C·e = q d
        q = (r_min * r_min - d2 - rho * rho) / (2.0 * rho * d)
        if -1.0 <= q <= 1.0:
            # e = q ĉ ± √(1−q²) ĉ⊥ with ĉ = C/d; its angle from w is that of (w·e, w × e)
            s = math.sqrt(1.0 - q * q)
            ux, uz = cx / d, cz / d
            for sign in (1.0, -1.0):
                ex = q * ux - sign * s * uz
                ez = q * uz + sign * s * ux
                key_max = min(key_max, _pseudo_angle(wx * ex + wz * ez, wx * ez - wz * ex))
    # candidates 2k, 2k + 1 (the two intersections with the line of vane k, both roots computed
    # whatever the discriminant): key (8 if not crossed) in alpha, radius in r_hit; a vectorised loop
    c0 = d2 - rho * rho
    n = vane_cos.size
    for k in range(n):
        ux, uz = vane_cos[k], vane_sin[k]
        b = ux * cx + uz * cz
        disc = b * b - c0
        sq = math.sqrt(max(disc, 0.0))
        for j in range(2):
            r = b + sq if j == 0 else b - sq
            vx, vz = (r * ux - cx) * inv_rho, (r * uz - cz) * inv_rho
            cos_a, sin_a = wx * vx + wz * vz, wx * vz - wz * vx
            key = _pseudo_angle(cos_a, sin_a)
            # r > 0: the half-plane, not the full line; a tangent line (sq = 0) is one crossing
            ok = (disc >= 0.0) & (r > 0.0) & (r >= r_min) & (r <= r_max) & (key > 0.0) & (key < key_max) & ((j == 0) | (sq != 0.0))
            alpha[2 * k + j] = key if ok else 8.0
            r_hit[2 * k + j] = r
    count = 0
    for c in range(2 * n):  # the crossings into path order, in place (positions < count ≤ c are free)
        key = alpha[c]
        if key < 8.0:
            r = r_hit[c]
            i = count
            while i > 0 and alpha[i - 1] > key:
                alpha[i], vane[i], r_hit[i] = alpha[i - 1], vane[i - 1], r_hit[i - 1]
                i -= 1
            alpha[i], vane[i], r_hit[i] = key, c // 2, r
            count += 1
    for i in range(min(count, n_angles)):
        k = vane[i]
        vx, vz = (r_hit[i] * vane_cos[k] - cx) * inv_rho, (r_hit[i] * vane_sin[k] - cz) * inv_rho
        a = math.atan2(wx * vz - wz * vx, wx * vx + wz * vz)
        alpha[i] = a + 2.0 * math.pi if a < 0.0 else a
        y_hit[i] = y0 + slope * alpha[i]
    return count


@njit(cache=True, inline="always")
def _crossing_buffers(n_vanes):
    """Return the scratch arrays (α, vane, r, y) of :func:`_track_crossings` for one block, 2·``n_vanes`` crossings each."""
    m_max = 2 * n_vanes
    return np.empty(m_max), np.empty(m_max, dtype=np.int32), np.empty(m_max), np.empty(m_max)


@njit(cache=True, parallel=True)
def _crossings_kernel(xyz, direction, energy_mev, decay_time_ns, vane_cos, vane_sin, r_min, r_max, half_height, radius_m_per_mev, ns_per_rad_per_mev, offsets, block, fill):
    """Count the vane crossings of each positron, and with ``fill`` record them from ``offsets`` on.

    Returns the counts and the hits' vane, time [ns], radius [m] and height [m] (empty without ``fill``).
    """
    n = energy_mev.size
    counts = np.zeros(n, dtype=np.int64)
    total = offsets[n] if fill else 0
    hit_vane = np.empty(total, dtype=np.int32)
    hit_time = np.empty(total)
    hit_r = np.empty(total)
    hit_y = np.empty(total)
    n_blocks = (n + block - 1) // block
    for b in prange(n_blocks):
        alpha, vane, r_hit, y_hit = _crossing_buffers(vane_cos.size)
        n_angles = alpha.size if fill else 0
        for i in range(b * block, min(n, (b + 1) * block)):
            m = _track_crossings(
                xyz[i, 0],
                xyz[i, 1],
                xyz[i, 2],
                direction[i, 0],
                direction[i, 1],
                direction[i, 2],
                energy_mev[i],
                vane_cos,
                vane_sin,
                r_min,
                r_max,
                half_height,
                radius_m_per_mev,
                alpha,
                vane,
                r_hit,
                y_hit,
                n_angles,
            )
            counts[i] = m
            if fill:
                ns_per_rad = ns_per_rad_per_mev * energy_mev[i]
                for j in range(m):
                    o = offsets[i] + j
                    hit_vane[o] = vane[j]
                    hit_time[o] = decay_time_ns[i] + alpha[j] * ns_per_rad
                    hit_r[o] = r_hit[j]
                    hit_y[o] = y_hit[j]
    return counts, hit_vane, hit_time, hit_r, hit_y


def _as_array(name, value, shape_tail, n=None):
    arr = np.ascontiguousarray(value, dtype=np.float64)
    if arr.ndim != 1 + len(shape_tail) or arr.shape[1:] != shape_tail or (n is not None and arr.shape[0] != n):
        expected = ("n" if n is None else str(n),) + tuple(map(str, shape_tail))
        raise InputError(f"vane_hits: {name} expected shape ({', '.join(expected)}{',' if not shape_tail else ''}), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"vane_hits: {name} has non-finite values")
    return arr


def vane_hits(decay_xyz_m, direction, energy_mev, decay_time_ns, geometry: VaneGeometry = VaneGeometry()) -> VaneHits:
    """Propagate decay positrons on their helices and record the vane planes they cross.

    Parameters
    ----------
    decay_xyz_m : (n, 3) decay points [m], ring axes (Y vertical).
    direction : (n, 3) unit momentum directions.
    energy_mev : (n,) positron energies [MeV] (= momentum, m_e neglected).
    decay_time_ns : (n,) decay times after injection [ns].
    geometry : the vane tracker.

    A positron is followed until it has turned by 2π, leaves |y| > half_height, or reaches the
    inner support r = r_min; a decay point at |y| > half_height or r < r_min gives no crossings.
    """
    xyz = _as_array("decay_xyz_m", decay_xyz_m, (3,))
    n = xyz.shape[0]
    dirs = _as_array("direction", direction, (3,), n)
    energy = _as_array("energy_mev", energy_mev, (), n)
    t0 = _as_array("decay_time_ns", decay_time_ns, (), n)
    if np.any(np.abs(np.sum(dirs * dirs, axis=1) - 1.0) > 1e-6):
        raise InputError("vane_hits: direction expected unit vectors (|d| = 1 within 1e-6)")
    if np.any(energy <= 0.0):
        raise InputError("vane_hits: energy_mev expected positive values")
    g = geometry
    args = (xyz, dirs, energy, t0, *g.unit_vectors(), g.r_min_m, g.r_max_m, g.half_height_m, g.radius_m_per_mev, g.flight_ns_per_rad_per_mev)
    offsets = np.zeros(n + 1, dtype=np.int64)
    counts = _crossings_kernel(*args, offsets, _BLOCK, False)[0]
    np.cumsum(counts, out=offsets[1:])
    _, hit_vane, hit_time, hit_r, hit_y = _crossings_kernel(*args, offsets, _BLOCK, True)
    has = counts > 0
    first_time = np.full(n, np.nan)
    first_time[has] = hit_time[offsets[:-1][has]]
    first_vane = np.full(n, -1, dtype=np.int32)
    first_vane[has] = hit_vane[offsets[:-1][has]]
    return VaneHits(
        n_vanes=counts.astype(np.int32),
        first_time_ns=first_time,
        first_vane=first_vane,
        hemisphere=np.where(dirs[:, 1] >= 0.0, 1, -1).astype(np.int8),
        vertical_angle_rad=np.arctan2(dirs[:, 1], np.hypot(dirs[:, 0], dirs[:, 2])),
        energy_mev=energy,
        decay_time_ns=t0,
        hit_offsets=offsets,
        hit_vane=hit_vane,
        hit_time_ns=hit_time,
        hit_r_m=hit_r,
        hit_y_m=hit_y,
    )


@njit(cache=True, inline="always")
def smeared_momentum(energy_mev, momentum_resolution, z_momentum):
    """Reconstructed momentum [MeV]: the energy with the relative Gaussian resolution (``z_momentum`` a standard normal)."""
    return energy_mev * (1.0 + momentum_resolution * z_momentum)


@njit(cache=True, error_model="numpy")
def track_response(
    hit_time_ns,
    hit_vane,
    u_detect,
    decay_time_ns,
    energy_mev,
    vertical_angle_rad,
    z_momentum,
    z_angle,
    efficiency,
    readout_window_ns,
    min_vanes,
    time_bin_ns,
    momentum_resolution,
    angle_resolution_rad,
):
    """Response and reconstruction of one track (the model of :func:`reconstruct`).

    Crossing k (times ``hit_time_ns`` [ns] in path order, vanes ``hit_vane``) is detected if
    ``u_detect[k]`` < ``efficiency`` and 0 ≤ t < ``readout_window_ns``; ``z_momentum``, ``z_angle`` are
    standard normals. Returns (detected hits, vane of the first detected hit or −1, reconstructed
    momentum [MeV], decay time [ns] and vertical angle [rad]); the last three are NaN unless at least
    ``min_vanes`` hits are detected.
    """
    n_detected = 0
    first_vane = -1
    first_ns = math.nan
    for k in range(hit_time_ns.size):
        t = hit_time_ns[k]
        if u_detect[k] < efficiency and t >= 0.0 and t < readout_window_ns:
            if n_detected == 0:
                first_vane, first_ns = hit_vane[k], t
            n_detected += 1
    if n_detected < min_vanes:
        return n_detected, first_vane, math.nan, math.nan, math.nan
    momentum = smeared_momentum(energy_mev, momentum_resolution, z_momentum)
    # true flight time is α E/(eBc²); the fitted track has the same α and the reconstructed p
    flight_reco_ns = (first_ns - decay_time_ns) * momentum / energy_mev
    binned_ns = time_bin_ns * (math.floor(first_ns / time_bin_ns) + 0.5)
    return n_detected, first_vane, momentum, binned_ns - flight_reco_ns, vertical_angle_rad + angle_resolution_rad * z_angle


@njit(cache=True)
def _reconstruct_kernel(offsets, hit_time_ns, hit_vane, u_detect, decay_time_ns, energy_mev, vertical_angle_rad, z_momentum, z_angle, settings):
    """Apply :func:`track_response` to every track; ``settings`` are its arguments from ``efficiency`` on."""
    n = energy_mev.size
    n_detected = np.empty(n, dtype=np.int32)
    first_vane = np.empty(n, dtype=np.int32)
    momentum, time_ns, angle = np.empty(n), np.empty(n), np.empty(n)
    for i in range(n):
        a, b = offsets[i], offsets[i + 1]
        n_detected[i], first_vane[i], momentum[i], time_ns[i], angle[i] = track_response(
            hit_time_ns[a:b], hit_vane[a:b], u_detect[a:b], decay_time_ns[i], energy_mev[i], vertical_angle_rad[i], z_momentum[i], z_angle[i], *settings
        )
    return n_detected, first_vane, momentum, time_ns, angle


def reconstruct(hits: VaneHits, geometry: VaneGeometry, seed) -> VaneTracks:
    """Detector response and track reconstruction of ``vane_hits`` output (:func:`track_response` per track).

    Each crossing is detected with probability ``efficiency`` if it falls in the readout window
    [0, readout_window_ns); a track needs ``min_vanes`` detected hits. Momentum and vertical angle are
    smeared with Gaussian resolutions. The decay time is the first detected hit's time, quantised to
    the centre of its ``time_bin_ns`` bin (bin edges at multiples of the bin from injection [U]), minus the flight time α·p_reco/(eBc²) from the decay to
    that hit, with the turning angle α of the fitted track (its error, from the ~mm spread of the
    decay vertex about the orbit, is neglected [U]). ``seed`` is anything ``numpy.random.default_rng``
    takes; the same seed gives identical tracks. The 200–275 MeV window is applied in analysis.
    """
    g = geometry
    rng = np.random.default_rng(seed)
    n = hits.n_vanes.size
    u_detect = rng.random(hits.hit_offsets[-1])
    z_momentum = rng.standard_normal(n)
    z_angle = rng.standard_normal(n)
    n_detected, first_vane, momentum, time_ns, angle = _reconstruct_kernel(
        hits.hit_offsets,
        hits.hit_time_ns,
        hits.hit_vane,
        u_detect,
        hits.decay_time_ns,
        hits.energy_mev,
        hits.vertical_angle_rad,
        z_momentum,
        z_angle,
        (g.efficiency, g.readout_window_ns, g.min_vanes, g.time_bin_ns, g.momentum_resolution, g.vertical_angle_resolution_rad),
    )
    accepted = n_detected >= g.min_vanes
    return VaneTracks(
        accepted=accepted,
        momentum_mev=momentum,
        time_ns=time_ns,
        hemisphere=np.where(accepted, np.where(angle >= 0.0, 1, -1), 0).astype(np.int8),
        vertical_angle_rad=angle,
        n_vanes=n_detected,
        first_vane=first_vane,
    )
