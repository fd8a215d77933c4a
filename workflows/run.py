"""The run chain: simulate a run, write it to ROOT, fit the file, correct, and compare a_μ with truth.

The file is fitted by :func:`workflows.fit_file.fit_file` with the run's seed, so
``ringsim fit OUT/events.root --seed SEED`` gives the same ω_a to the last digit. Everything is
written into a temporary folder beside the output folder and moved into place at the end.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ringsim.config import SimConfig
from ringsim.errors import InputError
from ringsim.locks import exclusive_output

__all__ = ["RunOutcome", "run_experiment"]


def _prepare_folder(target: Path, force: bool) -> Path:
    """Return the working folder ``.NAME.partial`` beside ``target`` (checked to be replaceable before any work).

    An interrupted run leaves its finished simulation blocks there (``.events.root.parts``): the
    same command resumes from them; anything else in it is made again.
    """
    if not target.parent.is_dir():
        raise InputError(f"{target}: parent folder {target.parent} does not exist")
    if target.exists() and not target.is_dir():
        raise InputError(f"{target}: exists and is not a folder")
    if target.exists() and any(target.iterdir()) and not force:
        raise InputError(f"{target}: folder exists and is not empty; pass --force to replace it")
    work = _work_folder(target)
    work.mkdir(exist_ok=True)
    for item in work.iterdir():
        if item.name != _PARTS:
            shutil.rmtree(item) if item.is_dir() else item.unlink()
    return work


def _work_folder(target: Path) -> Path:
    return target.with_name(f".{target.name}.partial")


_PARTS = ".events.root.parts"  # the resume folder of events.root (ringsim.run_parts.parts_folder)


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


@dataclass(frozen=True)
class RunOutcome:
    """What a run produced: the result keys (``result.json``) and the text report (``report.txt``)."""

    result: dict
    report: str


def run_experiment(
    cfg: SimConfig, output: str | os.PathLike, *, mode: str = "fast", n_positrons: int = 2_000_000, seed: int = 1, codata_edition: int = 2018, force: bool = False, run_bsm: bool = False
) -> RunOutcome:
    """Simulate, fit and correct one run into the folder ``output`` (replaced only with ``force``).

    An interrupted run keeps its finished simulation blocks in ``.OUTPUT.partial/``; the same call
    resumes from them and gives the same result as an uninterrupted run.

    Writes ``events.root``, ``fit.json``, ``wiggle.png``, the budget (``budget.txt/.json/.tex``),
    ``comparison.png`` (the run among the experiments), ``bsm.png`` (what the experimental world
    average means for new physics, against each SM prediction), ``result.json`` and ``report.txt``.
    With ``run_bsm`` also the new-physics reading of the simulated run's own Δa_μ against the SM
    (``bsm_run.png`` and the ``delta_a_mu_*`` keys), which for a simulation is only a demonstration.
    """
    from analysis.plots import wiggle_plot
    from calibration.plots import bsm_plot, comparison_plot, world_average_bsm_figure
    from calibration.theory import SM_PREDICTIONS, AmuValue, delta_amu, significance
    from ringsim.io import write_json_atomic
    from ringsim.progress import announce
    from ringsim.run_file import simulate_to_file
    from workflows.closure import simulated_run_budget
    from workflows.fit_file import FitOptions, fit_file

    target = Path(output)
    with exclusive_output(target):  # one run per output folder: a second one is refused, not raced
        tmp = _prepare_folder(target, force)
        try:
            events_path = tmp / "events.root"
            simulate_to_file(events_path, cfg, mode, n_positrons=n_positrons, seed=seed, codata_edition=codata_edition)
            announce(f"run: fitting ω_a of {events_path.name} (T method, model 5)…")
            fitted = fit_file(FitOptions(files=(str(events_path),), seed=seed))
            fit = fitted.fit
            wiggle_plot(fitted.values, fitted.edges_us, fit, fit.expected_counts, tmp / "wiggle.png")
            write_json_atomic(tmp / "fit.json", fitted.to_dict())

            announce("run: corrections, field data and the closure against the truth…")
            truth, lost, n_muons = _trees(events_path)
            run = simulated_run_budget(cfg, fit, truth, lost=lost if lost["time_ns"].size else None, n_muons=n_muons, codata_edition=codata_edition, seed=seed)
            run.write(tmp)
            settings = fitted.settings
            n_recorded = int(truth["time_ns"].size)
            a_true = cfg.muon.a_mu
            measured = AmuValue("this simulated run", run.amu.a_mu, run.amu.a_mu_err, f"ringsim run --ring {cfg.ring.name} --seed {seed}")
            comparison_plot(tmp / "comparison.png", measured)
            world_average_bsm_figure(tmp / "bsm.png")
            result = {
                "a_mu": run.amu.a_mu,
                "a_mu_err": run.amu.a_mu_err,
                "a_mu_true": a_true,
                "omega_a": fit.omega_a,
                "omega_a_err": fit.omega_a_err,
                "omega_a_unit": "rad/us",
                "pull": (run.amu.a_mu - a_true) / run.amu.a_mu_err,
                "ring": cfg.ring.name,
                "mode": mode,
                "seed": seed,
                "n_positrons": int(np.count_nonzero(truth["truth_mip"] == 0)),
                "n_fitted": fit.n_entries,
                "ratio": run.ratio,
                "ratio_err": run.ratio_err,
                "a_mu_e821": run.amu_e821.a_mu,
                "codata": run.amu.codata,
                "chi2": fit.chi2,
                "ndf": fit.ndf,
                "closure": run.closure,
            }
            rows = []
            if run_bsm:
                sm = SM_PREDICTIONS["TI2025"]
                delta, delta_err = delta_amu(measured, sm)
                bsm_plot(tmp / "bsm_run.png", delta, delta_err, label="this simulated run − SM (TI 2025)")
                result |= {"delta_a_mu_vs_sm2025": delta, "delta_a_mu_err": delta_err, "significance_vs_sm2025": significance(measured, sm)}
                rows = [("Δa_mu vs SM (TI 2025)", f"{delta:.3e} ± {delta_err:.3e} ({result['significance_vs_sm2025']:+.1f} σ)")]
            write_json_atomic(tmp / "result.json", result)
            pileup = fitted.extra.get("pileup", {})
            left_out = [f"{line.name} ({line.note})" if line.note else line.name for line in run.budget.lines if line.role != "uncertainty" and line.value_ppb == 0.0 and line.error_ppb == 0.0]
            report = _report(
                [
                    ("ring / mode / seed", f"{cfg.ring.name} / {mode} / {seed}"),
                    (
                        "positrons (recorded / fitted)",
                        f"{result['n_positrons']} / {fit.n_entries:.0f}" + (f" (and {n_recorded - result['n_positrons']} lost-muon clusters)" if n_recorded > result["n_positrons"] else ""),
                    ),
                    ("fit window, energies", f"{fit.start_us:.1f}–{fit.end_us:.1f} μs, {settings.energy_min_mev:g}–{settings.energy_max_mev:g} MeV"),
                    (f"chi2/ndf ({fit.chi2_definition.replace('_', ' ')})", f"{fit.chi2:.1f}/{fit.ndf} (p = {fitted.extra['fit_p_value']:.2g})"),
                    ("pileup", f"shadow-window subtraction per calorimeter and fill, {pileup['shadow_pairs']} pairs" if pileup.get("corrected") else "not corrected"),
                    ("omega_a [rad/μs]", f"{fit.omega_a:.8f} ± {fit.omega_a_err:.8f} ({fit.omega_a_err / fit.omega_a * 1e9:.0f} ppb)"),
                    ("R'_mu", f"{run.ratio:.10f} ± {run.ratio_err:.10f}"),
                    ("a_mu (measured)", f"{run.amu.a_mu:.10e} ± {run.amu.a_mu_err:.2e} ({run.amu.codata})"),
                    ("a_mu (truth)", f"{a_true:.10e}"),
                    ("pull", f"{result['pull']:+.2f}"),
                    *rows,
                    ("not simulated, not corrected", ", ".join(left_out) or "none"),
                    ("written to", str(target)),
                ]
            )
            report += "\n" + run.budget.to_text()
            (tmp / "report.txt").write_text(report, encoding="utf-8")
            _commit_folder(tmp, target)
        except KeyboardInterrupt:
            if not (tmp / _PARTS).is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return RunOutcome(result, report)
