"""Blinding: the ΔR distribution, determinism, blinded fits, exact unblinding, nothing leaks."""

import json
import math

import numpy as np
import pytest

from analysis.blinding import Blinder
from analysis.fitting import fit_five_parameter, fit_wiggle
from analysis.scans import start_time_scan
from ringsim.errors import ConfigError

OMEGA_REF = 2.0 * math.pi * 0.2291  # rad/μs
SECRET = "the quick brown muon"


def delta_r_ppm(blinder):
    """ΔR through the public API: the blinded R of a true frequency equal to ω_ref."""
    return blinder.r_from_omega(blinder.omega_ref_rad_per_us)


def test_delta_r_distribution_over_many_secrets():
    n = 4000
    dr = np.array([delta_r_ppm(Blinder(f"secret-{i}", OMEGA_REF)) for i in range(n)])
    p_box = 48.0 / (48.0 + math.sqrt(2.0 * math.pi))  # uniform ±24 ppm, 1 ppm Gaussian tails
    inside = np.abs(dr) <= 24.0
    assert abs(inside.mean() - p_box) < 4.0 * math.sqrt(p_box * (1.0 - p_box) / n)
    box = dr[inside]
    assert abs(box.mean()) < 4.0 * 24.0 / math.sqrt(3.0 * box.size)
    assert box.var() == pytest.approx(24.0**2 / 3.0, rel=0.06)  # uniform on ±24 ppm
    excess = np.abs(dr[~inside]) - 24.0  # half-normal of σ = 1 ppm
    assert abs(excess.mean() - math.sqrt(2.0 / math.pi)) < 4.0 * math.sqrt((1.0 - 2.0 / math.pi) / excess.size)
    assert excess.max() < 6.0
    assert 0.3 < np.mean(dr[~inside] > 0.0) < 0.7


def test_same_secret_same_offset_and_different_secrets_differ():
    assert delta_r_ppm(Blinder(SECRET, OMEGA_REF)) == delta_r_ppm(Blinder(SECRET, OMEGA_REF))
    assert delta_r_ppm(Blinder(SECRET, OMEGA_REF)) != delta_r_ppm(Blinder(SECRET + " ", OMEGA_REF))


def test_parameterisation_and_inverse():
    b = Blinder(SECRET, OMEGA_REF)
    dr = delta_r_ppm(b)
    assert b.omega_from_r(10.0) == pytest.approx(OMEGA_REF * (1.0 + (10.0 - dr) * 1e-6), rel=1e-15)
    omega = 1.4394
    assert b.omega_from_r(b.r_from_omega(omega)) == pytest.approx(omega, rel=1e-15)
    assert b.blinded_omega(omega) - omega == pytest.approx(dr * OMEGA_REF * 1e-6, rel=1e-9)
    assert b.unblind_r(b.r_from_omega(omega)) == pytest.approx(omega, rel=1e-15)


@pytest.mark.parametrize("secret", ["", None])
def test_empty_secret_is_a_config_error(secret):
    with pytest.raises(ConfigError, match="secret"):
        Blinder(secret, OMEGA_REF)


def test_bad_reference_frequency_is_a_config_error():
    with pytest.raises(ConfigError, match="omega_ref"):
        Blinder(SECRET, -1.0)


def pseudo_histogram(seed):
    """Fermilab-like Poisson histogram, 2e5 entries, expectation at bin centres times width."""
    width = 0.1492
    edges = 30.2 + width * np.arange(4155)
    t = 0.5 * (edges[:-1] + edges[1:])
    rate = np.exp(-t / 64.4) * (1.0 + 0.35 * np.cos(1.4394 * t + 0.4))
    mu = 2.0e5 * rate / rate.sum()
    return np.random.default_rng(seed).poisson(mu), edges


def test_blinded_fit_hides_omega_and_unblinding_restores_it():
    counts, edges = pseudo_histogram(3)
    b = Blinder(SECRET, OMEGA_REF)
    dr = delta_r_ppm(b)
    assert abs(dr) > 1.0  # the digit checks below need an offset well above rounding
    open_fit = fit_five_parameter(counts, edges, 30.2, 650.0, OMEGA_REF, 64.4)
    blind_fit = fit_five_parameter(counts, edges, 30.2, 650.0, OMEGA_REF, 64.4, blinder=b)

    assert blind_fit.blinded and not open_fit.blinded
    assert blind_fit.omega_a - open_fit.omega_a == pytest.approx(dr * OMEGA_REF * 1e-6, rel=1e-9)
    assert blind_fit.R_ppm - open_fit.R_ppm == pytest.approx(dr, rel=1e-12)
    assert blind_fit.omega_a_err == open_fit.omega_a_err
    for name in ("N0", "tau_us", "A", "phi"):  # the fit itself is the same
        assert blind_fit.params[name] == open_fit.params[name]
    assert blind_fit.chi2 == open_fit.chi2
    assert b.unblind_r(blind_fit.R_ppm) == pytest.approx(open_fit.omega_a, rel=1e-12, abs=0.0)


