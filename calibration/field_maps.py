"""Magnetic-field data: probe layouts, a synthetic data set, its file format, multipole maps in time.

Measurement scheme (docs/physics.md §4; Fermilab as built, J-PARC as a simple documented version):

- **Fermilab.** A trolley carrying 17 NMR probes (one at the centre, 4 at r = 17.5 mm, 12 at
  r = 35 mm: all within the r₀ = 45 mm aperture) maps the storage region around the ring every few
  days. Between maps, 378 fixed probes in the vacuum-chamber walls (above and below the storage
  region, y = ±77 mm) at 72 azimuthal stations (45 stations of 6 probes, 27 of 4) track the drift
  of the dipole and of the two quadrupoles. A calibration probe (spherical water sample at T_r,
  measuring ω̃'_p(T_r) itself) is compared with each trolley probe at one spot, giving each probe's
  offset.
- **J-PARC.** The solenoid has no trolley rail: a mapping probe array (the same 17-probe pattern
  scaled to the 30 mm storage region) on a rotating arm scans the storage region at fixed azimuths
  before and after the run (the magnet is not opened in between), and 48 fixed probes (12 stations
  of 4, at y = ±45 mm outside the storage region) track the drift in between.

Field values are frequencies: the file holds each NMR reading as an offset in Hz from the nominal
``reference_hz`` = ω̃'_p(T_r)/2π at the nominal field; the analysis works in ppb of that reference.
The 2-D multipole expansion about the storage orbit (x radial, y vertical, z = (x + iy)/r₀) is
B(r, θ) = Σ_k (r/r₀)^k [a_k cos kθ + b_k sin kθ] = Σ_k a_k Re z^k + b_k Im z^k, coefficients in the
order (a₀, a₁, b₁, a₂, b₂, …).

File format: compressed ``.npz`` (numpy), one array per quantity plus a JSON string of metadata. The
data are a few dense rectangular arrays (maps × azimuths × probes, times × fixed probes) read whole,
not per-event records, so a ROOT tree would only flatten them; npz keeps shapes and dtypes, is read
without pickling (``allow_pickle=False``), and keeps a sample well under 1 MB.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from calibration.larmor import omega_p_tilde_rad_per_s
from ringsim.errors import ConfigError, InputError

__all__ = [
    "FieldAnalysis",
    "FieldDataset",
    "ProbeLayout",
    "analyze_field",
    "evaluate_multipoles",
    "fit_multipoles",
    "load_field_dataset",
    "multipole_basis",
    "probe_layout",
    "save_field_dataset",
    "synthetic_field_dataset",
    "zero_mean_drift",
]

DAY_S = 86_400.0
TRACKED = 3  # the fixed probes track (a₀, a₁, b₁)


def multipole_basis(x_m, y_m, r0_m: float, order: int) -> np.ndarray:
    """Basis (1, Re z, Im z, …, Re z^K, Im z^K), z = (x + iy)/r₀, shape (…, 2K + 1)."""
    if not (isinstance(order, (int, np.integer)) and order >= 0):
        raise ConfigError(f"order: expected a multipole order >= 0, got {order!r}")
    if not (math.isfinite(r0_m) and r0_m > 0.0):
        raise ConfigError(f"r0_m: expected a positive reference radius in m, got {r0_m!r}")
    z = (np.asarray(x_m, dtype=float) + 1j * np.asarray(y_m, dtype=float)) / r0_m
    cols = [np.ones(z.shape)]
    power = np.ones(z.shape, dtype=complex)
    for _ in range(order):
        power = power * z
        cols += [power.real, power.imag]
    return np.stack(cols, axis=-1)


def _order_of(n_coeff: int) -> int:
    if n_coeff < 1 or n_coeff % 2 == 0:
        raise InputError(f"multipole coefficients: expected 2K + 1 values (a0, a1, b1, …), got {n_coeff}")
    return (n_coeff - 1) // 2


def evaluate_multipoles(coefficients, x_m, y_m, r0_m: float) -> np.ndarray:
    """B(x, y) = Σ_k a_k Re z^k + b_k Im z^k for coefficients (…, 2K + 1) (any unit; returns the same)."""
    c = np.asarray(coefficients, dtype=float)
    return multipole_basis(x_m, y_m, r0_m, _order_of(c.shape[-1])) @ c


def fit_multipoles(x_m, y_m, values, r0_m: float, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares multipole coefficients from probe readings, and the unit-noise covariance.

    ``values`` has the probes in its last axis (several maps at once are fine). Returns the
    coefficients (…, 2K + 1) and (XᵀX)⁻¹, the covariance per unit reading variance.
    """
    basis = multipole_basis(x_m, y_m, r0_m, order)
    if basis.ndim != 2 or basis.shape[0] <= basis.shape[1]:
        raise InputError(f"fit_multipoles: {basis.shape[0]} probes cannot determine {basis.shape[1]} coefficients")
    unit_cov = np.linalg.inv(basis.T @ basis)
    return np.asarray(values, dtype=float) @ (unit_cov @ basis.T).T, unit_cov


