"""Handler of ``ringsim bsm``: the experimental a_μ against each Standard Model prediction, and what each Δa_μ means for the new-physics models of docs/physics.md §7."""

from __future__ import annotations

import argparse


def add_bsm_arguments(parser: argparse.ArgumentParser) -> None:
    """Return the options of ``ringsim bsm``."""
    from calibration.theory import EXPERIMENTS, SM_PREDICTIONS

    parser.add_argument("--experiment", choices=tuple(EXPERIMENTS), default="WA2025", help="experimental a_μ (default WA2025, the 2025 world average 116592071.5(14.5)e-11)")
    parser.add_argument(
        "--sm",
        nargs="+",
        choices=tuple(SM_PREDICTIONS),
        default=list(SM_PREDICTIONS),
        metavar="KEY",
        help=f"SM predictions to compare with, of {', '.join(SM_PREDICTIONS)} (TI2020 = WP20, TI2025 = WP25; default: all)",
    )
    parser.add_argument("--n-sigma", type=float, default=2.0, help="band half-width in standard errors of Δa_μ (default 2, i.e. 95 %% CL)")
    parser.add_argument("--plot", metavar="FILE.png", help="write the comparison and the six model panels to this PNG (default: no plot)")
    parser.add_argument("--json", metavar="FILE", help="also write the numbers as JSON (keys experiment, n_sigma, comparisons: prediction, delta_a_mu, delta_a_mu_err, significance, models)")
    parser.add_argument("--force", action="store_true", help="replace existing output files (default: refuse)")


def cmd_bsm(args: argparse.Namespace) -> int:
    """Print Δa_μ and its reading per model; write the plot and JSON if asked."""
    import math

    from calibration import bsm
    from calibration.plots import SHORT_NAMES, world_average_bsm_figure
    from calibration.theory import EXPERIMENTS, SM_PREDICTIONS
    from ringsim.errors import ConfigError
    from ringsim.io import check_output_path, write_json_atomic

    if not (math.isfinite(args.n_sigma) and args.n_sigma > 0.0):
        raise ConfigError(f"n-sigma: expected a number > 0, got {args.n_sigma!r}")
    for name in ("plot", "json"):
        if getattr(args, name):
            check_output_path(getattr(args, name), overwrite=args.force)
    exp = EXPERIMENTS[args.experiment]
    cl = f"{bsm.confidence_level_percent(args.n_sigma):.0f} % CL"
    lines = [f"a_mu(exp) = ({exp.a_mu * 1e11:.1f} ± {exp.a_mu_err * 1e11:.1f}) x 1e-11: {exp.label} ({exp.source})"]
    comparisons = []
    for key, delta, err in bsm.deltas(args.experiment, tuple(args.sm)):
        sm = SM_PREDICTIONS[key]
        models = bsm.interpret(delta, err, args.n_sigma)
        compatible = abs(delta) <= args.n_sigma * err
        state = f"compatible with zero at {args.n_sigma:g}σ: exclusion limits at {cl}" if compatible else f"non-zero at {args.n_sigma:g}σ: preferred parameters at {cl}"
        lines.append(
            f"Δa_mu vs {SHORT_NAMES.get(key, key)} ({sm.label}, ({sm.a_mu * 1e11:.0f} ± {sm.a_mu_err * 1e11:.0f}) x 1e-11): ({delta * 1e11:.1f} ± {err * 1e11:.1f}) x 1e-11, {delta / err:+.1f}σ; {state}"
        )
        lines += [f"  {m.text()}" for m in models]
        comparisons.append(
            {
                "prediction": key,
                "name": SHORT_NAMES.get(key, key),
                "label": sm.label,
                "a_mu_sm": sm.a_mu,
                "a_mu_sm_err": sm.a_mu_err,
                "delta_a_mu": delta,
                "delta_a_mu_err": err,
                "significance": delta / err,
                "compatible_with_zero": compatible,
                "models": [m.to_dict() for m in models],
            }
        )
    if args.plot:
        world_average_bsm_figure(args.plot, args.experiment, tuple(args.sm), args.n_sigma)
        lines.append(f"wrote {args.plot}")
    if args.json:
        write_json_atomic(
            args.json,
            {"experiment": {"key": args.experiment, "label": exp.label, "a_mu": exp.a_mu, "a_mu_err": exp.a_mu_err, "source": exp.source}, "n_sigma": args.n_sigma, "comparisons": comparisons},
            overwrite=args.force,
        )
    print("\n".join(lines))
    return 0
