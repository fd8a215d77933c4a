"""``ringsim amu --measurement``: a published measurement's ingredients → budget table, R'_μ and a_μ."""

import json
import math
from pathlib import Path

import pytest

from calibration.measurement import evaluate_measurement
from ringsim.cli import main

RUN1_FILE = Path(__file__).resolve().parents[1] / "data_samples" / "fnal_run1_measurement.toml"

# Fermilab Run-1 as published: B. Abi et al., PRL 126, 141801 (2021); table totals from the review
# /work/shared/seeds/004_*.txt, Table 3 (docs/physics.md §4)
RUN1_RATIO = 0.0037073003  # R'_μ = 0.0037073003(17)
RUN1_RATIO_ERR = 1.7e-9
RUN1_AMU = 116_592_040e-11  # a_μ(FNAL) = 116 592 040(54) × 10⁻¹¹
RUN1_AMU_ERR = 54e-11
RUN1_TOTAL_CORRECTION_PPB = 544.0
RUN1_TOTAL_SYSTEMATIC_PPB = 157.0
RUN1_CONSTANTS_PPB = 25.0
RUN1_TOTAL_PPB = 462.0
# seed 004 Table 3: (name, correction ppb, uncertainty ppb)
RUN1_C = {"C_e": (489.0, 53.0), "C_p": (180.0, 13.0), "C_ml": (-11.0, 5.0), "C_pa": (-158.0, 75.0)}
RUN1_B = {"B_k": (-27.0, 37.0), "B_q": (-17.0, 92.0)}
RUN1_UNCERTAINTIES = {"omega_a.stat_ppb": 434.0, "omega_a.syst_ppb": 56.0, "omega_p.syst_ppb": 56.0}
# R'_μ is published to 10 digits: its rounding (±0.5e-10, 13 ppb) moves a_μ by ±1.6e-11; the
# uncertainties are published to whole ppb (±0.5) and to whole 1e-11
AMU_ROUNDING = 1.6e-11
PPB_ROUNDING = 0.5
ERR_ROUNDING = 0.5e-11


def _corrections_toml(corrections: dict) -> str:
    return "".join(f"[corrections.{name}]\nvalue_ppb = {v}\nerror_ppb = {e}\n" for name, (v, e) in corrections.items())


def _omega_file(tmp_path, omega_a_rad_per_us, omega_p_rad_per_us, extra="") -> Path:
    text = (
        "codata = 2018\ntemperature_c = 34.7\n"
        f"[omega_a]\nvalue_rad_per_us = {omega_a_rad_per_us!r}\nstat_ppb = 434\nsyst_ppb = 56\n"
        f"[omega_p]\nvalue_rad_per_us = {omega_p_rad_per_us!r}\nsyst_ppb = 56\n" + _corrections_toml({**RUN1_C, **RUN1_B}) + extra
    )
    path = tmp_path / "omega.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_run1_file_gives_the_published_totals_and_amu():
    result = evaluate_measurement(RUN1_FILE)
    assert result.budget.total_correction_ppb == pytest.approx(RUN1_TOTAL_CORRECTION_PPB, rel=0.0, abs=PPB_ROUNDING)
    assert result.total_systematic_ppb == pytest.approx(RUN1_TOTAL_SYSTEMATIC_PPB, rel=0.0, abs=PPB_ROUNDING)
    assert result.constants_error_ppb == pytest.approx(RUN1_CONSTANTS_PPB, rel=0.0, abs=PPB_ROUNDING)
    assert result.a_mu_error_ppb == pytest.approx(RUN1_TOTAL_PPB, rel=0.0, abs=PPB_ROUNDING)
    assert result.ratio_err == pytest.approx(RUN1_RATIO_ERR, rel=0.0, abs=0.05e-9)
    assert result.amu.a_mu == pytest.approx(RUN1_AMU, rel=0.0, abs=AMU_ROUNDING)
    assert result.amu.a_mu_err == pytest.approx(RUN1_AMU_ERR, rel=0.0, abs=ERR_ROUNDING)
    assert result.amu.codata == "CODATA 2018"
    assert [line.name for line in result.budget.lines] == ["ω_a statistical", "ω_a systematic", "C_e", "C_p", "C_pa", "C_ml", "ω_p systematic", "B_k", "B_q"]


