"""Where fast mode's time goes: ns per muon of each stage of the kernel, one thread, side by side in one process.

Each line runs the Fermilab kernel up to one more stage than the line before, over the same fills
(fastest of ``--repeats`` rounds, the stages interleaved within a round): the beam and the decays
(Michel positron included), then the calorimeter faces, then the detector response and hit rows,
then pileup merging and time ordering, then the whole ``simulate_fills`` (cluster output and
packing). The differences are the stages' costs. From the beam and decays alone it prints the
most decays and recorded positrons per second one core could give if everything after them were
free. Run: python benchmarks/bench_fast_stages.py [--fills 32] [--repeats 10]
"""

from __future__ import annotations

import argparse
import time

import numba
import numpy as np
from numba import njit

from ringsim import fastgen as fg
from ringsim.beam import muon_charge_over_mass
from ringsim.config import load_config
from ringsim.constants import codata
from ringsim.detectors.calorimeter import CalorimeterGeometry, batch_scratch, calorimeter_hits_batch, face_directions
from ringsim.rings import ring_kinematics


@njit
def _decay_stages(p, streams, n_muons, with_faces, cos_az, sin_az):
    """Beam and decays of every fill, and with ``with_faces`` the calorimeter faces of each batch."""
    beam = np.empty(7 * n_muons + fg._SCRATCH_GUARD)[: 7 * n_muons].reshape(7, n_muons)  # laid out as in the kernel
    out = np.empty(fg.N_DECAY_ROWS * fg.BATCH + fg._SCRATCH_GUARD)[: fg.N_DECAY_ROWS * fg.BATCH].reshape(fg.N_DECAY_ROWS, fg.BATCH)
    work, index = batch_scratch(fg.BATCH)
    station, face = np.empty(fg.BATCH, dtype=np.int64), np.empty((3, fg.BATCH))
    checksum = 0.0
    for f in range(streams.shape[0]):
        fg._beam(p, streams[f, 0], streams[f, 1], n_muons, beam)
        for first in range(0, n_muons, fg.BATCH):
            n = min(fg.BATCH, n_muons - first)
            fg._decays(p, streams[f, 2], streams[f, 3], first, n, beam, out)
            if with_faces:
                calorimeter_hits_batch(
                    out[fg._PX], out[fg._PY], out[fg._PZ], out[fg._DX], out[fg._DY], out[fg._DZ], out[fg._ENERGY], n, p.field_t, p.radius_m,
                    cos_az, sin_az, p.face_inner_m, p.face_outer_m, p.face_half_height_m, p.chamber_outer_m, p.chamber_inner_m,
                    work, index, station, face[0], face[1], face[2],
                )
                checksum += face[0, 0]
            checksum += out[0, 0]
    return checksum


@njit
def _fill_stages(p, streams, n_muons, merge, cos_az, sin_az):
    """Whole fills up to the hit rows, and with ``merge`` their pileup merging and time order; returns the clusters."""
    hits = np.empty((n_muons, fg.N_HIT_COLUMNS))
    clusters = np.empty((n_muons, 4))
    lost = np.empty((n_muons, 3))
    no_truth = np.empty((0, fg.N_TRUTH_COLUMNS))
    sort_tau_ns = np.sqrt(1.0 + p.gamma_beta * p.gamma_beta) * p.lifetime_s * 1e9
    total = 0
    for f in range(streams.shape[0]):
        n_hits, _ = fg._simulate_fill(p, streams[f], n_muons, f, cos_az, sin_az, hits, lost, no_truth)
        total += fg._merge_fill(hits, n_hits, p.n_stations, p.resolving_time_ns, p.energy_min_mev, sort_tau_ns, clusters) if merge else n_hits
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fills", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    numba.set_num_threads(1)
    cfg = load_config("fnal")
    p = fg.fast_params(cfg, ring_kinematics(cfg), muon_charge_over_mass(), codata().muon_mass_mev)
    cos_az, sin_az = face_directions(CalorimeterGeometry(n_stations=cfg.ring.n_detectors).azimuths_rad())
    n_muons = cfg.run.muons_per_fill
    streams = fg.fill_streams(0, 0, args.fills)
    fill_muons = np.full(args.fills, n_muons)
    stages = {
        "beam + decays": lambda: _decay_stages(p, streams, n_muons, False, cos_az, sin_az),
        "+ calorimeter faces": lambda: _decay_stages(p, streams, n_muons, True, cos_az, sin_az),
        "+ response, hit rows": lambda: _fill_stages(p, streams, n_muons, False, cos_az, sin_az),
        "+ pileup, time order": lambda: _fill_stages(p, streams, n_muons, True, cos_az, sin_az),
        "+ output (simulate_fills)": lambda: fg.simulate_fills(p, streams, fill_muons, 0, cos_az, sin_az, 1),
    }
    for run in stages.values():  # compile
        run()
    best = dict.fromkeys(stages, float("inf"))
    for _ in range(args.repeats):
        for name, run in stages.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    recorded = fg.simulate_fills(p, streams, fill_muons, 0, cos_az, sin_az, 1)[0][0].size / fill_muons.sum()
    previous = 0.0
    print(f"Fermilab fast mode, one thread, {fill_muons.sum()} muons, fastest of {args.repeats}:")
    for name, seconds in best.items():
        ns = seconds / fill_muons.sum() * 1e9
        print(f"  {name:28s} {ns:6.1f} ns/muon  (stage {ns - previous:5.1f})")
        previous = ns
    ceiling = 1e9 / (best["beam + decays"] / fill_muons.sum() * 1e9)
    print(f"recorded positrons per muon: {recorded:.3f}; with only the beam and decays, one core would give at most "
          f"{ceiling:.3e} decays/s = {ceiling * recorded:.3e} recorded positrons/s")


if __name__ == "__main__":
    main()
