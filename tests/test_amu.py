"""a_μ from frequency ratios (calibration.amu) and the reference frequencies (calibration.larmor)."""

import dataclasses
import math

import pytest

from calibration.amu import AmuResult, amu_e821, amu_fnal
from calibration.larmor import omega_a_from_amu_rad_per_s, omega_p_tilde_rad_per_s
from ringsim import constants
from ringsim.constants import A_MU_DEFAULT, LAMBDA_E821, LAMBDA_E821_ERR, codata
from ringsim.errors import ConfigError

C_M_PER_S = 299_792_458.0
E_C = 1.602_176_634e-19
HBAR_J_S = 6.626_070_15e-34 / (2.0 * math.pi)
# dσ'/dT of protons in water: the shielding grows with temperature, +10.36(30)e-9 /K, so
# μ'_p(34.7 °C) = μ'_p(25 °C)(1 − 9.7 K × 10.36e-9) (Fermilab Run-1 field analysis, PRA 103, 042208)
DSIGMA_DT_PER_K = 10.36e-9
DSIGMA_DT_ERR_PER_K = 0.30e-9
T_TABLE_C = 25.0


def _primitive_frequencies(a_mu, field_t, edition, temperature_c):
    """ω_a = a (e/m_μ) B and ω̃'_p(T) = 2 μ'_p(T) B/ħ, written out from the tabulated primitives."""
    c = codata(edition)
    m_mu_kg = c.muon_mass_mev * 1e6 * E_C / C_M_PER_S**2
    m_e_kg = m_mu_kg / c.muon_electron_mass_ratio
    mu_e = 0.5 * c.electron_g_factor * E_C * HBAR_J_S / (2.0 * m_e_kg)  # negative
    mu_p_25 = mu_e / c.electron_to_shielded_proton_moment_ratio  # positive
    mu_p_t = mu_p_25 * (1.0 - DSIGMA_DT_PER_K * (temperature_c - T_TABLE_C))
    omega_a = a_mu * E_C / m_mu_kg * field_t
    omega_p = 2.0 * mu_p_t * field_t / HBAR_J_S
    return omega_a, omega_p


def _lambda_shielded(a_mu, edition, temperature_c):
    """λ' = μ_μ/μ'_p(T) = (1+a)(m_e/m_μ)(2/|g_e|)|μ_e/μ'_p(T)|."""
    c = codata(edition)
    mu_e_over_mu_p_t = c.electron_to_shielded_proton_moment_ratio / (1.0 - DSIGMA_DT_PER_K * (temperature_c - T_TABLE_C))
    return (1.0 + a_mu) / c.muon_electron_mass_ratio * (2.0 / abs(c.electron_g_factor)) * abs(mu_e_over_mu_p_t)


@pytest.mark.parametrize("edition", [2018, 2022])
@pytest.mark.parametrize("a_mu, field_t", [(A_MU_DEFAULT, 1.4513), (1.0e-3, 3.0)])
def test_fnal_closure(edition, a_mu, field_t):
    omega_a, omega_p = _primitive_frequencies(a_mu, field_t, edition, 34.7)
    result = amu_fnal(omega_a / omega_p, codata_edition=edition)
    assert result.a_mu == pytest.approx(a_mu, rel=1e-12, abs=0.0)
    assert result.codata == f"CODATA {edition}"
    assert result.form == "fnal"


@pytest.mark.parametrize("temperature_c", [25.0, 34.7])
def test_fnal_closure_other_temperature(temperature_c):
    omega_a, omega_p = _primitive_frequencies(A_MU_DEFAULT, 1.45, 2018, temperature_c)
    result = amu_fnal(omega_a / omega_p, temperature_c=temperature_c)
    assert result.a_mu == pytest.approx(A_MU_DEFAULT, rel=1e-12, abs=0.0)


def test_fnal_temperature_matters():
    """Using the 25 °C ratio with the 34.7 °C reference shifts a_μ by the shielding change (~100 ppb)."""
    omega_a, omega_p_25 = _primitive_frequencies(A_MU_DEFAULT, 1.45, 2018, 25.0)
    wrong = amu_fnal(omega_a / omega_p_25, temperature_c=34.7).a_mu
    assert wrong / A_MU_DEFAULT - 1.0 == pytest.approx(-DSIGMA_DT_PER_K * 9.7, rel=1e-6)


@pytest.mark.parametrize("edition", [2018, 2022])
def test_field_frequencies_match_primitives(edition):
    omega_a, omega_p = _primitive_frequencies(A_MU_DEFAULT, 1.4513, edition, 34.7)
    assert omega_a_from_amu_rad_per_s(A_MU_DEFAULT, 1.4513, edition) == pytest.approx(omega_a, rel=1e-14, abs=0.0)
    assert omega_p_tilde_rad_per_s(1.4513, edition) == pytest.approx(omega_p, rel=1e-14, abs=0.0)
    round_trip = amu_fnal(
        omega_a_from_amu_rad_per_s(A_MU_DEFAULT, 1.4513, edition) / omega_p_tilde_rad_per_s(1.4513, edition),
        codata_edition=edition,
    )
    assert round_trip.a_mu == pytest.approx(A_MU_DEFAULT, rel=1e-12, abs=0.0)


