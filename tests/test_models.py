"""Composable fit models: the compiled rate equals docs/physics.md §3's formula written out here, bin contents
are its integrals, the Jacobian is its derivative, presets have their advertised sizes, the loss
integral and the beam frequencies match closed forms, and the toy's Michel spectrum matches ringsim."""

import math

import numpy as np
import pytest

from analysis import pseudo_data as toy
from analysis.models import (
    FULL_NAMES,
    INDEX,
    BinnedModel,
    LossSpectrum,
    beam_frequencies_mhz,
    expected_counts,
    five_parameter_binned,
    parse_model,
    rate,
)
from ringsim.constants import codata
from ringsim.decay import lab_fraction_and_asymmetry
from ringsim.errors import ConfigError, InputError

OMEGA_REF = 2.0 * math.pi * 0.2291
TAU = 64.4
LOSS_TAU, LOSS_END = 30.0, 700.0
FULL = dict(
    N0=1.0e4, tau_us=TAU, A=0.35, R_ppm=3.0, phi=2.1, omega_cbo=2.34, tau_cbo_us=150.0, A_cbo_N=0.004, phi_cbo_N=0.3,
    A_cbo_A=0.01, phi_cbo_A=1.0, A_cbo_phi=0.02, phi_cbo_phi=-0.5, A_2cbo=0.0005, phi_2cbo=0.2, c_cbo=0.1,
    cbo_dA_rad=3.0, cbo_tau_A_us=80.0, cbo_dB_rad=5.0, cbo_tau_B_us=8.0, omega_vw=14.4, tau_vw_us=40.0, A_vw=0.003,
    phi_vw=0.1, omega_y=13.8, tau_y_us=60.0, A_y=0.002, phi_y=0.7, k_loss=0.01,
)  # fmt: skip


LOSS_EDGES = np.array([0.0, 10.0, 35.0, 80.0, 200.0, LOSS_END])
LOSS_COUNTS = np.array([50.0, 80.0, 30.0, 0.0, 5.0])  # lost muons per bin, flat within each bin


def loss_spectrum():
    return LossSpectrum(LOSS_EDGES, LOSS_COUNTS, TAU)


def analytic_loss(t):
    """L(t) of the piecewise-constant spectrum: Σ_b ℓ_b γτ (e^{min(t, b1)/γτ} − e^{b0/γτ})⁺, normalised at LOSS_END."""
    t = np.asarray(t, dtype=float)
    density = LOSS_COUNTS / np.diff(LOSS_EDGES)

    def integral(x):
        total = np.zeros_like(x)
        for d, lo, hi in zip(density, LOSS_EDGES[:-1], LOSS_EDGES[1:]):
            total += d * TAU * np.clip(np.exp(np.minimum(x, hi) / TAU) - math.exp(lo / TAU), 0.0, None)
        return total

    return integral(t) / integral(np.array(LOSS_END))


def spec_rate(t, p):
    """docs/physics.md §3 full rate, term by term (independent of the compiled kernel)."""
    env = np.exp(-t / p["tau_cbo_us"]) + p["c_cbo"]
    omega_cbo_t = p["omega_cbo"] + p["cbo_dA_rad"] / t * np.exp(-t / p["cbo_tau_A_us"]) + p["cbo_dB_rad"] / t * np.exp(-t / p["cbo_tau_B_us"])
    theta = omega_cbo_t * t
    n_cbo = 1 + p["A_cbo_N"] * env * np.cos(theta + p["phi_cbo_N"])
    a_cbo = 1 + p["A_cbo_A"] * env * np.cos(theta + p["phi_cbo_A"])
    phi_cbo = p["A_cbo_phi"] * env * np.cos(theta + p["phi_cbo_phi"])
    n_2cbo = 1 + p["A_2cbo"] * env**2 * np.cos(2 * theta + p["phi_2cbo"])
    n_vw = 1 + p["A_vw"] * np.exp(-t / p["tau_vw_us"]) * np.cos(p["omega_vw"] * t + p["phi_vw"])
    n_y = 1 + p["A_y"] * np.exp(-t / p["tau_y_us"]) * np.cos(p["omega_y"] * t + p["phi_y"])
    lam = 1 - p["k_loss"] * analytic_loss(t)
    omega = OMEGA_REF * (1 + p["R_ppm"] * 1e-6)
    return p["N0"] * lam * n_cbo * n_2cbo * n_vw * n_y * np.exp(-t / p["tau_us"]) * (1 + p["A"] * a_cbo * np.cos(omega * t + p["phi"] + phi_cbo))


