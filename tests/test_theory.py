"""Published relations between a_μ values (docs/physics.md §4, seeds 001–003): computed here, compared with the
rounded numbers the sources quote."""

import math

import pytest

from calibration.theory import EXPERIMENTS, SM_PREDICTIONS, AmuValue, combine, delta_amu, significance
from ringsim.errors import ConfigError


def test_2021_world_average_is_4_2_sigma_from_ti_2020():
    """(116592061(41) − 116591810(43)) × 10⁻¹¹ = 251(59) × 10⁻¹¹ ⇒ 4.2σ (seeds 001 and 002)."""
    wa, ti = EXPERIMENTS["WA2021"], SM_PREDICTIONS["TI2020"]
    delta, err = delta_amu(wa, ti)
    assert round(delta * 1e11) == 251
    assert round(err * 1e11) == 59
    assert round(significance(wa, ti), 1) == 4.2
    # independent arithmetic with the quoted numbers
    assert (116_592_061 - 116_591_810) / math.hypot(41, 43) == pytest.approx(significance(wa, ti), rel=1e-9)


def test_2021_world_average_combines_e821_and_run1():
    """E821 with CODATA 2018 constants, 116592089(63), and FNAL Run-1, 116592040(54) ⇒ 116592061(41)."""
    wa = combine([EXPERIMENTS["E821_2018"], EXPERIMENTS["FNAL_Run1"]])
    assert round(wa.a_mu * 1e11) == 116_592_061
    assert round(wa.a_mu_err * 1e11) == 41


def test_e821_is_3_7_sigma_from_ti_2020():
    """Seed 003: Δa_μ = 279(76) × 10⁻¹¹, 3.7σ."""
    e821, ti = EXPERIMENTS["E821_2018"], SM_PREDICTIONS["TI2020"]
    delta, err = delta_amu(e821, ti)
    assert (round(delta * 1e11), round(err * 1e11)) == (279, 76)
    assert round(significance(e821, ti), 1) == 3.7


def test_2025_world_average_agrees_with_ti_2025():
    """WA 2025 − TI 2025 = (1165920715 − 1165920330) × 10⁻¹² = 38.5(63.7) × 10⁻¹¹: well below 1σ."""
    wa, ti = EXPERIMENTS["WA2025"], SM_PREDICTIONS["TI2025"]
    delta, err = delta_amu(wa, ti)
    assert delta == pytest.approx(385e-12, abs=1e-15)
    assert err == pytest.approx(math.hypot(145e-12, 620e-12), rel=1e-12)
    assert 0.5 < significance(wa, ti) < 0.7


def test_relative_errors_match_quoted_ppb():
    """FNAL final: 127 ppb (docs/physics.md §4 [V])."""
    assert round(EXPERIMENTS["FNAL_final"].relative_err_ppb) == 127


def test_every_value_has_a_source():
    for value in {**EXPERIMENTS, **SM_PREDICTIONS}.values():
        assert value.source and value.a_mu_err > 0 and 1.1659e-3 < value.a_mu < 1.1660e-3


def test_invalid_values_raise():
    with pytest.raises(ConfigError, match="^experiment: "):
        delta_amu(AmuValue("x", 1.0, 0.0, "none"), SM_PREDICTIONS["TI2020"])
    with pytest.raises(ConfigError, match="^combine: "):
        combine([])