@dataclass(frozen=True)
class ProbeLayout:
    """Where the probes are: mapping probes (x, y), map azimuths, fixed-probe stations and positions."""

    ring: str
    reference_radius_m: float
    probe_x_m: np.ndarray
    probe_y_m: np.ndarray
    map_azimuth_rad: np.ndarray
    station_azimuth_rad: np.ndarray
    fixed_station: np.ndarray
    fixed_x_m: np.ndarray
    fixed_y_m: np.ndarray
    map_interval_days: float | None  # None: maps only at the start and the end of the run


def _seventeen_probes(r_max_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Centre, 4 probes at r_max/2 and 12 at r_max (the Fermilab trolley pattern, r_max = 35 mm)."""
    r = np.concatenate([[0.0], np.full(4, 0.5 * r_max_m), np.full(12, r_max_m)])
    theta = np.concatenate([[0.0], np.radians(np.arange(4) * 90.0), np.radians(np.arange(12) * 30.0)])
    return r * np.cos(theta), r * np.sin(theta)


def probe_layout(ring: str, n_map_azimuths: int = 72) -> ProbeLayout:
    """Return the probe layout of ``"fnal"`` or ``"jparc"`` (see the module docstring)."""
    if not (isinstance(n_map_azimuths, int) and n_map_azimuths >= 4):
        raise ConfigError(f"n_map_azimuths: expected an integer >= 4, got {n_map_azimuths!r}")
    map_az = (np.arange(n_map_azimuths) + 0.5) * 2.0 * math.pi / n_map_azimuths
    if ring == "fnal":
        px, py = _seventeen_probes(0.035)
        n_st = 72
        four = np.isin(np.arange(n_st) % 8, (0, 3, 5))  # 27 stations of 4 probes, 45 of 6: 378 probes
        xs6, xs4, y_f = (-0.025, 0.0, 0.025), (-0.0125, 0.0125), 0.077
        r0, interval = 0.045, 3.0
    elif ring == "jparc":
        px, py = _seventeen_probes(0.028)
        n_st = 12
        four = np.ones(n_st, dtype=bool)
        xs6, xs4, y_f = (), (-0.015, 0.015), 0.045
        r0, interval = 0.030, None
    else:
        raise ConfigError(f"ring: expected 'fnal' or 'jparc', got {ring!r}")
    st_az = (np.arange(n_st) + 0.5) * 2.0 * math.pi / n_st
    station, fx, fy = [], [], []
    for s in range(n_st):
        for x in xs4 if four[s] else xs6:
            for y in (y_f, -y_f):
                station.append(s)
                fx.append(x)
                fy.append(y)
    return ProbeLayout(ring, r0, px, py, map_az, st_az, np.array(station), np.array(fx), np.array(fy), interval)


@dataclass(frozen=True)
class FieldDataset:
    """Field measurements of one run period (frequencies as offsets in Hz from ``reference_hz``).

    Shapes: P mapping probes, A map azimuths, M maps, S stations, F fixed probes, T fixed-probe
    readings, C calibration swaps. Times in s from the start of the run.
    """

    ring: str
    reference_hz: float
    reference_radius_m: float
    temperature_c: float
    codata: int
    run_start_s: float
    run_end_s: float
    probe_x_m: np.ndarray  # (P,)
    probe_y_m: np.ndarray  # (P,)
    map_azimuth_rad: np.ndarray  # (A,)
    map_time_s: np.ndarray  # (M, A): when the map passed each azimuth
    map_offset_hz: np.ndarray  # (M, A, P)
    station_azimuth_rad: np.ndarray  # (S,)
    fixed_station: np.ndarray  # (F,) station index of each fixed probe
    fixed_x_m: np.ndarray  # (F,)
    fixed_y_m: np.ndarray  # (F,)
    fixed_time_s: np.ndarray  # (T,)
    fixed_offset_hz: np.ndarray  # (T, F)
    calib_trolley_offset_hz: np.ndarray  # (C, P) mapping probe at the calibration spot
    calib_probe_offset_hz: np.ndarray  # (C, P) calibration probe at the same spot, same time
    meta: dict = field(default_factory=dict)

    def to_ppb(self, offset_hz) -> np.ndarray:
        """Offsets in Hz → ppb of the reference frequency."""
        return np.asarray(offset_hz, dtype=float) / self.reference_hz * 1e9


_SCALARS = ("reference_hz", "reference_radius_m", "temperature_c", "codata", "run_start_s", "run_end_s")
_ARRAYS = {
    "probe_x_m": ("P",),
    "probe_y_m": ("P",),
    "map_azimuth_rad": ("A",),
    "map_time_s": ("M", "A"),
    "map_offset_hz": ("M", "A", "P"),
    "station_azimuth_rad": ("S",),
    "fixed_station": ("F",),
    "fixed_x_m": ("F",),
    "fixed_y_m": ("F",),
    "fixed_time_s": ("T",),
    "fixed_offset_hz": ("T", "F"),
    "calib_trolley_offset_hz": ("C", "P"),
    "calib_probe_offset_hz": ("C", "P"),
}
_STORED_DTYPES = {"map_offset_hz": np.float32, "fixed_offset_hz": np.float32, "calib_trolley_offset_hz": np.float32, "calib_probe_offset_hz": np.float32, "fixed_station": np.int16}


def save_field_dataset(path: str | os.PathLike, dataset: FieldDataset) -> None:
    """Write a data set to a compressed ``.npz`` (written to a temporary name, then renamed).

    Offsets are stored as float32 (10⁻⁵ Hz resolution at the few-kHz offsets of a ring, far below
    the ppb level); times, positions and the reference frequency as float64.
    """
    from ringsim.io import atomic_output

    meta = {"ring": dataset.ring, **{k: getattr(dataset, k) for k in _SCALARS}, "meta": dataset.meta}
    arrays = {k: np.asarray(getattr(dataset, k), dtype=_STORED_DTYPES.get(k, np.float64)) for k in _ARRAYS}
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, meta_json=np.array(json.dumps(meta)), **arrays)


def load_field_dataset(path: str | os.PathLike) -> FieldDataset:
    """Read a data set written by :func:`save_field_dataset`, checking every key and shape."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            content = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read field data set: {' '.join(str(exc).split())[:120]}") from None
    for key in ("meta_json", *_ARRAYS):
        if key not in content:
            raise InputError(f"{path}: missing key '{key}' of a field data set")
    try:
        meta = json.loads(str(content["meta_json"]))
    except json.JSONDecodeError:
        raise InputError(f"{path}: key 'meta_json': not valid JSON") from None
    for key in ("ring", *_SCALARS):
        if key not in meta:
            raise InputError(f"{path}: key 'meta_json': missing entry '{key}'")
    sizes: dict[str, int] = {}
    arrays = {}
    for key, dims in _ARRAYS.items():
        arr = np.asarray(content[key])
        if arr.ndim != len(dims):
            raise InputError(f"{path}: key '{key}': expected {len(dims)} dimensions {dims}, got shape {arr.shape}")
        for dim, n in zip(dims, arr.shape):
            if sizes.setdefault(dim, n) != n:
                raise InputError(f"{path}: key '{key}': dimension {dim} is {n}, other arrays have {sizes[dim]}")
        if not np.all(np.isfinite(arr)):
            raise InputError(f"{path}: key '{key}': contains non-finite values")
        arrays[key] = arr.astype(np.int64) if key == "fixed_station" else arr.astype(np.float64)
    if arrays["fixed_station"].min() < 0 or arrays["fixed_station"].max() >= sizes["S"]:
        raise InputError(f"{path}: key 'fixed_station': indices must lie in 0..{sizes['S'] - 1}")
    return FieldDataset(
        ring=str(meta["ring"]),
        reference_hz=float(meta["reference_hz"]),
        reference_radius_m=float(meta["reference_radius_m"]),
        temperature_c=float(meta["temperature_c"]),
        codata=int(meta["codata"]),
        run_start_s=float(meta["run_start_s"]),
        run_end_s=float(meta["run_end_s"]),
        meta=dict(meta.get("meta", {})),
        **arrays,
    )


