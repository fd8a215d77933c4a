"""Track mode: a block of muons through beam sampling, the numba tracker to decay or loss, the Michel decay and the detector (calorimeters with their geometry, silicon vanes, or sectors).

The block draws from ``SeedSequence(seed, spawn_key=(block,))`` (:mod:`ringsim.random_streams`).
"""

from __future__ import annotations

import math

import numpy as np

from ringsim.beam import initial_states, muon_charge_over_mass, sample_beam
from ringsim.config import SimConfig
from ringsim.constants import MUON_LIFETIME_S, codata
from ringsim.decay import DecayStates, decay_positrons
from ringsim.detectors.calorimeter import CalorimeterGeometry, calorimeter_hits
from ringsim.detectors.response import respond
from ringsim.detectors.simple import sector_station
from ringsim.detectors.vanes import VaneGeometry, reconstruct, vane_hits
from ringsim.event_schema import TRUTH_BRANCHES, typed_arrays
from ringsim.injection import spiral_beam
from ringsim.random_streams import seed_sequence
from ringsim.ring_fields import ring_parameters
from ringsim.rings import ring_kinematics
from ringsim.tracker import spin_phase_rad, track_to_times


def _block_seeds(seed: int, block: int) -> tuple[np.random.Generator, np.uint32]:
    ss = seed_sequence(seed, block)
    return np.random.default_rng(ss), ss.generate_state(1, np.uint32)[0]


def _vane_tracks(
    cfg: SimConfig, rng: np.random.Generator, states: DecayStates, energy: np.ndarray, direction: np.ndarray, decay_time_ns: np.ndarray, fill: np.ndarray, candidates: np.ndarray
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Reconstructed silicon-vane tracks of the candidate positrons (J-PARC); returns clusters, the vane of each positron's first detected hit and the first vane it crosses (−1: none)."""
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
            np.ascontiguousarray(states.position_m),
            np.ascontiguousarray(direction),
            energy,
            cfg.ring.field_t,
            cfg.ring.radius_m,
            geo.azimuths_rad(),
            geo.inner_x_m,
            geo.outer_x_m,
            geo.half_height_m,
            geo.chamber_outer_x_m,
            geo.chamber_inner_x_m,
        )
    zeros = np.zeros(energy.size)
    return sector_station(states.azimuth_rad, cfg.ring.n_detectors), zeros, zeros, zeros


def track_block(cfg: SimConfig, seed: int, block: int, size: int, n_use: int, codata_edition: int, truth: bool) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray] | None]:
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
    energy, direction = decay_positrons(
        np.array([0, size]), np.array([numba_seed]), np.ascontiguousarray(states.u), np.ascontiguousarray(states.spin), cfg.beam.polarization, codata(codata_edition).muon_mass_mev
    )
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
    return positrons, lost_muons, typed_arrays(truth_rows, TRUTH_BRANCHES)
