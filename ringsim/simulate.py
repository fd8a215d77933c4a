"""Event generation in blocks (fast or track mode); writing them to ROOT is :mod:`ringsim.run_file`.

Muons are generated in blocks of whole fills (:func:`block_muons`); block ``i`` draws all its random numbers from
``SeedSequence(seed, spawn_key=(i,))`` (:mod:`ringsim.random_streams`; in fast mode: streams per fill,
:mod:`ringsim.fast_generation`), so a sample is bit-identical for any number of threads or any grouping of blocks into chunks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numba
import numpy as np

from ringsim.beam import check_beam_fits_aperture, muon_charge_over_mass
from ringsim.config import SimConfig
from ringsim.constants import codata
from ringsim.detectors.calorimeter import CalorimeterGeometry, face_directions
from ringsim.detectors.mip import first_station
from ringsim.detectors.vanes import VaneGeometry
from ringsim.errors import ConfigError
from ringsim.event_schema import EVENT_BRANCHES, TRUTH_BRANCHES, typed_arrays
from ringsim.fast_generation import TRUTH_COLUMNS, fast_params, fill_streams, simulate_fills
from ringsim.interrupts import deferred
from ringsim.lost_muon_clusters import with_lost_muon_clusters
from ringsim.progress import announce_compilation, progress_bar
from ringsim.rings import ring_kinematics
from ringsim.track_mode import track_block

TARGET_BLOCK_MUONS = {"fast": 1 << 18, "track": 1 << 10}  # muons per block, rounded to whole fills (fast: ≥ 20 fills to share between threads)
MODES = ("fast", "track")
NO_POSITRON_MUONS = 1 << 17  # muons without any recorded positron after which a positron count is refused (under one fast-mode block)


class Block(NamedTuple):
    """What a block of fills produced: recorded clusters, lost muons, and the per-muon truth (None unless asked for)."""

    number: int
    positrons: dict[str, np.ndarray]
    lost: dict[str, np.ndarray]
    truth: dict[str, np.ndarray] | None


def block_muons(cfg: SimConfig, mode: str) -> int:
    """Muons per block: a whole number of fills close to the mode's target."""
    per_fill = cfg.run.muons_per_fill
    return per_fill * max(1, round(TARGET_BLOCK_MUONS[mode] / per_fill))


def _fast_block(cfg: SimConfig, seed: int, block: int, size: int, n_use: int, codata_edition: int, truth: bool) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray] | None]:
    """Fast mode: the kernel of :mod:`ringsim.fast_generation`, random streams per fill."""
    per_fill = cfg.run.muons_per_fill
    n_fills = size // per_fill
    fill_muons = np.clip(n_use - np.arange(n_fills) * per_fill, 0, per_fill)
    params = fast_params(cfg, ring_kinematics(cfg, codata_edition), muon_charge_over_mass(codata_edition), codata(codata_edition).muon_mass_mev)
    if cfg.detector.model == "vanes":
        cos_az, sin_az = VaneGeometry.from_config(cfg).unit_vectors()
    else:
        cos_az, sin_az = face_directions(CalorimeterGeometry(n_stations=cfg.ring.n_detectors).azimuths_rad())
    events, (lost_time, lost_phi, lost_fill, lost_delta), rows = simulate_fills(params, fill_streams(seed, block, n_fills), fill_muons, block * n_fills, cos_az, sin_az, numba.get_num_threads(), truth)
    lost = {"time_ns": lost_time, "azimuth_rad": lost_phi, "fill": lost_fill, "truth_delta_p": lost_delta}  # calo: generate_block
    if not truth:
        return dict(zip(EVENT_BRANCHES, events)), lost, None
    truth_rows = {"fill": np.repeat(block * n_fills + np.arange(n_fills), fill_muons), **{k: rows[:, c] for c, k in enumerate(TRUTH_COLUMNS)}}
    truth_rows["x_e_m"] = params.dispersion * truth_rows["delta_p"]
    return dict(zip(EVENT_BRANCHES, events)), lost, typed_arrays(truth_rows, TRUTH_BRANCHES)


