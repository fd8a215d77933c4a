"""Study engine on dask: scaling from 1 to 2 workers and the overhead per task against a plain loop.

The same (point, seed) tasks run three ways, each after a warm-up that is not timed: a plain loop in
this process (numba on one thread, like a worker), then ``run_study`` on a LocalCluster of 1 and of
2 single-threaded worker processes (clusters started and kernels warmed before the clock starts).
Each is repeated ``--repeats`` times, interleaved, and the fastest kept. Prints the wall times,
the speed-up and efficiency from 1 to 2 workers, the overhead per task (dask time with one worker
minus the loop time, per task; it includes writing each task's JSON and, once, the summary and
plot), and the time per task spent outside the task body (worker-slots × wall − in-task time).

Run: python benchmarks/bench_scan.py [--positrons 200000] [--seeds 6] [--workers 1,2] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path

import matplotlib  # noqa: F401  (imported before timing: the summary plot needs it)
from distributed import Client

from workflows.study import NumbaWarmup, Study, local_cluster, prepare, run_study, run_task


def _loop(prepared) -> float:
    st = prepared.study
    run_task(prepared.configs[prepared.nominal], st.mode, 20_000, 0, 1)  # warm-up
    start = time.perf_counter()
    for value, seed in prepared.tasks():
        run_task(prepared.configs[value], st.mode, st.positrons, seed, 1)
    return time.perf_counter() - start


def _dask(prepared, n_workers: int, folder: Path) -> tuple[float, float]:
    """Wall time of run_study on a warmed cluster, and the summed in-task compute time."""
    with local_cluster(n_workers) as cluster, Client(cluster) as client:
        client.register_plugin(NumbaWarmup(prepared.configs[prepared.nominal], prepared.study.mode))
        start = time.perf_counter()
        run_study(prepared, folder, client=client, progress=False)
        wall = time.perf_counter() - start
    compute = sum(float(json.loads(p.read_text())["elapsed_s"]) for p in (folder / "tasks").iterdir())
    return wall, compute


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--positrons", type=int, default=200_000, help="recorded positrons per task")
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved repetitions; the fastest of each is kept")
    args = parser.parse_args()
    study = Study(parameter="beam.momentum_spread", values=(0.0, 0.5e-3, 1.5e-3), seeds=args.seeds, positrons=args.positrons)
    prepared = prepare(study)
    n_tasks = len(prepared.tasks())
    workers = [int(w) for w in args.workers.split(",")]
    print(f"{n_tasks} tasks of {args.positrons} positrons (fast mode, fnal); {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    t_loop = math.inf
    runs = {n: (math.inf, math.inf) for n in workers}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            t_loop = min(t_loop, _loop(prepared))
            for n in workers:
                runs[n] = min(runs[n], _dask(prepared, n, Path(tmp) / f"w{n}-r{r}"))
    print(f"plain loop (1 thread)      : {t_loop:8.2f} s  ({t_loop / n_tasks:.3f} s per task)")
    for n, (wall, compute) in runs.items():
        print(f"dask, {n} worker(s)          : {wall:8.2f} s  (in-task compute {compute:.2f} s; {(n * wall - compute) / n_tasks * 1e3:.1f} ms per task outside the task body)")
    if 1 in runs:
        print(f"overhead per task vs loop  : {(runs[1][0] - t_loop) / n_tasks * 1e3:8.1f} ms ({(runs[1][0] / t_loop - 1) * 100:+.1f} % of the loop time)")
    if 1 in runs and 2 in runs:
        speedup = runs[1][0] / runs[2][0]
        print(f"scaling 1 → 2 workers      : speed-up {speedup:.2f}, efficiency {speedup / 2 * 100:.0f} %")
    print(f"load average at the end    : {os.getloadavg()[0]:.1f} (timings on a shared machine compare only within one run)")


if __name__ == "__main__":
    main()