def fine_integrals(edges, fn, sub=64):
    x, w = np.polynomial.legendre.leggauss(10)
    piece = np.diff(edges) / sub
    lo = edges[:-1, None] + piece[:, None] * np.arange(sub)[None, :]
    t = lo[..., None] + 0.5 * piece[:, None, None] * (x + 1.0)
    return np.sum(fn(t) * w, axis=(1, 2)) * 0.5 * piece


@pytest.mark.parametrize("name, size", [("5", 5), ("9", 9), ("13", 13), ("18", 18), ("22", 22), ("28", 28)])
def test_presets_have_their_advertised_number_of_parameters(name, size):
    assert parse_model(name).n_parameters == size


def test_user_combinations_and_bad_tokens():
    m = parse_model("5+cbo_n+cbo_a+vw")
    assert m.names == ("N0", "tau_us", "A", "R_ppm", "phi", "omega_cbo", "tau_cbo_us", "A_cbo_N", "phi_cbo_N", "A_cbo_A", "phi_cbo_A", "omega_vw", "tau_vw_us", "A_vw", "phi_vw")
    assert parse_model("13+2cbo+cbo_const").n_parameters == 16
    with pytest.raises(ConfigError, match="unknown term 'wobble'"):
        parse_model("5+wobble")
    with pytest.raises(ConfigError, match="no CBO term"):
        parse_model("5+cbo_c")


def test_compiled_rate_equals_the_spec_formula():
    model = parse_model("28+cbo_c")
    assert set(model.names) == set(FULL_NAMES)
    t = np.linspace(0.5, 600.0, 3001)
    got = rate(model, t, FULL, OMEGA_REF, loss_spectrum())
    np.testing.assert_allclose(got, spec_rate(t, FULL), rtol=1e-9)


@pytest.mark.parametrize("uniform", [True, False])
def test_bin_contents_are_the_integrals_of_the_rate(uniform):
    model = parse_model("28+cbo_c")
    edges = 30.2 + 0.1492 * np.arange(801) if uniform else np.cumsum(np.r_[30.0, np.random.default_rng(1).uniform(0.05, 0.15, 800)])
    got = expected_counts(model, edges, FULL, OMEGA_REF, loss_spectrum())
    # 3 Gauss nodes per bin: the fastest term (ω_vw h ≈ 2.1 rad per bin) is integrated to ~1e-4 of its
    # 0.3 % amplitude, so the total is exact to a few 1e-7
    np.testing.assert_allclose(got, fine_integrals(edges, lambda t: spec_rate(t, FULL)), rtol=5e-7)


def test_five_parameter_model_matches_its_closed_form():
    edges = np.linspace(0.0, 100.0, 671)
    values = {"N0": 1000.0, "tau_us": 6.6, "A": 0.4, "R_ppm": 0.0, "phi": -0.7}
    got = expected_counts(parse_model("5"), edges, values, 2.97)
    # 3-node Gauss–Legendre per bin, ωh = 0.44 rad: error ~ (ωh)^6/2e6 ≈ 4e-9
    np.testing.assert_allclose(got, five_parameter_binned(edges, 1000.0, 6.6, 0.4, 2.97, -0.7), rtol=1e-8)


def test_jacobian_is_the_derivative_of_the_bin_contents():
    model = parse_model("28+cbo_c")
    binned = BinnedModel(model, 30.2 + 0.1492 * np.arange(401), OMEGA_REF, loss_spectrum())
    p = model.full_vector(FULL)
    _, jac = binned.expected_and_jacobian(p, model.index)
    for j, name in enumerate(model.names):
        h = 1e-3 if name == "R_ppm" else 1e-6 * max(abs(p[INDEX[name]]), 0.1)  # R in ppm: a larger step beats rounding
        up, down = p.copy(), p.copy()
        up[INDEX[name]] += h
        down[INDEX[name]] -= h
        numeric = (binned.expected(up) - binned.expected(down)) / (2 * h)
        scale = np.max(np.abs(numeric))
        assert np.max(np.abs(jac[:, j] - numeric)) < 1e-5 * scale, name


