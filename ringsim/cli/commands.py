"""Handlers of ``ringsim simulate``, ``amu`` and ``precision`` (``run``, ``fit``, ``validate`` have modules of their own)."""

from __future__ import annotations

import argparse
import json
import math

from ringsim.errors import ConfigError


def _check_outputs(args: argparse.Namespace, *names: str, inputs: dict | None = None) -> None:
    """Refuse, before any work, output files that exist (unless --force), whose folder is missing or not writable, that are one of ``inputs`` (option → path) or another of the outputs."""
    from ringsim.io import check_distinct_paths, check_output_path

    for name in names:
        path = getattr(args, name, None)
        if path:
            check_output_path(path, overwrite=args.force)
    options = {"-o/--output" if name == "output" else f"--{name.replace('_', '-')}": getattr(args, name, None) for name in names}
    check_distinct_paths(options, inputs or {})


def _emit(args: argparse.Namespace, result: dict) -> None:
    """Write the result to --json if asked, then print it as JSON on stdout (only after success)."""
    from ringsim.io import write_json_atomic

    if args.json:
        write_json_atomic(args.json, result, overwrite=args.force)
    print(json.dumps(result, indent=2))


def cmd_simulate(args: argparse.Namespace) -> int:
    """Simulate into ``--output``; print one summary line (and write the provenance to --json)."""
    from ringsim.config import load_config
    from ringsim.io import RUN_BYTES_PER_COUNT, RUN_BYTES_PER_COUNT_TRUTH, all_or_none, check_free_space, write_json_atomic
    from ringsim.run_file import simulate_to_file

    _check_outputs(args, "output", "json", inputs={"--config": args.config})
    cfg = load_config(args.ring, args.config, args.overrides)
    check_free_space(
        args.output, (args.positrons or args.muons) * (RUN_BYTES_PER_COUNT_TRUTH if args.truth else RUN_BYTES_PER_COUNT), f"{args.positrons or args.muons} {'positrons' if args.positrons else 'muons'}"
    )
    with all_or_none(args.json):  # the run file is kept (it is resumable and complete); a failed --json is not left half
        prov = simulate_to_file(
            args.output,
            cfg,
            args.mode,
            n_positrons=args.positrons,
            n_muons=args.muons,
            seed=args.seed,
            codata_edition=args.codata,
            overwrite=args.force,
            truth=args.truth,
            compression=args.compression,
        )
        if args.json:
            write_json_atomic(args.json, prov, overwrite=args.force)
    mip = f" and {prov['n_mip_clusters']} lost-muon clusters" if prov["n_mip_clusters"] else ""
    print(f"wrote {prov['n_positrons']} positrons{mip} ({args.mode} mode, {args.ring}, seed {args.seed}) to {args.output}")
    if "spiral_injection" in prov:
        print(f"spiral injection: {100 * prov['spiral_injection']['efficiency']:.1f} % of {prov['spiral_injection']['efficiency_muons']} injected muons stored")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    """Print the full configuration as TOML: every section and key that --config and --set accept."""
    from ringsim.config import load_config

    cfg = load_config(args.ring, args.config, args.overrides)
    sources = _preset_comments(args.ring)
    given = {item.split("=", 1)[0].strip() for item in args.overrides}
    print(f"# ringsim configuration: preset {args.ring}" + (f", {args.config}" if args.config else "") + "".join(f", --set {o}" for o in args.overrides))
    print("# after each value: its unit (from the key's suffix) and its source (the preset's comment, or --set)")
    for section, values in cfg.to_dict().items():
        print(f"\n[{section}]")
        for key, value in values.items():
            source = "--set" if f"{section}.{key}" in given else sources.get((section, key), "")
            unit = next((u for suffix, u in _UNITS.items() if key.endswith(suffix)), "")
            note = "  ".join(part for part in (f"[{unit}]" if unit else "", source) if part)
            print(f"{key} = {_toml_value(value)}" + (f"  # {note}" if note else ""))
    return 0


_UNITS = {"_m": "m", "_t": "T", "_ns": "ns", "_us": "μs", "_mev": "MeV", "_mhz": "MHz", "_deg": "degrees", "_rad": "rad", "_c": "°C", "_ppb": "ppb", "_m2": "m²"}


def _preset_comments(preset: str) -> dict[tuple[str, str], str]:
    """Return the comment of every key line of a preset (and of its base ring's), keyed by (section, key)."""
    from importlib import resources

    from ringsim.config import PRESETS

    comments: dict[tuple[str, str], str] = {}
    for name in dict.fromkeys((PRESETS[preset], preset)):
        section = ""
        for line in resources.files("ringsim.presets").joinpath(f"{name}.toml").read_text(encoding="utf-8").splitlines():
            stripped = line.strip()
            if stripped.startswith("[") and stripped.endswith("]"):
                section = stripped[1:-1]
            elif "=" in stripped and not stripped.startswith("#"):
                key = stripped.split("=", 1)[0].strip()
                comment = stripped.split("#", 1)[1].strip() if "#" in stripped else ""
                comments[(section, key)] = f"{name}.toml: {comment}" if comment else f"{name}.toml"
    return comments


