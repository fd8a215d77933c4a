"""Figures of the calibration layer: a_μ against the SM and other experiments, the new-physics bands
of a Δa_μ, and the fast-rotation x_e distribution (matplotlib, Agg, written atomically as PNG)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from calibration import bsm
from calibration.theory import EXPERIMENTS, SM_PREDICTIONS, AmuValue
from ringsim.io import atomic_output

__all__ = ["bsm_plot", "comparison_plot", "fast_rotation_plot"]

OFFSET = 116_591_000e-11  # the comparison axis shows (a_μ − 116 591 000e-11) in units of 1e-11


def _save(fig: Figure, path) -> None:
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)


def comparison_plot(path, measurement: AmuValue | None = None, experiments=("E821", "FNAL_Run1", "FNAL_Run2_3", "FNAL_final", "WA2025")) -> None:
    """a_μ of the experiments (and ``measurement``, e.g. this run) with the SM predictions as bands.

    Parameters
    ----------
    path : str or os.PathLike
        Output PNG.
    measurement : AmuValue, optional
        An extra point drawn on top (in red).
    experiments : sequence of str
        Keys of :data:`calibration.theory.EXPERIMENTS` to draw.
    """
    points = [EXPERIMENTS[k] for k in experiments] + ([measurement] if measurement is not None else [])
    fig = Figure(figsize=(8.0, 0.55 * len(points) + 2.0))
    ax = fig.subplots()
    colours = {"TI2020": "tab:blue", "TI2025": "tab:green"}
    for key, sm in SM_PREDICTIONS.items():
        lo, hi = (sm.a_mu - sm.a_mu_err - OFFSET) * 1e11, (sm.a_mu + sm.a_mu_err - OFFSET) * 1e11
        ax.axvspan(lo, hi, color=colours.get(key, "grey"), alpha=0.25, label=sm.label)
    for i, p in enumerate(points):
        colour = "tab:red" if (measurement is not None and p is measurement) else "black"
        ax.errorbar((p.a_mu - OFFSET) * 1e11, i, xerr=p.a_mu_err * 1e11, fmt="o", color=colour, capsize=3)
    ax.set_yticks(range(len(points)), [p.label for p in points])
    ax.invert_yaxis()
    ax.set_xlabel("a_μ × 10¹¹ − 116 591 000")
    ax.legend(loc="lower left", fontsize=8)
    _save(fig, path)


def bsm_plot(path, delta: float, delta_err: float, n_sigma: float = 2.0) -> None:
    """The preferred bands of the SPEC §7 models for Δa_μ = ``delta`` ± ``delta_err`` (2σ by default)."""
    fig = Figure(figsize=(13.0, 8.0))
    axes = fig.subplots(2, 3).ravel()
    light = np.logspace(-3, 1, 60)
    bands = [
        (bsm.dark_photon_band(delta, delta_err, light, n_sigma), "log", "log", "dark photon"),
        (bsm.lmu_ltau_band(delta, delta_err, light, n_sigma), "log", "log", "L_μ − L_τ Z'"),
        (bsm.leptoquark_band(delta, delta_err, np.logspace(3, 4.5, 40), n_sigma), "log", "log", "scalar leptoquark S₁"),
        (bsm.alp_band(delta, delta_err, np.linspace(-100.0, -12.0, 60), n_sigma=n_sigma), "linear", "log", "ALP (c_μμ = 1, Λ = 1 TeV)"),
        (bsm.mssm_band(delta, delta_err, np.linspace(5.0, 60.0, 40), n_sigma), "linear", "linear", "MSSM, universal masses"),
        (bsm.dipole_scale_band_gev(delta, delta_err, np.logspace(-6, 0, 40), n_sigma), "log", "log", "dipole operator C/Λ²"),
    ]
    for ax, (band, xscale, yscale, title) in zip(axes, bands):
        finite = band.upper[np.isfinite(band.upper)]
        top = 10.0 * finite.max() if finite.size else 1.0  # an open band (Δa − nσ ≤ 0) is drawn to the top
        ax.fill_between(band.grid, band.lower, np.where(np.isposinf(band.upper), top, band.upper), color="tab:orange", alpha=0.5)
        ax.set_xscale(xscale)
        ax.set_yscale(yscale)
        ax.set_xlabel(band.grid_name)
        ax.set_ylabel(band.name)
        ax.set_title(title, fontsize=10)
    fig.suptitle(f"Δa_μ = ({delta * 1e11:.0f} ± {delta_err * 1e11:.0f}) × 10⁻¹¹, {n_sigma:g}σ bands", fontsize=11)
    _save(fig, path)


def fast_rotation_plot(path, result) -> None:
    """The x_e distribution of a :class:`calibration.fast_rotation.FastRotationResult`, with its moments."""
    fig = Figure(figsize=(7.0, 4.5))
    ax = fig.subplots()
    ax.plot(result.x_e_m * 1e3, result.density_per_m * 1e-3, "-", color="black")
    ax.axhline(0.0, color="grey", lw=0.5)
    ax.set_xlabel("x_e [mm]")
    ax.set_ylabel("density [1/mm]")
    ax.set_title(
        f"fast rotation: ⟨x_e⟩ = {result.mean_m * 1e3:.2f} ± {result.mean_err_m * 1e3:.2f} mm, "
        f"σ = {result.width_m * 1e3:.2f} ± {result.width_err_m * 1e3:.2f} mm",
        fontsize=9,
    )
    _save(fig, path)