def _periodic_weights(target_rad: np.ndarray, nodes_rad: np.ndarray) -> np.ndarray:
    """Matrix (len(target), len(nodes)) of periodic linear interpolation in azimuth (nodes increasing)."""
    two_pi = 2.0 * math.pi
    nodes = np.asarray(nodes_rad, dtype=float) % two_pi
    order = np.argsort(nodes)
    ext = np.concatenate([nodes[order][-1:] - two_pi, nodes[order], nodes[order][:1] + two_pi])
    idx_ext = np.concatenate([order[-1:], order, order[:1]])
    t = np.asarray(target_rad, dtype=float) % two_pi
    j = np.clip(np.searchsorted(ext, t, side="right") - 1, 0, ext.size - 2)
    frac = (t - ext[j]) / (ext[j + 1] - ext[j])
    w = np.zeros((t.size, nodes.size))
    np.add.at(w, (np.arange(t.size), idx_ext[j]), 1.0 - frac)
    np.add.at(w, (np.arange(t.size), idx_ext[j + 1]), frac)
    return w


def zero_mean_drift(layout: ProbeLayout, run_s: float, amplitude_ppb: float, rng: np.random.Generator) -> Callable[[np.ndarray], np.ndarray]:
    """Return a drift model whose average over [0, run_s] vanishes: δ(t, station) = Σ_j A_j sin(2πjt/run + φ_j).

    Each station gets three harmonics of the run length in a₀ (rms ≈ ``amplitude_ppb``) and a tenth
    of that in a₁ and b₁, plus a common a₀ term. Returns δ(t_s) → (T, S, 3) in ppb.
    """
    n_st = layout.station_azimuth_rad.size
    harmonics = np.arange(1, 4)
    amp = rng.normal(0.0, amplitude_ppb / math.sqrt(6.0), (n_st, TRACKED, harmonics.size)) * np.array([1.0, 0.1, 0.1])[None, :, None]
    common = rng.normal(0.0, amplitude_ppb / math.sqrt(3.0), harmonics.size)
    phase = rng.uniform(0.0, 2.0 * math.pi, (n_st, TRACKED, harmonics.size))
    phase_c = rng.uniform(0.0, 2.0 * math.pi, harmonics.size)

    def drift(t_s):
        arg = 2.0 * math.pi * np.asarray(t_s, dtype=float)[:, None] * harmonics[None, :] / run_s  # (T, H)
        out = np.einsum("sch,tsch->tsc", amp, np.sin(arg[:, None, None, :] + phase[None]))
        out[:, :, 0] += (np.sin(arg + phase_c) @ common)[:, None]
        return out

    return drift


