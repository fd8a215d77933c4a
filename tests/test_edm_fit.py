"""EDM fits: the tilt δ = atan(ηβ/2a) follows from the BMT precession vector, d = η·4.669e-14 e·cm,
the up–down (J-PARC) and vertical-angle (Fermilab tracker) fits recover an injected EDM with unit
pulls, and the J-PARC statistical reach matches docs/physics.md §5's σ_d ≈ 1.6e-21 e·cm."""

import math

import numpy as np
import pytest

from analysis.edm import JPARC_UP_DOWN_ASYMMETRY, edm_per_eta_e_cm, fit_up_down, fit_vertical_angle, tilt_from_eta, vertical_angle_means
from ringsim.constants import A_MU_DEFAULT, codata
from ringsim.errors import ConfigError, FitError, InputError

M_MU = codata().muon_mass_mev
# J-PARC (docs/physics.md §5): γ = 3.0103, ω_a = 2.9753 rad/μs, γτ = 6.614 μs, A = 0.419 (200–275 MeV), P = 0.5
JPARC = dict(beta=math.sqrt(1 - 3.0103**-2), omega=2.9753, tau=6.614, asym=0.419 * 0.5, pol=0.5)
EDGES = np.arange(0.0, 40.0 + 1e-9, 0.005 * 20)  # 100 ns bins over the 40 μs readout


def test_edm_unit_is_e_hbar_over_4mc():
    assert edm_per_eta_e_cm(M_MU) == pytest.approx(4.669e-14, rel=2e-4)  # docs/physics.md §2 [C]


def test_tilt_follows_from_the_bmt_precession_vector():
    # docs/physics.md §2 with E = 0, β ⊥ B: Ω ∝ a B + (η/2) β × B; the tilt is the angle of Ω from B
    beta_vec, b_vec = np.array([0.0, 0.0, JPARC["beta"]]), np.array([0.0, 1.0, 0.0])
    for eta in (1e-6, 3e-4, 0.05):
        omega = A_MU_DEFAULT * b_vec + 0.5 * eta * np.cross(beta_vec, b_vec)
        angle = math.atan2(np.linalg.norm(np.cross(omega, b_vec)), omega @ b_vec)
        assert tilt_from_eta(eta, A_MU_DEFAULT, JPARC["beta"]) == pytest.approx(angle, rel=1e-12, abs=0.0)


def up_down_expectation(n_total, delta, edges=EDGES, offset=0.0):
    """Up and down counts: ½N0 e^{−t/τ}[1 + A cos θ ± (A_ud P sin δ sin θ + offset)], 8-node Gauss per bin."""
    x, w = np.polynomial.legendre.leggauss(8)
    half = 0.5 * np.diff(edges)
    t = (edges[:-1] + half)[:, None] + half[:, None] * x
    theta = JPARC["omega"] * t + 0.4
    base = np.exp(-t / JPARC["tau"]) * (1 + JPARC["asym"] * np.cos(theta))
    tilt = JPARC_UP_DOWN_ASYMMETRY * JPARC["pol"] * math.sin(delta) * np.sin(theta) + offset
    decay = np.exp(-t / JPARC["tau"])
    up = 0.5 * np.sum((base + decay * tilt) * w, axis=1) * half
    down = 0.5 * np.sum((base - decay * tilt) * w, axis=1) * half
    scale = n_total / np.sum(up + down)
    return up * scale, down * scale


def jparc_fit(up, down, **kw):
    return fit_up_down(
        up, down, EDGES, start_us=0.0, end_us=40.0, omega_rad_per_us=JPARC["omega"], phi=0.4, asymmetry=JPARC["asym"], tau_us=JPARC["tau"],
        polarization=JPARC["pol"], a_mu=A_MU_DEFAULT, beta=JPARC["beta"], muon_mass_mev=M_MU, **kw,
    )  # fmt: skip


def test_up_down_fit_recovers_an_injected_edm_with_unit_pulls():
    d_true = 2e-18  # e·cm
    eta = d_true / edm_per_eta_e_cm(M_MU)
    delta = tilt_from_eta(eta, A_MU_DEFAULT, JPARC["beta"])
    up_mu, down_mu = up_down_expectation(2e8, delta, offset=0.003)
    rng = np.random.default_rng(12)
    pulls = []
    for _ in range(100):
        fit = jparc_fit(rng.poisson(up_mu), rng.poisson(down_mu))
        pulls.append((fit.d_e_cm - d_true) / fit.d_err_e_cm)
    pulls = np.array(pulls)
    assert abs(pulls.mean()) < 0.3 and abs(pulls.std(ddof=1) - 1.0) < 0.15
    assert fit.offset == pytest.approx(0.003, abs=5 * fit.sin_amplitude_err)  # up–down acceptance offset absorbed
    assert abs(fit.cos_amplitude) < 5 * fit.cos_amplitude_err
    assert fit.d_err_e_cm > 0 and fit.limit_e_cm() == pytest.approx(abs(fit.d_e_cm) + 1.96 * fit.d_err_e_cm)
    assert abs(fit.chi2 - fit.ndf) < 5 * math.sqrt(2 * fit.ndf)


