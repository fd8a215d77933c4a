"""Units of time and energy in foreign files, and a check that the time unit fits the data.

A unit is a name (``ns``, ``us``/``μs``, ``ms``, ``s``, ``ct``; ``keV``, ``MeV``, ``GeV``), case-
insensitive, or a number times a name, e.g. ``1.25ns`` or ``0.5 GeV``. ``ct`` is the Fermilab
digitiser clock tick, 1.25 ns (800 MHz), the time unit of the ``clusterTree`` and
``crystalTreeMaker`` ntuples.
"""

from __future__ import annotations

import math
import re

import numpy as np
from scipy.optimize import brentq

from ringsim.errors import ConfigError

CLOCK_TICK_NS = 1.25  # Fermilab WFD clock tick, 800 MHz (issue 15: clusterTree `time` × 1.25 ns)
NS_PER_TIME_UNIT = {"ns": 1.0, "us": 1.0e3, "μs": 1.0e3, "µs": 1.0e3, "ms": 1.0e6, "s": 1.0e9, "ct": CLOCK_TICK_NS}
MEV_PER_ENERGY_UNIT = {"kev": 1.0e-3, "mev": 1.0, "gev": 1.0e3}
TIME_UNITS_HELP = "ns, us (μs), ms, s, ct (clock ticks of 1.25 ns) or a scaled unit such as 1.25ns"
ENERGY_UNITS_HELP = "keV, MeV, GeV or a scaled unit such as 0.5GeV"
MEDIAN_RANGE = (1.0e-3, 10.0)  # allowed median hit time as a fraction of the fit window's end
LIFETIME_TOLERANCE = 0.1  # relative deviation of the apparent lifetime that draws a warning
SIGNIFICANCE = 5.0  # … if it is also this many standard deviations of the estimate from γτ
_SCALED = re.compile(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)?\s*([^\s\d.][^\s]*)\s*")


def _factor(unit: str, table: dict[str, float], what: str, allowed: str) -> float:
    """Factor of a (possibly scaled) unit from ``table``; ConfigError naming the option otherwise."""
    match = _SCALED.fullmatch(str(unit))
    name = match.group(2).lower() if match else ""
    base = table.get(name, table.get(match.group(2) if match else ""))
    scale = float(match.group(1)) if match and match.group(1) else 1.0
    if base is None or not (math.isfinite(scale) and scale > 0.0):
        raise ConfigError(f"{what} unit {unit!r} is not one of {allowed}")
    return scale * base


def ns_per_time_unit(unit: str) -> float:
    """Nanoseconds in one time ``unit`` (see the module docstring); ConfigError otherwise."""
    return _factor(unit, NS_PER_TIME_UNIT, "time", TIME_UNITS_HELP)


def mev_per_energy_unit(unit: str) -> float:
    """MeV in one energy ``unit`` (see the module docstring); ConfigError otherwise."""
    return _factor(unit, MEV_PER_ENERGY_UNIT, "energy", ENERGY_UNITS_HELP)


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(np.clip(weights[order], 0.0, None))
    return float(values[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])])


def _truncated_mean(tau: float, length: float) -> float:
    """Mean of an exponential of lifetime τ truncated to [0, length]: τ − L/(e^{L/τ} − 1)."""
    x = length / tau
    return tau - length * math.exp(-x) / -math.expm1(-x)


def _truncated_exponential_tau(mean_offset: float, length: float) -> float:
    """τ of an exponential truncated to [0, length] whose mean is ``mean_offset`` (NaN if none fits)."""
    if not 0.0 < mean_offset < 0.5 * length:
        return math.nan
    return brentq(lambda tau: _truncated_mean(tau, length) - mean_offset, 1.0e-3 * length, 1.0e6 * length)


def time_scale_check(time_ns, window_ns: tuple[float, float], lifetime_ns: float, time_unit: str, source: str, weights=None) -> str | None:
    """Refuse times that miss the fit window by orders of magnitude; a warning if the lifetime is off.

    The median hit time must lie within ``MEDIAN_RANGE`` times the window's end, else the unit is
    wrong (ConfigError with the unit that would fit). Inside the window the hits decay like
    e^{−t/γτ} (docs/physics.md §3): the apparent lifetime, from the mean time of a truncated
    exponential, more than ``LIFETIME_TOLERANCE`` and ``SIGNIFICANCE`` standard deviations away
    from γτ = ``lifetime_ns`` gives a one-line warning naming the scale the data suggest (0.8 for
    clock ticks read as ns).

    Parameters
    ----------
    time_ns
        Hit times (or histogram bin centres) in ns, as read with ``time_unit``.
    window_ns
        Fit window (start, end) in ns.
    lifetime_ns
        Dilated muon lifetime γτ of the ring in ns.
    time_unit, source
        The unit given and the file (and object) read, for the messages.
    weights
        Counts per entry of ``time_ns`` (histogram bins), or None for one hit each.

    Returns
    -------
    str or None
        The warning, or None when the lifetime is as expected (or cannot be measured).
    """
    t = np.asarray(time_ns, dtype=float)
    w = np.ones_like(t) if weights is None else np.asarray(weights, dtype=float)
    if t.size == 0 or not np.sum(np.clip(w, 0.0, None)) > 0.0:
        return None
    start_ns, end_ns = window_ns
    median_ns = _weighted_median(t, w)
    lo, hi = MEDIAN_RANGE
    if not lo * end_ns <= median_ns <= hi * end_ns:
        raw = median_ns / ns_per_time_unit(time_unit)  # the median in the file's unit
        decades = ("ns", "us", "ms", "s")  # clock ticks are only 25 % from ns: the lifetime tells them apart
        guess = min(decades, key=lambda u: abs(math.log(raw * NS_PER_TIME_UNIT[u] / (0.1 * end_ns)))) if raw > 0 else "ns"
        raise ConfigError(
            f"time unit: the median time of {source} is {median_ns:.4g} ns with --time-unit {time_unit}, far outside the fit window (end {end_ns:.4g} ns); is the unit --time-unit {guess}?"
        )
    inside = (t >= start_ns) & (t < end_ns)
    total = float(np.sum(w[inside]))
    if total < 100.0:
        return None
    offset, length = t[inside] - start_ns, end_ns - start_ns
    mean = float(np.sum(w[inside] * offset)) / total
    tau_ns = _truncated_exponential_tau(mean, length)
    if not math.isfinite(tau_ns):
        return None
    slope = (_truncated_mean(1.001 * tau_ns, length) - _truncated_mean(0.999 * tau_ns, length)) / (0.002 * tau_ns)
    sigma_ns = math.sqrt(max(float(np.sum(w[inside] * (offset - mean) ** 2)) / total, 0.0) / total) / slope  # δτ from δ(mean)
    scale = tau_ns / lifetime_ns
    if abs(tau_ns - lifetime_ns) <= max(LIFETIME_TOLERANCE * lifetime_ns, SIGNIFICANCE * sigma_ns):
        return None
    hint = " (clock ticks of 1.25 ns? try --time-unit ct)" if abs(scale * CLOCK_TICK_NS - 1.0) < LIFETIME_TOLERANCE else ""
    return (
        f"{source}: the hits decay with an apparent lifetime of {tau_ns * 1e-3:.4g} μs, {scale:.3g} × the ring's "
        f"γτ = {lifetime_ns * 1e-3:.4g} μs; the times may be in another unit than --time-unit {time_unit}{hint}"
    )
