"""What the BSM figures show (through their matplotlib artists) and the Δa_μ of ``ringsim bsm``
against the published differences."""

import json
import math

import numpy as np
import pytest

from calibration import bsm
from calibration.plots import bsm_plot, comparison_plot, world_average_bsm_figure
from calibration.theory import AmuValue
from ringsim.cli import main

ALPHA = 1 / 137.035_999_084  # CODATA 2018
M_MU_GEV = 0.105_658_3755  # CODATA 2018
# published a_μ values (docs/physics.md §4 [V])
WA2025 = (116_592_071.5e-11, 14.5e-11)  # world average 2025, D. P. Aguillard et al., arXiv:2506.03069
WP20 = (116_591_810e-11, 43e-11)  # T. Aoyama et al., Phys. Rep. 887 (2020) 1
WP25 = (116_592_033e-11, 62e-11)  # R. Aliberti et al., arXiv:2505.21476
EXPERIMENTS_SHOWN = [  # (a_μ, error) of the points in the comparison panel
    (116_592_080e-11, 63e-11),  # BNL E821 final, 11 659 208.0(6.3) × 10⁻¹⁰
    (116_592_040e-11, 54e-11),  # FNAL Run-1
    (116_592_057e-11, 25e-11),  # FNAL Run-2/3
    (116_592_070.5e-11, 14.8e-11),  # FNAL final (Runs 1–6)
    WA2025,
]
OFFSET = 116_591_000e-11
# the differences as published (the inputs are rounded to 1e-11 and 0.5e-11, the differences to 1e-11)
ROUNDING = 1.0e-11


def _delta(exp, sm):
    return exp[0] - sm[0], math.hypot(exp[1], sm[1])


def _shaded_y(ax, collection_index, x0):
    """The y-interval a fill_between polygon covers at x = x0."""
    v = ax.collections[collection_index].get_paths()[0].vertices
    ys = v[np.isclose(v[:, 0], x0, rtol=1e-12, atol=0.0), 1]
    return ys.min(), ys.max()


def _dipole_scale_gev(delta_a, coefficient=1.0):
    """Δa = 250e-11·C·(100 TeV/Λ)² (docs/physics.md §7) solved for Λ."""
    return 1e5 * math.sqrt(250e-11 * coefficient / delta_a)


@pytest.fixture(scope="module")
def world_figure(tmp_path_factory):
    return world_average_bsm_figure(tmp_path_factory.mktemp("bsm") / "bsm.png")


def test_world_average_figure_shades_preferred_and_excluded_regions(world_figure):
    d20, e20 = _delta(WA2025, WP20)
    d25, e25 = _delta(WA2025, WP25)
    panels = {ax.get_title(): ax for ax in world_figure.axes[1:]}
    assert len(panels) == 6
    dipole = panels["generic dipole operator C/Λ²"]
    # WP20: Δa_μ ≠ 0 at 2σ, the band Λ(Δa + 2σ) … Λ(Δa − 2σ) is filled, not hatched
    lo, hi = _shaded_y(dipole, 0, 1.0)
    assert lo == pytest.approx(_dipole_scale_gev(d20 + 2 * e20), rel=1e-9)
    assert hi == pytest.approx(_dipole_scale_gev(d20 - 2 * e20), rel=1e-9)
    assert dipole.collections[0].get_hatch() is None
    # WP25: compatible with zero; scales below Λ(Δa + 2σ) give too much Δa: hatched from the axis bottom up
    lo, hi = _shaded_y(dipole, 1, 1.0)
    assert lo == pytest.approx(dipole.get_ylim()[0], rel=1e-12)
    assert hi == pytest.approx(_dipole_scale_gev(d25 + 2 * e25), rel=1e-9)
    assert dipole.collections[1].get_hatch() == "//"
    # dark photon at m_X = 1 MeV ≪ m_μ: Δa → ε²α/(2π); corrections of order m_X/m_μ ≈ 1 %
    photon = panels["dark photon A′ (kinetic mixing with the photon)"]
    m_x = 1e-3
    tolerance = 2 * m_x / M_MU_GEV
    lo, hi = _shaded_y(photon, 0, m_x)
    assert lo == pytest.approx(math.sqrt(2 * math.pi * (d20 - 2 * e20) / ALPHA), rel=tolerance)
    assert hi == pytest.approx(math.sqrt(2 * math.pi * (d20 + 2 * e20) / ALPHA), rel=tolerance)
    # WP25: couplings above ε(Δa + 2σ) excluded, hatched up to the axis top
    lo, hi = _shaded_y(photon, 1, m_x)
    assert lo == pytest.approx(math.sqrt(2 * math.pi * (d25 + 2 * e25) / ALPHA), rel=tolerance)
    assert hi == pytest.approx(photon.get_ylim()[1], rel=1e-12)
    # every shaded interval lies inside its panel's axis limits
    for ax in world_figure.axes[1:]:
        y0, y1 = ax.get_ylim()
        for c in ax.collections:
            ys = c.get_paths()[0].vertices[:, 1]
            assert y0 * (1 - 1e-12) <= ys.min() and ys.max() <= y1 * (1 + 1e-12)


