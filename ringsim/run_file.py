"""Writing a run to ROOT: blocks from :func:`ringsim.simulate.generate`, kept as parts (resumable), joined into the ``events``, ``lost_muons``, ``fills`` and (optional) ``truth`` trees, the per-station histograms and the JSON provenance."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import numpy as np

from ringsim.config import SimConfig
from ringsim.errors import ConfigError, InputError
from ringsim.event_schema import EVENT_BRANCHES, LOST_BRANCHES, TRUTH_BRANCHES
from ringsim.injection import injection_summary
from ringsim.io import EventWriter, check_output_path, compression_setting
from ringsim.locks import exclusive_output
from ringsim.rings import ring_kinematics
from ringsim.run_parts import finished_parts, load_part, parts_folder, run_request, save_part
from ringsim.simulate import block_muons, check_request, generate
from ringsim.station_histograms import fill_station_histograms, histogram_edges


class _RunSummary:
    """What a run file holds beside its event tree, gathered block by block (blocks 0, 1, … in order): the lost muons, the per-fill counts of tree ``fills`` and the per-station time × energy histograms."""

    def __init__(self, cfg: SimConfig, mode: str, n_muons: int | None, t_edges: np.ndarray, e_edges: np.ndarray) -> None:
        self.block_muons = block_muons(cfg, mode)
        self.per_fill = cfg.run.muons_per_fill
        self.n_fills = self.block_muons // self.per_fill  # per block
        self.n_muons = n_muons  # None for a positron count
        self.t_edges, self.e_edges = t_edges, e_edges
        self.histograms = np.zeros((cfg.ring.n_detectors, t_edges.size - 1, e_edges.size - 1))
        self.n_mip = 0
        self._lost: list[dict[str, np.ndarray]] = []
        self._blocks: list[tuple[np.ndarray, np.ndarray, int]] = []  # lost muons and clusters per fill, fill of the last positron

    def add(self, positrons: dict[str, np.ndarray], lost: dict[str, np.ndarray]) -> None:
        """Add the next block's clusters and lost muons."""
        first = len(self._blocks) * self.n_fills
        is_mip = positrons["truth_mip"] != 0
        self.n_mip += int(np.count_nonzero(is_mip))
        self._lost.append(lost)
        fill_station_histograms(self.histograms, positrons["calo"], positrons["time_ns"], positrons["energy_mev"], self.t_edges, self.e_edges)
        last = int(np.max(positrons["fill"][~is_mip], initial=first - 1))
        self._blocks.append((np.bincount(lost["fill"] - first, minlength=self.n_fills), np.bincount(positrons["fill"] - first, minlength=self.n_fills), last))

    def lost_muons(self) -> dict[str, np.ndarray]:
        """Tree ``lost_muons``."""
        return {k: np.concatenate([d[k] for d in self._lost]).astype(v) for k, v in LOST_BRANCHES.items()}

    def fills(self) -> dict[str, np.ndarray]:
        """Tree ``fills``: the fills with muons; a positron count ends with the fill of its last positron (:func:`generate`)."""
        columns: dict[str, list[np.ndarray]] = {"fill": [], "n_muons": [], "n_lost": [], "n_clusters": []}
        in_block = np.arange(self.n_fills)
        for i, (n_lost, n_clusters, last) in enumerate(self._blocks):
            first = i * self.n_fills
            if self.n_muons is not None:
                muons = np.clip(self.n_muons - i * self.block_muons - in_block * self.per_fill, 0, self.per_fill)
            else:
                end = last if i == len(self._blocks) - 1 else first + self.n_fills - 1
                muons = np.where(in_block <= end - first, self.per_fill, 0)
            run = muons > 0
            for key, values in zip(columns, (first + in_block, muons, n_lost, n_clusters)):
                columns[key].append(values[run])
        return {k: np.concatenate(v).astype(np.int64) for k, v in columns.items()}


