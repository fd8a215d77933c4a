"""``ringsim scan``: a systematic study (ω_a, C_e or C_p shift versus one parameter) on dask.

CONFIG is a ring (``fnal``, ``jparc``: give ``--param``), a library study
(:mod:`workflows.study_library`) or a study TOML file (a ``[study]`` table and optional configuration
sections). Options given on the command line replace the study's. A folder that already holds the
same study is resumed (finished tasks are kept); another study's folder needs ``--force``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

from ringsim.cli.arguments import MAX_COUNT
from ringsim.errors import ConfigError

EXAMPLES = """examples:
  ringsim scan fnal --param beam.momentum_spread=0,5e-4,1e-3 --seeds 4 -o spread/
  ringsim scan fit_start -o start/                      # a library study with its defaults
  ringsim scan momentum_spread --positrons 1e6 --scheduler tcp://10.0.0.5:8786 -o ce/
  ringsim scan study.toml --workers 8 --json summary.json -o out/
"""


def _count(text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if not (math.isfinite(value) and 1 <= value <= MAX_COUNT and value == int(value)):
        raise argparse.ArgumentTypeError(f"expected a positive integer ≤ {MAX_COUNT:.0e}, got {text!r}")
    return int(value)


def add_scan_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``ringsim scan`` arguments to ``parser`` (the subcommand's parser)."""
    parser.epilog = EXAMPLES
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("study", metavar="CONFIG", help="ring (fnal, jparc), library study name, or study TOML file")
    parser.add_argument("--param", metavar="KEY=V1,V2,…", help="configuration key (section.key or section.key[i]) and its values")
    parser.add_argument("--nominal", type=float, help="reference value of the parameter (default: the base configuration's)")
    parser.add_argument("--seeds", type=_count, help="seeds per point, shared by all points (default 4)")
    parser.add_argument("--first-seed", type=int, help="first seed (default 1)")
    parser.add_argument("--positrons", type=_count, help="recorded positrons per task (default 5e5)")
    parser.add_argument("--mode", choices=("fast", "track"))
    parser.add_argument("--observable", choices=("omega_a", "C_e", "C_p"), help="shifted quantity (default omega_a)")
    parser.add_argument("--degree", type=int, choices=(1, 2), help="degree of the sensitivity polynomial (default 1)")
    parser.add_argument("--config", dest="config_path", help="TOML file laid over the ring preset")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override one configuration value (repeatable)")
    parser.add_argument("--scheduler", metavar="ADDR", help="use a running dask scheduler (tcp://host:8786) instead of a local cluster")
    parser.add_argument("--workers", type=_count, help="local cluster worker processes (default: the usable cores)")
    parser.add_argument("--json", help="also write the summary (key points) to this JSON file")
    parser.add_argument("--force", action="store_true", help="replace a folder holding another study, and an existing --json file")
    parser.add_argument("-o", "--output", required=True, help="study folder (resumed if it holds the same study)")


def parse_param(text: str) -> tuple[str, tuple[float, ...]]:
    """``KEY=V1,V2,…`` → (key, values); ConfigError naming --param otherwise."""
    key, sep, raw = text.partition("=")
    try:
        values = tuple(float(v) for v in raw.split(","))
    except ValueError:
        values = ()
    if not sep or not key.strip() or not values or not all(math.isfinite(v) for v in values):
        raise ConfigError(f"param: expected KEY=V1,V2,… with finite numbers, got {text!r}")
    return key.strip(), values


def _changes(args: argparse.Namespace) -> dict:
    """Study fields given on the command line (``overrides`` to be appended to the study's)."""
    options = {
        "nominal": args.nominal,
        "seeds": args.seeds,
        "first_seed": args.first_seed,
        "positrons": args.positrons,
        "mode": args.mode,
        "observable": args.observable,
        "degree": args.degree,
        "config_path": args.config_path,
    }
    changes = {k: v for k, v in options.items() if v is not None}
    if args.param:
        changes["parameter"], changes["values"] = parse_param(args.param)
    if args.overrides:
        changes["overrides"] = tuple(args.overrides)
    return changes


def resolve_study(args: argparse.Namespace):
    """Return the :class:`~workflows.study.Study` named by CONFIG with the command-line changes applied."""
    from ringsim.config import RINGS
    from workflows.study import Study, study_from_toml
    from workflows.study_library import STUDIES

    name = args.study
    changes = _changes(args)
    if name in RINGS:
        if not args.param:
            raise ConfigError(f"param: CONFIG {name!r} is a ring; give --param KEY=V1,V2,…")
        return Study(ring=name, name=f"{name}-{changes['parameter']}", **changes)
    if name in STUDIES:
        study = STUDIES[name]
        if changes.get("parameter", study.parameter) != study.parameter and "nominal" not in changes:
            changes["nominal"] = None  # another key: its nominal is the base configuration's value
        changes["overrides"] = study.overrides + changes.get("overrides", ())
        return dataclasses.replace(study, **changes)
    if not Path(name).is_file():
        if name.endswith(".toml") or "/" in name:
            raise ConfigError(f"CONFIG: study file {name!r} does not exist")
        raise ConfigError(f"CONFIG: {name!r} is neither a ring ({', '.join(RINGS)}), a library study ({', '.join(STUDIES)}) nor a study file")
    return study_from_toml(name, changes)


def cmd_scan(args: argparse.Namespace) -> int:
    """Run the study on dask (resumable) and print its summary table."""
    from ringsim.io import check_distinct_paths, check_output_path, write_json_atomic
    from ringsim.locks import exclusive_output
    from workflows.study import prepare, run_study, summary_table

    prepared = prepare(resolve_study(args))
    if args.json:
        check_output_path(args.json, overwrite=args.force)
    check_distinct_paths({"-o/--output": args.output, "--json": args.json}, {"--config": args.config_path, "STUDY": args.study})
    with exclusive_output(args.output):  # one scan per folder: a second one is refused, not run twice
        summary = run_study(prepared, args.output, scheduler=args.scheduler, n_workers=args.workers, force=args.force)
    print(summary_table(summary), end="")
    tasks = summary["tasks"]
    print(f"{tasks['run']} task(s) run, {tasks['resumed']} resumed; wrote {Path(args.output) / 'summary.json'}, summary.txt, shift.png")
    if args.json:
        write_json_atomic(args.json, summary, overwrite=args.force)
    return 0