def test_world_average_figure_labels_in_words(world_figure):
    legend = [t.get_text() for t in world_figure.legends[0].get_texts()]
    assert len(legend) == 2
    assert "WP20" in legend[0] and "preferred at 95 % CL" in legend[0]
    assert "WP25" in legend[1] and "excluded at 95 % CL" in legend[1]
    assert "Standard Model" in world_figure._suptitle.get_text()
    for ax in world_figure.axes[1:]:
        assert ax.get_title()
        assert "[" in ax.get_xlabel() and "[" in ax.get_ylabel()  # a unit or [dimensionless]


def test_comparison_panel_spans_every_experiment_and_sm_band(world_figure):
    ax = world_figure.axes[0]
    x0, x1 = ax.get_xlim()
    for a, err in EXPERIMENTS_SHOWN + [WP20, WP25]:
        assert x0 < (a - err - OFFSET) * 1e11 and (a + err - OFFSET) * 1e11 < x1
    assert "[10⁻¹¹]" in ax.get_xlabel()


def test_simulated_run_delta_compatible_with_zero_is_an_exclusion(tmp_path):
    """The run report's case (issue 17): Δa = (−3226 ± 6802)e-11; before the fix the scale panels
    were filled from 1 up to the band's lower edge, i.e. the excluded scales shown as preferred."""
    delta, err = -3226e-11, 6802e-11
    fig = bsm_plot(tmp_path / "bsm.png", delta, err)
    dipole = {ax.get_title(): ax for ax in fig.axes}["generic dipole operator C/Λ²"]
    lo, hi = _shaded_y(dipole, 0, 1.0)
    assert hi == pytest.approx(_dipole_scale_gev(delta + 2 * err), rel=1e-9)
    assert lo == pytest.approx(dipole.get_ylim()[0], rel=1e-12)
    assert "excluded at 95 % CL" in fig.legends[0].get_texts()[0].get_text()


def test_comparison_plot_keeps_the_experiments_readable(tmp_path):
    run = AmuValue("this simulated run", WP25[0] - 3226e-11, 6802e-11, "test")
    ax = comparison_plot(tmp_path / "cmp.png", run).axes[0]
    x0, x1 = ax.get_xlim()
    spans = [((a - e - OFFSET) * 1e11, (a + e - OFFSET) * 1e11) for a, e in EXPERIMENTS_SHOWN + [WP20, WP25]]
    assert x0 < min(s[0] for s in spans) and max(s[1] for s in spans) < x1
    assert x1 - x0 < 1.2 * (max(s[1] for s in spans) - min(s[0] for s in spans))
    assert "off scale" in ax.get_yticklabels()[-1].get_text()


@pytest.mark.parametrize(
    "experiment, prediction, published",
    [
        ("WA2025", "TI2025", (38e-11, 63e-11)),  # 2025 world average − WP25 = 38(63)e-11 (arXiv:2505.21476)
        ("WA2025", "TI2020", (261e-11, 45e-11)),  # 116592071.5(14.5) − 116591810(43) = 261(45)e-11
        ("WA2021", "TI2020", (251e-11, 59e-11)),  # Δa_μ = (251 ± 59)e-11, seed 001 (4.2σ)
        ("E821_2018", "TI2020", (279e-11, 76e-11)),  # Δa_μ = 279(76)e-11, seed 003
    ],
)
def test_deltas_as_published(experiment, prediction, published):
    ((key, delta, err),) = bsm.deltas(experiment, (prediction,))
    assert key == prediction
    assert delta == pytest.approx(published[0], rel=0.0, abs=ROUNDING)
    assert err == pytest.approx(published[1], rel=0.0, abs=ROUNDING)


def test_interpretation_verdicts():
    d20, e20 = _delta(WA2025, WP20)
    d25, e25 = _delta(WA2025, WP25)
    assert {m.verdict for m in bsm.interpret(d20, e20)} == {"preferred"}
    verdicts = {m.model: m.verdict for m in bsm.interpret(d25, e25)}
    assert verdicts["generic dipole operator"] == "excluded below"  # scales
    assert verdicts["dark photon"] == "excluded above"  # couplings
    assert verdicts["scalar leptoquark S₁"] == "excluded outside"  # a coupling of either sign
    dipole = bsm.interpret(d25, e25)[0]
    assert dipole.lower == pytest.approx(_dipole_scale_gev(d25 + 2 * e25), rel=1e-12)
    assert "excluded at 95 % CL" in dipole.text()
    # a Δa_μ below zero at 2σ cannot come from a positive-definite contribution
    assert bsm.interpret(-300e-11, 50e-11)[2].verdict == "no solution"


def test_bsm_command(tmp_path, capsys):
    plot, out = tmp_path / "bsm.png", tmp_path / "bsm.json"
    assert main(["bsm", "--plot", str(plot), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "vs WP20" in text and "vs WP25" in text and "preferred at 95 % CL" in text and "excluded at 95 % CL" in text
    d = json.loads(out.read_text())
    assert d["experiment"]["key"] == "WA2025" and d["n_sigma"] == 2.0
    by_name = {c["name"]: c for c in d["comparisons"]}
    assert by_name["WP25"]["compatible_with_zero"] and not by_name["WP20"]["compatible_with_zero"]
    assert by_name["WP25"]["delta_a_mu"] == pytest.approx(38e-11, rel=0.0, abs=ROUNDING)
    assert len(by_name["WP20"]["models"]) == len(bsm.BENCHMARKS)
    assert plot.stat().st_size > 0
    # outputs are kept without --force
    assert main(["bsm", "--plot", str(plot)]) == 2
    assert "file exists" in capsys.readouterr().err
