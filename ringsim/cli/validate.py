"""``ringsim validate``: physics self-checks of the installed package, each against an expectation computed without the tracker (smooth-focusing tunes, one-turn matrices, 2πaγ, the C_e and C_p formulas, the EDM tilt atan(ηβ/2a), the integrated Michel asymmetry)."""

from __future__ import annotations

import argparse
import math

import numpy as np

from ringsim.beam import Beam, initial_states, muon_charge_over_mass
from ringsim.config import load_config
from ringsim.ring_fields import ring_parameters
from ringsim.rings import ring_kinematics
from ringsim.tracker import radial_vertical_offsets_m, spin_phase_rad, track_diagnostics, track_recorded

CLEAN = ["kicker.enabled=false", "collimators.azimuth_deg=[]"]


def _muons(x_beta=0.0, y=0.0, delta=0.0) -> Beam:
    delta, x_beta, y = (np.atleast_1d(np.asarray(v, dtype=float)) for v in np.broadcast_arrays(delta, x_beta, y))
    z = np.zeros_like(delta)
    return Beam(delta, z, x_beta, z, y, z, z)


def _tune(signal: np.ndarray, samples_per_turn: int) -> float:
    """Betatron tune from the peak of the zero-padded spectrum, refined by a parabola (log amplitude)."""
    sig = (signal - signal.mean()) * np.hanning(signal.size)
    pad = 16 * signal.size
    amp = np.log(np.abs(np.fft.rfft(sig, n=pad)) + 1e-300)
    k = int(np.argmax(amp[1:])) + 1
    a, b, c = amp[k - 1 : k + 2]
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) / pad * samples_per_turn


def _check(name: str, measured: float, expected: float, tolerance: float, relative: bool = False) -> dict:
    error = abs(measured / expected - 1.0) if relative else abs(measured - expected)
    return {"name": name, "measured": measured, "expected": expected, "tolerance": tolerance, "relative": relative, "ok": bool(error <= tolerance)}


def _tracked(cfg, beam, turns, steps, every=1):
    kin = ring_kinematics(cfg)
    period = 2 * math.pi / kin.omega_c_rad_per_s
    rec = track_recorded(initial_states(cfg, kin, beam), turns * steps, period / steps, every, ring_parameters(cfg, kin), muon_charge_over_mass(), cfg.muon.a_mu, cfg.muon.edm_eta)
    return kin, rec