def _static_multipoles_ppb(cfg, layout: ProbeLayout, order: int) -> np.ndarray:
    """Return the static multipoles (A, 2K + 1) in ppb of the configured field: focusing gradient, perturbations."""
    n_coeff = 2 * order + 1
    static = np.zeros((layout.map_azimuth_rad.size, n_coeff))
    r0 = layout.reference_radius_m
    if cfg.ring.focusing == "magnetic":
        static[:, 1] += -cfg.ring.field_index * r0 / cfg.ring.radius_m * 1e9  # B_y = B₀(1 − n x/R₀)
    pert = cfg.perturbations
    scale = r0 / pert.reference_radius_m
    # ringsim: B_y = B₀ Σ (r/r₀')^k [b_k cos kθ − a_k sin kθ] (normal b_k, skew a_k, ppm)
    for k, b in enumerate(pert.normal_ppm, start=1):
        if k <= order:
            static[:, 2 * k - 1] += b * 1e3 * scale**k
    for k, a in enumerate(pert.skew_ppm, start=1):
        if k <= order:
            static[:, 2 * k] += -a * 1e3 * scale**k
    static[:, 0] += pert.azimuthal_ppm * 1e3 * np.cos(pert.azimuthal_harmonic * layout.map_azimuth_rad)
    return static


