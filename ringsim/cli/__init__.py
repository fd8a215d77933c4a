"""The ``ringsim`` command line: argument parsing, dispatch, and the error contract.

Every subcommand imports its modules lazily. A :class:`~ringsim.errors.RingsimError` becomes one
line ``error: …`` on stderr and exit status 2; nothing is written on error (outputs are atomic).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import textwrap
import warnings

from ringsim.cli.arguments import Parser, nonneg_int, positive_count
from ringsim.config import PRESETS
from ringsim.errors import RingsimError

RING_HELP = "preset: fnal (design), fnal-run1 and fnal-run23 (beams calibrated to the published C_e and C_p), jparc (default fnal)"
EXAMPLES = """examples:
  ringsim run --ring fnal -o out/                       # simulate, fit, correct: a_mu vs truth
  ringsim simulate --ring jparc --positrons 1000000 -o jparc.root
  ringsim fit run.root --tree run1/hits --time-branch t --time-unit us --energy-branch E --energy-unit GeV --unblind
  ringsim amu --ratio 0.0037072063 --ratio-err 2.0e-9 --form e821
  ringsim amu --measurement data_samples/fnal_run1_measurement.toml
  ringsim precision --ring jparc --positrons 5.7e11 --energy-window 200,275
  ringsim validate --json checks.json
  ringsim bsm --plot bsm.png                               # world average vs WP20, WP25: Δa_μ and new physics
  ringsim scan fit_start --seeds 8 -o start/                # systematic study on a local dask cluster
  ringsim inspect theirs.root                              # what a foreign file holds, and how to fit it
  ringsim config show --ring fnal-run1                     # every configuration key --set accepts