def test_nothing_reveals_the_offset_or_the_true_frequency():
    counts, edges = pseudo_histogram(4)
    b = Blinder(SECRET, OMEGA_REF)
    dr = delta_r_ppm(b)
    open_fit = fit_five_parameter(counts, edges, 30.2, 650.0, OMEGA_REF, 64.4)
    blind_fit = fit_five_parameter(counts, edges, 30.2, 650.0, OMEGA_REF, 64.4, blinder=b)
    texts = [repr(b), str(b), repr(blind_fit), str(blind_fit), json.dumps(blind_fit.to_dict())]
    secrets = {
        repr(dr),
        f"{abs(dr):.4f}",
        repr(open_fit.omega_a),
        f"{open_fit.omega_a:.8f}",
        repr(open_fit.R_ppm),
        f"{abs(open_fit.R_ppm):.4f}",
        SECRET,
    }
    for text in texts:
        for s in secrets:
            assert s not in text
    # the blinded numbers are in the output, so the checks above are looking at the right text
    assert repr(blind_fit.omega_a) in json.dumps(blind_fit.to_dict())


def test_true_r_inverts_the_blinding():
    b = Blinder(SECRET, OMEGA_REF)
    assert b.true_r(b.blind_r(12.5)) == pytest.approx(12.5, abs=1e-12)
    assert b.true_r(0.0) == pytest.approx(-delta_r_ppm(b), abs=1e-12)


@pytest.mark.parametrize("r_fixed_ppm", [0.0, 7.25])
def test_a_fixed_r_is_a_blinded_r(r_fixed_ppm):
    """Fixing R under blinding holds the blinded R: the fit equals an open fit at R − ΔR (issue 18 item 1)."""
    counts, edges = pseudo_histogram(5)
    b = Blinder(SECRET, OMEGA_REF)
    dr = delta_r_ppm(b)
    blind_fit = fit_wiggle(counts, edges, "5", start_us=30.2, end_us=650.0, omega_ref_rad_per_us=OMEGA_REF, tau_guess_us=64.4, blinder=b, fixed={"R_ppm": r_fixed_ppm})
    open_fit = fit_wiggle(counts, edges, "5", start_us=30.2, end_us=650.0, omega_ref_rad_per_us=OMEGA_REF, tau_guess_us=64.4, fixed={"R_ppm": r_fixed_ppm - dr})
    assert blind_fit.R_ppm == pytest.approx(r_fixed_ppm, abs=1e-12)
    assert blind_fit.omega_a == pytest.approx(OMEGA_REF * (1.0 + r_fixed_ppm * 1e-6), rel=1e-15)
    assert blind_fit.chi2 == pytest.approx(open_fit.chi2, rel=1e-9)
    for name in ("N0", "tau_us", "A", "phi"):
        assert blind_fit.params[name] == pytest.approx(open_fit.params[name], rel=1e-6, abs=1e-9)


def test_blinded_scan_holds_a_fixed_blinded_r_at_every_point():
    counts, edges = pseudo_histogram(6)
    b = Blinder(SECRET, OMEGA_REF)
    kw = {"model": "5", "omega_ref_rad_per_us": OMEGA_REF, "tau_guess_us": 64.4}
    free = start_time_scan(counts, edges, [30.2, 50.0, 80.0], end_us=650.0, blinder=b, **kw)
    open_scan = start_time_scan(counts, edges, [30.2, 50.0, 80.0], end_us=650.0, **kw)
    assert free.blinded and np.allclose(free.omega_a - open_scan.omega_a, delta_r_ppm(b) * OMEGA_REF * 1e-6, rtol=1e-6, atol=0.0)
    held = start_time_scan(counts, edges, [30.2, 50.0], end_us=650.0, blinder=b, fixed={"R_ppm": 0.0}, **kw)
    assert np.all(held.omega_a == OMEGA_REF)


def test_another_reference_frequency_reports_the_same_blinded_omega():
    """Fits of one file with two ring presets (two ω_ref) must not give two equations for ΔR and ω."""
    omega_jparc_ref = 2.0 * math.pi * 0.4735  # rad/μs: blinding_reference_mhz of ringsim/presets/jparc.toml
    fnal, jparc = Blinder(SECRET, OMEGA_REF), Blinder(SECRET, omega_jparc_ref)
    for omega_true in (1.4394, 1.4395, 2.975):
        assert jparc.blinded_omega(omega_true) == pytest.approx(fnal.blinded_omega(omega_true), rel=1e-14)
        assert jparc.omega_from_r(jparc.r_from_omega(omega_true)) == pytest.approx(omega_true, rel=1e-14)
    assert fnal.blinded_omega(1.4394) != 1.4394  # still blinded
