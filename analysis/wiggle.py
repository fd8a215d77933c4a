"""From recorded positrons to a fitted wiggle: energy selection, T-method histogram, fit.

Defaults (bin width, fit window, threshold, fast-rotation randomisation by ±T_c/2, blinding
reference) come from the ring's preset, so ``analyse_events(events, "fnal")`` is the Run-1 style
T-method analysis of docs/physics.md §3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from analysis.blinding import Blinder
from analysis.fitting import FitResult, fit_five_parameter
from analysis.histograms import time_histogram
from ringsim.config import SimConfig, load_config
from ringsim.errors import ConfigError, InputError
from ringsim.rings import ring_kinematics


@dataclass(frozen=True)
class WiggleSettings:
    """Histogram and fit settings of a T-method analysis (times in μs, energies in MeV)."""

    bin_width_us: float
    start_us: float
    end_us: float
    energy_min_mev: float
    energy_max_mev: float
    randomize_us: float
    omega_ref_rad_per_us: float
    gamma_tau_us: float


def ring_settings(ring: str | SimConfig, start_us: float | None = None, end_us: float | None = None, threshold_mev: float | None = None) -> WiggleSettings:
    """Return the analysis of a ring preset (or of a full configuration).

    Optional overrides of the window and the threshold (a threshold replaces the energy window by
    E ≥ threshold).
    """
    cfg = load_config(ring) if isinstance(ring, str) else ring
    kin = ring_kinematics(cfg)
    a = cfg.analysis
    settings = WiggleSettings(
        bin_width_us=a.bin_width_ns * 1e-3,
        start_us=a.fit_start_us if start_us is None else float(start_us),
        end_us=a.fit_end_us if end_us is None else float(end_us),
        energy_min_mev=a.energy_min_mev if threshold_mev is None else float(threshold_mev),
        energy_max_mev=a.energy_max_mev if threshold_mev is None else math.inf,
        randomize_us=kin.cyclotron_period_ns * 1e-3,
        omega_ref_rad_per_us=2.0 * math.pi * a.blinding_reference_mhz,
        gamma_tau_us=kin.gamma_tau_us,
    )
    if not (math.isfinite(settings.start_us) and settings.start_us >= 0.0):
        raise ConfigError(f"start: expected a time ≥ 0 μs, got {settings.start_us}")
    if not settings.end_us > settings.start_us:
        raise ConfigError(f"end: expected a time after the start ({settings.start_us} μs), got {settings.end_us}")
    if not settings.energy_min_mev >= 0.0:
        raise ConfigError(f"threshold: expected an energy ≥ 0 MeV, got {settings.energy_min_mev}")
    return settings


def select_energy(time_ns: np.ndarray, energy_mev: np.ndarray | None, settings: WiggleSettings) -> np.ndarray:
    """Return the times (μs) of the positrons inside the energy window."""
    if energy_mev is None:
        raise InputError("energy branch: the T method needs positron energies; name the branch with --energy-branch")
    keep = (energy_mev >= settings.energy_min_mev) & (energy_mev < settings.energy_max_mev)
    return time_ns[keep] * 1e-3


def histogram_and_fit(t_us: np.ndarray, settings: WiggleSettings, blinder: Blinder | None = None, seed: int = 0) -> tuple[FitResult, np.ndarray, np.ndarray]:
    """T-method histogram with fast-rotation randomisation, then the 5-parameter fit.

    The histogram spans [0, end] in whole bins so that the bin phase is the same for every file;
    returns (fit, counts, edges in μs).
    """
    n_bins = int(math.ceil(settings.end_us / settings.bin_width_us))
    counts, edges = time_histogram(t_us, settings.bin_width_us, 0.0, n_bins * settings.bin_width_us, randomize_us=settings.randomize_us, seed=seed)
    fit = fit_five_parameter(counts, edges, settings.start_us, settings.end_us, settings.omega_ref_rad_per_us, settings.gamma_tau_us, blinder=blinder)
    return fit, counts, edges
