"""Histogram-level pseudo-experiments reproduce the event-level model and fluctuate like Poisson."""

import math

import numpy as np
import pytest

from ringsim.config import load_config
from ringsim.histogram_experiments import build_model, pseudo_experiment
from ringsim.simulate import generate
from ringsim.station_histograms import fill_station_histograms, histogram_edges


def test_station_histograms_count_as_numpy_histogramdd():
    t_edges, e_edges = histogram_edges(load_config("fnal"))
    rng = np.random.default_rng(3)
    n = 200_000
    station = rng.integers(-2, 27, n).astype(np.int16)
    time_ns = rng.uniform(-1e3, 1.05 * t_edges[-1], n)
    energy = rng.uniform(-50.0, 1.1 * e_edges[-1], n).astype(np.float32)
    # values on and next to every edge, both ends, and NaN
    on_t = np.concatenate([t_edges, np.nextafter(t_edges, -np.inf), np.nextafter(t_edges, np.inf), [np.nan]])
    on_e = np.concatenate([e_edges, np.nextafter(e_edges, -np.inf), np.nextafter(e_edges, np.inf), [np.nan]])
    time_ns[: on_t.size] = on_t
    energy[: on_e.size] = on_e  # (float32: the nearest values)
    energy[-on_e.size :] = on_e
    counts = np.zeros((24, t_edges.size - 1, e_edges.size - 1))
    fill_station_histograms(counts, station, time_ns, energy, t_edges, e_edges)
    fill_station_histograms(counts, station[:1000], time_ns[:1000], energy[:1000], t_edges, e_edges)  # adds
    sample = np.stack([station, time_ns, energy.astype(float)], axis=1)
    bins = (np.arange(25) - 0.5, t_edges, e_edges)
    expected = np.histogramdd(sample, bins=bins)[0] + np.histogramdd(sample[:1000], bins=bins)[0]
    np.testing.assert_array_equal(counts, expected)
    assert 0.5 * n < counts.sum() < n
    # uneven edges: the first guess is off by many bins, either way
    t_uneven, e_uneven = t_edges[-1] * np.linspace(0.0, 1.0, 41) ** 2, e_edges[-1] * np.sqrt(np.linspace(0.0, 1.0, 9))
    uneven = np.zeros((24, 40, 8))
    fill_station_histograms(uneven, station, time_ns, energy, t_uneven, e_uneven)
    np.testing.assert_array_equal(uneven, np.histogramdd(sample, bins=(bins[0], t_uneven, e_uneven))[0])


@pytest.fixture(scope="module")
def model():
    return build_model(load_config("fnal"), n_template=400_000, seed=1)


def test_expected_counts_match_an_independent_event_sample(model):
    cfg = load_config("fnal")
    n = 300_000
    events = np.concatenate([np.stack([p["calo"], p["time_ns"], p["energy_mev"]], 1) for _, p, _, _ in generate(cfg, "fast", n_positrons=n, seed=77, progress=False)])
    # coarse bins: 10 time slices of 10 histogram bins, summed over stations, energy above 1.7 GeV
    t_edges, e_edges = model.time_edges_ns, model.energy_edges_mev
    expected = model.expected(n).sum(axis=0)
    high = e_edges[:-1] >= 1700.0 - 1e-9
    exp_t = expected[:, high].sum(axis=1)[:1000].reshape(100, 10).sum(axis=1)
    sel = events[:, 2] >= e_edges[np.argmax(high)]
    obs_t = np.histogram(events[sel, 1], bins=t_edges[:1001:10])[0]
    chi2 = np.sum((obs_t - exp_t) ** 2 / exp_t)
    assert chi2 / exp_t.size == pytest.approx(1.0, abs=4 * math.sqrt(2 / exp_t.size))
    assert expected.sum() == pytest.approx(n * np.sum(model.expected(1.0)), rel=1e-12)


def test_pseudo_experiments_fluctuate_like_poisson(model):
    rng = np.random.default_rng(3)
    n_draws = 100
    draws = np.stack([pseudo_experiment(model, 1e7, rng)[5, 100:110, 10] for _ in range(n_draws)])
    mu = model.expected(1e7)[5, 100:110, 10]
    assert np.all(mu > 20)
    pulls = (draws.mean(axis=0) - mu) / np.sqrt(mu / n_draws)
    assert np.all(np.abs(pulls) < 4)
    assert np.mean(draws.var(axis=0, ddof=1) / mu) == pytest.approx(1.0, abs=0.15)


def test_a_large_pseudo_experiment_gives_back_omega_a(model):
    from analysis.fitting import fit_five_parameter
    from analysis.wiggle import ring_settings

    cfg = load_config("fnal")
    counts = pseudo_experiment(model, 1e9, np.random.default_rng(4))
    high = model.energy_edges_mev[:-1] >= 1700.0 - 1e-9
    spectrum = counts[:, :, high].sum(axis=(0, 2))
    s = ring_settings(cfg)
    fit = fit_five_parameter(spectrum, model.time_edges_ns * 1e-3, s.start_us, s.end_us, s.omega_ref_rad_per_us, s.gamma_tau_us)
    truth = model.omega_a_rad_per_ns * 1e3
    assert fit.omega_a == pytest.approx(truth, abs=4 * fit.omega_a_err)
    assert fit.omega_a_err / truth < 5e-6
