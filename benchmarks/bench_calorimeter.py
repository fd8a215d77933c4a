"""Calorimeter hit finder: the pseudo-angle ``calorimeter_hit`` versus its former atan2/acos version.

Both run single-threaded in one process over the same positrons: Fermilab decays from the
fast-mode chain (beam → decay states → Michel positrons) and a broad sample (decay points within
±5 cm of R₀, 10 MeV–3.1 GeV, directions within ±0.05 rad of the tangent). Prints ns per call of each
(fastest of ``--repeats``), their ratio, and how many stations differ. Run from the repository root:
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
from ringsim.detectors.calorimeter import CalorimeterGeometry, calorimeter_hit, face_directions

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_calorimeter_fast import broad_positrons, hits_loop, reference_calorimeter_hit  # noqa: E402
from test_fastgen import reference_decays  # noqa: E402


def _fastgen_positrons(n, seed=0):
    """Decay points, unit momenta and energies [MeV] of Fermilab decays, field [T] and radius [m]."""
    cfg = load_config("fnal")
    _, _, st, energy, direction = reference_decays(cfg, n, seed)
    return np.ascontiguousarray(st.position_m), direction, energy, cfg.ring.field_t, cfg.ring.radius_m


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
    fnal = _fastgen_positrons(args.positrons)
    broad = (*broad_positrons(np.random.default_rng(1), args.positrons, fnal[4], wide=0.0), fnal[3], fnal[4])
    for name, (pos, direction, energy, field_t, radius_m) in (("fast-mode decays", fnal), ("broad sample", broad)):
        station = {}
        best = {"old": np.inf, "new": np.inf}
        for _ in range(args.repeats):  # old and new in turn, so that both see the same machine load
            for label, loop in (("old", old_loop), ("new", new_loop)):
                start = time.perf_counter()
                station[label] = loop(pos, direction, energy, field_t, radius_m, cos_az, sin_az, *faces)[0]
                best[label] = min(best[label], time.perf_counter() - start)
        out = {label: (best[label] / energy.size * 1e9, station[label]) for label in best}
        (t_old, s_old), (t_new, s_new) = out["old"], out["new"]
        print(f"{name:17s}: old {t_old:6.1f} ns/call, new {t_new:6.1f} ns/call, ratio old/new {t_old / t_new:4.2f}; "
              f"hit fraction {np.mean(s_new >= 0):.3f}, stations differing {np.count_nonzero(s_old != s_new)} of {energy.size}")


if __name__ == "__main__":
    main()
