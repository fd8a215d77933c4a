"""Event generation in blocks (fast or track mode) and writing to ROOT with provenance.

Muons are generated in blocks of whole fills (:func:`block_muons`); block ``i`` draws all its random numbers from
``SeedSequence(seed, spawn_key=(i,))`` (:mod:`ringsim.random_streams`; in fast mode: streams per fill,
:mod:`ringsim.fast_generation`), so a sample is bit-identical for any number of threads or any grouping of blocks into chunks.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numba
import numpy as np
from numba import njit
from scipy.special import ndtri

import ringsim
from ringsim.beam import check_beam_fits_aperture, initial_states, muon_charge_over_mass, sample_beam
from ringsim.ring_fields import ring_parameters
from ringsim.config import HISTOGRAM_ENERGY_BINS, SimConfig, histogram_time_bins
from ringsim.constants import MUON_LIFETIME_S, codata
from ringsim.decay import DecayStates, decay_positrons
from ringsim.detectors.calorimeter import CalorimeterGeometry, calorimeter_hits, face_directions
from ringsim.detectors.mip import MIP_STATIONS, first_station, lost_muon_hits
from ringsim.detectors.response import respond, respond_to_draws
from ringsim.detectors.simple import sector_station
from ringsim.detectors.vanes import VaneGeometry, reconstruct, vane_hits
from ringsim.errors import ConfigError, InputError
from ringsim.random_streams import MIP_STREAM, seed_sequence
from ringsim.fast_generation import TRUTH_COLUMNS, fast_params, fill_streams, merged_order, simulate_fills
from ringsim.injection import injection_summary, spiral_beam
from ringsim.io import EventWriter, check_output_path, compression_setting
from ringsim.progress import announce_compilation, progress_bar
from ringsim.rings import ring_kinematics
from ringsim.tracker import spin_phase_rad, track_to_times

TARGET_BLOCK_MUONS = {"fast": 1 << 18, "track": 1 << 10}  # muons per block, rounded to whole fills (fast: ≥ 20 fills to share between threads)
MODES = ("fast", "track")
NO_POSITRON_MUONS = 1 << 17  # muons without any recorded positron after which a positron count is refused (under one fast-mode block)

EVENT_BRANCHES = {
    "time_ns": np.float64,  # cluster time since the nominal injection (bunch centre at the injection point)
    "energy_mev": np.float32,  # measured cluster energy (after resolution, gain and pileup merging)
    "calo": np.int16,  # station
    "fill": np.int64,  # fill number in the run
    "n_hits": np.int8,  # positrons merged into this cluster (2 or more: pileup)
    "x_hit_m": np.float32,  # radial hit position on the calorimeter face, relative to R₀ (0 without geometry)
    "y_hit_m": np.float32,  # vertical hit position
    "hemisphere": np.int8,  # +1 positron going up, −1 down (reconstructed for vanes, true otherwise)
    "vertical_angle_rad": np.float32,  # atan(p_y/p_⊥) of the positron (reconstructed for vanes)
    "truth_energy_mev": np.float32,  # true energy of the (first) positron
    "truth_decay_time_ns": np.float64,  # its decay time
    "truth_delta_p": np.float32,  # Δp/p of the parent muon
    "truth_x_e_m": np.float32,  # its equilibrium radius offset
    "truth_x_m": np.float32,  # its radial position at decay
    "truth_y_m": np.float32,  # its vertical position at decay
    "truth_spin_phase_rad": np.float32,  # spin angle to momentum at decay, wrapped to (−π, π]
    "truth_t0_ns": np.float32,  # its injection time
    "truth_mip": np.int8,  # 1: a lost muon's minimum-ionising cluster (its other truth branches NaN), 0: a positron
}
LOST_BRANCHES = {
    "time_ns": np.float64,  # loss time
    "azimuth_rad": np.float32,  # where the muon left the aperture
    "fill": np.int64,
    "calo": np.int16,  # first of the three stations its minimum-ionising track crosses downstream
    "truth_delta_p": np.float32,
}

TRUTH_BRANCHES = {
    "fill": np.int64,
    "t0_ns": np.float32,  # injection time
    "delta_p": np.float32,  # Δp/p
    "x_e_m": np.float32,  # equilibrium radius offset
    "lost": np.int8,  # 1: lost before decaying (then the decay branches below are NaN)
    "time_ns": np.float64,  # decay time, or loss time
    "azimuth_rad": np.float32,  # where it decayed or was lost
    "x_m": np.float32,  # radial position at decay, relative to R₀
    "y_m": np.float32,  # vertical position at decay
    "spin_phase_rad": np.float32,  # spin angle to momentum at decay, wrapped to (−π, π]
    "energy_mev": np.float32,  # energy of the decay positron
    "vertical_angle_rad": np.float32,  # atan(p_y/p_⊥) of the decay positron
    "station": np.int16,  # reached by geometry: calorimeter face, decay sector or first vane crossed; −1 none
}


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


def _block_seeds(seed: int, block: int) -> tuple[np.random.Generator, np.uint32]:
    ss = seed_sequence(seed, block)
    return np.random.default_rng(ss), ss.generate_state(1, np.uint32)[0]


def _vane_tracks(cfg: SimConfig, rng: np.random.Generator, states: DecayStates, energy: np.ndarray, direction: np.ndarray, decay_time_ns: np.ndarray, fill: np.ndarray, candidates: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Reconstructed silicon-vane tracks of the candidate positrons (J-PARC); returns clusters, the
    vane of each positron's first detected hit and the first vane it crosses (−1: none)."""
    geometry = VaneGeometry.from_config(cfg)
    hits = vane_hits(states.position_m[candidates], direction[candidates], energy[candidates], decay_time_ns[candidates], geometry)
    tracks = reconstruct(hits, geometry, int(rng.integers(2**62)))
    ok = np.flatnonzero(tracks.accepted)
    clusters = {
        "index": ok,
        "time_ns": tracks.time_ns[ok],
        "energy_mev": tracks.momentum_mev[ok],
        "n_hits": np.ones(ok.size, dtype=np.int64),
        "hemisphere": tracks.hemisphere[ok],
        "vertical_angle_rad": tracks.vertical_angle_rad[ok],
    }
    station = np.full(energy.size, -1, dtype=np.int32)
    station[candidates] = tracks.first_vane
    crossed = np.full(energy.size, -1, dtype=np.int32)
    crossed[candidates] = hits.first_vane
    return clusters, station, crossed


