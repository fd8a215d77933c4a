"""The muon-weighted ω̃'_p = f_calib⟨ω'_p(x, y, φ) × M(x, y, φ)⟩ of a run from its field data.

See docs/physics.md §4; the field-free reference frequencies are in :mod:`calibration.larmor`.
Weighting a multipole map Σ a_k Re z^k + b_k Im z^k (z = (x + iy)/r₀) with the muon distribution needs ⟨Re z^k⟩, ⟨Im z^k⟩; the first and second moments
of M give k ≤ 2 exactly, ⟨x⟩/r₀, ⟨y⟩/r₀, (⟨x²⟩ − ⟨y²⟩)/r₀², 2⟨xy⟩/r₀², and the higher terms are
dropped (O(ppb) for centred beams of a few mm and ppm-level higher multipoles).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from calibration.field_maps import analyze_field, fit_multipoles, multipole_basis
from ringsim.errors import ConfigError, InputError

__all__ = ["BeamMoments", "OmegaPResult", "moment_basis", "omega_p_tilde_from_field", "sample_basis"]


@dataclass(frozen=True)
class BeamMoments:
    """First and second moments of the muon distribution M(x, y) about the storage orbit, with errors.

    Lengths in m (x radial, y vertical); each may be a scalar or an array over the map azimuths for
    an azimuth-dependent M(x, y, φ). Errors are standard errors of the moments.
    """

    x_m: float | np.ndarray
    y_m: float | np.ndarray
    x2_m2: float | np.ndarray
    y2_m2: float | np.ndarray
    xy_m2: float | np.ndarray = 0.0
    x_err_m: float = 0.0
    y_err_m: float = 0.0
    x2_err_m2: float = 0.0
    y2_err_m2: float = 0.0
    xy_err_m2: float = 0.0

    @classmethod
    def from_samples(cls, x_m, y_m, extra_x2_m2: float = 0.0, extra_x2_err_m2: float = 0.0) -> BeamMoments:
        """Moments of samples (x, y) of the muon positions, with the errors of the sample means.

        ``extra_x2_m2`` adds a radial second moment not in the samples (e.g. the betatron width
        when the samples are equilibrium radii x_e), with its error.
        """
        x = np.asarray(x_m, dtype=float)
        y = np.asarray(y_m, dtype=float)
        if x.ndim != 1 or y.shape != x.shape or x.size < 2 or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            raise InputError(f"x_m, y_m: expected two finite 1-D sample arrays of equal length >= 2, got {x.shape}, {y.shape}")
        root_n = math.sqrt(x.size)

        def err(v):
            return float(np.std(v, ddof=1) / root_n)

        return cls(
            x_m=float(x.mean()),
            y_m=float(y.mean()),
            x2_m2=float(np.mean(x**2)) + extra_x2_m2,
            y2_m2=float(np.mean(y**2)),
            xy_m2=float(np.mean(x * y)),
            x_err_m=err(x),
            y_err_m=err(y),
            x2_err_m2=math.hypot(err(x**2), extra_x2_err_m2),
            y2_err_m2=err(y**2),
            xy_err_m2=err(x * y),
        )


def moment_basis(moments: BeamMoments, r0_m: float, order: int) -> np.ndarray:
    """⟨(1, Re z, Im z, …, Re z^K, Im z^K)⟩ over M from its first and second moments, shape (…, 2K + 1).

    Terms of order k ≥ 3 are set to zero (they need third and higher moments).
    """
    m = moments
    parts = [np.asarray(v, dtype=float) for v in (m.x_m, m.y_m, m.x2_m2, m.y2_m2, m.xy_m2)]
    shape = np.broadcast_shapes(*(p.shape for p in parts))
    x, y, x2, y2, xy = (np.broadcast_to(p, shape) for p in parts)
    out = np.zeros((*shape, 2 * order + 1))
    out[..., 0] = 1.0
    if order >= 1:
        out[..., 1], out[..., 2] = x / r0_m, y / r0_m
    if order >= 2:
        out[..., 3], out[..., 4] = (x2 - y2) / r0_m**2, 2.0 * xy / r0_m**2
    return out


def sample_basis(x_m, y_m, r0_m: float, order: int, weights=None) -> np.ndarray:
    """⟨(1, Re z, Im z, …)⟩ over samples of the muon positions, all orders exact (2K + 1,)."""
    basis = multipole_basis(x_m, y_m, r0_m, order)
    return np.average(basis, axis=0, weights=weights)


@dataclass(frozen=True)
class OmegaPResult:
    """Muon-weighted ω̃'_p(T_r) of a run and the uncertainties of its parts.

    Attributes
    ----------
    omega_p_rad_per_s : float
        f_calib⟨ω'_p M⟩: calibrated, muon- and time-weighted, rad/s.
    value_ppb, raw_value_ppb : float
        The weighted field relative to the data set's reference frequency, with and without the
        probe calibration (ppb).
    f_calib, f_calib_err : float
        Calibration factor (1 + value)/(1 + raw) and its error (dimensionless).
    errors_ppb : dict
        ``calibration``, ``trolley`` (map noise), ``fixed_probes`` (drift tracking noise),
        ``muon_weighting`` (beam-moment errors), in ppb.
    mean_multipoles_ppb : numpy.ndarray
        Time- and azimuth-averaged multipoles (2K + 1,), ppb.
    reference_hz, temperature_c, codata : float, float, int
        From the data set.
    """

    omega_p_rad_per_s: float
    value_ppb: float
    raw_value_ppb: float
    f_calib: float
    f_calib_err: float
    errors_ppb: dict
    mean_multipoles_ppb: np.ndarray
    reference_hz: float
    temperature_c: float
    codata: int

    @property
    def total_error_ppb(self) -> float:
        """Quadrature sum of the error contributions in ppb."""
        return math.sqrt(sum(v**2 for v in self.errors_ppb.values()))


def _weighted_ppb(analysis, times_s: np.ndarray, time_weights: np.ndarray, basis: np.ndarray) -> tuple[float, np.ndarray]:
    """Time- and azimuth-averaged field (ppb) for a basis (…, K) and the averaged multipoles (K,)."""
    coeffs = analysis.multipoles_at(times_s)  # (N, A, K)
    mean_coeffs = np.einsum("n,nak->ak", time_weights, coeffs) / time_weights.sum()  # (A, K)
    value = float(np.mean(np.sum(mean_coeffs * basis, axis=-1)))
    return value, mean_coeffs.mean(axis=0)


def omega_p_tilde_from_field(
    dataset,
    moments: BeamMoments,
    fill_time_s=None,
    fill_weight=None,
    order: int = 4,
    n_replicas: int = 24,
    seed: int = 0,
) -> OmegaPResult:
    """Return ω̃'_p(T_r) of a run.

    Calibrated multipole maps, carried in time by the fixed probes, are weighted by the muon
    distribution (uniform in azimuth unless the moments vary with it) and by the fills.

    Parameters
    ----------
    dataset : calibration.field_maps.FieldDataset
        The run's field data.
    moments : BeamMoments
        Moments of M(x, y[, φ]).
    fill_time_s, fill_weight : array_like, optional
        Times of the fills (s from the run start) and their muon counts; default: 96 equally
        weighted fills at the centres of equal intervals of the run.
    order : int
        Highest multipole order fitted to the mapping probes.
    n_replicas : int
        Replicas of the parametric bootstrap that gives the trolley, fixed-probe and calibration
        errors (noise of the estimated size added to the readings; the spread is the error).
    seed : int
        Seed of the bootstrap noise.
    """
    if fill_time_s is None:
        n_fill = 96
        fill_time_s = dataset.run_start_s + (np.arange(n_fill) + 0.5) * (dataset.run_end_s - dataset.run_start_s) / n_fill
    times = np.atleast_1d(np.asarray(fill_time_s, dtype=float))
    weights = np.ones(times.size) if fill_weight is None else np.asarray(fill_weight, dtype=float)
    if weights.shape != times.shape or not (np.all(np.isfinite(weights)) and np.all(weights >= 0.0) and weights.sum() > 0.0):
        raise InputError(f"fill_weight: expected non-negative weights matching fill_time_s {times.shape}, not all zero")
    if not (isinstance(n_replicas, int) and n_replicas >= 2):
        raise ConfigError(f"n_replicas: expected an integer >= 2, got {n_replicas!r}")
    r0 = dataset.reference_radius_m
    basis = moment_basis(moments, r0, order)
    analysis = analyze_field(dataset, order)
    value, mean_coeffs = _weighted_ppb(analysis, times, weights, basis)
    uncalibrated = dataclasses.replace(analysis, map_multipoles_ppb=analysis.map_multipoles_ppb + _offset_multipoles(analysis))
    raw_value, _ = _weighted_ppb(uncalibrated, times, weights, basis)

    rng = np.random.default_rng(seed)
    to_hz = dataset.reference_hz * 1e-9
    diff = dataset.to_ppb(dataset.calib_trolley_offset_hz - dataset.calib_probe_offset_hz)
    spreads = {
        "trolley": ("map_offset_hz", analysis.trolley_noise_ppb),
        "fixed_probes": ("fixed_offset_hz", analysis.fixed_noise_ppb),
        "calibration": ("calib_trolley_offset_hz", diff.std(axis=0, ddof=1)),
    }
    errors = {}
    for name, (key, sigma_ppb) in spreads.items():
        base = getattr(dataset, key)
        values = []
        for _ in range(n_replicas):
            noisy = dataclasses.replace(dataset, **{key: base + rng.normal(0.0, 1.0, base.shape) * sigma_ppb * to_hz})
            values.append(_weighted_ppb(analyze_field(noisy, order), times, weights, basis)[0])
        errors[name] = float(np.std(values, ddof=1))
    # muon weighting: the moments' errors through the averaged multipoles (a₁, b₁, a₂, b₂)
    grad = {"x": mean_coeffs[1] / r0, "y": mean_coeffs[2] / r0} if order >= 1 else {}
    if order >= 2:
        grad.update({"x2": mean_coeffs[3] / r0**2, "y2": -mean_coeffs[3] / r0**2, "xy": 2.0 * mean_coeffs[4] / r0**2})
    m = moments
    sig = {"x": m.x_err_m, "y": m.y_err_m, "x2": m.x2_err_m2, "y2": m.y2_err_m2, "xy": m.xy_err_m2}
    errors["muon_weighting"] = math.sqrt(sum((grad[k] * sig[k]) ** 2 for k in grad))
    f_calib = (1.0 + value * 1e-9) / (1.0 + raw_value * 1e-9)
    return OmegaPResult(
        omega_p_rad_per_s=2.0 * math.pi * dataset.reference_hz * (1.0 + value * 1e-9),
        value_ppb=value,
        raw_value_ppb=raw_value,
        f_calib=f_calib,
        f_calib_err=errors["calibration"] * 1e-9,
        errors_ppb=errors,
        mean_multipoles_ppb=mean_coeffs,
        reference_hz=dataset.reference_hz,
        temperature_c=dataset.temperature_c,
        codata=dataset.codata,
    )


def _offset_multipoles(analysis) -> np.ndarray:
    """Multipoles of the probe calibration offsets: what the maps would show without calibration."""
    ds = analysis.dataset
    coeffs, _ = fit_multipoles(ds.probe_x_m, ds.probe_y_m, analysis.calibration_offset_ppb, ds.reference_radius_m, analysis.order)
    return coeffs
