"""The trees of a run file: branch names, types and meaning of the clusters, lost muons and per-muon truth."""

from __future__ import annotations

import numpy as np

EVENT_BRANCHES = {
    "time_ns": np.float64,  # cluster time since the nominal injection (bunch centre at the injection point)
    "energy_mev": np.float32,  # measured cluster energy (after resolution, gain and pileup merging)
    "calo": np.int16,  # station
    "fill": np.int64,  # fill number in the run
    "n_hits": np.int8,  # positrons merged into this cluster (2 or more: pileup)
    "x_hit_m": np.float32,  # radial hit position on the calorimeter face, relative to R₀ (0 without geometry)
    "y_hit_m": np.float32,  # vertical hit position
    "hemisphere": np.int8,  # +1 positron going up, −1 down (reconstructed for vanes, true otherwise)
    "vertical_angle_rad": np.float32,  # atan(p_y/p_⊥) of the positron (reconstructed for vanes)
    "truth_energy_mev": np.float32,  # true energy of the (first) positron
    "truth_decay_time_ns": np.float64,  # its decay time
    "truth_delta_p": np.float32,  # Δp/p of the parent muon
    "truth_x_e_m": np.float32,  # its equilibrium radius offset
    "truth_x_m": np.float32,  # its radial position at decay
    "truth_y_m": np.float32,  # its vertical position at decay
    "truth_spin_phase_rad": np.float32,  # spin angle to momentum at decay, wrapped to (−π, π]
    "truth_t0_ns": np.float32,  # its injection time
    "truth_mip": np.int8,  # 1: a lost muon's minimum-ionising cluster (its other truth branches NaN), 0: a positron
}


LOST_BRANCHES = {
    "time_ns": np.float64,  # loss time
    "azimuth_rad": np.float32,  # where the muon left the aperture
    "fill": np.int64,
    "calo": np.int16,  # first of the three stations its minimum-ionising track crosses downstream
    "truth_delta_p": np.float32,
}


TRUTH_BRANCHES = {
    "fill": np.int64,
    "t0_ns": np.float32,  # injection time
    "delta_p": np.float32,  # Δp/p
    "x_e_m": np.float32,  # equilibrium radius offset
    "lost": np.int8,  # 1: lost before decaying (then the decay branches below are NaN)
    "time_ns": np.float64,  # decay time, or loss time
    "azimuth_rad": np.float32,  # where it decayed or was lost
    "x_m": np.float32,  # radial position at decay, relative to R₀
    "y_m": np.float32,  # vertical position at decay
    "spin_phase_rad": np.float32,  # spin angle to momentum at decay, wrapped to (−π, π]
    "energy_mev": np.float32,  # energy of the decay positron
    "vertical_angle_rad": np.float32,  # atan(p_y/p_⊥) of the decay positron
    "station": np.int16,  # reached by geometry: calorimeter face, decay sector or first vane crossed; −1 none
}


def typed_arrays(arrays: dict[str, np.ndarray], branches: dict[str, type]) -> dict[str, np.ndarray]:
    """Return the arrays in the branches' order, cast to their types."""
    return {k: np.asarray(arrays[k]).astype(t, copy=False) for k, t in branches.items()}
