"""Event-generation speed, fast versus track mode, side by side in one process.

Prints whether the fast-mode decay loop was vectorised (its instructions on 256/512-bit registers),
fast-mode recorded positrons (clusters written) and decays per second, track-mode muon-steps and
positrons per second, their ratio, and the time of a 10¹⁰-positron histogram-level pseudo-experiment. Run: python benchmarks/bench_generation.py [--positrons N] [--muons M]
"""

from __future__ import annotations

import argparse
import math
import time

import numba
import numpy as np

from ringsim import fast_generation as fastgen
from ringsim.beam import muon_charge_over_mass
from ringsim.config import load_config
from ringsim.constants import codata
from ringsim.rings import ring_kinematics
from ringsim.simulate import block_muons, generate


def _timed(cfg, mode, **count):
    """Recorded positrons, decays (muons simulated less those lost), seconds, and the positron chunks of a run."""
    list(generate(cfg, mode, seed=0, progress=False, **{k: min(v, 2000) for k, v in count.items()}))  # warm the kernels
    start = time.perf_counter()
    blocks = list(generate(cfg, mode, seed=1, progress=False, **count))
    elapsed = time.perf_counter() - start
    chunks = [b.positrons for b in blocks]
    muons = count.get("n_muons", len(blocks) * block_muons(cfg, mode))  # a positron-count run uses whole blocks
    decays = muons - sum(b.lost["time_ns"].size for b in blocks)
    return sum(c["time_ns"].size for c in chunks), decays, elapsed, chunks


def _vector_instructions(cfg, kin) -> int:
    """Instructions on 256/512-bit registers in a fresh compilation of the fast-mode decay loop (0: LLVM did not vectorise it)."""
    p = fastgen.fast_params(cfg, kin, muon_charge_over_mass(), codata().muon_mass_mev)
    streams = fastgen.fill_streams(0, 0, 1)[0]
    beam = np.empty((7, fastgen.BATCH))
    fastgen._beam(p, streams[0], streams[1], fastgen.BATCH, beam)
    fresh = numba.njit(error_model="numpy", fastmath={"contract"})(fastgen._decays.py_func)  # the cached one shows no assembly
    fresh(p, streams[2], streams[3], 0, fastgen.BATCH, beam, np.empty((fastgen.N_DECAY_ROWS, fastgen.BATCH)))
    asm = fresh.inspect_asm(fresh.signatures[0])
    return sum(line.count("ymm") + line.count("zmm") > 0 for line in asm.splitlines())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ring", default="fnal")
    parser.add_argument("--positrons", type=int, default=5_000_000)
    parser.add_argument("--muons", type=int, default=4096)
    parser.add_argument("--template", type=int, default=2_000_000, help="template positrons of the histogram-level model")
    args = parser.parse_args()
    cfg = load_config(args.ring)
    kin = ring_kinematics(cfg)

    n_fast, decays_fast, t_fast, _ = _timed(cfg, "fast", n_positrons=args.positrons)
    n_track, _, t_track, chunks = _timed(cfg, "track", n_muons=args.muons)
    # steps actually taken: each muon takes ceil(lifetime/dt_max) steps; estimate from the mean γτ
    dt_max = 2 * math.pi / kin.omega_c_rad_per_s / cfg.tracking.steps_per_turn
    steps = args.muons * kin.gamma_tau_s / dt_max
    fast_rate = n_fast / t_fast
    track_rate = n_track / t_track
    print(f"ring {args.ring}, steps/turn {cfg.tracking.steps_per_turn}; fast-mode decay loop: {_vector_instructions(cfg, kin)} instructions on 256/512-bit registers")
    print(f"fast mode : {n_fast:>10d} positrons in {t_fast:7.2f} s -> {fast_rate:12.3e} recorded positrons/s ({decays_fast / t_fast:.3e} decays/s, {numba.get_num_threads()} threads)")
    print(
        f"track mode: {args.muons:>10d} muons     in {t_track:7.2f} s -> {steps / t_track:12.3e} muon-steps/s (≈{steps / t_track / cfg.tracking.steps_per_turn:.3e} muon-turns/s), {track_rate:.3e} positrons/s"
    )
    print(f"ratio fast/track positrons per second: {fast_rate / track_rate:.0f}")
    from ringsim.histogram_experiments import build_model, pseudo_experiment

    start = time.perf_counter()
    model = build_model(cfg, n_template=args.template)
    built = time.perf_counter() - start
    rng = np.random.default_rng(0)
    pseudo_experiment(model, 1e6, rng)
    start = time.perf_counter()
    counts = pseudo_experiment(model, 1e10, rng)
    one = time.perf_counter() - start
    print(f"histogram level: model from {args.template} template positrons in {built:.1f} s; one 1e10-positron experiment ({counts.size} bins, {counts.sum():.3e} counts) in {one:.3f} s")
    print(f"(mean recorded energy fast vs track check: {np.mean(np.concatenate([c['energy_mev'] for c in chunks])):.1f} MeV)")


if __name__ == "__main__":
    main()
