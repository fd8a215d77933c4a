"""Reading a large flat tree: ringsim's read_events against bare uproot.iterate, peak memory and time per row.

    python benchmarks/bench_ingest.py --rows 200000000 --folder /tmp/bench_ingest

Writes (once) a tree of ``--rows`` rows (time_ns, energy_mev float64, calo int16, fill int64) with
bare uproot, then reads it in a fresh process each way and prints the peak resident memory (from
``resource.getrusage``) and the seconds per 10⁶ rows, side by side, with their ratios.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import uproot

CHUNK = 5_000_000

READERS = {
    "bare uproot.iterate (100 MB steps)": "import uproot\nfor chunk in uproot.iterate(PATH + ':events', ['time_ns', 'energy_mev', 'calo', 'fill'], step_size='100 MB', library='np'):\n    pass\n",
    "ringsim read_events": "from analysis.ingest import read_events\nread_events(PATH, tree='events')\n",
}


def _write(path: Path, rows: int) -> None:
    rng = np.random.default_rng(1)
    with uproot.recreate(path) as f:
        f.mktree("events", {"time_ns": np.float64, "energy_mev": np.float64, "calo": np.int16, "fill": np.int64})
        for start in range(0, rows, CHUNK):
            n = min(CHUNK, rows - start)
            f["events"].extend(
                {"time_ns": rng.exponential(64_400.0, n), "energy_mev": rng.uniform(0.0, 3100.0, n), "calo": rng.integers(0, 24, n).astype(np.int16), "fill": (start + np.arange(n)) // 3000}
            )


def _measure(code: str, path: Path) -> tuple[float, float]:
    script = f"import resource, time, json\nPATH = {str(path)!r}\nt0 = time.perf_counter()\n{code}\nprint(json.dumps([time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20]))\n"
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True).stdout
    seconds, peak_gib = json.loads(out.strip().splitlines()[-1])
    return seconds, peak_gib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--folder", default="/tmp/bench_ingest")
    args = parser.parse_args()
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"flat_{args.rows}.root"
    if not path.exists():
        t0 = time.perf_counter()
        _write(path, args.rows)
        print(f"wrote {args.rows:.3g} rows ({path.stat().st_size / 2**30:.2f} GiB) in {time.perf_counter() - t0:.0f} s")
    results = {name: _measure(code, path) for name, code in READERS.items()}
    base_s, base_mem = results["bare uproot.iterate (100 MB steps)"]
    print(f"{'reader':<36} {'s per 1e6 rows':>15} {'peak memory [GiB]':>18} {'time ratio':>11} {'memory ratio':>13}")
    for name, (seconds, mem) in results.items():
        print(f"{name:<36} {seconds / args.rows * 1e6:>15.3f} {mem:>18.2f} {seconds / base_s:>11.2f} {mem / base_mem:>13.2f}")


if __name__ == "__main__":
    main()