def synthetic_field_dataset(
    cfg,
    *,
    layout: ProbeLayout | None = None,
    run_days: float = 9.0,
    order: int = 4,
    extra_static_ppb=None,
    drift: Callable[[np.ndarray], np.ndarray] | None = None,
    drift_ppb: float = 300.0,
    map_duration_h: float = 2.0,
    fixed_interval_s: float = 7200.0,
    trolley_noise_ppb: float = 15.0,
    fixed_noise_ppb: float = 20.0,
    calibration_offset_rms_ppb: float = 30.0,
    calibration_noise_ppb: float = 10.0,
    n_calibration: int = 8,
    seed: int = 0,
    codata_edition: int = 2018,
) -> FieldDataset:
    """Return a synthetic field data set of a run of the configured ring (see the module docstring).

    The true field is B₀[1 + (static + drift)·1e-9] with the static multipoles of the configuration
    (magnetic focusing gradient, ``perturbations``) plus ``extra_static_ppb`` (A, 2K + 1) on the map
    azimuths, and a drift of (a₀, a₁, b₁) per fixed-probe station (``drift(t_s) → (T, S, 3)`` in ppb;
    default :func:`zero_mean_drift`, whose average over the run vanishes, so the run-averaged field is
    the configured one) interpolated linearly in azimuth between stations. Every mapping probe has a
    calibration offset (rms ``calibration_offset_rms_ppb``); readings carry Gaussian noise.
    ``meta["synthetic_truth"]`` keeps what was injected, for tests.
    """
    layout = layout or probe_layout(cfg.ring.name)
    rng = np.random.default_rng(seed)
    run_s = float(run_days) * DAY_S
    if not run_s > 0.0:
        raise ConfigError(f"run_days: expected a positive duration, got {run_days!r}")
    reference_hz = omega_p_tilde_rad_per_s(cfg.ring.field_t, codata_edition, cfg.tracking.temperature_c) / (2.0 * math.pi)
    n_az, n_coeff = layout.map_azimuth_rad.size, 2 * order + 1
    static = _static_multipoles_ppb(cfg, layout, order)
    if extra_static_ppb is not None:
        extra = np.asarray(extra_static_ppb, dtype=float)
        if extra.shape != static.shape:
            raise InputError(f"extra_static_ppb: expected shape {static.shape} (map azimuths, coefficients), got {extra.shape}")
        static = static + extra
    drift = drift or zero_mean_drift(layout, run_s, drift_ppb, rng)
    map_to_station = _periodic_weights(layout.map_azimuth_rad, layout.station_azimuth_rad)  # (A, S)
    station_to_map = _periodic_weights(layout.station_azimuth_rad, layout.map_azimuth_rad)  # (S, A)

    if layout.map_interval_days is None:
        map_start = np.array([0.0, run_s])
    else:
        map_start = np.arange(0.0, run_s + 1.0, layout.map_interval_days * DAY_S)
    map_time = map_start[:, None] + layout.map_azimuth_rad[None, :] / (2.0 * math.pi) * map_duration_h * 3600.0
    n_maps = map_start.size

    def field_coeffs_at_maps(times_ma: np.ndarray) -> np.ndarray:
        d = drift(times_ma.reshape(-1)).reshape(n_maps, n_az, -1, TRACKED)  # (M, A, S, 3) at each map time
        d_az = np.einsum("as,masc->mac", map_to_station, d)
        coeffs = np.broadcast_to(static, (n_maps, n_az, n_coeff)).copy()
        coeffs[:, :, :TRACKED] += d_az
        return coeffs

    probe_basis = multipole_basis(layout.probe_x_m, layout.probe_y_m, layout.reference_radius_m, order)  # (P, K)
    true_map_ppb = field_coeffs_at_maps(map_time) @ probe_basis.T  # (M, A, P)
    offsets_ppb = rng.normal(0.0, calibration_offset_rms_ppb, probe_basis.shape[0])
    map_ppb = true_map_ppb + offsets_ppb + rng.normal(0.0, trolley_noise_ppb, true_map_ppb.shape)

    fixed_time = np.arange(-fixed_interval_s, run_s + map_duration_h * 3600.0 + 2.0 * fixed_interval_s, fixed_interval_s)
    static_st = station_to_map @ static  # (S, K)
    d_fixed = drift(fixed_time)  # (T, S, 3)
    coeff_fixed = np.broadcast_to(static_st, (fixed_time.size, *static_st.shape)).copy()
    coeff_fixed[:, :, :TRACKED] += d_fixed
    fb = multipole_basis(layout.fixed_x_m, layout.fixed_y_m, layout.reference_radius_m, order)  # (F, K)
    fixed_ppb = np.einsum("tfk,fk->tf", coeff_fixed[:, layout.fixed_station, :], fb)
    fixed_ppb += rng.normal(0.0, fixed_noise_ppb, fixed_ppb.shape)

    spot = rng.uniform(-50.0, 50.0, (n_calibration, probe_basis.shape[0]))  # field at the calibration spot, ppb
    calib_probe = spot + rng.normal(0.0, calibration_noise_ppb, spot.shape)
    calib_trolley = spot + offsets_ppb + rng.normal(0.0, calibration_noise_ppb, spot.shape)

    to_hz = reference_hz * 1e-9
    return FieldDataset(
        ring=cfg.ring.name,
        reference_hz=reference_hz,
        reference_radius_m=layout.reference_radius_m,
        temperature_c=cfg.tracking.temperature_c,
        codata=int(codata_edition),
        run_start_s=0.0,
        run_end_s=run_s,
        probe_x_m=layout.probe_x_m,
        probe_y_m=layout.probe_y_m,
        map_azimuth_rad=layout.map_azimuth_rad,
        map_time_s=map_time,
        map_offset_hz=map_ppb * to_hz,
        station_azimuth_rad=layout.station_azimuth_rad,
        fixed_station=layout.fixed_station,
        fixed_x_m=layout.fixed_x_m,
        fixed_y_m=layout.fixed_y_m,
        fixed_time_s=fixed_time,
        fixed_offset_hz=fixed_ppb * to_hz,
        calib_trolley_offset_hz=calib_trolley * to_hz,
        calib_probe_offset_hz=calib_probe * to_hz,
        meta={
            "source": "calibration.field_maps.synthetic_field_dataset",
            "seed": seed,
            "field_t": cfg.ring.field_t,
            "synthetic_truth": {
                "static_ppb": static.tolist(),
                "calibration_offsets_ppb": offsets_ppb.tolist(),
                "noise_ppb": {"trolley": trolley_noise_ppb, "fixed": fixed_noise_ppb, "calibration": calibration_noise_ppb},
            },
        },
    )


