"""Calorimeter hit finder: the pseudo-angle ``calorimeter_hit`` versus its former atan2/acos version,
and the batch finder of fast mode (``calorimeter_hits_batch``, batches of ``fastgen.BATCH``) versus
``calorimeter_hit``.

All run single-threaded in one process over the same positrons: Fermilab decays from the
fast-mode chain (beam → decay states → Michel positrons) and a broad sample (decay points within
±5 cm of R₀, 10 MeV–3.1 GeV, directions within ±0.05 rad of the tangent). Prints ns per positron of
each (fastest of ``--repeats``), the ratios, how many stations differ, and how many instructions of a
fresh compilation of the batch finder use 256/512-bit registers (0: LLVM vectorised none of its loops).
Run from the repository root:
python benchmarks/bench_calorimeter.py [--positrons 1000000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numba
import numpy as np

from ringsim.config import load_config
from ringsim.detectors.calorimeter import CalorimeterGeometry, batch_scratch, calorimeter_hit, calorimeter_hits_batch, face_directions
from ringsim.fast_generation import BATCH

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_calorimeter_fast import broad_positrons, hits_loop, reference_calorimeter_hit  # noqa: E402
from test_fast_generation import reference_decays  # noqa: E402


def _fastgen_positrons(n, seed=0):
    """Decay points, unit momenta and energies [MeV] of Fermilab decays, field [T] and radius [m]."""
    cfg = load_config("fnal")
    _, _, st, energy, direction = reference_decays(cfg, n, seed)
    return np.ascontiguousarray(st.position_m), direction, energy, cfg.ring.field_t, cfg.ring.radius_m


@numba.njit
def _batch_loop(table, n, field_t, radius_m, cos_az, sin_az, inner_x, outer_x, half_height, chamber_x, chamber_inner_x):
    """calorimeter_hits_batch over the batches of ``table`` (n_batches, 7, BATCH): rows x, y, z, unit momentum, energy [MeV]."""
    work, index = batch_scratch(BATCH)
    station, flight_ns, x_hit, y_hit = np.empty(n, dtype=np.int64), np.empty(n), np.empty(n), np.empty(n)
    for b in range(table.shape[0]):
        first = b * BATCH
        m = min(BATCH, n - first)
        t = table[b]
        calorimeter_hits_batch(
            t[0],
            t[1],
            t[2],
            t[3],
            t[4],
            t[5],
            t[6],
            m,
            field_t,
            radius_m,
            cos_az,
            sin_az,
            inner_x,
            outer_x,
            half_height,
            chamber_x,
            chamber_inner_x,
            work,
            index,
            station[first:],
            flight_ns[first:],
            x_hit[first:],
            y_hit[first:],
        )
    return station, flight_ns, x_hit, y_hit


def _batch_table(pos, direction, energy):
    """The positrons as consecutive decay tables of BATCH columns (the last one padded)."""
    n_batches = -(-energy.size // BATCH)
    table = np.zeros((7, n_batches * BATCH))
    table[:, : energy.size] = np.concatenate([pos.T, direction.T, energy[None]])
    table[5, energy.size :] = 1.0
    return np.ascontiguousarray(table.reshape(7, n_batches, BATCH).transpose(1, 0, 2))


def _vector_instructions(cos_az, sin_az, faces) -> int:
    """Instructions on 256/512-bit registers in a fresh compilation of calorimeter_hits_batch (the cached one shows no assembly)."""
    fresh = numba.njit(error_model="numpy")(calorimeter_hits_batch.py_func)
    rows = [np.ones(BATCH) for _ in range(7)]
    fresh(*rows, BATCH, 1.45, 7.1, cos_az, sin_az, *faces, *batch_scratch(BATCH), np.empty(BATCH, dtype=np.int64), np.empty(BATCH), np.empty(BATCH), np.empty(BATCH))
    asm = fresh.inspect_asm(fresh.signatures[0])
    return sum(line.count("ymm") + line.count("zmm") > 0 for line in asm.splitlines())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--positrons", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    numba.set_num_threads(1)
    geo = CalorimeterGeometry()
    cos_az, sin_az = face_directions(geo.azimuths_rad())
    faces = (geo.inner_x_m, geo.outer_x_m, geo.half_height_m, geo.chamber_outer_x_m, geo.chamber_inner_x_m)
    new_loop, old_loop = hits_loop(calorimeter_hit), hits_loop(reference_calorimeter_hit)
    for loop in (new_loop, old_loop):  # compile
        loop(np.zeros((1, 3)), np.array([[0.0, 0.0, 1.0]]), np.ones(1), 1.0, 1.0, cos_az, sin_az, *faces)
    _batch_loop(_batch_table(np.zeros((1, 3)), np.array([[0.0, 0.0, 1.0]]), np.ones(1)), 1, 1.0, 1.0, cos_az, sin_az, *faces)
    print(f"batch finder: {_vector_instructions(cos_az, sin_az, faces)} instructions on 256/512-bit registers")
    fnal = _fastgen_positrons(args.positrons)
    broad = (*broad_positrons(np.random.default_rng(1), args.positrons, fnal[4], wide=0.0), fnal[3], fnal[4])
    for name, (pos, direction, energy, field_t, radius_m) in (("fast-mode decays", fnal), ("broad sample", broad)):
        table = _batch_table(pos, direction, energy)
        loops = {
            "old": lambda: old_loop(pos, direction, energy, field_t, radius_m, cos_az, sin_az, *faces),
            "new": lambda: new_loop(pos, direction, energy, field_t, radius_m, cos_az, sin_az, *faces),
            "batch": lambda: _batch_loop(table, energy.size, field_t, radius_m, cos_az, sin_az, *faces),
        }
        hits = {}
        best = dict.fromkeys(loops, np.inf)
        for _ in range(args.repeats):  # in turn, so that all see the same machine load
            for label, loop in loops.items():
                start = time.perf_counter()
                hits[label] = loop()
                best[label] = min(best[label], time.perf_counter() - start)
        t_old, t_new, t_batch = (best[label] / energy.size * 1e9 for label in loops)
        s_old, s_new, s_batch = (hits[label][0] for label in loops)
        same = all(np.array_equal(a, b) for a, b in zip(hits["new"], hits["batch"]))
        print(
            f"{name:17s}: old {t_old:6.1f} ns/call, new {t_new:6.1f} ns/call, ratio old/new {t_old / t_new:4.2f}; "
            f"hit fraction {np.mean(s_new >= 0):.3f}, stations differing {np.count_nonzero(s_old != s_new)} of {energy.size}"
        )
        print(f"{'':17s}  batch {t_batch:6.1f} ns/positron, new/batch {t_new / t_batch:4.2f}; stations differing from new {np.count_nonzero(s_new != s_batch)}, all outputs bit-identical: {same}")


if __name__ == "__main__":
    main()