def test_omega_a_ring_values():
    """ω_a/2π = 0.2291 MHz at 1.4513 T (docs/physics.md §3) and ω_a = 2.9753e6 rad/s at 3 T (docs/physics.md §5 [C])."""
    assert omega_a_from_amu_rad_per_s(A_MU_DEFAULT, 1.4513) / (2.0 * math.pi) / 1e6 == pytest.approx(0.2291, abs=5e-5)
    assert omega_a_from_amu_rad_per_s(A_MU_DEFAULT, 3.0) == pytest.approx(2.9753e6, abs=50.0)


def test_fnal_run1_published():
    """Fermilab Run-1: R'_μ = 0.0037073003(17) ⇒ a_μ = 116 592 040(54) × 10⁻¹¹ with CODATA 2018.

    Source: Muon g−2 Collaboration, PRL 126, 141801 (2021), and PRD 103, 072002 (2021). The ratio
    is published to 10 digits: its last-digit rounding (±0.5e-10) moves a_μ by ±1.6e-11.
    """
    result = amu_fnal(0.0037073003, 1.7e-9, codata_edition=2018)
    assert result.a_mu == pytest.approx(116_592_040e-11, abs=1.6e-11)
    assert result.a_mu_err == pytest.approx(54e-11, abs=1e-11)


def test_fnal_run1_published_through_the_command_line(tmp_path, capsys):
    """The issue's check: ``ringsim amu --ratio 0.0037073003 --ratio-err 1.7e-9 --form fnal --codata 2018``."""
    import json

    from ringsim.cli import main

    out = tmp_path / "amu.json"
    argv = ["amu", "--ratio", "0.0037073003", "--ratio-err", "1.7e-9", "--form", "fnal", "--codata", "2018", "--json", str(out)]
    assert main(argv) == 0
    result = json.loads(out.read_text())
    assert result["a_mu"] == pytest.approx(116_592_040e-11, abs=1.6e-11)  # PRL 126, 141801 (2021)
    assert result["a_mu_err"] == pytest.approx(54e-11, abs=1e-11)


def test_e821_published():
    """BNL E821 final: R = 0.0037072063(20), λ = 3.18334539 ⇒ a_μ = 11 659 208.0 × 10⁻¹⁰ (docs/physics.md §4 [V]).

    The published a_μ must lie between a(R − ½ulp) and a(R + ½ulp), widened by its own rounding
    (0.05e-10). R is the combined μ± ratio of Bennett et al., PRD 73, 072003 (2006).
    """
    ratio, half_ulp = 0.003_707_206_3, 0.5e-10
    low = amu_e821(ratio - half_ulp, lam=LAMBDA_E821).a_mu - 0.05e-10
    high = amu_e821(ratio + half_ulp, lam=LAMBDA_E821).a_mu + 0.05e-10
    assert low <= 11_659_208.0e-10 <= high
    # the propagated error from R's ±20e-10 is the dominant part of the published ±6.3e-10
    result = amu_e821(ratio, ratio_err=20e-10, lam=LAMBDA_E821, lam_err=LAMBDA_E821_ERR)
    assert result.a_mu_err == pytest.approx(6.3e-10, abs=0.05e-10)


@pytest.mark.parametrize("edition", [2018, 2022])
@pytest.mark.parametrize("temperature_c", [25.0, 34.7])
def test_forms_agree(edition, temperature_c):
    """a = R'/(λ' − R') with λ' = μ_μ/μ'_p(T) gives the same a_μ as the Fermilab form."""
    a_mu = A_MU_DEFAULT
    omega_a, omega_p = _primitive_frequencies(a_mu, 1.45, edition, temperature_c)
    ratio = omega_a / omega_p
    lam = _lambda_shielded(a_mu, edition, temperature_c)
    e821 = amu_e821(ratio, lam=lam, lam_err=0.0).a_mu
    fnal = amu_fnal(ratio, codata_edition=edition, temperature_c=temperature_c).a_mu
    assert e821 == pytest.approx(a_mu, rel=1e-11, abs=0.0)
    assert fnal == pytest.approx(e821, rel=1e-11, abs=0.0)


_FNAL_CONSTANTS = (
    "muon_electron_mass_ratio",
    "electron_g_factor",
    "electron_to_shielded_proton_moment_ratio",
)


