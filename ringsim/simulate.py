"""Event generation in blocks (fast or track mode) and writing to ROOT with provenance.

Muons are generated in blocks of :data:`BLOCK_MUONS` (per mode); block ``i`` draws all its random numbers from
``SeedSequence(seed, spawn_key=(i,))``, so a sample is bit-identical for any number of threads or
any grouping of blocks into chunks.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np

import ringsim
from ringsim.beam import initial_states, muon_charge_over_mass, ring_parameters, sample_beam
from ringsim.config import SimConfig
from ringsim.constants import MUON_LIFETIME_S, codata
from ringsim.detectors.simple import decay_and_detect
from ringsim.errors import ConfigError
from ringsim.fastmc import DecayStates, decay_states
from ringsim.io import EventWriter
from ringsim.progress import progress_bar
from ringsim.rings import ring_kinematics
from ringsim.tracker import radial_vertical_offsets_m, spin_phase_rad, track_to_times

BLOCK_MUONS = {"fast": 1 << 16, "track": 1 << 10}  # muons per block, fixed per mode for reproducibility
MODES = ("fast", "track")

EVENT_BRANCHES = {
    "time_ns": np.float64,  # detection time since the nominal injection (bunch centre at the kicker)
    "energy_mev": np.float32,  # measured positron energy
    "calo": np.int16,  # detector station
    "truth_energy_mev": np.float32,
    "truth_delta_p": np.float32,  # Δp/p of the parent muon
    "truth_x_e_m": np.float32,  # its equilibrium radius offset
    "truth_y_m": np.float32,  # its vertical position at decay
    "truth_spin_phase_rad": np.float32,  # spin angle to momentum at decay, wrapped to (−π, π]
    "truth_t0_ns": np.float32,  # its injection time
}


def _block_seeds(seed: int, block: int) -> tuple[np.random.Generator, np.uint32]:
    ss = np.random.SeedSequence(seed, spawn_key=(block,))
    return np.random.default_rng(ss), ss.generate_state(1, np.uint32)[0]


def generate_block(cfg: SimConfig, mode: str, seed: int, block: int, n_use: int | None = None, codata_edition: int = 2018) -> dict[str, np.ndarray]:
    """Positrons recorded from block ``block`` of ``BLOCK_MUONS[mode]`` muons, of which the first ``n_use`` decay.

    Lost muons (track mode) give no positron. All random numbers of the block are always drawn,
    so the first ``n_use`` muons are the same whatever ``n_use`` is.
    """
    size = BLOCK_MUONS[mode]
    n_use = size if n_use is None else n_use
    kin = ring_kinematics(cfg, codata_edition)
    q_over_m = muon_charge_over_mass(codata_edition)
    rng, numba_seed = _block_seeds(seed, block)
    beam = sample_beam(cfg, size, rng)
    gamma = np.sqrt(1.0 + (kin.gamma * kin.beta * (1.0 + beam.delta_p)) ** 2)
    lifetime_s = rng.exponential(1.0, size) * gamma * MUON_LIFETIME_S
    alive = np.arange(size) < n_use
    if mode == "fast":
        states = decay_states(cfg, kin, beam, lifetime_s, q_over_m)
    else:
        st = initial_states(cfg, kin, beam)
        dt_max = 2.0 * math.pi / kin.omega_c_rad_per_s / cfg.tracking.steps_per_turn
        lost = track_to_times(st[:n_use], lifetime_s[:n_use], dt_max, ring_parameters(cfg, kin), q_over_m, cfg.muon.a_mu, cfg.muon.edm_eta)
        alive[:n_use] = np.isnan(lost)
        _, y = radial_vertical_offsets_m(st[:, :3], cfg.ring.radius_m)
        states = DecayStates(u=st[:, 3:6], spin=st[:, 6:9], azimuth_rad=np.arctan2(st[:, 2], st[:, 0]), y_m=y)
    det = cfg.detector
    accepted, energy, true_energy, station = decay_and_detect(
        np.array([0, size]),
        np.array([numba_seed]),
        np.ascontiguousarray(states.u),
        np.ascontiguousarray(states.spin),
        states.azimuth_rad,
        cfg.beam.polarization,
        codata(codata_edition).muon_mass_mev,
        cfg.ring.n_detectors,
        det.energy_resolution_stochastic,
        det.energy_resolution_constant,
        det.efficiency,
        det.energy_min_mev,
    )
    time_ns = beam.t0_ns + lifetime_s * 1e9
    keep = accepted & alive & (time_ns >= 0.0)  # the readout window opens at the nominal injection time
    return {
        "time_ns": time_ns[keep],
        "energy_mev": energy[keep],
        "calo": station[keep],
        "truth_energy_mev": true_energy[keep],
        "truth_delta_p": beam.delta_p[keep],
        "truth_x_e_m": beam.x_e_m[keep],
        "truth_y_m": states.y_m[keep],
        "truth_spin_phase_rad": spin_phase_rad(states.u, states.spin)[keep],
        "truth_t0_ns": beam.t0_ns[keep],
    }


def generate(cfg: SimConfig, mode: str = "fast", n_positrons: int | None = None, n_muons: int | None = None, seed: int = 0, codata_edition: int = 2018, progress: bool | None = None) -> Iterator[dict[str, np.ndarray]]:
    """Yield per-block dicts of recorded positrons until ``n_positrons`` are recorded or ``n_muons`` simulated.

    Exactly one of ``n_positrons``/``n_muons`` must be given; the last block is cut so that the
    totals are exact, deterministically (positrons and muons are counted in block order).
    """
    if mode not in MODES:
        raise ConfigError(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
    if (n_positrons is None) == (n_muons is None):
        raise ConfigError("simulate: give exactly one of --positrons and --muons")
    what = "positrons" if n_positrons is not None else "muons"
    target = n_positrons if n_positrons is not None else n_muons
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or target <= 0:
        raise ConfigError(f"{what}: expected a positive integer, got {target!r}")
    size = BLOCK_MUONS[mode]
    done = 0
    block = 0
    with progress_bar(total=int(target), unit=what, enabled=progress) as bar:
        while done < target:
            if n_muons is not None:
                n_use = min(size, target - done)
                out = generate_block(cfg, mode, seed, block, n_use, codata_edition)
                step = n_use
            else:
                out = generate_block(cfg, mode, seed, block, None, codata_edition)
                step = min(out["time_ns"].size, target - done)
                out = {k: v[:step] for k, v in out.items()}
            done += step
            bar.update(step)
            block += 1
            yield out


def simulate_to_file(path: str | Path, cfg: SimConfig, mode: str = "fast", n_positrons: int | None = None, n_muons: int | None = None, seed: int = 0, codata_edition: int = 2018, overwrite: bool = False, progress: bool | None = None) -> dict:
    """Generate events and write them to a ROOT file (tree ``events``) with provenance; returns the provenance."""
    kin = ring_kinematics(cfg, codata_edition)
    provenance = {
        "package": "ringsim",
        "version": ringsim.__version__,
        "mode": mode,
        "seed": seed,
        "codata": codata(codata_edition).name,
        "blinding": "simulation truth, unblinded",
        "a_mu_truth": cfg.muon.a_mu,
        "omega_a_truth_rad_per_us": kin.omega_a_rad_per_us,
        "requested": {"positrons": n_positrons, "muons": n_muons},
        "config": cfg.to_dict(),
    }
    with EventWriter(path, "events", branches=EVENT_BRANCHES, provenance=provenance, overwrite=overwrite) as writer:
        for chunk in generate(cfg, mode, n_positrons, n_muons, seed, codata_edition, progress):
            writer.extend(chunk)
        writer.provenance["n_positrons"] = writer.n_entries
    return writer.provenance