def _stations(cfg: SimConfig, states: DecayStates, energy: np.ndarray, direction: np.ndarray) -> tuple[np.ndarray, ...]:
    """Station, flight time [ns] and face position of each positron for the calorimeter or sector model."""
    if cfg.detector.model == "calorimeters":
        geo = CalorimeterGeometry(n_stations=cfg.ring.n_detectors)
        return calorimeter_hits(
            np.ascontiguousarray(states.position_m), np.ascontiguousarray(direction), energy, cfg.ring.field_t, cfg.ring.radius_m,
            geo.azimuths_rad(), geo.inner_x_m, geo.outer_x_m, geo.half_height_m, geo.chamber_outer_x_m, geo.chamber_inner_x_m,
        )
    zeros = np.zeros(energy.size)
    return sector_station(states.azimuth_rad, cfg.ring.n_detectors), zeros, zeros, zeros


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
    return dict(zip(EVENT_BRANCHES, events)), lost, _typed(truth_rows, TRUTH_BRANCHES)


def _typed(arrays: dict[str, np.ndarray], branches: dict[str, type]) -> dict[str, np.ndarray]:
    """The arrays in the branches' order, cast to their types."""
    return {k: np.asarray(arrays[k]).astype(t, copy=False) for k, t in branches.items()}