@pytest.mark.parametrize("edition", [2018, 2022])
@pytest.mark.parametrize("rel_ratio_err", [0.0, 4.6e-7])
def test_fnal_error_numerical(monkeypatch, edition, rel_ratio_err):
    """Propagated error = quadrature sum of central-difference derivatives times each σ."""
    ratio = 0.003_707_2
    ratio_err = rel_ratio_err * ratio
    result = amu_fnal(ratio, ratio_err, codata_edition=edition)

    step = 1e-3 * ratio
    up = amu_fnal(ratio + step, codata_edition=edition).a_mu
    down = amu_fnal(ratio - step, codata_edition=edition).a_mu
    dadr = (up - down) / (2.0 * step)
    variance = (dadr * ratio_err) ** 2
    table = codata(edition)
    for field in _FNAL_CONSTANTS:
        value, sigma = getattr(table, field), getattr(table, field + "_err")
        shifted = []
        for sign in (1.0, -1.0):
            perturbed = dataclasses.replace(table, **{field: value + sign * sigma})
            monkeypatch.setitem(constants.CODATA_TABLES, edition, perturbed)
            shifted.append(amu_fnal(ratio, codata_edition=edition).a_mu)
        monkeypatch.setitem(constants.CODATA_TABLES, edition, table)
        variance += ((shifted[0] - shifted[1]) / 2.0) ** 2
    # the temperature coefficient of the shielding, ±0.30e-9 /K over 9.7 K
    by_coefficient = []
    for sign in (1.0, -1.0):
        monkeypatch.setattr(constants, "SHIELDING_DSIGMA_DT_PER_K", DSIGMA_DT_PER_K + sign * DSIGMA_DT_ERR_PER_K)
        by_coefficient.append(amu_fnal(ratio, codata_edition=edition).a_mu)
    monkeypatch.setattr(constants, "SHIELDING_DSIGMA_DT_PER_K", DSIGMA_DT_PER_K)
    variance += ((by_coefficient[0] - by_coefficient[1]) / 2.0) ** 2
    assert result.a_mu_err == pytest.approx(math.sqrt(variance), rel=1e-5, abs=0.0)
    if rel_ratio_err:
        # the ratio dominates: the constants add < 1 % to the 460 ppb
        assert result.a_mu_err / result.a_mu == pytest.approx(rel_ratio_err, rel=0.01)


def test_e821_error_numerical():
    ratio, ratio_err, lam, lam_err = 0.003_707_2, 2.0e-9, 3.183_345_39, 1.0e-7
    result = amu_e821(ratio, ratio_err, lam, lam_err)
    h_r, h_l = 1e-4 * ratio, 1e-4 * lam
    dadr = (amu_e821(ratio + h_r, lam=lam).a_mu - amu_e821(ratio - h_r, lam=lam).a_mu) / (2.0 * h_r)
    dadl = (amu_e821(ratio, lam=lam + h_l).a_mu - amu_e821(ratio, lam=lam - h_l).a_mu) / (2.0 * h_l)
    assert result.a_mu_err == pytest.approx(math.hypot(dadr * ratio_err, dadl * lam_err), rel=1e-6)


def test_result_dict():
    result = amu_fnal(0.003_707_2, 1.0e-9)
    assert isinstance(result, AmuResult)
    d = result.to_dict()
    assert {"a_mu", "a_mu_err", "form", "codata", "ratio", "ratio_err"} <= set(d)
    assert d["a_mu"] == result.a_mu and d["ratio_err"] == 1.0e-9 and d["codata"] == "CODATA 2018"
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.a_mu = 0.0
    assert amu_e821(0.003_707_2).to_dict()["form"] == "e821"


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: amu_fnal(-0.0037), "ratio"),
        (lambda: amu_fnal(0.0), "ratio"),
        (lambda: amu_fnal(float("nan")), "ratio"),
        (lambda: amu_fnal(float("inf")), "ratio"),
        (lambda: amu_fnal(0.0037, -1e-9), "ratio_err"),
        (lambda: amu_fnal(0.0037, float("nan")), "ratio_err"),
        (lambda: amu_fnal(0.0037, temperature_c=float("nan")), "temperature_c"),
        (lambda: amu_fnal(0.0037, codata_edition=2010), "codata"),
        (lambda: amu_e821(-0.0037), "ratio"),
        (lambda: amu_e821(float("nan")), "ratio"),
        (lambda: amu_e821(0.0037, -1e-9), "ratio_err"),
        (lambda: amu_e821(0.0037, lam=0.0037), "lam"),
        (lambda: amu_e821(0.0037, lam=0.001), "lam"),
        (lambda: amu_e821(0.0037, lam=float("nan")), "lam"),
        (lambda: amu_e821(0.0037, lam_err=-1e-7), "lam_err"),
        (lambda: omega_p_tilde_rad_per_s(-1.45), "field_t"),
        (lambda: omega_p_tilde_rad_per_s(float("nan")), "field_t"),
        (lambda: omega_a_from_amu_rad_per_s(A_MU_DEFAULT, 0.0), "field_t"),
        (lambda: omega_a_from_amu_rad_per_s(float("inf"), 1.45), "a_mu"),
    ],
)
def test_invalid_input_raises(call, name):
    with pytest.raises(ConfigError, match=rf"^{name}: ") as info:
        call()
    assert "\n" not in str(info.value)
