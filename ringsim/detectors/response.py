"""Detector response to hits: time and energy resolution, gain, efficiency, pulse-pair merging.

Energy resolution σ_E/E = √(a²/E[GeV] + b²); the in-fill gain sag scales the measured energy by
1 − C e^{−t/τ_g} and a slow drift by 1 + d·fill/1000; hits of one station and fill closer than the
resolving time merge into one cluster (summed energy, energy-weighted time): pileup.
"""

from __future__ import annotations

import numpy as np

from ringsim.config import DetectorConfig
from ringsim.detectors.calorimeter import merge_pileup


def respond(rng: np.random.Generator, det: DetectorConfig, fill: np.ndarray, station: np.ndarray, time_ns: np.ndarray, energy_mev: np.ndarray) -> dict[str, np.ndarray]:
    """Measured clusters of the given true hits.

    Returns ``index`` (the hit each cluster is listed under: its earliest), ``time_ns``,
    ``energy_mev`` and ``n_hits`` of each cluster, in the order of ``index``.
    """
    n = time_ns.size
    z_energy = rng.standard_normal(n)
    z_time = rng.standard_normal(n)
    return respond_to_draws(det, fill, station, time_ns, energy_mev, z_energy, z_time, rng.random(n))


def respond_to_draws(
    det: DetectorConfig, fill: np.ndarray, station: np.ndarray, time_ns: np.ndarray, energy_mev: np.ndarray, z_energy: np.ndarray, z_time: np.ndarray, u_detect: np.ndarray
) -> dict[str, np.ndarray]:
    """:func:`respond` with given standard-normal draws for the energy and the time and uniform draws for the efficiency."""
    e_gev = np.maximum(energy_mev, 1e-6) * 1e-3
    sigma = energy_mev * np.sqrt(det.energy_resolution_stochastic**2 / e_gev + det.energy_resolution_constant**2)
    measured_e = energy_mev + sigma * z_energy
    measured_t = time_ns + det.time_resolution_ns * z_time
    detected = u_detect < det.efficiency
    gain = (1.0 - det.gain_sag_amplitude * np.exp(-measured_t * 1e-3 / det.gain_sag_tau_us)) * (1.0 + det.gain_drift_per_kfill * fill * 1e-3)
    measured_e = measured_e * gain
    hits = np.flatnonzero(detected)
    cluster_of, t_c, e_c = merge_pileup(fill[hits], station[hits], measured_t[hits], measured_e[hits], det.resolving_time_ns)
    first = np.unique(cluster_of)
    n_hits = np.bincount(np.searchsorted(first, cluster_of), minlength=first.size)
    return {"index": hits[first], "time_ns": t_c[first], "energy_mev": e_c[first], "n_hits": n_hits}
