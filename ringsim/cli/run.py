"""``ringsim run``: simulate a run, write it to ROOT, read it back, fit ω_a, correct, and compare a_μ with truth."""

from __future__ import annotations

import argparse
import json
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


def _trees(path: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], int]:
    """All branches of the events and lost-muon trees, and the number of simulated muons."""
    from ringsim.io import open_root

    with open_root(path) as f:
        events = f["events"].arrays(library="np")
        lost = f["lost_muons"].arrays(library="np")
        n_muons = int(np.sum(f["fills"]["n_muons"].array(library="np")))
    return events, lost, n_muons


def _report(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows) + "\n"


def cmd_run(args: argparse.Namespace) -> int:
    from analysis.ingest import read_events
    from analysis.plots import wiggle_plot
    from analysis.wiggle import histogram_and_fit, ring_settings, select_energy
    from calibration.budget import simulated_run_budget
    from calibration.plots import bsm_plot, comparison_plot
    from calibration.theory import SM_PREDICTIONS, AmuValue, delta_amu, significance
    from ringsim.config import load_config
    from ringsim.io import RUN_BYTES_PER_COUNT, check_distinct_paths, check_free_space, check_output_path, write_json_atomic
    from ringsim.simulate import simulate_to_file

    cfg = load_config(args.ring, args.config, args.overrides)
    target = Path(args.output)
    if args.json:
        check_output_path(args.json, overwrite=args.force)
    check_distinct_paths({"-o/--output": args.output, "--json": args.json}, {"--config": args.config})
    check_free_space(target.parent, args.positrons * RUN_BYTES_PER_COUNT, f"{args.positrons} positrons")
    tmp = _prepare_folder(target, args.force)
    try:
        events_path = tmp / "events.root"
        simulate_to_file(events_path, cfg, args.mode, n_positrons=args.positrons, seed=args.seed, codata_edition=args.codata)
        events = read_events(events_path, tree="events", energy_branch="energy_mev")
        settings = ring_settings(cfg)
        fit, counts, edges = histogram_and_fit(select_energy(events.time_ns, events.energy_mev, settings), settings, seed=args.seed)
        wiggle_plot(counts, edges, fit, fit.expected_counts, tmp / "wiggle.png")
        write_json_atomic(tmp / "fit.json", fit.to_dict())

        truth, lost, n_muons = _trees(events_path)
        run = simulated_run_budget(cfg, fit, truth, lost=lost if lost["time_ns"].size else None, n_muons=n_muons, codata_edition=args.codata, seed=args.seed)
        run.write(tmp)
        a_true = cfg.muon.a_mu
        measured = AmuValue("this simulated run", run.amu.a_mu, run.amu.a_mu_err, f"ringsim run --ring {cfg.ring.name} --seed {args.seed}")
        sm = SM_PREDICTIONS["TI2025"]
        delta, delta_err = delta_amu(measured, sm)
        comparison_plot(tmp / "comparison.png", measured)
        bsm_plot(tmp / "bsm.png", delta, delta_err)
        result = {
            "a_mu": run.amu.a_mu,
            "a_mu_err": run.amu.a_mu_err,
            "a_mu_true": a_true,
            "omega_a": fit.omega_a,
            "omega_a_err": fit.omega_a_err,
            "omega_a_unit": "rad/us",
            "pull": (run.amu.a_mu - a_true) / run.amu.a_mu_err,
            "ring": cfg.ring.name,
            "mode": args.mode,
            "seed": args.seed,
            "n_positrons": int(np.count_nonzero(truth["truth_mip"] == 0)),
            "n_fitted": fit.n_entries,
            "ratio": run.ratio,
            "ratio_err": run.ratio_err,
            "a_mu_e821": run.amu_e821.a_mu,
            "delta_a_mu_vs_sm2025": delta,
            "delta_a_mu_err": delta_err,
            "significance_vs_sm2025": significance(measured, sm),
            "codata": run.amu.codata,
            "chi2": fit.chi2,
            "ndf": fit.ndf,
            "closure": run.closure,
        }
        write_json_atomic(tmp / "result.json", result)
        report = _report(
            [
                ("ring / mode / seed", f"{cfg.ring.name} / {args.mode} / {args.seed}"),
                ("positrons (recorded / fitted)", f"{events.n_entries} / {fit.n_entries:.0f}"),
                ("fit window, energies", f"{fit.start_us:.1f}–{fit.end_us:.1f} μs, {settings.energy_min_mev:g}–{settings.energy_max_mev:g} MeV"),
                ("chi2/ndf (Poisson deviance)", f"{fit.chi2:.1f}/{fit.ndf}"),
                ("omega_a [rad/μs]", f"{fit.omega_a:.8f} ± {fit.omega_a_err:.8f} ({fit.omega_a_err / fit.omega_a * 1e9:.0f} ppb)"),
                ("R'_mu", f"{run.ratio:.10f} ± {run.ratio_err:.10f}"),
                ("a_mu (measured)", f"{run.amu.a_mu:.10e} ± {run.amu.a_mu_err:.2e} ({run.amu.codata})"),
                ("a_mu (truth)", f"{a_true:.10e}"),
                ("pull", f"{result['pull']:+.2f}"),
                ("Δa_mu vs SM (TI 2025)", f"{delta:.3e} ± {delta_err:.3e} ({result['significance_vs_sm2025']:+.1f} σ)"),
            ]
        )
        report += "\n" + run.budget.to_text()
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