def _toml_value(value) -> str:
    """Return ``value`` as a TOML literal (numbers, booleans, strings, lists of numbers)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def cmd_amu(args: argparse.Namespace) -> int:
    """Print a_μ from a ratio or a measurement file (with its budget table); write the outputs asked for."""
    from calibration.amu import amu_e821, amu_fnal
    from ringsim.constants import LAMBDA_E821

    if args.measurement is not None:
        return _amu_measurement(args)
    for name in ("txt", "tex"):
        if getattr(args, name) is not None:
            raise ConfigError(f"{name}: --{name} applies to --measurement only")
    _check_outputs(args, "json")
    ratio_err = 0.0 if args.ratio_err is None else args.ratio_err
    if args.form == "e821":
        result = amu_e821(args.ratio, ratio_err, lam=LAMBDA_E821 if args.lam is None else args.lam)
    else:
        if args.lam is not None:
            raise ConfigError("lambda: --lambda applies to --form e821 only")
        result = amu_fnal(args.ratio, ratio_err, codata_edition=2018 if args.codata is None else args.codata)
    _emit(args, result.to_dict())
    return 0


def _amu_measurement(args: argparse.Namespace) -> int:
    """``amu --measurement``: print the budget table and a one-line a_μ; write --json/--txt/--tex."""
    from pathlib import Path

    from calibration.measurement import evaluate_measurement
    from ringsim.io import all_or_none, atomic_output, write_json_atomic

    for name, option in (("ratio_err", "--ratio-err"), ("form", "--form"), ("lam", "--lambda")):
        if getattr(args, name) is not None:
            raise ConfigError(f"{option.lstrip('-')}: {option} applies to --ratio only (a measurement file gives its own)")
    _check_outputs(args, "json", "txt", "tex")
    result = evaluate_measurement(args.measurement, codata_edition=args.codata)
    text = result.budget.to_text()
    with all_or_none(args.txt, args.tex, args.json):
        for name, content in (("txt", text + result.summary_line() + "\n"), ("tex", result.budget.to_latex())):
            path = getattr(args, name)
            if path:
                with atomic_output(path, overwrite=args.force) as tmp:
                    Path(tmp).write_text(content, encoding="utf-8")
        if args.json:
            write_json_atomic(args.json, result.to_dict(), overwrite=args.force)
    print(text, end="")
    print(result.summary_line())
    return 0


def _energy_window(text: str | None, default: tuple[float, float]) -> tuple[float, float]:
    if text is None:
        return default
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"energy-window: expected LO,HI in MeV, got {text!r}") from None
    if not (0.0 <= lo < hi and math.isfinite(hi)):
        raise ConfigError(f"energy-window: expected 0 ≤ LO < HI (MeV), got {text!r}")
    return lo, hi


def cmd_precision(args: argparse.Namespace) -> int:
    """Print the Fisher-information precision of ω_a for the preset and window."""
    from analysis.precision import fisher_omega_precision
    from ringsim.config import load_config
    from ringsim.constants import codata
    from ringsim.decay import lab_fraction_and_asymmetry
    from ringsim.rings import ring_kinematics

    _check_outputs(args, "json")
    cfg = load_config(args.ring)
    kin = ring_kinematics(cfg)
    lo, hi = _energy_window(args.energy_window, (cfg.analysis.energy_min_mev, cfg.analysis.energy_max_mev))
    polarization = cfg.beam.polarization if args.polarization is None else args.polarization
    if not (math.isfinite(args.positrons) and args.positrons > 0):
        raise ConfigError(f"positrons: expected a number > 0, got {args.positrons}")
    if not (0.0 < abs(polarization) <= 1.0):
        raise ConfigError(f"polarization: expected 0 < |P| ≤ 1, got {polarization}")
    if not (0.0 <= args.start < args.end):
        raise ConfigError(f"start/end: expected 0 ≤ start < end (μs), got {args.start}, {args.end}")
    fraction, asymmetry = lab_fraction_and_asymmetry(kin.gamma, lo, hi, codata().muon_mass_mev)
    if asymmetry == 0.0:
        raise ConfigError(f"energy-window: {lo}–{hi} MeV holds no decays or no asymmetry at this ring's momentum")
    rel = fisher_omega_precision(args.positrons, asymmetry, polarization, kin.omega_a_rad_per_us, kin.gamma_tau_us, args.start, args.end)
    _emit(
        args,
        {
            "delta_omega_over_omega": rel,
            "delta_omega_over_omega_ppb": rel * 1e9,
            "asymmetry": asymmetry,
            "fraction": fraction,
            "polarization": polarization,
            "energy_window_mev": [lo, hi],
            "window_us": [args.start, args.end if math.isfinite(args.end) else None],
            "ring": args.ring,
        },
    )
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    """Print the survey of each file, with a ready ``ringsim fit`` line per object."""
    from analysis.survey import survey_file
    from ringsim.io import write_json_atomic

    _check_outputs(args, "json")
    surveys = {path: survey_file(path) for path in args.files}
    for path, objects in surveys.items():
        print(f"{path}:")
        for obj in objects:
            print(f"  {obj.path} ({obj.classname}, {obj.entries} entries)")
            for name, kind in obj.branches.items():
                print(f"      {name}: {kind}")
            if obj.options:
                print(f"    ringsim fit {path} {' '.join(obj.options)}")
            for note in obj.notes:
                print(f"    note: {note}")
    if args.json:
        write_json_atomic(args.json, {path: [o.to_dict() for o in objects] for path, objects in surveys.items()}, overwrite=args.force)
    return 0
