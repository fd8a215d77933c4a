"""The wiggle plot through its data: what is drawn, over which span, with which labels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.fitting import fit_wiggle
from analysis.plots import MIN_RESIDUAL_COUNTS, MIN_SHOWN_COUNTS, wiggle_plot


def _fitted(n0, tau_us, omega, bin_us, end_us, start_us, seed=1):
    """A Poisson histogram of N0 e^{−t/τ}(1 + 0.4 cos ωt) (written here), fitted by the 5-parameter model."""
    edges = bin_us * np.arange(int(math.ceil(end_us / bin_us)) + 1)
    t = 0.5 * (edges[:-1] + edges[1:])
    mu = n0 * bin_us * np.exp(-t / tau_us) * (1.0 + 0.4 * np.cos(omega * t))
    counts = np.random.default_rng(seed).poisson(mu).astype(float)
    fit = fit_wiggle(counts, edges, "5", start_us=start_us, end_us=end_us, omega_ref_rad_per_us=omega, tau_guess_us=tau_us)
    return counts, edges, fit


def test_fermilab_wiggle_shows_only_segments_that_carry_the_signal(tmp_path):
    counts, edges, fit = _fitted(3.0e4, 64.4, 1.4393, 0.1492, 650.0, 30.2)  # Fermilab bins and window, ~2e6 positrons
    fig = wiggle_plot(counts, edges, fit, fit.expected_counts, tmp_path / "w.png")
    top, res = fig.axes
    curves = [line for line in top.get_lines() if line.get_linestyle() == "-"]
    shown = len(curves)
    assert 1 < shown < math.ceil((650.0 - 30.2) / 100.0)  # late segments left out
    for k, curve in enumerate(curves):  # each drawn segment expects ≥ MIN_SHOWN_COUNTS per bin on average
        assert np.mean(curve.get_ydata()) / 0.1**k >= MIN_SHOWN_COUNTS
    assert "k·100 μs" in top.get_xlabel() and top.get_ylabel().startswith("counts per 0.149 μs")
    assert {t.get_text() for t in top.get_legend().get_texts()} == {"data", "fit: model 5, T method"}
    assert "shown 30–" in top.get_title() and "fit window 30–650 μs" in top.get_title()
    # residuals over the whole window, in groups expecting ≥ MIN_RESIDUAL_COUNTS: their spread is ≈ 1
    pulls = res.get_lines()[0].get_ydata()
    assert res.get_xlim() == pytest.approx((fit.start_us, fit.end_us))
    assert 0.85 < np.std(pulls) < 1.15 and np.sum(counts) / len(pulls) >= MIN_RESIDUAL_COUNTS * 0.9


def test_a_short_window_is_one_unscaled_segment_in_display_bins(tmp_path):
    omega = 2.97  # J-PARC: 5 ns bins, 0.2–40 μs, period 2.1 μs
    counts, edges, fit = _fitted(2.0e5, 6.6, omega, 0.005, 40.0, 0.2)
    top = wiggle_plot(counts, edges, fit, fit.expected_counts, tmp_path / "j.png").axes[0]
    assert top.get_xlabel() == "time [μs]" and "k·" not in top.get_ylabel()
    data = top.get_lines()[0].get_xdata()
    display_bin_us = float(np.median(np.diff(data)))
    assert 0.05 < display_bin_us <= 2 * math.pi / omega / 16 + 1e-9  # merged 5 ns bins, ≥ 16 per g-2 period
    assert top.get_ylabel() == f"counts per {display_bin_us:.3g} μs"


def test_fitted_phases_are_reported_in_minus_pi_to_pi():
    omega, bin_us = 1.4393, 0.1492
    edges = bin_us * np.arange(4000)
    t = 0.5 * (edges[:-1] + edges[1:])
    mu = 3.0e4 * bin_us * np.exp(-t / 64.4) * (1.0 + 0.4 * np.cos(omega * t + 0.3))
    counts = np.random.default_rng(3).poisson(mu).astype(float)
    # started four turns away, the fit lands on the same phase 0.3 rad, reported in (−π, π]
    fit = fit_wiggle(counts, edges, "5", start_us=30.2, end_us=590.0, omega_ref_rad_per_us=omega, tau_guess_us=64.4, start={"phi": 0.3 + 4 * math.pi})
    assert -math.pi < fit.params["phi"] <= math.pi
    assert fit.params["phi"] == pytest.approx(0.3, abs=5 * fit.errors["phi"])


def test_correlation_and_scan_plots_say_what_they_show(tmp_path):
    from analysis.plots import correlation_plot, scan_plot
    from analysis.scans import start_time_scan

    counts, edges, fit = _fitted(3.0e4, 64.4, 1.4393, 0.1492, 650.0, 30.2)
    corr_ax = correlation_plot(fit, tmp_path / "c.png").axes[0]
    assert corr_ax.get_title().startswith("Correlations of the fitted parameters") and min(t.get_fontsize() for t in corr_ax.texts) >= 7
    scan = start_time_scan(counts, edges, [30.2, 50.0, 80.0], end_us=650.0, model="5", omega_ref_rad_per_us=1.4393, tau_guess_us=64.4)
    title = scan_plot(scan, tmp_path / "s.png").axes[0].get_title()
    assert title.startswith("ω_a against the fit start time")


def test_residual_groups_reach_their_minimum_and_keep_every_count():
    from analysis.plots import _grouped

    mu = np.random.default_rng(2).exponential(3.0, 1000)
    n = np.random.default_rng(3).poisson(mu).astype(float)
    edges = np.arange(1001.0)
    centres, n_groups, mu_groups = _grouped(n, mu, edges, MIN_RESIDUAL_COUNTS)
    assert mu_groups.min() >= MIN_RESIDUAL_COUNTS and n_groups.sum() == n.sum() and mu_groups.sum() == pytest.approx(mu.sum(), rel=1e-12)
    assert np.all(np.diff(centres) > 0) and centres[0] > edges[0] and centres[-1] < edges[-1]
    # fewer counts than one group: one group over everything
    c, ng, mg = _grouped(n[:5], np.full(5, 0.1), edges[:6], MIN_RESIDUAL_COUNTS)
    assert c.tolist() == [2.5] and ng.sum() == n[:5].sum()