def check_tunes() -> list[dict]:
    """Check the tracker's tunes against the smooth-focusing and one-turn-matrix values."""
    from ringsim.optics import one_turn_tunes

    out = []
    cases = [
        ("fnal smooth ESQ", load_config("fnal", overrides=["esq.model='continuous'", *CLEAN]), 400, None),
        ("fnal discrete ESQ", load_config("fnal", overrides=CLEAN), 400, "matrix"),
        ("jparc", load_config("jparc"), 2500, None),
    ]
    for label, cfg, turns, how in cases:
        steps, every = 64, 4
        small = 1e-4 * cfg.ring.radius_m
        _, rec = _tracked(cfg, _muons(x_beta=small, y=small), turns, steps, every)
        x, y = radial_vertical_offsets_m(rec[0, :, :3], cfg.ring.radius_m)
        n = cfg.ring.field_index
        expected = one_turn_tunes(cfg) if how == "matrix" else (math.sqrt(1 - n), math.sqrt(n))
        out.append(_check(f"tune x, {label}", _tune(x, steps // every), expected[0], 1e-3))
        out.append(_check(f"tune y, {label}", _tune(y, steps // every), expected[1], 1e-3))
    return out


def check_spin_advance() -> list[dict]:
    """Check the spin advance per turn in a uniform field against 2πaγ."""
    out = []
    for label, cfg in (("uniform field", load_config("fnal", overrides=["esq.model='none'", *CLEAN])), ("jparc solenoid", load_config("jparc"))):
        kin, rec = _tracked(cfg, _muons(), 2000, 32, 32)
        phase = np.unwrap(spin_phase_rad(rec[0, :, 3:6], rec[0, :, 6:9]))
        out.append(_check(f"spin advance per turn [rad], {label}", phase[-1] / 2000, 2 * math.pi * cfg.muon.a_mu * kin.gamma, 1e-9, relative=True))
    return out


def check_corrections() -> list[dict]:
    """Check C_e and C_p from spin tracking against their formulas."""
    from calibration.beam_corrections import electric_field_correction, omega_a_shift_from_spins, pitch_correction

    cfg = load_config("fnal", overrides=["esq.model='continuous'", *CLEAN])
    kin = ring_kinematics(cfg)
    n, r0 = cfg.ring.field_index, cfg.ring.radius_m
    q_over_m = muon_charge_over_mass()
    omega0 = cfg.muon.a_mu * q_over_m * cfg.ring.field_t
    period = 2 * math.pi / kin.omega_c_rad_per_s
    beams = {"C_e": _muons(delta=[1e-3, -1.5e-3, 2e-3]), "C_p": _muons(y=[0.008, 0.015, 0.02])}
    out = []
    for name, beam in beams.items():
        beam = Beam(beam.delta_p, r0 * beam.delta_p / (1 - n), beam.x_beta_m, beam.xp_beta, beam.y_m, beam.yp, beam.t0_ns)
        d = track_diagnostics(initial_states(cfg, kin, beam), 200 * 64, period / 64, 4, ring_parameters(cfg, kin), q_over_m, cfg.muon.a_mu, 0.0)
        shift, _ = omega_a_shift_from_spins(d[:, 0], omega0)
        if name == "C_e":
            expected, _ = electric_field_correction(d[:, 1], n, r0, kin.beta)
        else:
            expected, _ = pitch_correction(np.sqrt(d[:, 4]), n, r0)
        out.append(_check(f"{name} from spin tracking vs formula", -shift, expected, 2e-2, relative=True))
    return out


def check_edm_tilt() -> dict:
    """Check the EDM tilt of the precession plane against atan(ηβ/2a)."""
    cfg = load_config("jparc", overrides=["muon.edm_eta=2e-4", "ring.field_index=1e-9"])
    kin, rec = _tracked(cfg, _muons(), int(2 / (cfg.muon.a_mu * ring_kinematics(cfg).gamma)), 32)
    tilt = float(np.arcsin(np.max(np.abs(rec[0, :, 7]))))
    return _check("EDM tilt of the precession plane [rad]", tilt, math.atan(cfg.muon.edm_eta * kin.beta / (2 * cfg.muon.a_mu)), 1e-2, relative=True)


def check_michel() -> dict:
    """Check the sampled Michel asymmetry above 1.7 GeV against its integral."""
    from numba import njit

    from ringsim.constants import codata
    from ringsim.decay import decay_positron, lab_fraction_and_asymmetry

    @njit
    def energies(n, u, cos_s, seed):
        np.random.seed(seed)
        e = np.empty(n)
        for i in range(n):
            e[i] = decay_positron(0.0, 0.0, u, 0.0, 0.0, cos_s, 1.0, 105.6583755)[0]
        return e

    kin = ring_kinematics(load_config("fnal"))
    u = kin.gamma * kin.beta
    n = 300_000
    nf = int(np.sum(energies(n, u, 1.0, 1) > 1700.0))
    nb = int(np.sum(energies(n, u, -1.0, 2) > 1700.0))
    _, asym = lab_fraction_and_asymmetry(kin.gamma, 1700.0, 1e5, codata().muon_mass_mev)
    return _check("Michel asymmetry above 1.7 GeV (sampled vs integrated)", (nf - nb) / (nf + nb), asym, 4.0 / math.sqrt(nf + nb))


def cmd_validate(args: argparse.Namespace) -> int:
    """Run every check, print one line each and a summary; status 1 if any fails."""
    from ringsim.cli.commands import _check_outputs
    from ringsim.io import write_json_atomic
    from ringsim.progress import announce

    _check_outputs(args, "json")
    announce("validate: running the physics self-checks (tunes, spin advance, C_e, C_p, EDM tilt, Michel asymmetry; about 20 s)…")
    checks = [*check_tunes(), *check_spin_advance(), *check_corrections(), check_edm_tilt(), check_michel()]
    width = max(len(c["name"]) for c in checks)
    for c in checks:
        print(
            f"{'ok ' if c['ok'] else 'FAIL'} {c['name']:<{width}}  measured {c['measured']:.10g}  expected {c['expected']:.10g}  tolerance {c['tolerance']:.2g}{' (relative)' if c['relative'] else ''}"
        )
    if args.json:
        write_json_atomic(args.json, checks, overwrite=args.force)
    failed = sum(not c["ok"] for c in checks)
    print(f"{len(checks) - failed} passed, {failed} failed")
    return 0 if failed == 0 else 1
