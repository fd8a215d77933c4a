"""Beam-dynamics corrections C_e and C_p against analytic moments of known distributions."""

import math

import numpy as np
import pytest

from calibration.beam_corrections import (
    electric_field_correction,
    equilibrium_radius_offset_m,
    pitch_correction,
    pitch_correction_from_amplitudes,
)
from ringsim.errors import ConfigError, InputError

N_FNAL = 0.108
R0_FNAL_M = 7.112
BETA_MAGIC = 0.999418


def test_pitch_run1_gaussian():
    """Run-1 check (docs/physics.md §4 [C]): n = 0.108, σ_y = 12.88 mm ⇒ C_p = nσ²/(2R0²) = 177 ppb."""
    sigma_y = 12.88e-3
    expected = N_FNAL * sigma_y**2 / (2.0 * R0_FNAL_M**2)
    assert expected * 1e9 == pytest.approx(177.0, abs=0.5)

    n_samples = 200_000
    y = np.random.default_rng(1).normal(0.0, sigma_y, n_samples)
    c_p, c_p_err = pitch_correction(y, N_FNAL, R0_FNAL_M)
    # Var(y²) = 2σ⁴ for a Gaussian ⇒ error of the mean of y² is σ²√(2/N)
    analytic_err = N_FNAL / (2.0 * R0_FNAL_M**2) * sigma_y**2 * math.sqrt(2.0 / n_samples)
    assert c_p_err == pytest.approx(analytic_err, rel=0.03)
    assert abs(c_p - expected) < 4.0 * analytic_err


def test_pitch_amplitudes_match_positions():
    """y = A cos ψ with uniform ψ: ⟨y²⟩ = ⟨A²⟩/2, so both forms of C_p agree."""
    rng = np.random.default_rng(2)
    n_samples = 200_000
    amplitude = rng.uniform(0.0, 0.045, n_samples)  # up to the 45 mm aperture
    y = amplitude * np.cos(rng.uniform(0.0, 2.0 * math.pi, n_samples))
    from_positions, err_positions = pitch_correction(y, N_FNAL, R0_FNAL_M)
    from_amplitudes, err_amplitudes = pitch_correction_from_amplitudes(amplitude, N_FNAL, R0_FNAL_M)
    # ⟨A²⟩ = a²/3 for A uniform on [0, a]
    analytic = N_FNAL * 0.045**2 / 3.0 / (4.0 * R0_FNAL_M**2)
    assert abs(from_amplitudes - analytic) < 4.0 * err_amplitudes
    assert abs(from_positions - from_amplitudes) < 4.0 * math.hypot(err_positions, err_amplitudes)


def test_equilibrium_radius_offset():
    """x_e = R0 δ/(1−n): 7.97 m × Δp/p for the Fermilab ring (docs/physics.md §3)."""
    assert equilibrium_radius_offset_m(1.0, N_FNAL, R0_FNAL_M) == pytest.approx(7.97, abs=0.005)
    delta = np.array([-1e-3, 0.0, 2e-3])
    x_e = equilibrium_radius_offset_m(delta, N_FNAL, R0_FNAL_M)
    assert isinstance(x_e, np.ndarray)
    np.testing.assert_allclose(x_e, R0_FNAL_M * delta / (1.0 - N_FNAL), rtol=1e-15)
    assert isinstance(equilibrium_radius_offset_m(1e-3, N_FNAL, R0_FNAL_M), float)


def test_electric_field_gaussian_momentum():
    """Gaussian δ of width σ: C_e = 2n(1−n)β²(R0σ/(1−n))²/R0²."""
    sigma_delta = 1.0e-3
    n_samples = 200_000
    delta = np.random.default_rng(3).normal(0.0, sigma_delta, n_samples)
    x_e = equilibrium_radius_offset_m(delta, N_FNAL, R0_FNAL_M)
    c_e, c_e_err = electric_field_correction(x_e, N_FNAL, R0_FNAL_M, BETA_MAGIC)
    sigma_x = R0_FNAL_M * sigma_delta / (1.0 - N_FNAL)
    prefactor = 2.0 * N_FNAL * (1.0 - N_FNAL) * BETA_MAGIC**2 / R0_FNAL_M**2
    expected = prefactor * sigma_x**2
    analytic_err = prefactor * sigma_x**2 * math.sqrt(2.0 / n_samples)
    assert c_e_err == pytest.approx(analytic_err, rel=0.03)
    assert abs(c_e - expected) < 4.0 * analytic_err
    # order of magnitude of Run-1 (489 ppb for a wider, non-Gaussian distribution)
    assert 100e-9 < expected < 1000e-9


@pytest.mark.parametrize("correction", ["pitch", "efield"])
def test_errors_scale_as_inverse_sqrt_n(correction):
    rng = np.random.default_rng(4)

    def error(n_samples):
        samples = rng.normal(0.0, 0.01, n_samples)
        if correction == "pitch":
            return pitch_correction(samples, N_FNAL, R0_FNAL_M)[1]
        return electric_field_correction(samples, N_FNAL, R0_FNAL_M, BETA_MAGIC)[1]

    assert error(100_000) / error(400_000) == pytest.approx(2.0, rel=0.03)


