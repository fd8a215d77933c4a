"""``ringsim run``: the command line of :func:`workflows.run.run_experiment`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def cmd_run(args: argparse.Namespace) -> int:
    """Run the chain into ``--output`` and print the report and the headline keys."""
    from ringsim.config import load_config
    from ringsim.io import RUN_BYTES_PER_COUNT, all_or_none, check_distinct_paths, check_free_space, check_output_path, write_json_atomic
    from workflows.run import run_experiment

    cfg = load_config(args.ring, args.config, args.overrides)
    if args.json:
        check_output_path(args.json, overwrite=args.force)
    check_distinct_paths({"-o/--output": args.output, "--json": args.json}, {"--config": args.config})
    check_free_space(Path(args.output).resolve().parent, args.positrons * RUN_BYTES_PER_COUNT, f"{args.positrons} positrons")
    with all_or_none(None if args.force else args.output, args.json):  # the run folder and --json together, or neither
        outcome = run_experiment(cfg, args.output, mode=args.mode, n_positrons=args.positrons, seed=args.seed, codata_edition=args.codata, force=args.force, run_bsm=args.run_bsm)
        if args.json:
            write_json_atomic(args.json, outcome.result, overwrite=args.force)
    print(outcome.report, end="")
    print(json.dumps({k: outcome.result[k] for k in ("a_mu", "a_mu_err", "a_mu_true", "omega_a", "omega_a_err", "pull")}))
    return 0