def test_jparc_edm_reach_matches_spec():
    # docs/physics.md §5 [C]: N = 5.7e11 positrons, P = 0.5, A_ud = 0.268 ⇒ σ_d ≈ 1.6e-21 e·cm; σ scales as 1/√N
    n = 5.7e9
    up, down = up_down_expectation(n, 0.0)
    fit = jparc_fit(up, down)  # Asimov data: the error is the expected one
    assert fit.d_err_e_cm * math.sqrt(n / 5.7e11) == pytest.approx(1.6e-21, rel=0.05)
    assert abs(fit.d_e_cm) < 1e-3 * fit.d_err_e_cm


def test_tracker_vertical_angle_fit_recovers_the_edm():
    # Fermilab-like: ω = 1.44 rad/μs, γτ = 64.4 μs, β ≈ 1; κ = 10 mrad per unit vertical spin
    rng = np.random.default_rng(4)
    beta, omega, tau, asym, pol, kappa = 0.999418, 1.44, 64.4, 0.35, 0.95, 10.0
    d_true = 3e-17
    delta = tilt_from_eta(d_true / edm_per_eta_e_cm(M_MU), A_MU_DEFAULT, beta)
    n_hits = 3_000_000
    t = rng.exponential(tau, n_hits)
    t = t[(t > 30.0) & (t < 400.0)]
    theta = omega * t + 1.1
    keep = rng.uniform(0, 1 + asym, t.size) < 1 + asym * np.cos(theta)
    t, theta = t[keep], theta[keep]
    # each hit's vertical angle: spread 5 mrad around 0.2 mrad + κ P sin δ sin θ/(1 + A cos θ)
    angle = 0.2 + kappa * pol * math.sin(delta) * np.sin(theta) / (1 + asym * np.cos(theta)) + rng.normal(0.0, 5.0, t.size)
    edges = np.arange(30.0, 400.0 + 1e-9, 0.2)  # ω h = 0.29 rad: binning costs < 1 % of the information
    mean, err, n = vertical_angle_means(t, angle, edges)
    assert n.sum() == t.size and np.all(err > 0)
    fit = fit_vertical_angle(
        mean,
        err,
        edges,
        start_us=30.0,
        end_us=400.0,
        omega_rad_per_us=omega,
        phi=1.1,
        asymmetry=asym,
        tau_us=tau,
        polarization=pol,
        angle_per_unit_spin=kappa,
        a_mu=A_MU_DEFAULT,
        beta=beta,
        muon_mass_mev=M_MU,
    )
    assert abs(fit.d_e_cm - d_true) < 4 * fit.d_err_e_cm and fit.d_e_cm / fit.d_err_e_cm > 5
    assert fit.offset == pytest.approx(0.2, abs=0.02)
    # the error is the least-squares one: 5 mrad per hit, ⟨sin²θ/(1 + A cos θ)²⟩ per hit of the sample
    x = np.sin(theta) / (1 + asym * np.cos(theta))
    expected = 5.0 / math.sqrt(np.sum((x - x.mean()) ** 2))
    assert fit.sin_amplitude_err == pytest.approx(expected, rel=0.05)


def test_edm_fits_reject_bad_inputs():
    up, down = up_down_expectation(1e6, 0.0)
    with pytest.raises(InputError, match="equal 1-D shapes"):
        jparc_fit(up, down[:-1])
    with pytest.raises(InputError, match="non-negative"):
        jparc_fit(-up, down)
    with pytest.raises(ConfigError, match="analysing power"):
        jparc_fit(up, down, up_down_asymmetry=0.0)
    big_up, big_down = up_down_expectation(1e6, math.pi / 2)  # a vertical spin oscillation of full amplitude
    with pytest.raises(FitError, match="exceeds"):
        jparc_fit(big_up, big_down, up_down_asymmetry=0.1)  # claimed analysing power × P = 0.05 < 0.134
    with pytest.raises(FitError, match="too few"):
        jparc_fit(np.zeros_like(up), np.zeros_like(down))
