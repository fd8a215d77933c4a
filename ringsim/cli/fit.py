"""``ringsim fit``: ω_a from any ROOT file — methods T, A, Q, R, composable models, pileup, gain, per-station fits, start/end-time scans and plots.

Input is a tree of hits (times, energies, calorimeters, fills) or a TH1 (time) or TH2
(time × energy) histogram. The JSON result keeps the contract keys of ``ringsim fit`` (``omega_a``,
``omega_a_err``, ``R_ppm``, ``blinded``, ``chi2``, ``ndf``, ``params``, ``errors``) at the top level
and adds ``stations``, ``scan_start``, ``scan_end``, ``pileup``, ``asymmetry_weights`` when asked.
The engine is :func:`workflows.fit_file.fit_file`; this module parses the options into its
:class:`~workflows.fit_file.FitOptions`. Heavy modules are imported inside the functions, so
building the parser is cheap.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING

from ringsim.cli.commands import _check_outputs, _emit
from ringsim.config import PRESETS
from ringsim.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

    from workflows.fit_file import FitOptions

PLOT_OPTIONS = ("plot", "residual_plot", "scan_plot", "correlation_plot", "pulls_plot")
MAX_SCAN_POINTS = 1000  # fits of one start- or end-time scan


def add_fit_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``ringsim fit`` to ``parser`` (the ``fit`` subparser)."""
    from ringsim.cli.arguments import nonneg_int

    parser.add_argument("files", nargs="+", metavar="FILE.root")
    parser.add_argument("--ring", choices=tuple(PRESETS), help="analysis preset, replacing the configuration stored in a ringsim file (default: the file's stored configuration, else the fnal preset)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override one analysis configuration value, e.g. analysis.fit_start_us=40 (repeatable)"
    )
    parser.add_argument("--tree", help="tree path, e.g. dir/sub/hits (default: the file's only tree)")
    parser.add_argument("--time-branch", default="time_ns")
    parser.add_argument("--energy-branch")
    parser.add_argument("--calo-branch")
    parser.add_argument("--time-unit", default="ns", help="unit of the file's times: ns, us (μs), ms, s, ct (clock ticks of 1.25 ns) or a scaled unit such as 1.25ns (default ns)")
    parser.add_argument("--energy-unit", default="MeV", help="unit of the file's energies: keV, MeV, GeV or a scaled unit such as 0.5GeV (default MeV)")
    parser.add_argument(
        "--fill-branch",
        metavar="NAME[,NAME…]",
        help="integer branch(es) naming the fill, e.g. runNum,subRunNum,eventNum (default: branch 'fill' if present, else the entry of a tree with one entry per fill); a single branch counts within its file",
    )
    parser.add_argument(
        "--selection",
        help="cut on the tree's branches per hit, in file units, e.g. '(energy > 1700) & (caloNum != 3)': numbers, arithmetic, comparisons, & | ~ and abs, sqrt, exp, log, sin, cos, floor, ceil",
    )
    parser.add_argument(
        "--hist",
        metavar="NAME|PATTERN",
        help="fit this TH1 (time), TH2 (time × energy) or TH3 (time × energy × calorimeter) histogram instead of a tree; a pattern such as 'clusters/calo*/hTimeEnergy' sums every match of every file",
    )
    parser.add_argument("--method", default="T", choices=("T", "A", "Q", "R"), help="T threshold, A asymmetry-weighted, Q energy-weighted, R ratio")
    parser.add_argument("--model", default="5", help="preset 5, 9, 13, 18, 22, 28 or a combination such as 5+cbo_n+cbo_a+vw+loss")
    parser.add_argument("--fix", metavar="NAME=VALUE,...", help="hold model parameters fixed, e.g. cbo_tau_A_us=80,cbo_tau_B_us=8")
    parser.add_argument("--frequencies", metavar="cbo=F,vw=F,y=F", help="expected beam frequencies in MHz (default: from the ring's tune)")
    loss = parser.add_mutually_exclusive_group()
    loss.add_argument("--loss-tree", help="tree of lost-muon times (branch --time-branch) in the same files for the loss term, e.g. lost_muons")
    loss.add_argument(
        "--loss-coincidences", action="store_true", help="loss term from the lost muons found as minimum-ionising triples in successive calorimeters (needs energy, calo and fill branches)"
    )
    parser.add_argument("--threshold", type=float, help="energy threshold in MeV (default: the ring's window for T and R, none for A and Q)")
    parser.add_argument("--a-weights", choices=("fit", "michel"), default="fit", help="A-method A(E): measured in energy bins (fit) or the Michel integral")
    parser.add_argument("--start", type=float, help="fit start in μs")
    parser.add_argument("--end", type=float, help="fit end in μs (within the data, at most 2^20 bins)")
    parser.add_argument("--seed", type=nonneg_int, default=0, help="seed of the fast-rotation randomisation and the R-method split")
    parser.add_argument(
        "--pileup",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="subtract pileup by the shadow-window method, per calorimeter and fill (default: as the configuration's analysis.pileup_correction says: on for fnal, off for jparc)",
    )
    parser.add_argument("--dead-time", type=float, default=5.0, help="artificial dead time in ns (default 5)")
    parser.add_argument("--shadow-gap", type=float, default=10.0, help="shadow-window gap in ns (default 10)")
    parser.add_argument("--shadow-window", type=float, default=5.0, help="shadow-window width in ns (default 5)")
    parser.add_argument("--gain", metavar="C,TAU_US", help="correct energies for the in-fill gain G(t) = 1 − C e^{−t/τ}")
    parser.add_argument("--per-station", action="store_true", help="also fit each calorimeter separately")
    parser.add_argument("--scan-start", metavar="T1,T2,… | FROM:TO:N", help="start-time scan (first point is the reference; at most 1000 points)")
    parser.add_argument("--scan-end", metavar="T1,T2,… | FROM:TO:N", help="end-time scan (first point is the reference)")
    blind = parser.add_mutually_exclusive_group()
    blind.add_argument("--blind", metavar="STRING", help="blind ω_a with this secret string (a fixed R_ppm is then a blinded R)")
    blind.add_argument("--unblind", action="store_true", help="report ω_a unblinded (the default when --blind is absent)")
    parser.add_argument("--json", help="write the fit result to this JSON file")
    parser.add_argument("--plot", help="write the wiggle plot to this PNG file")
    parser.add_argument("--residual-plot", help="write residuals and their FFT with the beam frequencies to this PNG")
    parser.add_argument("--scan-plot", help="write the start-time (else end-time) scan with its allowed band to this PNG")
    parser.add_argument("--correlation-plot", help="write the correlation matrix to this PNG")
    parser.add_argument("--pulls-plot", help="write the distribution of the bin pulls to this PNG")
    parser.add_argument("--force", action="store_true", help="replace existing output files")


