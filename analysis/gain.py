"""In-fill gain correction (docs/physics.md §3 "Gain"): E = E0·G(t), corrected as E0 = E/G(t).

The laser system measures the relative gain G(t) of each calorimeter after injection; the Run-1
form is G(t) = 1 − C e^{−t/τ_g}. A gain sag lowers energies early in the fill, so a fixed threshold
selects a time-dependent population and biases A, φ and ω_a unless corrected.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

from ringsim.errors import ConfigError, InputError

GainFunction = Callable[[np.ndarray], np.ndarray]


def exponential_gain(amplitude: float, tau_us: float) -> GainFunction:
    """G(t) = 1 − C e^{−t/τ_g} (t in μs) for amplitude C and recovery time τ_g in μs.

    Raises
    ------
    ConfigError
        |C| ≥ 1 or a non-positive τ_g.
    """
    if not (math.isfinite(amplitude) and abs(amplitude) < 1.0):
        raise ConfigError(f"gain: amplitude C must satisfy |C| < 1, got {amplitude!r}")
    if not (math.isfinite(tau_us) and tau_us > 0.0):
        raise ConfigError(f"gain: tau_us must be > 0, got {tau_us!r}")

    def gain(t_us):
        return 1.0 - amplitude * np.exp(-np.asarray(t_us, dtype=float) / tau_us)

    return gain


def correct_gain(time_ns, energy_mev, gain: GainFunction | Mapping[int, GainFunction], calo=None) -> np.ndarray:
    """Gain-corrected energies E0 = E/G(t) in MeV.

    Parameters
    ----------
    time_ns, energy_mev : array_like
        Hit times in ns and measured energies in MeV.
    gain : callable or mapping
        G(t_us) for all hits, or calorimeter index → G for each calorimeter (every calorimeter of
        ``calo`` must have one).
    calo : array_like, optional
        Calorimeter of each hit; required when ``gain`` is a mapping.

    Raises
    ------
    InputError
        Shapes differ, a calorimeter has no gain function, or a gain is not finite and > 0.
    """
    t_us = np.asarray(time_ns, dtype=float) * 1e-3
    e = np.asarray(energy_mev, dtype=float)
    if t_us.shape != e.shape:
        raise InputError(f"gain: {t_us.size} times but {e.size} energies")
    if callable(gain):
        g = np.asarray(gain(t_us), dtype=float)
    else:
        if calo is None:
            raise InputError("gain: per-calorimeter gain functions need the calorimeter of each hit")
        c = np.asarray(calo)
        missing = sorted(set(np.unique(c).tolist()) - set(gain))
        if missing:
            raise InputError(f"gain: no gain function for calorimeter(s) {missing[:10]}")
        g = np.empty_like(e)
        for k, fn in gain.items():
            sel = c == k
            g[sel] = fn(t_us[sel])
    if g.shape != e.shape or not np.all(np.isfinite(g) & (g > 0.0)):
        raise InputError("gain: the gain function must return one finite value > 0 per hit")
    return e / g