@dataclass(frozen=True)
class FieldAnalysis:
    """Calibrated multipole maps and fixed-probe drift tracking of a data set (all values in ppb).

    Attributes
    ----------
    dataset : FieldDataset
    order : int
        Highest multipole order K of the map fits.
    calibration_offset_ppb, calibration_offset_err_ppb : numpy.ndarray
        Offset of each mapping probe relative to the calibration probe, and its error (P,).
    map_multipoles_ppb : numpy.ndarray
        Calibrated multipoles of every map at every azimuth (M, A, 2K + 1).
    station_tracking_ppb : numpy.ndarray
        (a₀, a₁, b₁) seen by each fixed-probe station at every reading (T, S, 3).
    trolley_noise_ppb, fixed_noise_ppb : float
        Reading noise estimated from the fit residuals.
    """

    dataset: FieldDataset
    order: int
    calibration_offset_ppb: np.ndarray
    calibration_offset_err_ppb: np.ndarray
    map_multipoles_ppb: np.ndarray
    station_tracking_ppb: np.ndarray
    trolley_noise_ppb: float
    fixed_noise_ppb: float

    def _stations_at(self, t_flat: np.ndarray) -> np.ndarray:
        """Station tracking (n, S, 3) interpolated linearly in time to ``t_flat`` (n,)."""
        ds = self.dataset
        if np.any(t_flat < ds.fixed_time_s[0]) or np.any(t_flat > ds.fixed_time_s[-1]):
            raise InputError(f"time: outside the fixed-probe record {ds.fixed_time_s[0]:.0f}..{ds.fixed_time_s[-1]:.0f} s")
        i = np.clip(np.searchsorted(ds.fixed_time_s, t_flat, side="right") - 1, 0, ds.fixed_time_s.size - 2)
        frac = ((t_flat - ds.fixed_time_s[i]) / (ds.fixed_time_s[i + 1] - ds.fixed_time_s[i]))[:, None, None]
        return self.station_tracking_ppb[i] * (1.0 - frac) + self.station_tracking_ppb[i + 1] * frac

    def tracking_at(self, t_s) -> np.ndarray:
        """Fixed-probe (a₀, a₁, b₁) at every map azimuth at each time of the 1-D ``t_s`` → (N, A, 3)."""
        ds = self.dataset
        st = self._stations_at(np.atleast_1d(np.asarray(t_s, dtype=float)))
        return np.einsum("as,nsc->nac", _periodic_weights(ds.map_azimuth_rad, ds.station_azimuth_rad), st)

    def multipoles_at(self, t_s) -> np.ndarray:
        """Return the multipoles (N, A, 2K + 1) at the times ``t_s`` (N,).

        The two bracketing maps, each carried to t by the fixed probes' change of (a₀, a₁, b₁), are
        blended linearly in time (per azimuth, with the time the map passed it); outside the maps,
        the nearest map carried.
        """
        ds = self.dataset
        t = np.atleast_1d(np.asarray(t_s, dtype=float))
        maps = self.map_multipoles_ppb
        n_maps, n_az = maps.shape[0], maps.shape[1]
        w_az = _periodic_weights(ds.map_azimuth_rad, ds.station_azimuth_rad)
        ref = np.einsum("as,masc->mac", w_az, self._stations_at(ds.map_time_s.reshape(-1)).reshape(n_maps, n_az, -1, TRACKED))
        now = self.tracking_at(t)  # (N, A, 3)
        a_idx = np.arange(n_az)
        j = np.stack([np.searchsorted(ds.map_time_s[:, a], t, side="right") for a in a_idx], axis=1)  # (N, A)
        lo = np.clip(j - 1, 0, n_maps - 1)
        hi = np.clip(j, 0, n_maps - 1)
        span = ds.map_time_s[hi, a_idx] - ds.map_time_s[lo, a_idx]
        w_hi = np.where(hi > lo, (t[:, None] - ds.map_time_s[lo, a_idx]) / np.where(hi > lo, span, 1.0), 0.0)
        carried_lo = maps[lo, a_idx]
        carried_hi = maps[hi, a_idx]
        carried_lo[..., :TRACKED] += now - ref[lo, a_idx]
        carried_hi[..., :TRACKED] += now - ref[hi, a_idx]
        return carried_lo * (1.0 - w_hi)[..., None] + carried_hi * w_hi[..., None]


