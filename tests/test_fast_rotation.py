"""Fast-rotation analysis: a positron signal generated here from a known equilibrium-radius
distribution, a Gaussian bunch and 24 detector sectors; the analysis must recover the mean and the
width of x_e within 5 %."""

import math

import numpy as np
import pytest

from calibration.fast_rotation import fast_rotation_analysis, fast_rotation_signal
from ringsim.errors import ConfigError, InputError

R0_M = 7.112
PERIOD_NS = 149.19  # revolution period on the central orbit
GAMMA_TAU_NS = 64_400.0
N_SECTORS = 24


def _positrons(x_e_m, rng, bunch_ns=25.0, delay_ns=0.0):
    """Decays of muons of revolution frequency ω = ω₀R₀/(R₀ + x_e), injected at azimuth 0 at times
    from the bunch profile; each positron is seen by the sector holding its decay azimuth."""
    omega = 2 * math.pi / PERIOD_NS * R0_M / (R0_M + x_e_m)
    t0 = rng.normal(0.0, bunch_ns, x_e_m.size)
    lifetime = rng.exponential(GAMMA_TAU_NS, x_e_m.size)
    azimuth = (omega * lifetime) % (2 * math.pi)
    time = t0 + lifetime + delay_ns
    keep = time > 0
    return time[keep], (azimuth[keep] / (2 * math.pi / N_SECTORS)).astype(int), x_e_m[keep]


def test_recovers_mean_and_width_of_an_asymmetric_distribution():
    """A Gaussian (6 mm, 10 mm) cut at −15 mm (a collimated, skewed beam), detected 7 ns late."""
    rng = np.random.default_rng(11)
    x = rng.normal(0.006, 0.010, 4_000_000)
    x = x[(x > -0.015) & (x < 0.045)]
    time, calo, x_seen = _positrons(x, rng, delay_ns=7.0)
    result = fast_rotation_analysis(time, PERIOD_NS, R0_M, 0.045, calo=calo, n_stations=N_SECTORS, start_us=1.0, end_us=120.0)
    mean, width = x_seen.mean(), x_seen.std()
    assert result.mean_m == pytest.approx(mean, rel=0.05)
    assert result.width_m == pytest.approx(width, rel=0.05)
    # the quoted statistical errors are of the size of the actual deviations (not 0, not huge)
    assert 0 < result.mean_err_m < 0.02 * mean and 0 < result.width_err_m < 0.02 * width
    assert abs(result.mean_m - mean) < 4 * result.mean_err_m and abs(result.width_m - width) < 4 * result.width_err_m
    assert result.x2_mean_m2 == pytest.approx(result.mean_m**2 + result.width_m**2, rel=1e-9)
    # the distribution is normalised over the aperture and vanishes well outside the beam
    dx = np.gradient(result.x_e_m)
    assert np.sum(result.density_per_m * dx) == pytest.approx(1.0, rel=1e-9)
    far = result.x_e_m < -0.035
    assert np.max(np.abs(result.density_per_m[far])) < 0.1 * result.density_per_m.max()


def test_signal_oscillates_about_zero_at_the_revolution_frequency():
    """A single bunch of zero length and equal momenta: S(t) + 1 is a comb of one full turn's
    counts per bin every period, zero in between."""
    rng = np.random.default_rng(3)
    n_turns = rng.integers(10, 200, 50_000)
    times = (n_turns + 0.5 / 40) * PERIOD_NS  # all in the first bin of a turn
    sig = fast_rotation_signal(times, PERIOD_NS, 2.0, 20.0, bins_per_turn=40)
    assert np.all(sig.signal >= -1.0)
    hot = sig.signal > 0
    assert np.allclose(np.diff(sig.t_ns[hot]), PERIOD_NS, rtol=1e-9)
    # over a whole turn the signal averages to zero away from the window edges
    inner = sig.signal[40:-40]
    assert abs(inner[: 40 * (inner.size // 40)].reshape(-1, 40).mean(axis=1)).max() < 0.05


def test_invalid_inputs_raise():
    with pytest.raises(InputError, match="^time_ns: "):
        fast_rotation_analysis(np.ones(10), PERIOD_NS, R0_M, 0.045)
    with pytest.raises(ConfigError, match="^fast rotation window: "):
        fast_rotation_analysis(np.linspace(0, 1e5, 5000), PERIOD_NS, R0_M, 0.045, start_us=10.0, end_us=5.0)
    with pytest.raises(ConfigError, match="^aperture_m: "):
        fast_rotation_analysis(np.linspace(0, 1e5, 5000), PERIOD_NS, R0_M, -1.0)