def generate_block(cfg: SimConfig, mode: str, seed: int, block: int, n_use: int | None = None, codata_edition: int = 2018, truth: bool = False) -> Block:
    """Recorded clusters, lost muons and (if ``truth``) per-muon truth of block ``block``, of which the first ``n_use`` muons are used.

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
        positrons, lost, truth_rows = _track_block(cfg, seed, block, size, n_use, codata_edition, truth)
    positrons["truth_mip"] = np.zeros(positrons["time_ns"].size, dtype=np.int8)
    # the station whose face is first downstream of each loss, from the azimuths its MIP hits use
    lost["calo"] = first_station(lost["azimuth_rad"].astype(float), cfg.ring.n_detectors).astype(np.int16)
    if cfg.detector.model == "calorimeters":
        positrons = _with_lost_muon_clusters(cfg, ring_kinematics(cfg, codata_edition).beta, seed, block, positrons, lost)
    return Block(block, positrons, lost, truth_rows)


def _with_lost_muon_clusters(cfg: SimConfig, beta: float, seed: int, block: int, positrons: dict[str, np.ndarray], lost: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The positron clusters plus the lost muons' minimum-ionising clusters, ordered by (fill, time).

    The MIP hits (:func:`ringsim.detectors.mip.lost_muon_hits`) go through the same detector response
    (resolution, efficiency, gain, merging among themselves) from their own random stream, a fixed
    number of draws per lost muon (so the first muons' hits do not depend on how many follow);
    their truth branches other than the deposit and Δp/p, the hit position and the vertical angle
    are NaN, the hemisphere 0.
    """
    rng = np.random.default_rng(seed_sequence(seed, block, MIP_STREAM))
    u = rng.random((lost["time_ns"].size, MIP_STATIONS, 4)).reshape(-1, 4)  # per hit: deposit, energy and time resolution, efficiency
    hits = lost_muon_hits(u[:, 0].reshape(-1, MIP_STATIONS), lost["time_ns"], lost["azimuth_rad"].astype(float), lost["fill"], cfg.ring.n_detectors, cfg.ring.radius_m, beta)
    clusters = respond_to_draws(cfg.detector, hits["fill"], hits["calo"], hits["time_ns"], hits["energy_mev"], ndtri(u[:, 1]), ndtri(u[:, 2]), u[:, 3])
    keep = (clusters["energy_mev"] >= cfg.detector.energy_min_mev) & (clusters["time_ns"] >= 0.0)  # as for the positrons
    src = clusters["index"][keep]
    n = src.size
    nan = np.full(n, np.nan)
    mip = {
        "time_ns": clusters["time_ns"][keep],
        "energy_mev": clusters["energy_mev"][keep],
        "calo": hits["calo"][src],
        "fill": hits["fill"][src],
        "n_hits": clusters["n_hits"][keep],
        "x_hit_m": nan,
        "y_hit_m": nan,
        "hemisphere": np.zeros(n),  # neither: not a positron
        "vertical_angle_rad": nan,
        "truth_energy_mev": hits["energy_mev"][src],
        "truth_decay_time_ns": nan,
        "truth_delta_p": lost["truth_delta_p"][hits["muon"][src]],
        "truth_x_e_m": nan,
        "truth_x_m": nan,
        "truth_y_m": nan,
        "truth_spin_phase_rad": nan,
        "truth_t0_ns": nan,
        "truth_mip": np.ones(n),
    }
    if n == 0:
        return positrons
    by_time = np.lexsort((mip["time_ns"], mip["fill"]))
    mip = {k: v[by_time] for k, v in mip.items()}
    order = merged_order(positrons["fill"], positrons["time_ns"], mip["fill"], mip["time_ns"])
    return {k: np.concatenate([positrons[k], mip[k].astype(positrons[k].dtype)])[order] for k in EVENT_BRANCHES}