def _assignments(text: str | None, option: str) -> dict[str, float]:
    """``"a=1,b=2"`` → {"a": 1.0, "b": 2.0}; ConfigError naming ``option`` otherwise."""
    if not text:
        return {}
    out = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not sep or not key.strip() or not math.isfinite(number):
            raise ConfigError(f"{option}: expected NAME=VALUE[,NAME=VALUE…], got {text!r}")
        out[key.strip()] = number
    return out


def _frequencies(text: str | None) -> dict[str, float]:
    """``"cbo=0.37,vw=2.3"`` → frequencies in MHz, each positive."""
    freqs = _assignments(text, "frequencies")
    bad = [f"{k}={v:g}" for k, v in freqs.items() if not v > 0.0]
    if bad:
        raise ConfigError(f"frequencies: expected positive frequencies in MHz, got {', '.join(bad)}")
    return freqs


def _times(text: str | None, option: str) -> np.ndarray | None:
    """Scan times from ``"t1,t2,…"`` or ``"from:to:n"`` (μs)."""
    import numpy as np

    if text is None:
        return None
    try:
        if ":" in text:
            lo, hi, n = text.split(":")
            if not 2 <= int(n) <= MAX_SCAN_POINTS:
                raise ConfigError(f"{option}: expected 2 to {MAX_SCAN_POINTS} scan points, got {text!r}")
            times = np.linspace(float(lo), float(hi), int(n))
        else:
            times = np.array([float(v) for v in text.split(",")])
    except ValueError:
        raise ConfigError(f"{option}: expected T1,T2,… or FROM:TO:N in μs, got {text!r}") from None
    if not 2 <= times.size <= MAX_SCAN_POINTS or not np.all(np.isfinite(times)):
        raise ConfigError(f"{option}: need 2 to {MAX_SCAN_POINTS} finite times, got {text!r}")
    return times