"""


COMMAND_HELP = {  # command → (one-line summary, description, examples)
    "run": (
        "simulate → ROOT → fit → corrections → a_μ, with plots and a report",
        "Simulate a run, write it to OUTPUT/events.root, fit it as `ringsim fit` does (same seed, same ω_a), apply the beam and field corrections and compare a_μ with the value the simulation was given. An interrupted run keeps its finished blocks; the same command resumes.",
        ("ringsim run --ring fnal -o out --force", "ringsim run --ring fnal-run1 --positrons 2e7 --seed 3 -o run1", "ringsim run --ring jparc -o out-jparc --json result.json"),
    ),
    "simulate": (
        "generate decay positrons (and truth) into a ROOT file",
        "Generate a run in blocks of whole fills into a ROOT file: tree events (clusters with truth branches), lost_muons, fills, optional truth, per-station histograms and the provenance. Resumable: the same command continues an interrupted run.",
        (
            "ringsim simulate --ring jparc --positrons 1e6 --seed 7 -o jparc.root",
            "ringsim simulate --ring fnal --mode track --muons 20000 -o tracked.root",
            "ringsim simulate --positrons 1e6 --set fastmodel.loss_fraction=0.03 -o lossy.root",
        ),
    ),
    "amu": (
        "a_μ from a frequency ratio, or from a measurement's published ingredients (budget table)",
        "a_μ from a frequency ratio (--ratio), or from a measurement file (--measurement: ω_a^m or R'_μ, every correction in ppb) with its full budget table.",
        ("ringsim amu --ratio 0.0037073003 --ratio-err 1.7e-9 --codata 2018", "ringsim amu --measurement data_samples/fnal_run1_measurement.toml --tex run1.tex --json run1.json"),
    ),
    "bsm": (
        "Δa_μ of the experimental world average against each SM prediction, and what it means for new physics",
        "Δa_μ = a_μ(exp) − a_μ(SM) for each SM prediction the package holds (WP20, WP25), the preferred parameters of each new-physics model (or, where Δa_μ is compatible with zero, the excluded ones), and a plot.",
        ("ringsim bsm --plot bsm.png --json bsm.json",),
    ),
    "precision": (
        "Fisher-information statistical precision of ω_a",
        "The best statistical precision δω_a/ω_a a fit of the five-parameter wiggle can reach for a number of positrons, from the Fisher information of the decay spectrum (energy window, asymmetry, fraction of the Michel spectrum).",
        ("ringsim precision --ring fnal --positrons 1.5e11", "ringsim precision --ring jparc --positrons 5.7e11 --polarization 0.5 --energy-window 200,275"),
    ),
    "inspect": (
        "list a ROOT file's trees, RNTuples and histograms and propose the ringsim fit options that read them",
        "List the trees, RNTuples and histograms of ROOT files with their entries and branch types, and propose the `ringsim fit` options for each (time, energy, calorimeter and fill branches, the time unit judged from the hits' decay, the ring). The proposals are guesses to check.",
        ("ringsim inspect gm2offline_ana_15921_00001.root",),
    ),
    "config": (
        "show the configuration a command would use, every key with its value (the keys --set takes)",
        "Print the full configuration of a preset, with a --config file and --set values laid over it, as TOML: every section and key that --config and --set accept.",
        ("ringsim config show --ring fnal-run1", "ringsim config show --ring jparc --set beam.polarization=0.5"),
    ),
    "validate": (
        "physics self-checks (tunes, spin advance, C_e, C_p, EDM tilt, Michel asymmetry)",
        "Check the installed package against analytic results: one-turn tunes, the spin advance per turn, C_e and C_p from spin tracking against their formulas, the EDM tilt and the Michel asymmetry. Prints one line per check; exit status 1 if any fails.",
        ("ringsim validate", "ringsim validate --json checks.json"),
    ),
}


def _command(sub, name: str) -> argparse.ArgumentParser:
    """Add subcommand ``name`` with its one-line summary, description and examples (:data:`COMMAND_HELP`)."""
    summary, description, examples = COMMAND_HELP[name]
    epilog = "examples:\n" + "\n".join(f"  {line}" for line in examples)
    return sub.add_parser(name, help=summary, description=textwrap.fill(description, 100), epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)


def _configuration_options(command: argparse.ArgumentParser) -> None:
    """Add --ring, --config, --set, --mode, --seed and --codata of the simulating commands."""
    command.add_argument("--ring", choices=tuple(PRESETS), default="fnal", help=RING_HELP)
    command.add_argument("--config", metavar="FILE.toml", help="TOML file laid over the preset, same sections and keys (see: ringsim config show)")
    command.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one configuration value, e.g. beam.momentum_spread=0.0012 (repeatable; keys: ringsim config show)",
    )
    command.add_argument("--mode", choices=("fast", "track"), default="fast", help="fast: the parametric ring model per muon; track: the numba spin–orbit tracker (default fast)")
    command.add_argument("--seed", type=nonneg_int, default=1, help="seed of every random stream (default 1)")
    command.add_argument("--codata", type=int, choices=(2018, 2022), default=2018, help="CODATA edition of the constants (default 2018)")


def _output_options(command: argparse.ArgumentParser, json_help: str) -> None:
    """Add --json FILE and --force (replace existing outputs) to a command."""
    command.add_argument("--json", metavar="FILE", help=json_help)
    command.add_argument("--force", action="store_true", help="replace existing output files (default: refuse)")


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of every subcommand."""
    from ringsim.cli.bsm import add_bsm_arguments
    from ringsim.cli.fit import add_fit_arguments
    from ringsim.cli.scan import add_scan_arguments

    parser = Parser(prog="ringsim", description="Muon g-2 storage-ring simulation and ω_a analysis.", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = _command(sub, "run")
    _configuration_options(run)
    run.add_argument("--positrons", type=positive_count, default=2_000_000, help="recorded positrons to simulate (default 2e6, at most 1e12 and what the disk holds)")
    run.add_argument("--run-bsm", action="store_true", help="also read the simulated run's own Δa_μ against the SM as new physics (bsm_run.png; a demonstration only)")
    _output_options(run, "also write the result keys (a_mu, a_mu_err, a_mu_true, omega_a, omega_a_err, pull, …) to this file")
    run.add_argument("-o", "--output", required=True, help="output folder")

    sim = _command(sub, "simulate")
    _configuration_options(sim)
    count = sim.add_mutually_exclusive_group(required=True)
    count.add_argument("--muons", type=positive_count, help="muons to inject (at most 1e12 and what the disk holds)")
    count.add_argument("--positrons", type=positive_count, help="recorded positrons to produce (at most 1e12 and what the disk holds)")
    sim.add_argument("--truth", action="store_true", help="also write tree 'truth': one row per muon (decay or loss, positron, station reached)")
    sim.add_argument("--compression", choices=("zstd", "zlib", "lz4"), default="zstd", help="ROOT file compression (zlib for ROOT older than 6.20; default zstd)")
    _output_options(sim, "also write the file's provenance (counts, configuration, seed) to this JSON file")
    sim.add_argument("-o", "--output", required=True, help="output ROOT file")

    fit = sub.add_parser("fit", help="fit ω_a from any ROOT file: methods T/A/Q/R, models 5–28 and combinations, pileup, gain, scans, plots")
    add_fit_arguments(fit)

    amu = _command(sub, "amu")
    source = amu.add_mutually_exclusive_group(required=True)
    source.add_argument("--ratio", type=float, help="R'_μ = ω_a/ω̃'_p(T_r) (fnal) or R = ω_a/ω_p (e821), dimensionless")
    source.add_argument("--measurement", metavar="FILE.toml", help="measurement file: ω_a^m and ω̃'_p or R'_μ, corrections (ppb), CODATA edition, T_r (see data_samples/fnal_run1_measurement.toml)")
    amu.add_argument("--ratio-err", type=float, help="standard uncertainty of --ratio (default 0)")
    amu.add_argument("--form", choices=("fnal", "e821"), help="a_μ formula for --ratio: fnal (R'_μ, CODATA constants) or e821 (R/(λ − R)) (default fnal)")
    amu.add_argument("--lambda", dest="lam", type=float, help="μ_μ/μ_p for the e821 form (default 3.18334539)")
    amu.add_argument("--codata", type=int, choices=(2018, 2022), help="CODATA edition of the constants (default 2018 with --ratio, the file's 'codata' with --measurement)")
    amu.add_argument("--txt", metavar="FILE", help="with --measurement: write the budget table as text (default: not written)")
    amu.add_argument("--tex", metavar="FILE", help="with --measurement: write the budget table as a LaTeX tabular (default: not written)")
    _output_options(amu, "also write the result as JSON (keys a_mu, a_mu_err, form, codata, ratio, ratio_err; with --measurement also budget and the totals in ppb)")

    bsm = _command(sub, "bsm")
    add_bsm_arguments(bsm)

    prec = _command(sub, "precision")
    prec.add_argument("--ring", choices=tuple(PRESETS), default="fnal", help=RING_HELP)
    prec.add_argument("--positrons", type=positive_count, required=True, help="positrons in the energy window over all times (at most 1e12)")
    prec.add_argument("--polarization", type=float, help="muon polarisation (default: the preset's)")
    prec.add_argument("--energy-window", metavar="LO,HI", help="energy window in MeV (default: the preset's analysis window)")
    prec.add_argument("--start", type=float, default=0.0, help="fit start in μs (default 0)")
    prec.add_argument("--end", type=float, default=float("inf"), help="fit end in μs (default unbounded)")
    _output_options(prec, "also write delta_omega_over_omega, asymmetry, fraction to this file")

    scan = sub.add_parser("scan", help="systematic study: ω_a (or C_e, C_p) shift versus one parameter, on dask")
    add_scan_arguments(scan)

    ins = _command(sub, "inspect")
    ins.add_argument("files", nargs="+", metavar="FILE.root")
    _output_options(ins, "also write the survey to this JSON file")

    cfg = _command(sub, "config")
    cfg.add_argument("action", choices=("show",), help="show: print the configuration")
    cfg.add_argument("--ring", choices=tuple(PRESETS), default="fnal", help=RING_HELP)
    cfg.add_argument("--config", metavar="FILE.toml", help="TOML file laid over the preset")
    cfg.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override one configuration value (repeatable)")

    val = _command(sub, "validate")
    _output_options(val, "write the checks to this JSON file")
    return parser


def _version() -> str:
    from ringsim import __version__

    return f"ringsim {__version__}"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ringsim`` console script; returns the exit status.

    Bad input (a RingsimError, an argument error, an unwritable path) ends in one line ``error: …``
    on stderr and status 2, with the warnings of the failed command left out; a closed stdout
    (``ringsim fit … | head``) ends with one line and status 141; SIGINT and SIGTERM end in one line and
    status 130 and 143 (:mod:`ringsim.interrupts`).
    """
    from ringsim.interrupts import install_handlers, restore_handlers

    previous = install_handlers()
    try:
        with warnings.catch_warnings(record=True) as caught:
            status = _dispatch(build_parser().parse_args(argv))
            sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
    except RingsimError as exc:
        message = " ".join(str(exc).split())
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        signum = int(getattr(exc, "signum", signal.SIGINT))
        name = "terminated (SIGTERM)" if signum == signal.SIGTERM else "interrupted"
        print(f"error: {name}; finished outputs are kept, nothing partial was written; the same command resumes a simulation", file=sys.stderr)
        return 128 + signum
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        print("error: standard output was closed (broken pipe); the files the command wrote are complete", file=sys.stderr)
        return 141
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    finally:
        restore_handlers(previous)
    for w in caught:
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return status


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "run":
        from ringsim.cli.run import cmd_run as handler
    elif args.command == "fit":
        from ringsim.cli.fit import cmd_fit as handler
    elif args.command == "scan":
        from ringsim.cli.scan import cmd_scan as handler
    elif args.command == "validate":
        from ringsim.cli.validate import cmd_validate as handler
    elif args.command == "bsm":
        from ringsim.cli.bsm import cmd_bsm as handler
    else:
        from ringsim.cli import commands

        handler = getattr(commands, f"cmd_{args.command}")
    return handler(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