def test_ratio_only_gives_the_published_amu(tmp_path, capsys):
    path = tmp_path / "ratio.toml"
    path.write_text(f"codata = 2018\ntemperature_c = 34.7\n[ratio]\nvalue = {RUN1_RATIO}\nerror = {RUN1_RATIO_ERR}\n", encoding="utf-8")
    out = tmp_path / "ratio.json"
    assert main(["amu", "--measurement", str(path), "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    assert d["a_mu"] == pytest.approx(RUN1_AMU, rel=0.0, abs=AMU_ROUNDING)
    assert d["a_mu_err"] == pytest.approx(RUN1_AMU_ERR, rel=0.0, abs=ERR_ROUNDING)
    assert d["budget"]["lines"] == []
    assert "a_mu = 11659203" in capsys.readouterr().out


def test_measured_frequencies_are_corrected_as_published(tmp_path):
    """ω_a^m and f_calib⟨ω'_p M⟩ that the published corrections turn into the published R'_μ.

    The published ratio is corrected: R'_μ = (ω_a^m/ω_p)(1 + ΣC)/(1 + ΣB), so the uncorrected
    ratio is R'_μ(1 + ΣB)/(1 + ΣC). The scale of the frequencies is arbitrary (2π × 61.79 MHz):
    only their ratio enters. B in the numerator instead would move a_μ by 88 ppb = 10e-11.
    """
    sum_c = sum(v for v, _ in RUN1_C.values()) * 1e-9
    sum_b = sum(v for v, _ in RUN1_B.values()) * 1e-9
    omega_p = 2.0 * math.pi * 61.79
    omega_a = RUN1_RATIO * (1.0 + sum_b) / (1.0 + sum_c) * omega_p
    result = evaluate_measurement(_omega_file(tmp_path, omega_a, omega_p))
    assert result.ratio == pytest.approx(RUN1_RATIO, rel=1e-12, abs=0.0)
    assert not result.ratio_given
    assert result.amu.a_mu == pytest.approx(RUN1_AMU, rel=0.0, abs=AMU_ROUNDING)
    assert result.amu.a_mu_err == pytest.approx(RUN1_AMU_ERR, rel=0.0, abs=ERR_ROUNDING)
    # the R'_μ error is the quadrature sum of every line
    errors = [e for _, e in RUN1_C.values()] + [e for _, e in RUN1_B.values()] + list(RUN1_UNCERTAINTIES.values())
    assert result.ratio_err == pytest.approx(RUN1_RATIO * math.sqrt(sum(e * e for e in errors)) * 1e-9, rel=1e-12, abs=0.0)


def test_lines_of_one_correlation_label_add_linearly(tmp_path):
    path = _omega_file(tmp_path, 1.0, 250.0, "")
    text = path.read_text().replace("[corrections.B_k]\nvalue_ppb = -27.0\nerror_ppb = 37.0\n", '[corrections.B_k]\nvalue_ppb = -27.0\nerror_ppb = 37.0\ncorrelation = "transient"\n')
    text = text.replace("[corrections.B_q]\nvalue_ppb = -17.0\nerror_ppb = 92.0\n", '[corrections.B_q]\nvalue_ppb = -17.0\nerror_ppb = 92.0\ncorrelation = "transient"\n')
    path.write_text(text)
    result = evaluate_measurement(path)
    others = [e for _, e in RUN1_C.values()] + list(RUN1_UNCERTAINTIES.values())
    expected_ppb = math.sqrt(sum(e * e for e in others) + (37.0 + 92.0) ** 2)
    assert result.budget.total_error_ppb == pytest.approx(expected_ppb, rel=1e-12, abs=0.0)


def test_json_keys_and_table_outputs(tmp_path, capsys):
    out, tex, txt = tmp_path / "run1.json", tmp_path / "run1.tex", tmp_path / "run1.txt"
    assert main(["amu", "--measurement", str(RUN1_FILE), "--json", str(out), "--tex", str(tex), "--txt", str(txt)]) == 0
    printed = capsys.readouterr().out
    d = json.loads(out.read_text())
    # keys of `ringsim amu` (ARCHITECTURE.md) kept, and the budget
    assert {"a_mu", "a_mu_err", "form", "codata", "ratio", "ratio_err", "budget"} <= set(d)
    assert {"total_correction_ppb", "total_systematic_ppb", "ratio_error_ppb", "constants_error_ppb", "a_mu_error_ppb", "temperature_c"} <= set(d)
    assert {line["name"] for line in d["budget"]["lines"]} >= {"C_e", "C_p", "C_pa", "C_ml", "B_k", "B_q"}
    assert d["form"] == "fnal" and d["codata"] == "CODATA 2018"
    assert round(d["total_correction_ppb"]) == 544
    assert tex.read_text().startswith(r"\begin{tabular}") and r"C\_pa & -158.0 & 75.0" in tex.read_text()
    assert txt.read_text() == printed
    summary = printed.strip().splitlines()[-1]
    assert summary.startswith("a_mu = ") and "CODATA 2018" in summary
    # existing outputs are kept without --force
    before = tex.read_text()
    assert main(["amu", "--measurement", str(RUN1_FILE), "--tex", str(tex)]) == 2
    assert tex.read_text() == before
    assert "file exists" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text, key",
    [
        ("temperature_c = 34.7\n[ratio]\nvalue = 0.0037\n[corrections.C_e]\nvalue_ppb = 489\n", "corrections.C_e.error_ppb"),
        ("temperature_c = 34.7\n[ratio]\nvalue = 0.0037\nerror = 1e-9\n[corrections.C_e]\nvalue_ppb = '489'\nerror_ppb = 53\n", "corrections.C_e.value_ppb"),
        ("temperature_c = 34.7\n[ratio]\nvalue = 0.0037\n[corrections.C_p]\nvalue_ppb = 180\nerror_ppb = -13\n", "corrections.C_p.error_ppb"),
        ("temperature_c = 34.7\n[ratio]\nvalue = 0.0037\nerror = 1e-9\n[corrections.C_x]\nvalue_ppb = 1\nerror_ppb = 1\n", "corrections.C_x"),
        ("temperature_c = 34.7\n[ratio]\nvalue = 0.0037\nerror = 1e-9\n[corrections.B_k]\nvalue_ppb = 1\nerror_ppb = 1\nsign = 1\n", "corrections.B_k.sign"),
        ("temperature_c = 34.7\n[ratio]\nvalue = -0.0037\nerror = 1e-9\n", "ratio.value"),
        ("temperature_c = 34.7\n[ratio]\nvalue = 0.0037\n", "ratio.error"),
        ("[ratio]\nvalue = 0.0037\nerror = 1e-9\n", "temperature_c"),
        ("codata = 2014\ntemperature_c = 34.7\n[ratio]\nvalue = 0.0037\nerror = 1e-9\n", "codata"),
        ("temperature_c = 34.7\nratios = 1\n", "ratios"),
        ("temperature_c = 34.7\n[omega_a]\nvalue_rad_per_us = 1.44\nstat_ppb = 434\nsyst_ppb = 56\n", "omega_p"),
        ("temperature_c = 34.7\n[omega_a]\nvalue_rad_per_us = 1.44\nstat_ppb = 434\n[omega_p]\nvalue_rad_per_us = 388.2\nsyst_ppb = 56\n", "omega_a.syst_ppb"),
        ("temperature_c = 34.7\n[ratio]\nvalue = 0.0037\nerror = 1e-6\n[omega_a]\nstat_ppb = 434\nsyst_ppb = 56\n", "ratio.error"),
        ("this is = = not TOML\n", "invalid TOML"),
    ],
    ids=[
        "missing-key",
        "wrong-type",
        "negative-uncertainty",
        "unknown-correction",
        "unknown-field",
        "negative-ratio",
        "no-ratio-error",
        "no-temperature",
        "unknown-codata",
        "unknown-top-key",
        "no-omega-p",
        "missing-omega-a-syst",
        "ratio-error-disagrees",
        "not-toml",
    ],
)
def test_malformed_files_exit_2_with_one_line(tmp_path, capsys, text, key):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    out = tmp_path / "out.json"
    assert main(["amu", "--measurement", str(path), "--json", str(out)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert str(path) in err[0] and key in err[0]
    assert "Traceback" not in captured.err and captured.out == ""
    assert not out.exists()


def test_ratio_options_are_refused_with_a_measurement(capsys):
    assert main(["amu", "--measurement", str(RUN1_FILE), "--ratio-err", "1e-9"]) == 2
    assert "ratio-err" in capsys.readouterr().err
    assert main(["amu", "--ratio", "0.0037073003", "--tex", "x.tex"]) == 2
    assert "--tex applies to --measurement only" in capsys.readouterr().err
