"""Where fast mode's time goes: ns per muon of each stage of the kernel, one thread, side by side in one process.

Each line runs the Fermilab kernel up to one more stage than the line before, over the same fills
(fastest of ``--repeats`` rounds, the stages interleaved within a round): the beam and the decays
(Michel positron included), then the calorimeter faces, then the detector response and hit rows,
then pileup merging and time ordering, then the whole ``simulate_fills`` (cluster output and
packing). The differences are the stages' costs. From the beam and decays alone it prints the
most decays and recorded positrons per second one core could give if everything after them were
free. A last line times only the random draws and elementary functions of the beam and the decays
(as many calls as the kernel makes, in the same vectorised loops, without its tables): what those
two stages cost at least with the kernel's float64 samplers on this machine. Run: python benchmarks/bench_fast_stages.py [--fills 32] [--repeats 10]
"""

from __future__ import annotations

import argparse
import math
import time

import numba
import numpy as np
from numba import njit

from ringsim import fast_generation as fg
from ringsim.beam import muon_charge_over_mass
from ringsim.config import load_config
from ringsim.constants import codata
from ringsim.decay import rest_frame_cos_theta
from ringsim.detectors.calorimeter import CalorimeterGeometry, batch_scratch, face_directions
from ringsim.rings import ring_kinematics
from ringsim.vecmath import atan, exp, log, sincos_reduced, uniform


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
                fg._face_hits(p, out, n, cos_az, sin_az, work, index, station, face)
                checksum += face[0, 0]
            checksum += out[0, 0]
    return checksum


@njit(error_model="numpy", fastmath={"contract"})
def _arithmetic_floor(key, stride, n_candidates, n_muons, sums):
    """The draws and elementary functions of ``n_candidates`` beam candidates and ``n_muons`` decays (the
    calls of :func:`ringsim.fast_generation._beam` and :func:`ringsim.fast_generation._decays`), summed into ``sums``."""
    for c in range(n_candidates):  # vectorised: three Box–Muller pairs
        d = c * fg.BEAM_DRAWS
        a1, a2, r1 = fg._normal_pair(uniform(key, stride, d), uniform(key, stride, d + 1))
        b1, b2, r2 = fg._normal_pair(uniform(key, stride, d + 2), uniform(key, stride, d + 3))
        c1, c2, r3 = fg._normal_pair(uniform(key, stride, d + 4), uniform(key, stride, d + 5))
        sums[c] = a1 + a2 + b1 + b2 + c1 + c2 + math.sqrt(r1) + r2 + r3
    for i in range(n_muons):  # vectorised: the draws and functions of one decay
        d = i * fg.MUON_DRAWS
        gam = math.sqrt(1.0 + sums[i] * sums[i])
        life = -log(uniform(key, stride, d)) * gam
        loss = -log(uniform(key, stride, d + 1)) * (uniform(key, stride, d + 2) + uniform(key, stride, d + 3))
        s1, c1 = sincos_reduced(life * 3.1)
        s2, c2 = sincos_reduced(life * 0.93)
        s3, c3 = sincos_reduced(life * 0.38)
        s4, c4 = sincos_reduced(life * 7.2)
        x = fg._michel_fraction(uniform(key, stride, d + 4), uniform(key, stride, d + 5), uniform(key, stride, d + 6), uniform(key, stride, d + 7), uniform(key, stride, d + 8))
        cos_t = rest_frame_cos_theta(x, 1.0, uniform(key, stride, d + 9))
        s5, c5 = sincos_reduced(fg.TWO_PI * uniform(key, stride, d + 10))
        sin_t = math.sqrt(max(0.0, 1.0 - cos_t * cos_t))
        g1, g2, _ = fg._normal_pair(uniform(key, stride, d + 12), uniform(key, stride, d + 13))
        angle = atan(s5 * sin_t / math.sqrt(c1 * c1 + s2 * s2 + 1.0))
        sums[i] += loss + exp(-life * 0.01) * (c1 + s1 + c2 + s2) + c3 + s3 + c4 + s4 + c5 + angle + g1 + g2 + uniform(key, stride, d + 11)
    return sums[0]


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
            best[name] = min(best[name], _timed(run))
    recorded = fg.simulate_fills(p, streams, fill_muons, 0, cos_az, sin_az, 1)[0][0].size / fill_muons.sum()
    previous = 0.0
    print(f"Fermilab fast mode, one thread, {fill_muons.sum()} muons, fastest of {args.repeats}:")
    for name, seconds in best.items():
        ns = seconds / fill_muons.sum() * 1e9
        print(f"  {name:28s} {ns:6.1f} ns/muon  (stage {ns - previous:5.1f})")
        previous = ns
    ceiling = 1e9 / (best["beam + decays"] / fill_muons.sum() * 1e9)
    print(f"recorded positrons per muon: {recorded:.3f}; with only the beam and decays, one core would give at most {ceiling:.3e} decays/s = {ceiling * recorded:.3e} recorded positrons/s")
    beam = np.empty((7, n_muons))
    candidates = fg._beam(p, streams[0, 0], streams[0, 1], n_muons, beam)  # beam candidates drawn per fill
    sums = np.empty(candidates * args.fills)
    key, stride = streams[0, 2], streams[0, 3]
    floor_s = min(_timed(lambda: _arithmetic_floor(key, stride, candidates * args.fills, n_muons * args.fills, sums)) for _ in range(args.repeats + 1))
    print(f"draws and elementary functions of the beam ({candidates / n_muons:.2f} candidates per muon) and decays alone: {floor_s / fill_muons.sum() * 1e9:.1f} ns/muon")


def _timed(run) -> float:
    """Seconds one call of ``run`` takes."""
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
