"""Figures of the ω_a analysis (matplotlib, Agg backend, written atomically)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from matplotlib.figure import Figure

from analysis.fitting import FitResult
from ringsim.errors import InputError
from ringsim.io import atomic_output

SEGMENT_OFFSET_FACTOR = 0.1  # each successive folded segment is scaled down by this on the log axis


def wiggle_plot(
    counts,
    edges_us,
    fit: FitResult,
    model_callable_or_expected_counts: Callable[[np.ndarray], np.ndarray] | np.ndarray,
    path,
    *,
    fold_us: float = 100.0,
) -> None:
    """Draw the folded "wiggle" plot of a fit and its residuals, and save it as PNG.

    The bins of the fit window are folded every ``fold_us``: segment k (times
    [start + k·fold, start + (k+1)·fold)) is drawn against t − k·fold, scaled by 0.1^k on a
    log axis, with the fit curve over it. A lower panel shows (data − fit)/√fit against time.

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
    n = np.asarray(counts, dtype=float)
    e = np.asarray(edges_us, dtype=float)
    if e.ndim != 1 or n.ndim != 1 or e.size != n.size + 1:
        raise InputError(f"wiggle_plot: need 1-D counts and one more edge than counts, got {n.shape}, {e.shape}")
    tol = 1e-6 * float(np.min(np.diff(e)))
    inside = np.flatnonzero((e[:-1] >= fit.start_us - tol) & (e[1:] <= fit.end_us + tol))
    if inside.size == 0:
        raise InputError(f"wiggle_plot: no bin lies in the fit window {fit.start_us}..{fit.end_us} us")
    n = n[inside[0] : inside[-1] + 1]
    e_win = e[inside[0] : inside[-1] + 2]
    if callable(model_callable_or_expected_counts):
        mu = np.asarray(model_callable_or_expected_counts(e_win), dtype=float)
    else:
        mu = np.asarray(model_callable_or_expected_counts, dtype=float)
    if mu.shape != n.shape:
        raise InputError(
            f"wiggle_plot: expected counts have shape {mu.shape}, need one per bin of the fit window ({n.size})"
        )
    centre = 0.5 * (e_win[:-1] + e_win[1:])

    fig = Figure(figsize=(9.0, 7.5))
    ax_top, ax_res = fig.subplots(2, 1, height_ratios=[3, 1])
    segment = np.floor((centre - fit.start_us) / fold_us).astype(int)
    for k in np.unique(segment):
        sel = segment == k
        scale = SEGMENT_OFFSET_FACTOR**k
        t_fold = centre[sel] - k * fold_us
        ax_top.plot(t_fold, n[sel] * scale, ".", ms=1.5, color="black")
        ax_top.plot(t_fold, mu[sel] * scale, "-", lw=0.7, color="tab:red")
    ax_top.set_yscale("log")
    ax_top.set_xlabel(f"time − k·{fold_us:g} μs [μs]")
    ax_top.set_ylabel("counts per bin (segments scaled by 0.1^k)")
    state = "blinded " if fit.blinded else ""
    ax_top.set_title(
        f"{fit.model}, {fit.method}-method: {state}ω_a = {fit.omega_a:.7f} ± {fit.omega_a_err:.7f} rad/μs, "
        f"χ²/ndf = {fit.chi2:.1f}/{fit.ndf}",
        fontsize=9,
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        pull = np.where(mu > 0.0, (n - mu) / np.sqrt(mu), 0.0)
    ax_res.plot(centre, pull, ".", ms=1.0, color="black")
    ax_res.axhline(0.0, color="tab:red", lw=0.7)
    ax_res.set_xlabel("time [μs]")
    ax_res.set_ylabel("(data − fit)/√fit")
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