def test_weighted_mean_analytic():
    """y uniform on [−a, a] weighted by w = y²: ⟨y²⟩_w = ∫y⁴/∫y² = 3a²/5."""
    a = 0.02
    y = np.random.default_rng(5).uniform(-a, a, 200_000)
    c_p, c_p_err = pitch_correction(y, N_FNAL, R0_FNAL_M, weights=y**2)
    expected = N_FNAL * 0.6 * a**2 / (2.0 * R0_FNAL_M**2)
    assert abs(c_p - expected) < 4.0 * c_p_err


def test_integer_weights_equal_repeated_samples():
    rng = np.random.default_rng(6)
    y = rng.normal(0.0, 0.01, 1000)
    counts = rng.integers(1, 4, y.size)
    weighted, _ = pitch_correction(y, N_FNAL, R0_FNAL_M, weights=counts)
    repeated, _ = pitch_correction(np.repeat(y, counts), N_FNAL, R0_FNAL_M)
    assert weighted == pytest.approx(repeated, rel=1e-12)


def test_weighted_error_matches_replica_spread():
    """The reported error of a weighted estimate equals the spread of the estimate over replicas."""
    rng = np.random.default_rng(7)
    estimates, errors = [], []
    for _ in range(400):
        y = rng.normal(0.0, 0.01, 500)
        weights = rng.exponential(1.0, y.size)
        value, err = electric_field_correction(y, N_FNAL, R0_FNAL_M, BETA_MAGIC, weights=weights)
        estimates.append(value)
        errors.append(err)
    # relative precision of a standard deviation from 400 replicas: 1/√800 ≈ 3.5 %
    assert np.std(estimates, ddof=1) == pytest.approx(np.mean(errors), rel=0.12)


@pytest.mark.parametrize(
    "call, exc, pattern",
    [
        (lambda: pitch_correction([0.01, 0.02], 0.0, R0_FNAL_M), ConfigError, "^field_index: "),
        (lambda: pitch_correction([0.01, 0.02], 1.0, R0_FNAL_M), ConfigError, "^field_index: "),
        (lambda: pitch_correction([0.01, 0.02], float("nan"), R0_FNAL_M), ConfigError, "^field_index: "),
        (lambda: pitch_correction([0.01, 0.02], N_FNAL, -7.112), ConfigError, "^radius_m: "),
        (lambda: pitch_correction([0.01, 0.02], N_FNAL, 0.0), ConfigError, "^radius_m: "),
        (lambda: pitch_correction([], N_FNAL, R0_FNAL_M), InputError, "^y_m: "),
        (lambda: pitch_correction([0.01], N_FNAL, R0_FNAL_M), InputError, "^y_m: "),
        (lambda: pitch_correction([0.01, np.nan], N_FNAL, R0_FNAL_M), InputError, "^y_m: "),
        (lambda: pitch_correction([[0.01, 0.02]], N_FNAL, R0_FNAL_M), InputError, "^y_m: "),
        (lambda: pitch_correction([0.01, 0.02], N_FNAL, R0_FNAL_M, weights=[1.0]), InputError, "^weights: "),
        (lambda: pitch_correction([0.01, 0.02], N_FNAL, R0_FNAL_M, weights=[1.0, -1.0]), InputError, "^weights: "),
        (lambda: pitch_correction([0.01, 0.02], N_FNAL, R0_FNAL_M, weights=[0.0, 0.0]), InputError, "^weights: "),
        (lambda: pitch_correction_from_amplitudes([np.inf, 0.02], N_FNAL, R0_FNAL_M), InputError, "^y_amplitude_m: "),
        (lambda: electric_field_correction([0.01, 0.02], N_FNAL, R0_FNAL_M, 1.0), ConfigError, "^beta: "),
        (lambda: electric_field_correction([0.01, 0.02], N_FNAL, R0_FNAL_M, 0.0), ConfigError, "^beta: "),
        (lambda: electric_field_correction([], N_FNAL, R0_FNAL_M, BETA_MAGIC), InputError, "^x_e_m: "),
        (lambda: electric_field_correction([0.01, 0.02], 1.5, R0_FNAL_M, BETA_MAGIC), ConfigError, "^field_index: "),
        (lambda: equilibrium_radius_offset_m(1e-3, -0.1, R0_FNAL_M), ConfigError, "^field_index: "),
        (lambda: equilibrium_radius_offset_m([1e-3, np.nan], N_FNAL, R0_FNAL_M), InputError, "^delta_p: "),
    ],
)
def test_invalid_input_raises(call, exc, pattern):
    with pytest.raises(exc, match=pattern) as info:
        call()
    assert "\n" not in str(info.value)
