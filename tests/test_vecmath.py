"""Vectorisable elementary functions and the counter-based generator against numpy and libm."""

import math

import numba
import numpy as np
from scipy import stats

from ringsim import vecmath


@numba.njit(error_model="numpy")
def _apply(kind, x):
    out = np.empty(x.size)
    for i in range(x.size):
        out[i] = vecmath.log(x[i]) if kind == 0 else (vecmath.exp(x[i]) if kind == 1 else vecmath.atan(x[i]))
    return out


@numba.njit
def _sincos(x):
    s, c = np.empty(x.size), np.empty(x.size)
    for i in range(x.size):
        s[i], c[i] = vecmath.sincos_reduced(x[i])
    return s, c


@numba.njit
def _unit_open(z):
    return np.array([vecmath.unit_open(v) for v in z])


@numba.njit
def _trailing_zeros(x):
    return np.array([vecmath.trailing_zeros(v) for v in x])


@numba.njit
def _draws(key, gamma, counters):
    return np.array([vecmath.uniform(key, gamma, n) for n in counters])


def _ulps(got, ref):
    return np.max(np.abs(got - ref) / np.spacing(np.abs(ref)))


def test_log_is_within_one_ulp_over_the_whole_normal_range():
    rng = np.random.default_rng(0)
    x = np.concatenate([np.exp(rng.uniform(-708.0, 709.0, 200_000)), rng.uniform(0.0, 1.0, 200_000) + 1e-300, [1.0, 2.0, 0.5, math.sqrt(2.0), math.sqrt(0.5), 1.0 - 2**-53, 1.0 + 2**-52]])
    got, ref = _apply(0, x), np.log(x)
    nonzero = ref != 0.0
    assert _ulps(got[nonzero], ref[nonzero]) <= 1.0 and np.all(got[~nonzero] == 0.0)


def test_exp_is_within_one_ulp_and_clamps_below():
    x = np.concatenate([np.random.default_rng(1).uniform(-708.0, 709.0, 200_000), [0.0, 1.0, -1.0, 1e-17]])
    assert _ulps(_apply(1, x), np.exp(x)) <= 1.0
    assert _apply(1, np.array([-1e300, -800.0]))[0] == math.exp(-708.0)


def test_atan_is_within_one_ulp_for_every_argument():
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.uniform(-3.0, 3.0, 200_000), np.exp(rng.uniform(-40.0, 40.0, 200_000)) * rng.choice([-1.0, 1.0], 200_000), [0.4375, 0.6875, 1.1875, 2.4375, 1e-300]])
    assert _ulps(_apply(2, x), np.arctan(x)) <= 1.0
    np.testing.assert_array_equal(_apply(2, np.array([np.inf, -np.inf, 0.0])), [math.pi / 2, -math.pi / 2, 0.0])


def test_sincos_is_accurate_to_a_few_ulp_over_its_whole_range():
    x = np.concatenate([np.linspace(-10.0, 10.0, 20_001), np.random.default_rng(0).uniform(-1e6, 1e6, 200_000), [999_999.9, -999_999.9]])
    s, c = _sincos(x)
    assert np.max(np.abs(s - np.sin(x))) < 4e-16 and np.max(np.abs(c - np.cos(x))) < 4e-16


def test_unit_open_interval_excludes_both_ends_and_is_evenly_spaced():
    top, bottom = np.uint64(2**64 - 1), np.uint64(0)
    u = _unit_open(np.array([bottom, np.uint64(1 << 12), np.uint64(2**63), top], dtype=np.uint64))
    np.testing.assert_array_equal(u, [0.5 * 2.0**-52, 1.5 * 2.0**-52, 0.5 + 0.5 * 2.0**-52, 1.0 - 0.5 * 2.0**-52])
    assert 0.0 < u.min() and u.max() < 1.0


def test_trailing_zeros_counts_the_low_zero_bits():
    x = np.array([1, 2, 12, 1 << 40, -(1 << 62), 0], dtype=np.int64)
    np.testing.assert_array_equal(_trailing_zeros(x), [0, 1, 2, 40, 62, 64])


def test_uniform_is_a_pure_function_of_the_counter_open_and_flat():
    key, gamma = np.uint64(0x123456789ABCDEF), np.uint64(0x9E3779B97F4A7C15)
    counters = np.arange(200_000)
    u = _draws(key, gamma, counters)
    assert np.all((u > 0.0) & (u < 1.0))
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    shuffled = np.random.default_rng(2).permutation(counters)
    np.testing.assert_array_equal(_draws(key, gamma, shuffled), u[shuffled])  # any order, the same numbers
    # neighbouring draws and another stream are uncorrelated
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 5 / math.sqrt(u.size)
    other = _draws(key + np.uint64(1), gamma, counters)
    assert abs(np.corrcoef(u, other)[0, 1]) < 5 / math.sqrt(u.size)
