"""ω_a shift between two correlated samples: the building block of systematic studies.

A systematic study analyses the same events twice, nominally and with one change (a gain
correction, a pileup subtraction, a different energy calibration, a subset cut). The two ω_a share
most of their statistical fluctuation, so the uncertainty of the shift is far below either fit
error. Three estimates are offered (``uncertainty``):

- ``"subset"``: one sample is a subset of the other (a cut, a thinning): the superset's estimate is
  efficient, so Var(ω_v − ω_n) = |σ_v² − σ_n²|.
- ``"difference"``: from the bins' differences, through the nominal fit's linear response
  g_b = ∂ω̂/∂n_b (:attr:`FitResult.omega_sensitivity`): Var = Σ_b g_b² V_b, with V_b the variance
  of the change of bin b. Give V_b from the events (each changed event adds its weight² to every
  bin it left or entered; a group of events changed together adds the square of its net change of
  the bin); the default |n_v,b − n_n,b| is exact when events are only added or removed. First
  order in the change: the variation's own response differs by the relative size of the change
  (a subset of fraction f: σ² is low by the factor f), so use ``"subset"`` for large subsets.
- ``"independent"``: uncorrelated samples, σ_v² + σ_n².
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from analysis.fitting import FitResult, window_slice
from ringsim.errors import ConfigError, InputError

UNCERTAINTIES = ("subset", "difference", "independent")


@dataclass(frozen=True)
class OmegaShift:
    """ω_a(variation) − ω_a(nominal) with its uncertainty.

    Attributes
    ----------
    shift, error : float
        Shift and its uncertainty in rad/μs (blinding cancels in the difference).
    shift_ppm, error_ppm : float
        The same relative to the nominal ω_a, in ppm.
    uncertainty : str
        Which estimate was used.
    nominal, variation : FitResult
        The two fits.
    """

    shift: float
    error: float
    shift_ppm: float
    error_ppm: float
    uncertainty: str
    nominal: FitResult
    variation: FitResult

    def to_dict(self) -> dict:
        """JSON-able summary (rad/μs and ppm)."""
        return {
            "shift": self.shift,
            "error": self.error,
            "shift_ppm": self.shift_ppm,
            "error_ppm": self.error_ppm,
            "uncertainty": self.uncertainty,
            "nominal": self.nominal.to_dict(),
            "variation": self.variation.to_dict(),
        }


def _unpack(sample, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    if not isinstance(sample, tuple | list) or len(sample) not in (2, 3):
        raise InputError(f"omega_a_shift: {name} must be (counts, edges_us) or (counts, edges_us, variance)")
    counts = np.asarray(sample[0], dtype=float)
    edges = np.asarray(sample[1], dtype=float)
    variance = None if len(sample) == 2 or sample[2] is None else np.asarray(sample[2], dtype=float)
    return counts, edges, variance


def omega_a_shift(
    nominal,
    variation,
    fit: Callable[..., FitResult],
    *,
    uncertainty: str = "subset",
    difference_variance=None,
) -> OmegaShift:
    """Fit a nominal and a varied sample of the same events and return the ω_a shift.

    Parameters
    ----------
    nominal, variation : tuple
        ``(counts, edges_us)`` or ``(counts, edges_us, variance)`` (variance for least-squares fits).
    fit : callable
        ``fit(counts, edges_us, variance=...)`` → FitResult, e.g.
        ``functools.partial(analysis.fitting.fit_wiggle, model="13", start_us=…, …)``.
    uncertainty : str
        ``"subset"``, ``"difference"`` or ``"independent"`` (module notes).
    difference_variance : array_like, optional
        Variance of the change of each bin (full histogram) for ``"difference"``.

    Raises
    ------
    ConfigError
        Unknown ``uncertainty``.
    InputError
        Samples with different binning, or a difference variance of the wrong shape.
    """
    if uncertainty not in UNCERTAINTIES:
        raise ConfigError(f"omega_a_shift: uncertainty {uncertainty!r} is not one of {', '.join(UNCERTAINTIES)}")
    n_nom, e_nom, v_nom = _unpack(nominal, "nominal")
    n_var, e_var, v_var = _unpack(variation, "variation")
    if e_nom.shape != e_var.shape or not np.allclose(e_nom, e_var, rtol=0.0, atol=1e-9):
        raise InputError("omega_a_shift: nominal and variation must have the same bins")
    fit_nom = fit(n_nom, e_nom, variance=v_nom)
    fit_var = fit(n_var, e_var, variance=v_var)
    shift = fit_var.omega_a - fit_nom.omega_a
    if uncertainty == "subset":
        error = math.sqrt(abs(fit_var.omega_a_err**2 - fit_nom.omega_a_err**2))
    elif uncertainty == "independent":
        error = math.hypot(fit_var.omega_a_err, fit_nom.omega_a_err)
    else:
        change = np.abs(n_var - n_nom) if difference_variance is None else np.asarray(difference_variance, dtype=float)
        if change.shape != n_nom.shape:
            raise InputError(f"omega_a_shift: difference_variance has shape {change.shape}, expected {n_nom.shape}")
        window = window_slice(e_nom, fit_nom.start_us, fit_nom.end_us)
        g = fit_nom.omega_sensitivity
        if g is None:
            raise ConfigError("omega_a_shift: the nominal fit carries no omega_sensitivity; use uncertainty='subset'")
        error = math.sqrt(float(np.sum(g**2 * change[window])))
    scale = 1e6 / fit_nom.omega_a
    return OmegaShift(shift, error, shift * scale, error * scale, uncertainty, fit_nom, fit_var)