def _station_tracking(ds: FieldDataset, fixed_ppb: np.ndarray) -> tuple[np.ndarray, float]:
    """(a₀, a₁, b₁) per station and reading from its fixed probes; noise from the time-varying residuals."""
    n_st = ds.station_azimuth_rad.size
    out = np.zeros((fixed_ppb.shape[0], n_st, TRACKED))
    resid_ss, dof = 0.0, 0
    for s in range(n_st):
        sel = np.flatnonzero(ds.fixed_station == s)
        if sel.size < TRACKED:
            raise InputError(f"fixed probes: station {s} has {sel.size} probes, need >= {TRACKED} to track a0, a1, b1")
        basis = multipole_basis(ds.fixed_x_m[sel], ds.fixed_y_m[sel], ds.reference_radius_m, 1)
        coeffs, *_ = np.linalg.lstsq(basis, fixed_ppb[:, sel].T, rcond=None)
        out[:, s, :] = coeffs.T
        resid = fixed_ppb[:, sel] - coeffs.T @ basis.T
        resid -= resid.mean(axis=0)  # the static field beyond the linear terms is constant in time
        resid_ss += float(np.sum(resid**2))
        dof += (sel.size - TRACKED) * (fixed_ppb.shape[0] - 1)
    noise = math.sqrt(resid_ss / dof) if dof > 0 else float("nan")
    return out, noise


