"""Figures of the calibration layer: a_μ against the SM and other experiments, the new-physics bands of a Δa_μ (preferred, or excluded where Δa_μ is compatible with zero; docs/physics.md §7), the world average against each SM prediction, and the fast-rotation x_e distribution (matplotlib, Agg, written atomically as PNG)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from calibration import bsm
from calibration.theory import EXPERIMENTS, SM_PREDICTIONS, AmuValue
from ringsim.io import atomic_output

__all__ = ["PANELS", "bsm_plot", "comparison_plot", "fast_rotation_plot", "world_average_bsm_figure"]

OFFSET = 116_591_000e-11  # the comparison axis shows (a_μ − 116 591 000e-11) in units of 1e-11


def _save(fig: Figure, path, rect=None) -> None:
    fig.tight_layout(rect=rect)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)


def _draw_comparison(ax, points: list[AmuValue], highlight: AmuValue | None = None) -> None:
    """Experiments (and ``highlight``, in red) as points, the SM predictions as bands.

    The x-range spans every experiment and SM band (not ``highlight``: a simulated run's error of
    several ppm would squeeze them onto one line); a highlighted point outside is drawn at the edge
    as an arrow and its tick label says so.
    """
    colours = {"TI2020": "tab:blue", "TI2025": "tab:green"}
    spans = []
    for key, sm in SM_PREDICTIONS.items():
        lo, hi = (sm.a_mu - sm.a_mu_err - OFFSET) * 1e11, (sm.a_mu + sm.a_mu_err - OFFSET) * 1e11
        ax.axvspan(lo, hi, color=colours.get(key, "grey"), alpha=0.25, label=f"{sm.label} (±1σ)")
        spans.append((lo, hi))
    for p in points:
        if p is not highlight:
            spans.append(((p.a_mu - p.a_mu_err - OFFSET) * 1e11, (p.a_mu + p.a_mu_err - OFFSET) * 1e11))
    left, right = min(lo for lo, _ in spans), max(hi for _, hi in spans)
    pad = 0.08 * (right - left)
    left, right = left - pad, right + pad
    labels = []
    for i, p in enumerate(points):
        x, err = (p.a_mu - OFFSET) * 1e11, p.a_mu_err * 1e11
        label = p.label
        if p is highlight and not left <= x <= right:
            edge = left + 0.02 * (right - left) if x < left else right - 0.02 * (right - left)
            ax.plot(edge, i, "<" if x < left else ">", color="tab:red", markersize=9)
            label = f"{p.label}: {x:.0f} ± {err:.0f} (off scale)"
        else:
            ax.errorbar(x, i, xerr=err, fmt="o", color="tab:red" if p is highlight else "black", capsize=3)
        labels.append(label)
    ax.set_xlim(left, right)
    ax.set_yticks(range(len(points)), labels)
    ax.set_ylim(len(points) - 0.5, -0.5)
    ax.set_xlabel("a_μ − 116 591 000 × 10⁻¹¹  [10⁻¹¹]")
    ax.set_title("a_μ: experiments (±1σ) and Standard Model predictions", fontsize=10)
    ax.legend(loc="upper left", fontsize=7)


def comparison_plot(path, measurement: AmuValue | None = None, experiments=("E821", "FNAL_Run1", "FNAL_Run2_3", "FNAL_final", "WA2025")) -> Figure:
    """a_μ of the experiments (and ``measurement``, e.g. this run) with the SM predictions as bands.

    Parameters
    ----------
    path : str or os.PathLike
        Output PNG.
    measurement : AmuValue, optional
        An extra point drawn on top (in red; an arrow at the edge if outside the experiments' range).
    experiments : sequence of str
        Keys of :data:`calibration.theory.EXPERIMENTS` to draw.

    Returns
    -------
    matplotlib.figure.Figure
    """
    points = [EXPERIMENTS[k] for k in experiments] + ([measurement] if measurement is not None else [])
    fig = Figure(figsize=(8.0, 0.55 * len(points) + 2.0))
    _draw_comparison(fig.subplots(), points, measurement)
    _save(fig, path)
    return fig


LIGHT_GEV = np.logspace(-3, 1, 60)
# band of (Δa, error, n_σ), x scale, y scale, title, x label, y label: every label with its unit
PANELS = (
    (lambda d, e, n: bsm.dark_photon_band(d, e, LIGHT_GEV, n), "log", "log", "dark photon A′ (kinetic mixing with the photon)", "dark-photon mass m_X [GeV]", "kinetic mixing ε [dimensionless]"),
    (lambda d, e, n: bsm.lmu_ltau_band(d, e, LIGHT_GEV, n), "log", "log", "L_μ − L_τ gauge boson Z′", "Z′ mass m_Z′ [GeV]", "gauge coupling g′ [dimensionless]"),
    (lambda d, e, n: bsm.leptoquark_band(d, e, np.logspace(3, 4.5, 40), n), "log", "log", "scalar leptoquark S₁ (top-quark loop)", "leptoquark mass m_LQ [GeV]", "Re(λ_L λ_R*) [dimensionless]"),
    (
        lambda d, e, n: bsm.alp_band(d, e, np.linspace(-100.0, -12.0, 60), n_sigma=n),
        "linear",
        "log",
        "axion-like particle (c_μμ = 1, Λ = 1 TeV)",
        "ALP–photon coupling c_γγ [dimensionless]",
        "ALP decay constant f [GeV]",
    ),
    (lambda d, e, n: bsm.mssm_band(d, e, np.linspace(5.0, 60.0, 40), n), "linear", "linear", "MSSM, universal SUSY masses", "tan β [dimensionless]", "universal SUSY mass m_SUSY [GeV]"),
    (lambda d, e, n: bsm.dipole_scale_band_gev(d, e, np.logspace(-6, 0, 40), n), "log", "log", "generic dipole operator C/Λ²", "Wilson coefficient C [dimensionless]", "new-physics scale Λ [GeV]"),
)
COMPARISON_COLOURS = ("tab:orange", "tab:purple", "tab:cyan")


def _y_limits(edges: np.ndarray, yscale: str) -> tuple[float, float]:
    finite = edges[np.isfinite(edges) & (edges > 0.0)]
    if finite.size == 0:
        return (1e-6, 1.0) if yscale == "log" else (0.0, 1.0)
    if yscale == "log":
        return float(finite.min()) / 5.0, float(finite.max()) * 5.0
    return 0.0, 1.5 * float(finite.max())


def _legend_handles(comparisons, n_sigma: float) -> list:
    """One legend entry per (label, Δa, error): filled = preferred region, hatched = excluded region."""
    from matplotlib.patches import Patch

    cl = f"{bsm.confidence_level_percent(n_sigma):.0f} % CL"
    handles = []
    for (label, delta, err), colour in zip(comparisons, COMPARISON_COLOURS):
        lo, hi = delta - n_sigma * err, delta + n_sigma * err
        if lo > 0.0 or hi < 0.0:
            handles.append(Patch(facecolor=colour, alpha=0.5, label=f"{label}: filled = parameters preferred at {cl} (Δa_μ ± {n_sigma:g}σ)"))
        else:
            handles.append(Patch(facecolor=colour, alpha=0.3, hatch="//", edgecolor=colour, label=f"{label}: compatible with zero; hatched = excluded at {cl} (new physics above Δa_μ + {n_sigma:g}σ)"))
    return handles


def _model_panel(ax, panel, comparisons, n_sigma: float) -> None:
    """One model: for each (label, Δa, error) the preferred band, or the excluded region where Δa_μ is compatible with zero, shaded to the axis edge with a line at its limit."""
    band_of, xscale, yscale, title, xlabel, ylabel = panel
    bands = [(label, delta, err, band_of(delta, err, n_sigma)) for label, delta, err in comparisons]
    ymin, ymax = _y_limits(np.concatenate([np.concatenate([b.lower, b.upper]) for *_, b in bands]), yscale)
    cl = f"{bsm.confidence_level_percent(n_sigma):.0f} % CL"
    for (label, delta, err, band), colour in zip(bands, COMPARISON_COLOURS):
        finite = np.isfinite(band.lower) | np.isfinite(band.upper)
        if not finite.any():
            ax.text(0.5, 0.5, f"{label}: no parameter gives Δa_μ within {n_sigma:g}σ", transform=ax.transAxes, ha="center", fontsize=7)
            continue
        i = int(np.argmax(finite))
        kind = bsm.verdict(delta, err, n_sigma, float(band.lower[i]), float(band.upper[i]))
        if kind == "preferred":
            ax.fill_between(band.grid, band.lower, band.upper, where=np.isfinite(band.lower) & np.isfinite(band.upper), color=colour, alpha=0.5, zorder=3, label=f"{label}: preferred at {cl}")
        elif kind == "excluded below":
            ax.fill_between(band.grid, ymin, band.lower, where=np.isfinite(band.lower), facecolor=colour, alpha=0.3, hatch="//", edgecolor=colour, label=f"{label}: excluded at {cl}")
            ax.plot(band.grid, band.lower, color=colour, lw=1.5)
        else:  # excluded above, or outside a band around zero (the positive side is on the axis)
            ax.fill_between(band.grid, band.upper, ymax, where=np.isfinite(band.upper), facecolor=colour, alpha=0.3, hatch="//", edgecolor=colour, label=f"{label}: excluded at {cl}")
            ax.plot(band.grid, band.upper, color=colour, lw=1.5)
    ax.set_xscale(xscale)
    ax.set_yscale(yscale)
    ax.set_xlim(float(bands[0][3].grid.min()), float(bands[0][3].grid.max()))
    ax.set_ylim(ymin, ymax)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_title(title, fontsize=9)


def _delta_text(delta: float, err: float) -> str:
    return f"Δa_μ = ({delta * 1e11:.0f} ± {err * 1e11:.0f}) × 10⁻¹¹"


def bsm_plot(path, delta: float, delta_err: float, n_sigma: float = 2.0, label: str = "") -> Figure:
    """Draw the docs/physics.md §7 models for one Δa_μ = ``delta`` ± ``delta_err``: preferred bands, or excluded regions where Δa_μ is compatible with zero at ``n_sigma`` (docs/physics.md §7); ``label`` names its origin.

    Returns
    -------
    matplotlib.figure.Figure
        Six panels (``fig.axes``), in the order of :data:`PANELS`.
    """
    fig = Figure(figsize=(14.0, 8.5))
    comparisons = [(_delta_text(delta, delta_err), delta, delta_err)]
    for ax, panel in zip(fig.subplots(2, 3).ravel(), PANELS):
        _model_panel(ax, panel, comparisons, n_sigma)
    fig.legend(handles=_legend_handles(comparisons, n_sigma), loc="lower center", fontsize=9)
    what = f" ({label})" if label else ""
    fig.suptitle(f"New-physics parameters for {_delta_text(delta, delta_err)}{what}: one-loop models of docs/physics.md §7", fontsize=11)
    _save(fig, path, rect=(0.0, 0.05, 1.0, 1.0))
    return fig


SHORT_NAMES = {"TI2020": "WP20", "TI2025": "WP25"}


def world_average_bsm_figure(path, experiment: str = "WA2025", predictions: tuple[str, ...] = tuple(SM_PREDICTIONS), n_sigma: float = 2.0) -> Figure:
    """Draw the experimental value against each SM prediction, and what each Δa_μ means for the docs/physics.md §7 models.

    Left: a_μ of the experiments and the SM bands; right: six model panels, each with the preferred
    band (Δa_μ ≠ 0 beyond ``n_sigma``) or the excluded region (Δa_μ compatible with zero) of every
    prediction. This is the BSM picture of a run report (``ringsim run``), in place of a simulated
    run's Δa_μ.

    Parameters
    ----------
    path : str or os.PathLike
        Output PNG.
    experiment : str
        Key of :data:`calibration.theory.EXPERIMENTS` (default: the 2025 world average).
    predictions : tuple of str
        Keys of :data:`calibration.theory.SM_PREDICTIONS`.
    n_sigma : float
        Band half-width in standard errors of Δa_μ (2: 95 % CL).

    Returns
    -------
    matplotlib.figure.Figure
        ``fig.axes[0]`` the comparison, ``fig.axes[1:]`` the model panels in the order of :data:`PANELS`.
    """
    rows = bsm.deltas(experiment, predictions)  # ConfigError for unknown keys
    exp = EXPERIMENTS[experiment]
    comparisons = [(f"{exp.label} − {SHORT_NAMES.get(key, key)}: {_delta_text(d, e)}", d, e) for key, d, e in rows]
    fig = Figure(figsize=(19.0, 9.0))
    grid = fig.add_gridspec(2, 4, width_ratios=(1.25, 1.0, 1.0, 1.0))
    keys = ["E821", "FNAL_Run1", "FNAL_Run2_3", "FNAL_final", "WA2025"]
    if experiment not in keys:
        keys.append(experiment)
    _draw_comparison(fig.add_subplot(grid[:, 0]), [EXPERIMENTS[k] for k in keys], exp)
    for i, panel in enumerate(PANELS):
        _model_panel(fig.add_subplot(grid[i // 3, 1 + i % 3]), panel, comparisons, n_sigma)
    names = ", ".join(f"{SHORT_NAMES.get(k, k)} ({SM_PREDICTIONS[k].label})" for k in predictions)
    fig.legend(handles=_legend_handles(comparisons, n_sigma), loc="lower center", fontsize=9)
    fig.suptitle(f"{exp.label} against the Standard Model predictions {names}: what Δa_μ means for new physics", fontsize=11)
    _save(fig, path, rect=(0.0, 0.07, 1.0, 1.0))
    return fig


def fast_rotation_plot(path, result) -> None:
    """Draw the x_e distribution of a :class:`calibration.fast_rotation.FastRotationResult`, with its moments."""
    fig = Figure(figsize=(7.0, 4.5))
    ax = fig.subplots()
    ax.plot(result.x_e_m * 1e3, result.density_per_m * 1e-3, "-", color="black")
    ax.axhline(0.0, color="grey", lw=0.5)
    ax.set_xlabel("x_e [mm]")
    ax.set_ylabel("density [1/mm]")
    ax.set_title(
        f"fast rotation: ⟨x_e⟩ = {result.mean_m * 1e3:.2f} ± {result.mean_err_m * 1e3:.2f} mm, σ = {result.width_m * 1e3:.2f} ± {result.width_err_m * 1e3:.2f} mm",
        fontsize=9,
    )
    _save(fig, path)