def test_recurrences_over_thousands_of_uniform_bins_equal_direct_evaluation():
    model = parse_model("28+cbo_c")
    edges = 30.2 + 0.1492 * np.arange(4001)
    fast = BinnedModel(model, edges, OMEGA_REF, loss_spectrum())
    direct = BinnedModel(model, edges, OMEGA_REF, loss_spectrum())
    direct.uniform = False
    p = model.full_vector(FULL)
    mu_f, jac_f = fast.expected_and_jacobian(p, model.index)
    mu_d, jac_d = direct.expected_and_jacobian(p, model.index)
    np.testing.assert_allclose(mu_f, mu_d, rtol=1e-11)
    assert np.max(np.abs(jac_f - jac_d)) < 1e-10 * np.max(np.abs(jac_d))


def test_loss_integral_matches_the_closed_form():
    t = np.array([-5.0, 0.0, 0.1, 3.7, 30.2, 100.0, 199.99, 650.0, 700.0, 900.0])
    np.testing.assert_allclose(loss_spectrum().cumulative(t), analytic_loss(t), rtol=1e-12, atol=1e-15)
    # a smooth spectrum ℓ ∝ e^{−t/30 μs} in 0.1 μs bins approaches its continuous integral
    edges = np.linspace(0.0, 700.0, 7001)
    fine = LossSpectrum(edges, -np.diff(np.exp(-edges / 30.0)), TAU)
    k = 1.0 / TAU - 1.0 / 30.0
    np.testing.assert_allclose(fine.cumulative(t[4:]), np.expm1(k * np.clip(t[4:], 0, 700)) / np.expm1(k * 700.0), rtol=1e-4)
    with pytest.raises(InputError, match="lost-muon spectrum"):
        LossSpectrum(np.arange(3.0), np.zeros(2), TAU)
    with pytest.raises(ConfigError, match="lost-muon spectrum"):
        expected_counts(parse_model("5+loss"), np.arange(5.0), FULL, OMEGA_REF)


def test_model_values_must_be_complete_and_finite():
    with pytest.raises(ConfigError, match="no value for parameter omega_vw"):
        parse_model("5+vw").full_vector({k: FULL[k] for k in ("N0", "tau_us", "A", "R_ppm", "phi")})
    with pytest.raises(ConfigError, match="not finite"):
        parse_model("5").full_vector(FULL | {"A": math.nan})


def test_fermilab_beam_frequencies():
    # docs/physics.md §3: f_cbo ≈ 0.372 MHz, f_y ≈ 2.20 MHz, f_vw ≈ 2.30 MHz for f_c = 6.705 MHz, n = 0.108
    f = beam_frequencies_mhz(6.705, 0.108)
    assert f["cbo"] == pytest.approx(0.372, abs=1e-3)
    assert f["y"] == pytest.approx(2.20, abs=5e-3)
    assert f["vw"] == pytest.approx(2.30, abs=5e-3)
    assert f["2cbo"] == pytest.approx(2 * f["cbo"])


def test_toy_michel_spectrum_matches_ringsim_at_the_magic_momentum():
    # β → 1 differential spectrum of the toy vs ringsim's exact boost at γ = 29.3: fraction and A above y
    gamma, m = 29.3, codata().muon_mass_mev
    e_max = 0.5 * gamma * (1 + math.sqrt(1 - gamma**-2)) * m
    for y0 in (0.2, 0.549, 0.8):
        frac, asym = toy.michel_energy_bins([y0, 1.0])
        ref_frac, ref_asym = lab_fraction_and_asymmetry(gamma, y0 * e_max, 1.2 * e_max, m)
        assert frac[0] == pytest.approx(ref_frac, abs=2e-3)
        assert asym[0] == pytest.approx(ref_asym, abs=2e-3)
    # docs/physics.md §6 [C]: E > 1.7 GeV keeps 22 % of decays with A = 0.354 (ideal acceptance)
    frac, asym = toy.michel_energy_bins([1700.0 / 3095.0, 1.0])
    assert frac[0] == pytest.approx(0.22, abs=5e-3) and asym[0] == pytest.approx(0.354, abs=2e-3)