def generate_block(cfg: SimConfig, mode: str, seed: int, block: int, n_use: int | None = None, codata_edition: int = 2018, truth: bool = False) -> Block:
    """Return recorded clusters, lost muons and (if ``truth``) per-muon truth of block ``block``, of which the first ``n_use`` muons are used.

    All random numbers of the block are always drawn, so the first ``n_use`` muons are the same
    whatever ``n_use`` is, and asking for the truth changes nothing else. Dicts of arrays; with
    calorimeters the clusters include the minimum-ionising hits of the lost muons (``truth_mip`` = 1);
    the truth has one row per muon used (:data:`TRUTH_BRANCHES`), in fill order.
    """
    size = block_muons(cfg, mode)
    n_use = size if n_use is None else n_use
    if mode == "fast":
        positrons, lost, truth_rows = _fast_block(cfg, seed, block, size, n_use, codata_edition, truth)
    else:
        positrons, lost, truth_rows = track_block(cfg, seed, block, size, n_use, codata_edition, truth)
    positrons["truth_mip"] = np.zeros(positrons["time_ns"].size, dtype=np.int8)
    # the station whose face is first downstream of each loss, from the azimuths its MIP hits use
    lost["calo"] = first_station(lost["azimuth_rad"].astype(float), cfg.ring.n_detectors).astype(np.int16)
    if cfg.detector.model == "calorimeters":
        positrons = with_lost_muon_clusters(cfg, ring_kinematics(cfg, codata_edition).beta, seed, block, positrons, lost)
    return Block(block, positrons, lost, truth_rows)


def check_request(cfg: SimConfig, mode: str, n_positrons: int | None, n_muons: int | None, codata_edition: int = 2018) -> tuple[str, int]:
    """Validate a run request before anything is simulated or written; returns ("positrons" or "muons", the count).

    Raises ConfigError for an unknown mode, not exactly one positive count, a beam that never fits
    the aperture, or (fast mode) phases beyond the kernel's range.
    """
    if mode not in MODES:
        raise ConfigError(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
    if (n_positrons is None) == (n_muons is None):
        raise ConfigError("simulate: give exactly one of --positrons and --muons")
    what = "positrons" if n_positrons is not None else "muons"
    target = n_positrons if n_positrons is not None else n_muons
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or target <= 0:
        raise ConfigError(f"{what}: expected a positive integer, got {target!r}")
    check_beam_fits_aperture(cfg)
    if mode == "fast":
        fast_params(cfg, ring_kinematics(cfg, codata_edition), muon_charge_over_mass(codata_edition), codata(codata_edition).muon_mass_mev)
    return what, int(target)


def _kernel_modules(mode: str) -> list:
    """Return the modules whose numba kernels a run of ``mode`` calls first."""
    from ringsim import decay, fast_generation, tracker

    return [fast_generation] if mode == "fast" else [tracker, decay]


def generate(
    cfg: SimConfig,
    mode: str = "fast",
    n_positrons: int | None = None,
    n_muons: int | None = None,
    seed: int = 0,
    codata_edition: int = 2018,
    progress: bool | None = None,
    start_block: int = 0,
    already_done: int = 0,
    truth: bool = False,
) -> Iterator[Block]:
    """Yield a :class:`Block` at a time until ``n_positrons`` are recorded or ``n_muons`` simulated.

    Exactly one of ``n_positrons``/``n_muons`` must be given; the last block is cut so that the
    totals are exact, deterministically (positrons and muons are counted in block order). A positron
    count ends the run with the fill of its last positron: that fill's clusters stop there, its lost
    muons and truth rows are whole, later fills are dropped. To resume, pass the first block still to
    do and the count already recorded (positrons) or simulated (muons).
    """
    what, target = check_request(cfg, mode, n_positrons, n_muons, codata_edition)
    if progress is not False:
        announce_compilation(_kernel_modules(mode), f"simulate ({mode} mode)")
    size = block_muons(cfg, mode)
    done = already_done
    block = start_block
    idle_muons = 0  # simulated while nothing is recorded yet
    with progress_bar(total=int(target), unit=what, enabled=progress) as bar:
        bar.update(done)
        while done < target:
            n_use = min(size, target - done) if n_muons is not None else None
            with deferred():
                _, out, lost, truth_rows = generate_block(cfg, mode, seed, block, n_use, codata_edition, truth)
            if n_muons is not None:
                step = n_use
            else:
                positron_rows = np.flatnonzero(out["truth_mip"] == 0)  # lost muons' clusters do not count
                idle_muons = idle_muons + size if done == 0 and positron_rows.size == 0 else 0
                if idle_muons >= NO_POSITRON_MUONS:
                    raise ConfigError(
                        f"n_positrons: no positron recorded in the first {idle_muons} muons; detector.energy_min_mev, detector.efficiency or the acceptance record none, so the count is never reached"
                    )
                step = min(positron_rows.size, target - done)
                if step < positron_rows.size:
                    last_fill = out["fill"][positron_rows[step - 1]]
                    out = {k: v[: positron_rows[step]] for k, v in out.items()}
                    lost = {k: v[lost["fill"] <= last_fill] for k, v in lost.items()}
                    if truth_rows is not None:
                        truth_rows = {k: v[truth_rows["fill"] <= last_fill] for k, v in truth_rows.items()}
            done += step
            bar.update(step)
            yield Block(block, out, lost, truth_rows)
            block += 1
