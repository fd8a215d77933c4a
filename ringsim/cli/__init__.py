"""The ``ringsim`` command line: argument parsing, dispatch, and the error contract.

Every subcommand imports its modules lazily. A :class:`~ringsim.errors.RingsimError` becomes one
line ``error: …`` on stderr and exit status 2; nothing is written on error (outputs are atomic).
"""

from __future__ import annotations

import argparse
import signal
import sys

from ringsim.errors import RingsimError

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
"""


def _positive_count(text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if not (value > 0 and value == int(value)):
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(value)


def _nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from ringsim.cli.bsm import add_bsm_arguments
    from ringsim.cli.fit import add_fit_arguments
    from ringsim.cli.scan import add_scan_arguments

    parser = argparse.ArgumentParser(prog="ringsim", description="Muon g-2 storage-ring simulation and ω_a analysis.", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="simulate → ROOT → fit → corrections → a_μ, with plots and a report")
    run.add_argument("--ring", choices=("fnal", "jparc"), default="fnal")
    run.add_argument("--config", help="TOML file laid over the ring preset")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override one configuration value (repeatable)")
    run.add_argument("--mode", choices=("fast", "track"), default="fast")
    run.add_argument("--positrons", type=_positive_count, default=2_000_000, help="recorded positrons to simulate (default 2e6)")
    run.add_argument("--seed", type=_nonneg_int, default=1)
    run.add_argument("--codata", type=int, choices=(2018, 2022), default=2018)
    run.add_argument("--json", help="also write the result keys to this JSON file")
    run.add_argument("--run-bsm", action="store_true", help="also read the simulated run's own Δa_μ against the SM as new physics (bsm_run.png; a demonstration only)")
    run.add_argument("--force", action="store_true", help="replace an existing output folder")
    run.add_argument("-o", "--output", required=True, help="output folder")

    sim = sub.add_parser("simulate", help="generate decay positrons (and truth) into a ROOT file")
    sim.add_argument("--ring", choices=("fnal", "jparc"), default="fnal")
    sim.add_argument("--config", help="TOML file laid over the ring preset")
    sim.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    sim.add_argument("--mode", choices=("fast", "track"), default="fast")
    count = sim.add_mutually_exclusive_group(required=True)
    count.add_argument("--muons", type=_positive_count, help="muons to inject")
    count.add_argument("--positrons", type=_positive_count, help="recorded positrons to produce")
    sim.add_argument("--seed", type=_nonneg_int, default=1)
    sim.add_argument("--codata", type=int, choices=(2018, 2022), default=2018)
    sim.add_argument("--truth", action="store_true", help="also write tree 'truth': one row per muon (decay or loss, positron, station reached)")
    sim.add_argument("--compression", choices=("zstd", "zlib", "lz4"), default="zstd", help="ROOT file compression (zlib for ROOT older than 6.20; default zstd)")
    sim.add_argument("--force", action="store_true", help="replace an existing output file")
    sim.add_argument("-o", "--output", required=True, help="output ROOT file")

    fit = sub.add_parser("fit", help="fit ω_a from any ROOT file: methods T/A/Q/R, models 5–28 and combinations, pileup, gain, scans, plots")
    add_fit_arguments(fit)

    amu = sub.add_parser(
        "amu",
        help="a_μ from a frequency ratio, or from a measurement's published ingredients (budget table)",
        description="a_μ from a frequency ratio (--ratio), or from a measurement file (--measurement: ω_a^m or R'_μ, every correction in ppb) with its full budget table.",
        epilog="examples:\n  ringsim amu --ratio 0.0037073003 --ratio-err 1.7e-9 --codata 2018\n  ringsim amu --measurement data_samples/fnal_run1_measurement.toml --tex run1.tex --json run1.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = amu.add_mutually_exclusive_group(required=True)
    source.add_argument("--ratio", type=float, help="R'_μ = ω_a/ω̃'_p(T_r) (fnal) or R = ω_a/ω_p (e821), dimensionless")
    source.add_argument("--measurement", metavar="FILE.toml", help="measurement file: ω_a^m and ω̃'_p or R'_μ, corrections (ppb), CODATA edition, T_r (see data_samples/fnal_run1_measurement.toml)")
    amu.add_argument("--ratio-err", type=float, help="standard uncertainty of --ratio (default 0)")
    amu.add_argument("--form", choices=("fnal", "e821"), help="a_μ formula for --ratio: fnal (R'_μ, CODATA constants) or e821 (R/(λ − R)) (default fnal)")
    amu.add_argument("--lambda", dest="lam", type=float, help="μ_μ/μ_p for the e821 form (default 3.18334539)")
    amu.add_argument("--codata", type=int, choices=(2018, 2022), help="CODATA edition of the constants (default 2018 with --ratio, the file's 'codata' with --measurement)")
    amu.add_argument("--json", metavar="FILE", help="also write the result as JSON (keys a_mu, a_mu_err, form, codata, ratio, ratio_err; with --measurement also budget and the totals in ppb)")
    amu.add_argument("--txt", metavar="FILE", help="with --measurement: write the budget table as text (default: not written)")
    amu.add_argument("--tex", metavar="FILE", help="with --measurement: write the budget table as a LaTeX tabular (default: not written)")
    amu.add_argument("--force", action="store_true", help="replace existing output files (default: refuse)")

    bsm = sub.add_parser(
        "bsm",
        help="Δa_μ of the experimental world average against each SM prediction, and what it means for new physics",
        description="Δa_μ = a_μ(exp) − a_μ(SM) for each SM prediction the package holds (WP20, WP25), the preferred parameters of each new-physics model (or, where Δa_μ is compatible with zero, the excluded ones), and a plot.",
        epilog="example:\n  ringsim bsm --plot bsm.png --json bsm.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_bsm_arguments(bsm)

    prec = sub.add_parser("precision", help="Fisher-information statistical precision of ω_a")
    prec.add_argument("--ring", choices=("fnal", "jparc"), default="fnal")
    prec.add_argument("--positrons", type=float, required=True, help="positrons in the energy window over all times")
    prec.add_argument("--polarization", type=float, help="default: the ring preset's")
    prec.add_argument("--energy-window", help="LO,HI in MeV (default: the ring's analysis window)")
    prec.add_argument("--start", type=float, default=0.0, help="fit start in μs (default 0)")
    prec.add_argument("--end", type=float, default=float("inf"), help="fit end in μs (default unbounded)")
    prec.add_argument("--json")
    prec.add_argument("--force", action="store_true")
    scan = sub.add_parser("scan", help="systematic study: ω_a (or C_e, C_p) shift versus one parameter, on dask")
    add_scan_arguments(scan)

    ins = sub.add_parser("inspect", help="list a ROOT file's trees, RNTuples and histograms and propose the ringsim fit options that read them", description="List the trees, RNTuples and histograms of ROOT files with their entries and branch types, and propose the `ringsim fit` options for each (time, energy, calorimeter and fill branches, the time unit judged from the hits' decay, the ring). The proposals are guesses to check.", epilog="example:\n  ringsim inspect run15921_subrun001.root", formatter_class=argparse.RawDescriptionHelpFormatter)
    ins.add_argument("files", nargs="+", metavar="FILE.root")
    ins.add_argument("--json", help="also write the survey to this JSON file")
    ins.add_argument("--force", action="store_true", help="replace an existing --json file")

    val = sub.add_parser("validate", help="physics self-checks (tunes, spin advance, C_e, C_p, EDM tilt, Michel asymmetry)")
    val.add_argument("--json", help="write the checks to this JSON file")
    val.add_argument("--force", action="store_true")
    return parser


def _version() -> str:
    from ringsim import __version__

    return f"ringsim {__version__}"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ringsim`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    from ringsim.interrupts import install_handlers, restore_handlers

    previous = install_handlers()
    try:
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
    except RingsimError as exc:
        message = " ".join(str(exc).split())
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        name = "terminated (SIGTERM)" if getattr(exc, "signum", signal.SIGINT) == signal.SIGTERM else "interrupted"
        print(f"error: {name}; finished outputs are kept, nothing partial was written; the same command resumes a simulation", file=sys.stderr)
        return 128 + int(getattr(exc, "signum", signal.SIGINT))
    finally:
        restore_handlers(previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
