"""Figures of the ω_a analysis (matplotlib figures without pyplot state, written atomically as PNG).

Wiggle plot, residuals and their FFT with the beam frequencies marked, start/end-time scan with its
allowed statistical band, pull distribution, correlation matrix.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from matplotlib.figure import Figure

from analysis.fitting import FitResult
from analysis.scans import ScanResult
from ringsim.errors import InputError
from ringsim.io import atomic_output

SEGMENT_OFFSET_FACTOR = 0.1  # each successive folded segment is scaled down by this on the log axis
FFT_PADDING = 4  # zero padding of the residual FFT
DISPLAY_BINS_PER_PERIOD = 16  # fit bins are merged for display up to this many per g-2 period
MIN_SHOWN_COUNTS = 10.0  # folded segments whose bins expect fewer counts on average are not drawn
MIN_RESIDUAL_COUNTS = 25.0  # the residual panel groups bins until each group expects this many


def _fit_window(counts, edges_us, fit: FitResult, who: str) -> tuple[np.ndarray, np.ndarray]:
    """Return the counts and edges (μs) of the bins inside the fit window."""
    n = np.asarray(counts, dtype=float)
    e = np.asarray(edges_us, dtype=float)
    if e.ndim != 1 or n.ndim != 1 or e.size != n.size + 1:
        raise InputError(f"{who}: need 1-D counts and one more edge than counts, got {n.shape}, {e.shape}")
    tol = 1e-6 * float(np.min(np.diff(e)))
    inside = np.flatnonzero((e[:-1] >= fit.start_us - tol) & (e[1:] <= fit.end_us + tol))
    if inside.size == 0:
        raise InputError(f"{who}: no bin lies in the fit window {fit.start_us}..{fit.end_us} us")
    return n[inside[0] : inside[-1] + 1], e[inside[0] : inside[-1] + 2]


def _save(fig: Figure, path) -> None:
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)


def fit_pulls(counts, edges_us, fit: FitResult, variance=None) -> tuple[np.ndarray, np.ndarray]:
    """Return the bin centres (μs) and pulls (data − fit)/σ of the fit window.

    σ² = fit (Poisson) or ``variance`` (the full histogram's variances of a least-squares fit).
    """
    n, e = _fit_window(counts, edges_us, fit, "pulls")
    mu = np.asarray(fit.expected_counts, dtype=float)
    if mu.shape != n.shape:
        raise InputError(f"pulls: the fit has {mu.size} bins, the histogram window {n.size}")
    if variance is None:
        var = mu
    else:
        v_all = np.asarray(variance, dtype=float)
        var, _ = _fit_window(v_all, edges_us, fit, "pulls")
    with np.errstate(divide="ignore", invalid="ignore"):
        pull = np.where(var > 0.0, (n - mu) / np.sqrt(var), 0.0)
    return 0.5 * (e[:-1] + e[1:]), pull


def residual_fft_plot(counts, edges_us, fit: FitResult, path, *, frequencies_mhz: dict | None = None, variance=None) -> None:
    """Residuals (data − fit)/σ versus time and the magnitude of their FFT, with beam frequencies marked.

    Parameters
    ----------
    counts, edges_us : array_like
        The fitted histogram (edges in μs).
    fit : FitResult
        The fit (its window and expected counts).
    path : str or os.PathLike
        Output PNG.
    frequencies_mhz : dict, optional
        Label → frequency in MHz drawn as vertical lines (e.g. f_cbo, f_vw, f_y, 2f_cbo, f_a).
    variance : array_like, optional
        Bin variances of a least-squares fit (full histogram).
    """
    centre, pull = fit_pulls(counts, edges_us, fit, variance)
    step = float(np.median(np.diff(centre)))
    n_pad = FFT_PADDING * pull.size
    spectrum = np.abs(np.fft.rfft(pull - pull.mean(), n=n_pad))
    freq = np.fft.rfftfreq(n_pad, d=step)
    fig = Figure(figsize=(9.0, 7.0))
    ax_t, ax_f = fig.subplots(2, 1)
    ax_t.plot(centre, pull, ".", ms=1.0, color="black")
    ax_t.axhline(0.0, color="tab:red", lw=0.7)
    ax_t.set_xlabel("time [μs]")
    ax_t.set_ylabel("(data − fit)/σ")
    ax_t.set_title(f"residuals of the {fit.model} fit ({fit.method}-method), χ²/ndf = {fit.chi2:.1f}/{fit.ndf}", fontsize=9)
    ax_f.plot(freq, spectrum, "-", lw=0.7, color="black")
    for i, (label, f) in enumerate(sorted((frequencies_mhz or {}).items(), key=lambda kv: kv[1])):
        if 0.0 < f <= freq[-1]:
            ax_f.axvline(f, color=f"C{i % 10}", lw=0.8, ls="--", label=f"{label} = {f:.3f} MHz")
    ax_f.set_xlabel("frequency [MHz]")
    ax_f.set_ylabel("|FFT of residuals|")
    if frequencies_mhz:
        ax_f.legend(fontsize=7, loc="upper right")
    _save(fig, path)


def scan_plot(scan: ScanResult, path) -> Figure:
    """Draw ω_a − ω_a(first point) versus start (or end) time with the allowed band ±√|σ_i² − σ_0²|; return the figure."""
    fig = Figure(figsize=(8.0, 5.0))
    ax = fig.subplots()
    dev_ppm = scan.deviation / scan.omega_a[0] * 1e6
    band_ppm = scan.band / scan.omega_a[0] * 1e6
    err_ppm = scan.omega_a_err / scan.omega_a[0] * 1e6
    ax.fill_between(scan.times_us, -band_ppm, band_ppm, color="tab:green", alpha=0.3, label="±1σ allowed")
    ax.fill_between(scan.times_us, -2 * band_ppm, 2 * band_ppm, color="tab:green", alpha=0.12, label="±2σ allowed")
    ax.errorbar(scan.times_us, dev_ppm, yerr=err_ppm, fmt="o", ms=3, color="black", lw=0.8)
    ax.axhline(0.0, color="black", lw=0.5)
    ax.set_title(f"ω_a against the fit {scan.kind} time, with the statistically allowed band" + (" (blinded)" if scan.blinded else ""), fontsize=9)
    ax.set_xlabel(f"fit {scan.kind} time [μs]")
    ax.set_ylabel(f"ω_a − ω_a({scan.times_us[0]:g} μs) [ppm]")
    ax.legend(fontsize=8)
    _save(fig, path)
    return fig


def pulls_plot(pulls, path, *, title: str = "pulls") -> None:
    """Histogram of pulls with the unit normal curve and their mean and width in the legend."""
    p = np.asarray(pulls, dtype=float).ravel()
    if p.size < 2 or not np.all(np.isfinite(p)):
        raise InputError(f"pulls_plot: need at least two finite pulls, got {p.size}")
    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.subplots()
    lim = max(4.0, float(np.max(np.abs(p))))
    bins = np.linspace(-lim, lim, 41)
    ax.hist(p, bins=bins, histtype="step", color="black", label=f"mean {p.mean():.3f}, width {p.std(ddof=1):.3f} (n = {p.size})")
    x = np.linspace(-lim, lim, 400)
    ax.plot(x, p.size * (bins[1] - bins[0]) * np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi), color="tab:red", lw=0.8, label="unit normal")
    ax.set_xlabel("pull")
    ax.set_ylabel("entries")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    _save(fig, path)


def correlation_plot(fit: FitResult, path) -> Figure:
    """Draw the fit's correlation matrix of the free parameters as a colour map with values; return the figure."""
    names = list(fit.correlation)
    if not names:
        raise InputError("correlation_plot: the fit has no free parameters")
    corr = np.array([[fit.correlation[a][b] for b in names] for a in names])
    size = 2.5 + 0.55 * len(names)  # room for two-decimal values in every cell
    fig = Figure(figsize=(size + 1.5, size))
    ax = fig.subplots()
    image = ax.imshow(corr, vmin=-1.0, vmax=1.0, cmap="RdBu_r")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    if len(names) <= 30:
        for i in range(len(names)):
            for j in range(len(names)):
                ax.text(j, i, f"{corr[i, j]:.2f}", ha="center", va="center", fontsize=7, color="white" if abs(corr[i, j]) > 0.6 else "black")
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_title(f"Correlations of the fitted parameters: model {fit.model}, {fit.method} method", fontsize=9)
    _save(fig, path)
    return fig


def _grouped(n: np.ndarray, mu: np.ndarray, e: np.ndarray, minimum: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge consecutive bins into groups expecting at least ``minimum`` counts each (a short remainder joins the last group).

    Returns the groups' centres, counts and expected counts.
    """
    starts, expected = [0], 0.0
    for i, m in enumerate(mu[:-1]):
        expected += m
        if expected >= minimum:
            starts.append(i + 1)
            expected = 0.0
    if len(starts) > 1 and expected + mu[-1] < minimum:  # a short last group joins the one before
        starts.pop()
    starts = np.asarray(starts)
    ends = np.append(starts[1:], mu.size)
    return 0.5 * (e[starts] + e[ends]), np.add.reduceat(n, starts), np.add.reduceat(mu, starts)


def wiggle_plot(
    counts,
    edges_us,
    fit: FitResult,
    model_callable_or_expected_counts: Callable[[np.ndarray], np.ndarray] | np.ndarray,
    path,
    *,
    fold_us: float = 100.0,
) -> Figure:
    """Draw the folded "wiggle" plot of a fit and its residuals, save it as PNG and return the figure.

    The bins of the fit window are folded every ``fold_us``: segment k (times
    [start + k·fold, start + (k+1)·fold)) is drawn against t − k·fold, scaled by 0.1^k on a
    log axis, with the fit curve over it; fit bins are merged for display up to
    :data:`DISPLAY_BINS_PER_PERIOD` per g-2 period (the J-PARC 5 ns bins). Segments whose bins expect fewer than
    :data:`MIN_SHOWN_COUNTS` counts on average are left out (they show Poisson discreteness, not the
    wiggle; the fit uses them); a window shorter than ``fold_us`` is one unscaled segment. The lower
    panel shows (data − fit)/√fit of groups of consecutive bins expecting at least
    :data:`MIN_RESIDUAL_COUNTS` counts each, over the whole fit window.

    Parameters
    ----------
    counts, edges_us : array_like
        The fitted histogram (edges in μs).
    fit : FitResult
        The fit; its ``start_us``/``end_us`` select the bins drawn.
    model_callable_or_expected_counts : callable or array_like
        Either ``f(edges_us) -> expected counts per bin`` or the expected counts of the bins in
        the fit window (e.g. ``fit.expected_counts``).
    path : str or os.PathLike
        Output PNG file.
    fold_us : float
        Folding period in μs.
    """
    n, e_win = _fit_window(counts, edges_us, fit, "wiggle_plot")
    if callable(model_callable_or_expected_counts):
        mu = np.asarray(model_callable_or_expected_counts(e_win), dtype=float)
    else:
        mu = np.asarray(model_callable_or_expected_counts, dtype=float)
    if mu.shape != n.shape:
        raise InputError(f"wiggle_plot: expected counts have shape {mu.shape}, need one per bin of the fit window ({n.size})")
    # display bins: whole groups of fit bins, at most a sixteenth of the g-2 period wide
    width_us = float(np.mean(np.diff(e_win)))
    merge = max(1, int(2.0 * np.pi / fit.omega_a / DISPLAY_BINS_PER_PERIOD / width_us))
    keep = n.size // merge * merge
    n, mu, e_win = n[:keep].reshape(-1, merge).sum(axis=1), mu[:keep].reshape(-1, merge).sum(axis=1), e_win[: keep + 1 : merge]
    centre = 0.5 * (e_win[:-1] + e_win[1:])
    per_bin = f"counts per {merge * width_us:.3g} μs"
    folded = fit.end_us - fit.start_us > fold_us
    segment = np.floor((centre - fit.start_us) / fold_us).astype(int) if folded else np.zeros(centre.size, dtype=int)
    shown = [k for k in np.unique(segment) if np.mean(mu[segment == k]) >= MIN_SHOWN_COUNTS] or [0]
    state = "blinded " if fit.blinded else ""

    fig = Figure(figsize=(9.0, 7.5))
    ax_top, ax_res = fig.subplots(2, 1, height_ratios=[3, 1])
    for k in shown:
        sel = segment == k
        scale = SEGMENT_OFFSET_FACTOR**k
        t_fold = centre[sel] - k * fold_us
        ax_top.plot(t_fold, n[sel] * scale, ".", ms=1.5, color="black", label="data" if k == shown[0] else None)
        ax_top.plot(t_fold, mu[sel] * scale, "-", lw=0.7, color="tab:red", label=f"fit: model {fit.model}, {fit.method} method" if k == shown[0] else None)
    ax_top.set_yscale("log")
    if folded:
        ax_top.set_xlabel(f"time − k·{fold_us:g} μs [μs]  (segment k = 0 … {shown[-1]})")
        ax_top.set_ylabel(f"{per_bin} × 0.1^k")
        end_shown = min(fit.start_us + (shown[-1] + 1) * fold_us, fit.end_us)
        span = f"shown {fit.start_us:.0f}–{end_shown:.0f} μs of the fit window {fit.start_us:.0f}–{fit.end_us:.0f} μs (later bins expect < {MIN_SHOWN_COUNTS:g} counts)"
        if end_shown >= fit.end_us:
            span = f"fit window {fit.start_us:.0f}–{fit.end_us:.0f} μs, folded every {fold_us:g} μs"
    else:
        ax_top.set_xlabel("time [μs]")
        ax_top.set_ylabel(per_bin)
        span = f"fit window {fit.start_us:.1f}–{fit.end_us:.1f} μs"
    ax_top.legend(loc="upper right", fontsize=8)
    ax_top.set_title(f"Decay positrons against time (wiggle): {state}ω_a = {fit.omega_a:.7f} ± {fit.omega_a_err:.7f} rad/μs, χ²/ndf = {fit.chi2:.1f}/{fit.ndf}\n{span}", fontsize=9)
    t_group, n_group, mu_group = _grouped(n, mu, e_win, MIN_RESIDUAL_COUNTS)
    with np.errstate(divide="ignore", invalid="ignore"):
        pull = np.where(mu_group > 0.0, (n_group - mu_group) / np.sqrt(mu_group), 0.0)
    ax_res.plot(t_group, pull, ".", ms=1.5, color="black")
    ax_res.axhline(0.0, color="tab:red", lw=0.7)
    ax_res.set_xlim(fit.start_us, fit.end_us)
    ax_res.set_xlabel("time [μs]")
    ax_res.set_ylabel(f"(data − fit)/√fit\n(bins of ≥ {MIN_RESIDUAL_COUNTS:g} expected)", fontsize=8)
    _save(fig, path)
    return fig
