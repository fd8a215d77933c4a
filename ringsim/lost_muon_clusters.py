"""The minimum-ionising clusters that lost muons leave in successive calorimeters, merged into a block's positron clusters."""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

from ringsim.config import SimConfig
from ringsim.detectors.mip import MIP_STATIONS, lost_muon_hits
from ringsim.detectors.response import respond_to_draws
from ringsim.event_schema import EVENT_BRANCHES
from ringsim.fast_generation import merged_order
from ringsim.random_streams import MIP_STREAM, seed_sequence


def with_lost_muon_clusters(cfg: SimConfig, beta: float, seed: int, block: int, positrons: dict[str, np.ndarray], lost: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Return the positron clusters plus the lost muons' minimum-ionising clusters, ordered by (fill, time).

    The MIP hits (:func:`ringsim.detectors.mip.lost_muon_hits`) go through the same detector response
    (resolution, efficiency, gain, merging among themselves) from their own random stream, a fixed
    number of draws per lost muon (so the first muons' hits do not depend on how many follow);
    their truth branches other than the deposit and Δp/p, the hit position and the vertical angle
    are NaN, the hemisphere 0.
    """
    rng = np.random.default_rng(seed_sequence(seed, block, MIP_STREAM))
    u = rng.random((lost["time_ns"].size, MIP_STATIONS, 4)).reshape(-1, 4)  # per hit: deposit, energy and time resolution, efficiency
    hits = lost_muon_hits(u[:, 0].reshape(-1, MIP_STATIONS), lost["time_ns"], lost["azimuth_rad"].astype(float), lost["fill"], cfg.ring.n_detectors, cfg.ring.radius_m, beta)
    clusters = respond_to_draws(cfg.detector, hits["fill"], hits["calo"], hits["time_ns"], hits["energy_mev"], ndtri(u[:, 1]), ndtri(u[:, 2]), u[:, 3])
    keep = (clusters["energy_mev"] >= cfg.detector.energy_min_mev) & (clusters["time_ns"] >= 0.0)  # as for the positrons
    src = clusters["index"][keep]
    n = src.size
    nan = np.full(n, np.nan)
    mip = {
        "time_ns": clusters["time_ns"][keep],
        "energy_mev": clusters["energy_mev"][keep],
        "calo": hits["calo"][src],
        "fill": hits["fill"][src],
        "n_hits": clusters["n_hits"][keep],
        "x_hit_m": nan,
        "y_hit_m": nan,
        "hemisphere": np.zeros(n),  # neither: not a positron
        "vertical_angle_rad": nan,
        "truth_energy_mev": hits["energy_mev"][src],
        "truth_decay_time_ns": nan,
        "truth_delta_p": lost["truth_delta_p"][hits["muon"][src]],
        "truth_x_e_m": nan,
        "truth_x_m": nan,
        "truth_y_m": nan,
        "truth_spin_phase_rad": nan,
        "truth_t0_ns": nan,
        "truth_mip": np.ones(n),
    }
    if n == 0:
        return positrons
    by_time = np.lexsort((mip["time_ns"], mip["fill"]))
    mip = {k: v[by_time] for k, v in mip.items()}
    order = merged_order(positrons["fill"], positrons["time_ns"], mip["fill"], mip["time_ns"])
    return {k: np.concatenate([positrons[k], mip[k].astype(positrons[k].dtype)])[order] for k in EVENT_BRANCHES}
