"""``ringsim run``: simulate a run, write it to ROOT, read it back, fit ω_a, correct, and compare a_μ with truth."""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
from pathlib import Path

import numpy as np

from ringsim.errors import InputError


def _prepare_folder(target: Path, force: bool) -> Path:
    """A fresh temporary folder beside ``target`` (checked to be replaceable before any work)."""
    if not target.parent.is_dir():
        raise InputError(f"{target}: parent folder {target.parent} does not exist")
    if target.exists() and not target.is_dir():
        raise InputError(f"{target}: exists and is not a folder")
    if target.exists() and any(target.iterdir()) and not force:
        raise InputError(f"{target}: folder exists and is not empty; pass --force to replace it")
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    return tmp


def _commit_folder(tmp: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)


def _truth_branches(path: Path, names: list[str]) -> dict[str, np.ndarray]:
    from ringsim.io import open_root

    with open_root(path) as f:
        return f["events"].arrays(names, library="np")


def _report(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows) + "\n"


def cmd_run(args: argparse.Namespace) -> int:
    from analysis.ingest import read_events
    from analysis.plots import wiggle_plot
    from analysis.wiggle import histogram_and_fit, ring_settings, select_energy
    from calibration.amu import amu_fnal
    from calibration.beam_corrections import electric_field_correction, pitch_correction
    from calibration.field import muon_weighted_field_t, omega_p_tilde_rad_per_s
    from ringsim.config import load_config
    from ringsim.constants import codata
    from ringsim.io import check_output_path, write_json_atomic
    from ringsim.rings import ring_kinematics
    from ringsim.simulate import simulate_to_file

    cfg = load_config(args.ring, args.config, args.overrides)
    kin = ring_kinematics(cfg, args.codata)
    target = Path(args.output)
    if args.json:
        check_output_path(args.json, overwrite=args.force)
    tmp = _prepare_folder(target, args.force)
    try:
        events_path = tmp / "events.root"
        simulate_to_file(events_path, cfg, args.mode, n_positrons=args.positrons, seed=args.seed, codata_edition=args.codata)
        events = read_events(events_path, tree="events", energy_branch="energy_mev")
        settings = ring_settings(cfg)
        fit, counts, edges = histogram_and_fit(select_energy(events.time_ns, events.energy_mev, settings), settings, seed=args.seed)
        wiggle_plot(counts, edges, fit, fit.expected_counts, tmp / "wiggle.png")
        write_json_atomic(tmp / "fit.json", fit.to_dict())

        # the muons behind the fitted positrons carry the beam-dynamics corrections
        truth = _truth_branches(events_path, ["truth_x_e_m", "truth_y_m"])
        t_us = events.time_ns * 1e-3
        used = (events.energy_mev >= settings.energy_min_mev) & (events.energy_mev < settings.energy_max_mev) & (t_us >= fit.start_us) & (t_us < fit.end_us)
        ring = cfg.ring
        if ring.focusing == "electric":
            c_e, c_e_err = electric_field_correction(truth["truth_x_e_m"][used], ring.field_index, ring.radius_m, kin.beta)
        else:
            c_e, c_e_err = 0.0, 0.0
        c_p, c_p_err = pitch_correction(truth["truth_y_m"][used], ring.field_index, ring.radius_m)
        field_t = muon_weighted_field_t(ring.field_t, ring.field_index, ring.radius_m, truth["truth_x_e_m"][used], ring.focusing)
        omega_p_rad_per_us = omega_p_tilde_rad_per_s(field_t, args.codata, cfg.tracking.temperature_c) * 1e-6
        ratio = fit.omega_a * (1.0 + c_e + c_p) / omega_p_rad_per_us
        ratio_err = ratio * math.sqrt((fit.omega_a_err / fit.omega_a) ** 2 + c_e_err**2 + c_p_err**2)
        amu = amu_fnal(ratio, ratio_err, codata_edition=args.codata, temperature_c=cfg.tracking.temperature_c)
        a_true = cfg.muon.a_mu
        result = {
            "a_mu": amu.a_mu,
            "a_mu_err": amu.a_mu_err,
            "a_mu_true": a_true,
            "omega_a": fit.omega_a,
            "omega_a_err": fit.omega_a_err,
            "omega_a_unit": "rad/us",
            "pull": (amu.a_mu - a_true) / amu.a_mu_err,
            "ring": ring.name,
            "mode": args.mode,
            "seed": args.seed,
            "n_positrons": events.n_entries,
            "n_fitted": fit.n_entries,
            "C_e": c_e,
            "C_e_err": c_e_err,
            "C_p": c_p,
            "C_p_err": c_p_err,
            "omega_p_tilde_rad_per_us": omega_p_rad_per_us,
            "ratio": ratio,
            "ratio_err": ratio_err,
            "codata": codata(args.codata).name,
            "chi2": fit.chi2,
            "ndf": fit.ndf,
        }
        write_json_atomic(tmp / "result.json", result)
        ppb = 1e9
        report = _report(
            [
                ("ring / mode / seed", f"{ring.name} / {args.mode} / {args.seed}"),
                ("positrons (recorded / fitted)", f"{events.n_entries} / {fit.n_entries:.0f}"),
                ("fit window, threshold", f"{fit.start_us:.1f}–{fit.end_us:.1f} μs, {settings.energy_min_mev:g}–{settings.energy_max_mev:g} MeV"),
                ("chi2/ndf (Poisson deviance)", f"{fit.chi2:.1f}/{fit.ndf}"),
                ("omega_a [rad/μs]", f"{fit.omega_a:.8f} ± {fit.omega_a_err:.8f} ({fit.omega_a_err / fit.omega_a * ppb:.0f} ppb)"),
                ("C_e [ppb]", f"{c_e * ppb:.1f} ± {c_e_err * ppb:.1f}"),
                ("C_p [ppb]", f"{c_p * ppb:.1f} ± {c_p_err * ppb:.1f}"),
                ("omega_p~'(T_r) [rad/μs]", f"{omega_p_rad_per_us:.6f} (B = {field_t:.7f} T, {codata(args.codata).name})"),
                ("R'_mu", f"{ratio:.10f} ± {ratio_err:.10f}"),
                ("a_mu (measured)", f"{amu.a_mu:.10e} ± {amu.a_mu_err:.2e}"),
                ("a_mu (truth)", f"{a_true:.10e}"),
                ("pull", f"{result['pull']:+.2f}"),
            ]
        )
        (tmp / "report.txt").write_text(report, encoding="utf-8")
        _commit_folder(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if args.json:
        write_json_atomic(args.json, result, overwrite=args.force)
    print(report, end="")
    print(json.dumps({k: result[k] for k in ("a_mu", "a_mu_err", "a_mu_true", "omega_a", "omega_a_err", "pull")}))
    return 0
