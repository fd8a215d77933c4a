"""Write example files in the layouts real g-2 analyses store, for the README tour of ``ringsim fit``.

    python data_samples/make_layout_examples.py OUTDIR [--positrons N]

The hits come from a small ringsim simulation (Fermilab preset, fast mode, in memory); every file
is written here with bare uproot, in the layouts of public analysis code:

- ``clusters_subrun1.root``, ``clusters_subrun2.root``: ``clusterTree/clusters``, one row per
  cluster, ``time`` in clock ticks of 1.25 ns, ``energy`` in MeV, uint32 ``caloNum`` (1–24),
  ``runNum``, ``subRunNum``, ``eventNum`` (restarting at 0 in each subrun) and a vector branch
  ``xtalEnergies`` that the fit ignores;
- ``crystal_ntuple.root``: ``crystalTreeMaker1EP/ntuple`` as an RNTuple (``time`` in clock ticks,
  ``energy`` in MeV, ``caloIndex``, ``runIndex``, ``subrunIndex``, ``fillIndex``);
- ``per_calo_histograms.root``: 24 TH2 ``CaloN_Times_And_Energies`` (time in ns × energy in MeV);
- ``master_3d.root``: one TH3 time × energy × calorimeter.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from ringsim.config import load_config
from ringsim.simulate import generate

CLOCK_TICK_NS = 1.25
RUN = 15921
TIME_EDGES_NS = 149.2 * np.arange(4700)  # 149.2 ns bins (the cyclotron period) to 701 μs
ENERGY_EDGES_MEV = np.linspace(0.0, 3200.0, 33)


def _hits(n_positrons: int) -> dict[str, np.ndarray]:
    blocks = list(generate(load_config("fnal"), "fast", n_positrons=n_positrons, seed=2026, progress=False))
    hits = {k: np.concatenate([b.positrons[k] for b in blocks]) for k in ("time_ns", "energy_mev", "calo", "fill")}
    keep = np.concatenate([b.positrons["truth_mip"] for b in blocks]) == 0
    return {k: v[keep] for k, v in hits.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir")
    parser.add_argument("--positrons", type=int, default=400_000)
    args = parser.parse_args()
    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    hits = _hits(args.positrons)
    fills = np.unique(hits["fill"])
    for subrun, chunk in enumerate(np.array_split(fills, 2), start=1):
        sel = np.isin(hits["fill"], chunk)
        n = int(np.count_nonzero(sel))
        with uproot.recreate(out / f"clusters_subrun{subrun}.root") as f:
            f.mktree(
                "clusterTree/clusters",
                {"time": np.float64, "energy": np.float64, "caloNum": np.uint32, "runNum": np.uint32, "subRunNum": np.uint32, "eventNum": np.uint32, "xtalEnergies": "var * float64"},
            )
            f["clusterTree/clusters"].extend(
                {
                    "time": hits["time_ns"][sel] / CLOCK_TICK_NS,
                    "energy": hits["energy_mev"][sel].astype(np.float64),
                    "caloNum": (hits["calo"][sel] + 1).astype(np.uint32),
                    "runNum": np.full(n, RUN, np.uint32),
                    "subRunNum": np.full(n, subrun, np.uint32),
                    "eventNum": (hits["fill"][sel] - chunk[0]).astype(np.uint32),
                    "xtalEnergies": ak.Array([[0.6, 0.3, 0.1]] * n) * hits["energy_mev"][sel].astype(np.float64)[:, None],
                }
            )
    with uproot.recreate(out / "crystal_ntuple.root") as f:
        f["crystalTreeMaker1EP/ntuple"] = {  # a dict assignment writes an RNTuple (uproot ≥ 5.7)
            "time": hits["time_ns"] / CLOCK_TICK_NS,
            "energy": hits["energy_mev"].astype(np.float64),
            "caloIndex": hits["calo"].astype(np.int32),
            "runIndex": np.full(hits["fill"].size, RUN, np.int32),
            "subrunIndex": np.ones(hits["fill"].size, np.int32),
            "fillIndex": hits["fill"].astype(np.int32),
        }
    with uproot.recreate(out / "per_calo_histograms.root") as f:
        for calo in range(24):
            keep = hits["calo"] == calo
            f[f"calos/Calo{calo + 1}_Times_And_Energies"] = np.histogram2d(hits["time_ns"][keep], hits["energy_mev"][keep], bins=(TIME_EDGES_NS, ENERGY_EDGES_MEV))
    with uproot.recreate(out / "master_3d.root") as f:
        counts, _ = np.histogramdd((hits["time_ns"], hits["energy_mev"], hits["calo"] + 1), bins=(TIME_EDGES_NS, ENERGY_EDGES_MEV, np.arange(0.5, 25.5)))
        f["master_3d"] = (counts, TIME_EDGES_NS, ENERGY_EDGES_MEV, np.arange(0.5, 25.5))
    print(f"wrote {len(hits['time_ns'])} positrons in 5 files to {out}")


if __name__ == "__main__":
    main()