def _disk_full(exc: BaseException) -> bool:
    """Whether a write failed for want of space: ENOSPC, or a short write uproot reports, anywhere in the chain."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC or "requested and" in str(exc) or "No space left" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def simulate_to_file(
    path: str | Path,
    cfg: SimConfig,
    mode: str = "fast",
    *,
    n_positrons: int | None = None,
    n_muons: int | None = None,
    seed: int = 0,
    codata_edition: int = 2018,
    overwrite: bool = False,
    progress: bool | None = None,
    truth: bool = False,
    compression: str = "zstd",
) -> dict:
    """Simulate a run into a ROOT file; resumable.

    Each block (whole fills) goes into the file as it is made and is also kept in ``.NAME.parts/``
    beside the target until the file is complete: the same command after an interruption writes the
    finished blocks again and continues from the first missing one, and the final file is identical
    to an uninterrupted run. Contents: tree ``events`` (positron clusters with truth, and the lost muons' MIP clusters),
    tree ``lost_muons``, tree ``fills`` (per-fill truth: muons, lost, clusters), with ``truth`` the tree
    ``truth`` (one row per muon, :data:`TRUTH_BRANCHES`, written block by block), TH2 histograms
    ``hist/calo_NN`` (time [ns] × energy [MeV] per station), and the JSON ``provenance``; ``compression``
    as for :class:`ringsim.io.EventWriter`. Returns the provenance.
    """
    path = Path(path)
    check_output_path(path, overwrite)
    compression_setting(compression)  # refused before anything is simulated
    check_request(cfg, mode, n_positrons, n_muons, codata_edition)
    with exclusive_output(path):  # one writer per run file: a second one is refused, not raced
        request = run_request(cfg, mode, n_positrons, n_muons, seed, codata_edition, truth)
        folder = parts_folder(path)
        parts = finished_parts(folder, request) if folder.exists() else []
        if not folder.exists():
            folder.mkdir()
            (folder / "request.json").write_text(json.dumps(request), encoding="utf-8")
        kin = ring_kinematics(cfg, codata_edition)
        provenance = {
            "package": "ringsim",
            **request,
            "blinding": "simulation truth, unblinded",
            "a_mu_truth": cfg.muon.a_mu,
            "omega_a_truth_rad_per_us": kin.omega_a_rad_per_us,
            **injection_summary(cfg, mode, codata_edition),
        }
        t_edges, e_edges = histogram_edges(cfg, codata_edition)
        summary = _RunSummary(cfg, mode, n_muons, t_edges, e_edges)
        try:
            with EventWriter(path, "events", branches=EVENT_BRANCHES, provenance=provenance, overwrite=overwrite, compression=compression, tmp_dir=folder) as writer:
                recorded = 0
                for part in parts:  # blocks finished before an interruption
                    positrons, lost = load_part(part, "e."), load_part(part, "l.")
                    writer.extend(positrons)
                    summary.add(positrons, lost)
                    recorded += int(np.count_nonzero(positrons["truth_mip"] == 0))
                done = recorded if n_positrons is not None else min(len(parts) * block_muons(cfg, mode), n_muons)
                for block in generate(cfg, mode, n_positrons, n_muons, seed, codata_edition, progress, start_block=len(parts), already_done=done, truth=truth):
                    parts.append(save_part(folder, block))
                    writer.extend(block.positrons)
                    summary.add(block.positrons, block.lost)
                writer.write_tree("lost_muons", summary.lost_muons())
                writer.write_tree("fills", summary.fills())
                if truth:
                    writer.write_tree_in_chunks("truth", TRUTH_BRANCHES, (load_part(part, "t.") for part in parts))
                for station, counts in enumerate(summary.histograms):
                    writer.write_histogram(f"hist/calo_{station:02d}", counts, t_edges, e_edges)
                writer.provenance["n_positrons"] = writer.n_entries - summary.n_mip
                writer.provenance["n_mip_clusters"] = summary.n_mip
        except BaseException as exc:
            if isinstance(exc, ConfigError) or not any(folder.glob("block-*.part")):  # a request that cannot succeed, or nothing to resume from
                shutil.rmtree(folder)
            if isinstance(exc, OSError | InputError) and _disk_full(exc):
                kept = len(list(folder.glob("block-*.part"))) if folder.exists() else 0
                where = f"{kept} finished block(s) are kept in {folder}: free space and run the same command to resume" if kept else "nothing was kept"
                raise InputError(f"{path}: disk full while writing the run; {where}") from None
            raise
        shutil.rmtree(folder)
        return writer.provenance