def _track_block(cfg: SimConfig, seed: int, block: int, size: int, n_use: int, codata_edition: int, truth: bool) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray] | None]:
    """Track mode: beam, tracking to decay or loss, decay and detector as array stages."""
    kin = ring_kinematics(cfg, codata_edition)
    q_over_m = muon_charge_over_mass(codata_edition)
    rng, numba_seed = _block_seeds(seed, block)
    beam = sample_beam(cfg, size, rng)
    gamma = np.sqrt(1.0 + (kin.gamma * kin.beta * (1.0 + beam.delta_p)) ** 2)
    lifetime_s = rng.exponential(1.0, size) * gamma * MUON_LIFETIME_S
    fill = block * (size // cfg.run.muons_per_fill) + np.arange(size) // cfg.run.muons_per_fill
    used = np.arange(size) < n_use
    if cfg.beam.injection == "spiral":
        st, beam, _ = spiral_beam(cfg, size, rng, codata_edition)
        lifetime_s *= np.sqrt(1.0 + (kin.gamma * kin.beta * (1.0 + beam.delta_p)) ** 2) / gamma  # the same draws, at the stored muons' γ
    else:
        st = initial_states(cfg, kin, beam)
    dt_max = 2.0 * math.pi / kin.omega_c_rad_per_s / cfg.tracking.steps_per_turn
    loss_s = np.full(size, np.nan)
    loss_phi = np.full(size, np.nan)
    loss_s[:n_use] = track_to_times(st[:n_use], lifetime_s[:n_use], dt_max, ring_parameters(cfg, kin), q_over_m, cfg.muon.a_mu, cfg.muon.edm_eta) - beam.t0_ns[:n_use] * 1e-9
    loss_phi[:n_use] = np.mod(np.arctan2(st[:n_use, 2], st[:n_use, 0]), 2.0 * math.pi)
    states = DecayStates(position_m=st[:, :3], u=st[:, 3:6], spin=st[:, 6:9])
    lost = used & (loss_s < lifetime_s)
    energy, direction = decay_positrons(np.array([0, size]), np.array([numba_seed]), np.ascontiguousarray(states.u), np.ascontiguousarray(states.spin), cfg.beam.polarization, codata(codata_edition).muon_mass_mev)
    decay_time_ns = beam.t0_ns + lifetime_s * 1e9
    true_angle = np.arctan2(direction[:, 1], np.hypot(direction[:, 0], direction[:, 2]))
    if cfg.detector.model == "vanes":
        idx = np.flatnonzero(used & ~lost)
        clusters, station, reached = _vane_tracks(cfg, rng, states, energy, direction, decay_time_ns, fill, idx)
        x_hit = y_hit = np.zeros(size)
    else:
        station, flight_ns, x_hit, y_hit = _stations(cfg, states, energy, direction)
        reached = station
        idx = np.flatnonzero(used & ~lost & (station >= 0))
        clusters = respond(rng, cfg.detector, fill[idx], station[idx], decay_time_ns[idx] + flight_ns[idx], energy[idx])
        clusters["vertical_angle_rad"] = true_angle[idx[clusters["index"]]]
        clusters["hemisphere"] = np.where(clusters["vertical_angle_rad"] >= 0, 1, -1)
    keep = (clusters["energy_mev"] >= cfg.detector.energy_min_mev) & (clusters["time_ns"] >= 0.0)  # the readout opens at injection
    src = idx[clusters["index"][keep]]
    x_rel = np.hypot(states.position_m[:, 0], states.position_m[:, 2]) - cfg.ring.radius_m
    positrons = {
        "time_ns": clusters["time_ns"][keep],
        "energy_mev": clusters["energy_mev"][keep],
        "calo": station[src],
        "fill": fill[src],
        "n_hits": clusters["n_hits"][keep],
        "x_hit_m": x_hit[src],
        "y_hit_m": y_hit[src],
        "hemisphere": clusters["hemisphere"][keep],
        "vertical_angle_rad": clusters["vertical_angle_rad"][keep],
        "truth_energy_mev": energy[src],
        "truth_decay_time_ns": decay_time_ns[src],
        "truth_delta_p": beam.delta_p[src],
        "truth_x_e_m": beam.x_e_m[src],
        "truth_x_m": x_rel[src],
        "truth_y_m": states.y_m[src],
        "truth_spin_phase_rad": spin_phase_rad(states.u[src], states.spin[src]),
        "truth_t0_ns": beam.t0_ns[src],
    }
    order = np.lexsort((positrons["time_ns"], positrons["fill"]))
    positrons = {k: v[order] for k, v in positrons.items()}
    lost_idx = np.flatnonzero(lost)
    lost_muons = {
        "time_ns": beam.t0_ns[lost_idx] + loss_s[lost_idx] * 1e9,
        "azimuth_rad": loss_phi[lost_idx],
        "fill": fill[lost_idx],
        "truth_delta_p": beam.delta_p[lost_idx],
    }
    if not truth:
        return positrons, lost_muons, None
    u = np.flatnonzero(used)
    decayed = ~lost[u]
    time_ns = np.where(decayed, decay_time_ns[u], beam.t0_ns[u] + loss_s[u] * 1e9)
    azimuth = np.mod(np.arctan2(states.position_m[u, 2], states.position_m[u, 0]), 2.0 * math.pi)
    at_decay = {  # NaN for the lost muons
        "x_m": x_rel[u],
        "y_m": states.y_m[u],
        "spin_phase_rad": spin_phase_rad(states.u[u], states.spin[u]),
        "energy_mev": energy[u],
        "vertical_angle_rad": true_angle[u],
    }
    truth_rows = {
        "fill": fill[u],
        "t0_ns": beam.t0_ns[u],
        "delta_p": beam.delta_p[u],
        "x_e_m": beam.x_e_m[u],
        "lost": lost[u],
        "time_ns": time_ns,
        "azimuth_rad": azimuth,
        **{k: np.where(decayed, v, np.nan) for k, v in at_decay.items()},
        "station": np.where(decayed, reached[u], -1),
    }
    return positrons, lost_muons, _typed(truth_rows, TRUTH_BRANCHES)


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
    """The modules whose numba kernels a run of ``mode`` calls first."""
    from ringsim import decay, fast_generation, tracker

    return [fast_generation] if mode == "fast" else [tracker, decay]


def generate(cfg: SimConfig, mode: str = "fast", n_positrons: int | None = None, n_muons: int | None = None, seed: int = 0, codata_edition: int = 2018, progress: bool | None = None, start_block: int = 0, already_done: int = 0, truth: bool = False) -> Iterator[Block]:
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
            _, out, lost, truth_rows = generate_block(cfg, mode, seed, block, n_use, codata_edition, truth)
            if n_muons is not None:
                step = n_use
            else:
                positron_rows = np.flatnonzero(out["truth_mip"] == 0)  # lost muons' clusters do not count
                idle_muons = idle_muons + size if done == 0 and positron_rows.size == 0 else 0
                if idle_muons >= NO_POSITRON_MUONS:
                    raise ConfigError(f"n_positrons: no positron recorded in the first {idle_muons} muons; detector.energy_min_mev, detector.efficiency or the acceptance record none, so the count is never reached")
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


def _request(cfg: SimConfig, mode: str, n_positrons: int | None, n_muons: int | None, seed: int, codata_edition: int, truth: bool) -> dict:
    """What identifies a run: a resumed run must ask for exactly the same."""
    return {
        "version": ringsim.__version__,
        "mode": mode,
        "seed": seed,
        "codata": codata(codata_edition).name,
        "requested": {"positrons": n_positrons, "muons": n_muons},
        "truth_tree": truth,
        "config": cfg.to_dict(),
    }


def _parts_folder(path: Path) -> Path:
    return path.with_name(f".{path.name}.parts")


def _finished_parts(folder: Path, request: dict) -> list[Path]:
    """Parts of an interrupted run of the same request, in block order (contiguous from block 0)."""
    meta = folder / "request.json"
    try:
        previous = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise InputError(f"{folder}: unfinished-run folder without a readable request.json; remove it") from None
    asked = json.loads(json.dumps(request))
    if previous != asked:
        differing = sorted(k for k in set(previous) | set(asked) if previous.get(k) != asked.get(k))
        raise InputError(f"{folder}: holds an interrupted run of a different request (differs in: {', '.join(differing)}); remove it or repeat that command")
    for stale in folder.glob(".*.tmp*"):  # a part or run file being written when the run was stopped
        stale.unlink()
    parts = []
    for block in itertools.count():
        part = folder / f"block-{block:06d}.part"
        if not part.exists():
            return parts
        if _part_contents(part) is None:  # damaged: made again, with every later block
            for later in folder.glob("block-*.part"):
                if int(later.stem.removeprefix("block-")) >= block:
                    later.unlink()
            return parts
        parts.append(part)


_PART_PREFIXES = ("e.", "l.", "t.")  # positrons, lost muons, truth


def _save_part(folder: Path, block: Block) -> Path:
    """Block ``block`` as one file, written under a temporary name and renamed: the byte length of a JSON
    list of (table prefix + key, dtype, length) of its arrays, that list, then the arrays' bytes in its order.
    Returns the file."""
    arrays = {prefix + k: np.ascontiguousarray(v) for prefix, table in zip(_PART_PREFIXES, (block.positrons, block.lost, block.truth or {})) for k, v in table.items()}
    contents = json.dumps([[name, a.dtype.str, a.size] for name, a in arrays.items()]).encode()
    tmp = folder / f".block-{block.number:06d}.tmp"
    with open(tmp, "wb") as handle:
        handle.write(len(contents).to_bytes(8, "little"))
        handle.write(contents)
        for a in arrays.values():
            a.tofile(handle)
    part = folder / f"block-{block.number:06d}.part"
    os.replace(tmp, part)
    return part


def _part_contents(part: Path) -> tuple[int, list[tuple[str, np.dtype, int]]] | None:
    """Where the arrays of a saved block start and its table of contents (name, dtype, length of each),
    or None if the file is damaged: unreadable, a non-numeric dtype, or lengths that do not add up to its size."""
    try:
        with open(part, "rb") as handle:
            file_bytes = os.fstat(handle.fileno()).st_size
            n_header = int.from_bytes(handle.read(8), "little")
            if n_header > file_bytes - 8:
                return None
            contents = [(str(name), np.dtype(dtype), size) for name, dtype, size in json.loads(handle.read(n_header))]
    except (OSError, ValueError, TypeError):
        return None
    if any(dtype.kind not in "biuf" or type(size) is not int or size < 0 for _, dtype, size in contents):
        return None
    if 8 + n_header + sum(size * dtype.itemsize for _, dtype, size in contents) != file_bytes:
        return None
    return 8 + n_header, contents


def _load_part(part: Path, prefix: str) -> dict[str, np.ndarray]:
    """One table of a saved block: positrons (``"e."``), lost muons (``"l."``) or truth (``"t."``, empty when not asked for)."""
    layout = _part_contents(part)
    if layout is None:
        raise InputError(f"{part}: damaged block of an interrupted run; remove {part.parent}")
    start, contents = layout
    table = {}
    with open(part, "rb") as handle:
        handle.seek(start)
        for name, dtype, size in contents:
            if name.startswith(prefix):
                table[name[len(prefix) :]] = np.fromfile(handle, dtype=dtype, count=size)
            else:
                handle.seek(size * dtype.itemsize, os.SEEK_CUR)
    return table


def histogram_edges(cfg: SimConfig, codata_edition: int = 2018) -> tuple[np.ndarray, np.ndarray]:
    """Time [ns] and energy [MeV] bin edges of the per-station histograms of a run file."""
    e_top = 1.05 * ring_kinematics(cfg, codata_edition).e_max_mev
    return np.arange(histogram_time_bins(cfg.analysis) + 1) * cfg.analysis.bin_width_ns, np.linspace(0.0, e_top, HISTOGRAM_ENERGY_BINS + 1)


@njit(cache=True)
def _bin_index(value, edges, inv_width):
    """Bin of ``value`` in the increasing ``edges`` as numpy's histograms count it (the last edge in the last
    bin), −1 outside or NaN; ``inv_width``: 1 / mean bin width, which makes the first guess exact but at the edges."""
    n_bins = edges.size - 1
    if not (edges[0] <= value <= edges[n_bins]):
        return -1
    k = min(int((value - edges[0]) * inv_width), n_bins - 1)
    while value < edges[k]:
        k -= 1
    while k + 1 < n_bins and value >= edges[k + 1]:
        k += 1
    return k


@njit(cache=True)
def fill_station_histograms(counts, station, time_ns, energy_mev, t_edges, e_edges):
    """Add clusters to ``counts`` (station, time bin, energy bin), counting as ``np.histogramdd`` with
    these edges and the stations' integer bins: clusters outside any bin are left out. One pass,
    O(1) per cluster for (nearly) uniform edges."""
    inv_t = (t_edges.size - 1) / (t_edges[-1] - t_edges[0])
    inv_e = (e_edges.size - 1) / (e_edges[-1] - e_edges[0])
    for i in range(station.size):
        s = station[i]
        k_t = _bin_index(time_ns[i], t_edges, inv_t)
        k_e = _bin_index(energy_mev[i], e_edges, inv_e)
        if 0 <= s < counts.shape[0] and k_t >= 0 and k_e >= 0:
            counts[s, k_t, k_e] += 1.0


class _RunSummary:
    """What a run file holds beside its event tree, gathered block by block (blocks 0, 1, … in order):
    the lost muons, the per-fill counts of tree ``fills`` and the per-station time × energy histograms."""

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
        """The next block's clusters and lost muons."""
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


def simulate_to_file(path: str | Path, cfg: SimConfig, mode: str = "fast", n_positrons: int | None = None, n_muons: int | None = None, seed: int = 0, codata_edition: int = 2018, overwrite: bool = False, progress: bool | None = None, truth: bool = False, compression: str = "zstd") -> dict:
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
    request = _request(cfg, mode, n_positrons, n_muons, seed, codata_edition, truth)
    folder = _parts_folder(path)
    parts = _finished_parts(folder, request) if folder.exists() else []
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
                positrons, lost = _load_part(part, "e."), _load_part(part, "l.")
                writer.extend(positrons)
                summary.add(positrons, lost)
                recorded += int(np.count_nonzero(positrons["truth_mip"] == 0))
            done = recorded if n_positrons is not None else min(len(parts) * block_muons(cfg, mode), n_muons)
            for block in generate(cfg, mode, n_positrons, n_muons, seed, codata_edition, progress, start_block=len(parts), already_done=done, truth=truth):
                parts.append(_save_part(folder, block))
                writer.extend(block.positrons)
                summary.add(block.positrons, block.lost)
            writer.write_tree("lost_muons", summary.lost_muons())
            writer.write_tree("fills", summary.fills())
            if truth:
                writer.write_tree_in_chunks("truth", TRUTH_BRANCHES, (_load_part(part, "t.") for part in parts))
            for station, counts in enumerate(summary.histograms):
                writer.write_histogram(f"hist/calo_{station:02d}", counts, t_edges, e_edges)
            writer.provenance["n_positrons"] = writer.n_entries - summary.n_mip
            writer.provenance["n_mip_clusters"] = summary.n_mip
    except BaseException as exc:
        if isinstance(exc, ConfigError) or not any(folder.glob("block-*.part")):  # a request that cannot succeed, or nothing to resume from
            shutil.rmtree(folder)
        raise
    shutil.rmtree(folder)
    return writer.provenance