def analyze_field(dataset: FieldDataset, order: int = 4) -> FieldAnalysis:
    """Calibrate the mapping probes, fit the multipole maps, and track the stations with the fixed probes."""
    ds = dataset
    diff = ds.to_ppb(ds.calib_trolley_offset_hz - ds.calib_probe_offset_hz)  # (C, P)
    if diff.shape[0] < 2:
        raise InputError("calibration: need at least 2 calibration swaps per probe to estimate the offset error")
    offset = diff.mean(axis=0)
    offset_err = diff.std(axis=0, ddof=1) / math.sqrt(diff.shape[0])
    calibrated = ds.to_ppb(ds.map_offset_hz) - offset
    coeffs, _ = fit_multipoles(ds.probe_x_m, ds.probe_y_m, calibrated, ds.reference_radius_m, order)
    resid = calibrated - coeffs @ multipole_basis(ds.probe_x_m, ds.probe_y_m, ds.reference_radius_m, order).T
    n_p = ds.probe_x_m.size
    trolley_noise = math.sqrt(float(np.sum(resid**2)) / (resid.size // n_p * (n_p - coeffs.shape[-1])))
    tracking, fixed_noise = _station_tracking(ds, ds.to_ppb(ds.fixed_offset_hz))
    return FieldAnalysis(ds, order, offset, offset_err, coeffs, tracking, trolley_noise, fixed_noise)
