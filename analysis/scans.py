"""Start-time and end-time scans of ω_a with the allowed statistical band.

Fits over nested windows share data: the later-start (or earlier-end) fit uses a subset of the
reference fit's bins, so the difference of two efficient estimates has variance
σ_i² − σ_0² (the subset's variance minus the superset's). A scan point is consistent when
|ω_i − ω_0| is within a few √|σ_i² − σ_0²|; a systematic drift (an unmodelled early-time effect)
shows as points outside the band. Points after the first start from the previous point's values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.blinding import Blinder
from analysis.fitting import FitResult, fit_wiggle
from ringsim.errors import ConfigError


@dataclass(frozen=True)
class ScanResult:
    """ω_a versus the window start (or end).

    Attributes
    ----------
    kind : str
        ``"start"`` or ``"end"``.
    times_us : numpy.ndarray
        Scanned start (or end) times in μs; the first is the reference.
    omega_a, omega_a_err : numpy.ndarray
        ω_a and its error in rad/μs (blinded when ``blinded``).
    band : numpy.ndarray
        Allowed statistical deviation √|σ_i² − σ_0²| from the reference in rad/μs.
    chi2, ndf : numpy.ndarray
        Fit quality of each point.
    blinded : bool
        Whether ω_a carries the blinding offset (differences do not).
    """

    kind: str
    times_us: np.ndarray
    omega_a: np.ndarray
    omega_a_err: np.ndarray
    band: np.ndarray
    chi2: np.ndarray
    ndf: np.ndarray
    blinded: bool

    @property
    def deviation(self) -> np.ndarray:
        """ω_i − ω_0 in rad/μs."""
        return self.omega_a - self.omega_a[0]

    def to_dict(self) -> dict:
        """JSON-able dictionary (times in μs, frequencies in rad/μs)."""
        return {
            "kind": self.kind,
            "times_us": self.times_us.tolist(),
            "omega_a": self.omega_a.tolist(),
            "omega_a_err": self.omega_a_err.tolist(),
            "band": self.band.tolist(),
            "chi2": self.chi2.tolist(),
            "ndf": self.ndf.tolist(),
            "blinded": self.blinded,
        }


def _scan(kind: str, counts, edges_us, times_us, fixed_edge_us: float, blinder: Blinder | None, fit_kwargs: dict) -> ScanResult:
    times = np.asarray(times_us, dtype=float).ravel()
    if times.size < 2 or not np.all(np.isfinite(times)):
        raise ConfigError(f"{kind}-time scan: need at least two finite times, got {times_us!r}")
    fits: list[FitResult] = []
    start_values = fit_kwargs.pop("start", None)
    for t in times:
        window = {"start_us": t, "end_us": fixed_edge_us} if kind == "start" else {"start_us": fixed_edge_us, "end_us": t}
        fit = fit_wiggle(counts, edges_us, start=start_values, blinder=blinder, **window, **fit_kwargs)
        fits.append(fit)
        start_values = {k: v for k, v in fit.params.items() if k not in fit.fixed}
    omega = np.array([f.omega_a for f in fits])
    err = np.array([f.omega_a_err for f in fits])
    return ScanResult(
        kind=kind,
        times_us=times,
        omega_a=omega,
        omega_a_err=err,
        band=np.sqrt(np.abs(err**2 - err[0] ** 2)),
        chi2=np.array([f.chi2 for f in fits]),
        ndf=np.array([f.ndf for f in fits]),
        blinded=blinder is not None,
    )


def start_time_scan(counts, edges_us, starts_us, *, end_us: float, blinder: Blinder | None = None, **fit_kwargs) -> ScanResult:
    """Fit with each start time of ``starts_us`` (the first is the reference) and a fixed end.

    ``fit_kwargs`` go to :func:`analysis.fitting.fit_wiggle` (model, omega_ref_rad_per_us,
    tau_guess_us, variance, loss, frequencies_mhz, fixed, method, start); with ``blinder`` every
    fit is blinded (a fixed or start R_ppm is a blinded R) and the reported ω_a are blinded.
    """
    return _scan("start", counts, edges_us, starts_us, end_us, blinder, dict(fit_kwargs))


def end_time_scan(counts, edges_us, ends_us, *, start_us: float, blinder: Blinder | None = None, **fit_kwargs) -> ScanResult:
    """Fit with each end time of ``ends_us`` (the first is the reference) and a fixed start.

    See :func:`start_time_scan`.
    """
    return _scan("end", counts, edges_us, ends_us, start_us, blinder, dict(fit_kwargs))