def _gain(text: str | None) -> tuple[float, float] | None:
    """``"C,TAU_US"`` → (C, τ in μs)."""
    if text is None:
        return None
    try:
        amplitude, tau = (float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"gain: expected C,TAU_US, got {text!r}") from None
    return amplitude, tau


def fit_options(args: argparse.Namespace) -> FitOptions:
    """Return the parsed command line as the options of :func:`workflows.fit_file.fit_file`."""
    import dataclasses

    from workflows.fit_file import FitOptions

    same_name = {f.name: getattr(args, f.name) for f in dataclasses.fields(FitOptions) if f.name in vars(args)}
    parsed = {
        "files": tuple(args.files),
        "overrides": tuple(args.overrides),
        "fixed": _assignments(args.fix, "fix"),
        "frequencies_mhz": _frequencies(args.frequencies),
        "threshold_mev": args.threshold,
        "start_us": args.start,
        "end_us": args.end,
        "dead_time_ns": args.dead_time,
        "shadow_gap_ns": args.shadow_gap,
        "shadow_window_ns": args.shadow_window,
        "gain": _gain(args.gain),
        "scan_start_us": _times(args.scan_start, "scan-start"),
        "scan_end_us": _times(args.scan_end, "scan-end"),
    }
    return FitOptions(**same_name | parsed)


def cmd_fit(args: argparse.Namespace) -> int:
    """Run ``ringsim fit``: check the outputs, fit the files, draw the plots, print and write the JSON."""
    import sys

    from workflows.fit_file import fit_file, write_fit_plots

    options = fit_options(args)
    if args.scan_plot and options.scan_start_us is None and options.scan_end_us is None:
        raise ConfigError("scan-plot: needs --scan-start or --scan-end")
    _check_outputs(args, "json", *PLOT_OPTIONS, inputs={path: path for path in args.files})
    result = fit_file(options)
    if args.ring is not None or args.overrides:
        print(f"note: analysis configuration from {result.extra['config_source']}", file=sys.stderr)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    plots = {name: getattr(args, name) for name in PLOT_OPTIONS}
    try:
        write_fit_plots(result, **plots)
        _emit(args, result.to_dict())
    except BaseException:  # all outputs or none: a failed later output takes the earlier ones with it
        for path in filter(None, plots.values()):
            Path(path).unlink(missing_ok=True)
        raise
    print(_summary(result), file=sys.stderr)
    return 0


def _summary(result) -> str:
    """Return the fit in one line for a reader (the JSON on stdout carries everything)."""
    fit = result.fit
    blinded = " (blinded)" if fit.blinded else ""
    return (
        f"fit: ω_a = {fit.omega_a:.7f} ± {fit.omega_a_err:.7f} rad/μs{blinded} ({fit.omega_a_err / fit.omega_a * 1e6:.1f} ppm), "
        f"R = {fit.params['R_ppm']:.2f} ± {fit.errors['R_ppm']:.2f} ppm{blinded}; {fit.method} method, model {fit.model}, "
        f"{fit.n_entries:.0f} entries in {fit.start_us:.1f}–{fit.end_us:.1f} μs; χ²/ndf = {fit.chi2:.1f}/{fit.ndf} (p = {result.extra['fit_p_value']:.2g})"
    )
