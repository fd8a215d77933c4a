"""``ringsim fit``: ω_a from any ROOT file — methods T, A, Q, R, composable models, pileup, gain,
per-station fits, start/end-time scans and plots.

Input is a tree of hits (times, energies, calorimeters, fills) or a TH1 (time) or TH2
(time × energy) histogram. The JSON result keeps the contract keys of ``ringsim fit`` (``omega_a``,
``omega_a_err``, ``R_ppm``, ``blinded``, ``chi2``, ``ndf``, ``params``, ``errors``) at the top level
and adds ``stations``, ``scan_start``, ``scan_end``, ``pileup``, ``asymmetry_weights`` when asked.
Heavy modules (numpy, analysis) are imported inside the functions, so building the parser is cheap.
"""

from __future__ import annotations

import argparse
import math

from ringsim.cli.commands import _check_outputs, _emit
from ringsim.errors import ConfigError

PLOT_OPTIONS = ("plot", "residual_plot", "scan_plot", "correlation_plot", "pulls_plot")
ENERGY_BINS = 48  # energy bins of the A-method asymmetry measurement, over [0, 1.2 E_max]
LOSS_BIN_US = 1.0  # bin width of the lost-muon spectrum
MAX_SCAN_POINTS = 1000  # fits of one start- or end-time scan


def add_fit_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``ringsim fit`` to ``parser`` (the ``fit`` subparser)."""
    from ringsim.cli import _nonneg_int

    parser.add_argument("files", nargs="+", metavar="FILE.root")
    parser.add_argument("--ring", choices=("fnal", "jparc"), help="analysis preset (default: from the file's provenance, else fnal)")
    parser.add_argument("--tree", help="tree path, e.g. dir/sub/hits (default: the file's only tree)")
    parser.add_argument("--time-branch", default="time_ns")
    parser.add_argument("--energy-branch")
    parser.add_argument("--calo-branch")
    parser.add_argument("--time-unit", default="ns", help="ns, us or s")
    parser.add_argument("--energy-unit", default="MeV", help="MeV or GeV")
    parser.add_argument("--selection", help="uproot cut on the tree's branches, in file units")
    parser.add_argument("--hist", help="fit this TH1 (time) or TH2 (time × energy) histogram instead of a tree")
    parser.add_argument("--method", default="T", choices=("T", "A", "Q", "R"), help="T threshold, A asymmetry-weighted, Q energy-weighted, R ratio")
    parser.add_argument("--model", default="5", help="preset 5, 9, 13, 18, 22, 28 or a combination such as 5+cbo_n+cbo_a+vw+loss")
    parser.add_argument("--fix", metavar="NAME=VALUE,...", help="hold model parameters fixed, e.g. cbo_tau_A_us=80,cbo_tau_B_us=8")
    parser.add_argument("--frequencies", metavar="cbo=F,vw=F,y=F", help="expected beam frequencies in MHz (default: from the ring's tune)")
    loss = parser.add_mutually_exclusive_group()
    loss.add_argument("--loss-tree", help="tree of lost-muon times (branch --time-branch) in the same files for the loss term, e.g. lost_muons")
    loss.add_argument("--loss-coincidences", action="store_true", help="loss term from the lost muons found as minimum-ionising triples in successive calorimeters (needs energy, calo and fill branches)")
    parser.add_argument("--threshold", type=float, help="energy threshold in MeV (default: the ring's window for T and R, none for A and Q)")
    parser.add_argument("--a-weights", choices=("fit", "michel"), default="fit", help="A-method A(E): measured in energy bins (fit) or the Michel integral")
    parser.add_argument("--start", type=float, help="fit start in μs")
    parser.add_argument("--end", type=float, help="fit end in μs (within the data, at most 2^20 bins)")
    parser.add_argument("--seed", type=_nonneg_int, default=0, help="seed of the fast-rotation randomisation and the R-method split")
    parser.add_argument("--pileup", action="store_true", help="subtract pileup by the shadow-window method, per calorimeter")
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


def _loss_spectrum(args: argparse.Namespace, events, cfg, settings):
    """Lost-muon spectrum ℓ(t) (a LossSpectrum) from the --loss-tree times or from the triple coincidences among the clusters."""
    import numpy as np

    from analysis.ingest import read_events
    from analysis.models import LossSpectrum

    if args.loss_tree:
        times_ns = read_events(args.files, tree=args.loss_tree, time_branch=args.time_branch, time_unit=args.time_unit, energy_branch=None).time_ns
    else:
        from analysis.lost_muons import station_window_ns, triple_coincidences
        from ringsim.rings import ring_kinematics

        if cfg.detector.model != "calorimeters":
            raise ConfigError(f"loss-coincidences: needs calorimeter stations, the {cfg.ring.name} detector is {cfg.detector.model!r}")
        if events is None or events.energy_mev is None or events.calo is None or events.fill is None:
            raise ConfigError("loss-coincidences: needs a tree with energy, calo and fill branches")
        window_ns = station_window_ns(cfg.ring.radius_m, cfg.ring.n_detectors, ring_kinematics(cfg).beta)
        times_ns = triple_coincidences(events.fill, events.calo, events.time_ns, events.energy_mev, cfg.ring.n_detectors, window_ns)
    edges = np.arange(0.0, settings.end_us + LOSS_BIN_US, LOSS_BIN_US)
    return LossSpectrum(edges, np.histogram(times_ns * 1e-3, bins=edges)[0], settings.gamma_tau_us)


def _fit_ring(args: argparse.Namespace, provenance: dict) -> str:
    if args.ring:
        return args.ring
    ring = provenance.get("config", {}).get("ring", {}).get("name")
    return ring if ring in ("fnal", "jparc") else "fnal"


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


def _gain(text: str | None):
    if text is None:
        return None
    from analysis.gain import exponential_gain

    try:
        amplitude, tau = (float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"gain: expected C,TAU_US, got {text!r}") from None
    return exponential_gain(amplitude, tau)


class _Analysis:
    """Everything one fit configuration needs, shared by the combined and the per-station fits."""

    def __init__(self, args, settings, kin, blinder, freqs, loss, fixed):
        import numpy as np

        self.args, self.settings, self.kin, self.blinder = args, settings, kin, blinder
        self.freqs, self.loss, self.fixed = freqs, loss, fixed
        self.edges = settings.bin_width_us * np.arange(int(math.ceil(settings.end_us / settings.bin_width_us)) + 1)
        self.extra: dict = {}

    def fit_kwargs(self) -> dict:
        s = self.settings
        return {"model": self.args.model, "omega_ref_rad_per_us": s.omega_ref_rad_per_us, "tau_guess_us": s.gamma_tau_us, "loss": self.loss, "frequencies_mhz": self.freqs, "fixed": self.fixed, "method": self.args.method}

    def fit(self, values, variance):
        from analysis.fitting import fit_wiggle

        s = self.settings
        return fit_wiggle(values, self.edges, start_us=s.start_us, end_us=s.end_us, variance=variance, blinder=self.blinder, **self.fit_kwargs())


def _energy_cut(args, settings) -> tuple[float, float]:
    """Energy window of the method: the ring's (T, R) or none (A, Q) unless --threshold is given."""
    if args.threshold is not None or args.method in ("T", "R"):
        return settings.energy_min_mev, settings.energy_max_mev
    return 0.0, math.inf


def _asymmetry(analysis: _Analysis, counts2d, energy_edges) -> object:
    """A(E) weights for the A method, measured with a T-method fit's ω, φ, τ or from the Michel integral."""
    from analysis.fitting import fit_wiggle
    from analysis.methods import energy_bin_weights, measure_asymmetry, michel_asymmetry
    from ringsim.constants import codata

    args, s = analysis.args, analysis.settings
    if args.a_weights == "michel":
        return michel_asymmetry(energy_edges, analysis.kin.gamma, codata().muon_mass_mev)
    t_counts = counts2d @ energy_bin_weights("T", energy_edges, threshold_mev=s.energy_min_mev, energy_max_mev=s.energy_max_mev)
    ref = fit_wiggle(t_counts, analysis.edges, "5", start_us=s.start_us, end_us=s.end_us, omega_ref_rad_per_us=s.omega_ref_rad_per_us, tau_guess_us=s.gamma_tau_us, method="T")
    return measure_asymmetry(counts2d, analysis.edges, energy_edges, start_us=s.start_us, end_us=s.end_us, omega_rad_per_us=ref.omega_a, phi=ref.params["phi"], tau_us=ref.params["tau_us"])


def _randomized(analysis: _Analysis, t_us, seed: int) -> np.ndarray:
    """Times shifted uniformly by ±T_c/2 (fast-rotation randomisation)."""
    import numpy as np

    half = 0.5 * analysis.settings.randomize_us
    return t_us + np.random.default_rng(np.random.SeedSequence([seed, 0])).uniform(-half, half, size=t_us.size)


def _measured_weights(analysis: _Analysis, t_us, energy, seed: int):
    """A-method weights from all hits, recorded in the JSON extras."""
    import numpy as np
    from analysis.methods import time_energy_histogram

    energy_edges = np.linspace(0.0, 1.2 * analysis.kin.e_max_mev, ENERGY_BINS + 1)
    asym = _asymmetry(analysis, time_energy_histogram(_randomized(analysis, t_us, seed), energy, analysis.edges, energy_edges), energy_edges)
    analysis.extra["asymmetry_weights"] = {"source": asym.source, "energy_edges_mev": energy_edges.tolist(), "asymmetry": asym.asymmetry.tolist(), "error": [e if math.isfinite(e) else None for e in asym.error]}
    return asym


def _fit_events(analysis: _Analysis, t_us, energy, pileup, seed: int, asym=None):
    """Histogram hits with the method (and pileup subtraction) and fit; returns (fit, values, variance).

    For the R method ``values`` and ``variance`` are the V and U histograms.
    """
    import numpy as np
    from analysis.methods import fit_ratio, hit_weights, ratio_histograms, weighted_time_histogram
    from analysis.pileup import pileup_histogram

    args, s = analysis.args, analysis.settings
    lo, hi = _energy_cut(args, s)
    t_rand = _randomized(analysis, t_us, seed)
    if args.method == "R":
        keep = (energy >= lo) & (energy < hi)
        v, u = ratio_histograms(t_rand[keep], analysis.edges, math.pi / s.omega_ref_rad_per_us, s.gamma_tau_us, seed=np.random.SeedSequence([seed, 1]))
        kw = analysis.fit_kwargs()
        kw.pop("method")
        fit = fit_ratio(v, u, analysis.edges, start_us=s.start_us, end_us=s.end_us, half_period_us=math.pi / s.omega_ref_rad_per_us, weighting_tau_us=s.gamma_tau_us, blinder=analysis.blinder, **kw)
        return fit, v, u

    def weight(e_mev):
        return hit_weights(args.method, e_mev, threshold_mev=lo, energy_max_mev=hi, asymmetry=asym)

    values, variance = weighted_time_histogram(t_rand, weight(energy), analysis.edges)
    if pileup is not None:
        shift = np.random.default_rng(np.random.SeedSequence([seed, 2])).uniform(-0.5 * s.randomize_us, 0.5 * s.randomize_us, size=pileup.time_ns.size)
        pu_values, pu_variance = pileup_histogram(pileup, analysis.edges, weight, time_shift_us=shift)
        values, variance = values - pu_values, variance + pu_variance
    poisson = args.method == "T" and pileup is None
    return analysis.fit(values, None if poisson else variance), values, None if poisson else variance


def _fit_histogram(args, analysis: _Analysis, hist):
    """T/A/Q fit of a TH1 (T only) or TH2 read with --hist."""
    from analysis.methods import collapse_energy, energy_bin_weights

    for option in ("pileup", "gain", "per_station"):
        if getattr(args, option):
            raise ConfigError(f"{option.replace('_', '-')}: needs hits, not a histogram (--hist)")
    if args.method == "R":
        raise ConfigError("method: the R method needs hits (the subsets are shifted by T_a/2), not a histogram")
    if isinstance(hist.edges, tuple):
        time_edges_ns, energy_edges = hist.edges
        analysis.edges = time_edges_ns * 1e-3
        lo, hi = _energy_cut(args, analysis.settings)
        asym = _asymmetry(analysis, hist.counts, energy_edges) if args.method == "A" else None
        values, variance = collapse_energy(hist.counts, energy_bin_weights(args.method, energy_edges, threshold_mev=lo, energy_max_mev=hi, asymmetry=asym))
        variance = None if args.method == "T" else variance
    else:
        if args.method != "T":
            raise ConfigError(f"method: the {args.method} method needs energies; give a TH2 (time × energy) or a tree")
        analysis.edges = hist.edges * 1e-3
        values, variance = hist.counts, None
    return analysis.fit(values, variance), values, variance


def _data_end_us(events, hist) -> float:
    """Time of the last hit, or the last time edge of the histogram, in μs."""
    import numpy as np

    if hist is not None:
        return float((hist.edges[0] if isinstance(hist.edges, tuple) else hist.edges)[-1]) * 1e-3
    return float(np.max(events.time_ns, initial=0.0)) * 1e-3


def cmd_fit(args: argparse.Namespace) -> int:
    """Run ``ringsim fit``: read, correct, histogram by method, fit, scan, plot, print/write JSON."""
    import numpy as np
    from analysis.blinding import Blinder
    from analysis.ingest import read_events, read_histogram
    from analysis.models import LossSpectrum, beam_frequencies_mhz, parse_model
    from analysis.wiggle import ring_settings
    from ringsim.config import check_fit_window, load_config
    from ringsim.rings import ring_kinematics

    parse_model(args.model)
    fixed = _assignments(args.fix, "fix")
    freq_override = _assignments(args.frequencies, "frequencies")
    starts, ends = _times(args.scan_start, "scan-start"), _times(args.scan_end, "scan-end")
    gain = _gain(args.gain)
    if args.scan_plot and starts is None and ends is None:
        raise ConfigError("scan-plot: needs --scan-start or --scan-end")
    if args.method == "R" and (starts is not None or ends is not None):
        raise ConfigError("scan: start/end-time scans are available for the T, A and Q methods")
    _check_outputs(args, "json", *PLOT_OPTIONS, inputs={path: path for path in args.files})

    events = hist = None
    if args.hist:
        if len(args.files) != 1:
            raise ConfigError("hist: --hist reads one file")
        hist = read_histogram(args.files[0], args.hist, time_unit=args.time_unit, energy_unit=args.energy_unit)
        ring = args.ring or "fnal"
    else:
        events = read_events(args.files, tree=args.tree, time_branch=args.time_branch, energy_branch=args.energy_branch, calo_branch=args.calo_branch, time_unit=args.time_unit, energy_unit=args.energy_unit, selection=args.selection)
        ring = _fit_ring(args, events.provenance)
    cfg = load_config(ring)
    kin = ring_kinematics(cfg)
    settings = ring_settings(cfg, args.start, args.end, args.threshold)
    scan_us = [*(() if starts is None else starts), *(() if ends is None else ends)]
    check_fit_window(settings.start_us, settings.end_us, settings.bin_width_us, _data_end_us(events, hist), end_given=args.end is not None, scan_us=scan_us)
    freqs = beam_frequencies_mhz(kin.omega_c_rad_per_s / (2.0 * math.pi) * 1e-6, kin.field_index) | freq_override
    loss = _loss_spectrum(args, events, cfg, settings) if args.loss_tree or args.loss_coincidences else None
    blinder = Blinder(args.blind, settings.omega_ref_rad_per_us) if args.blind is not None else None
    analysis = _Analysis(args, settings, kin, blinder, freqs, loss, fixed)
    result_extra: dict = {"ring": ring}

    if hist is not None:
        fit, values, variance = _fit_histogram(args, analysis, hist)
    else:
        if events.energy_mev is None:
            raise ConfigError("energy branch: the fit methods need positron energies; name the branch with --energy-branch")
        t_ns, energy, calo, fill = events.time_ns, events.energy_mev, events.calo, events.fill
        if gain is not None:
            from analysis.gain import correct_gain

            energy = correct_gain(t_ns, energy, gain)
        pileup = None
        if args.pileup:
            from analysis.pileup import apply_dead_time, shadow_pileup

            if args.method == "R":
                raise ConfigError("pileup: shadow-window subtraction is not available with the R method")
            merged = apply_dead_time(t_ns, energy, calo, fill, dead_time_ns=args.dead_time)
            t_ns, energy, calo, fill = merged["time_ns"], merged["energy_mev"], merged["calo"], merged["fill"]
            pileup = shadow_pileup(t_ns, energy, calo, fill, dead_time_ns=args.dead_time, gap_ns=args.shadow_gap, window_ns=args.shadow_window)
            result_extra["pileup"] = {"shadow_pairs": pileup.n_pairs, "dead_time_ns": args.dead_time, "gap_ns": args.shadow_gap, "window_ns": args.shadow_window}
        t_us = t_ns * 1e-3
        asym = _measured_weights(analysis, t_us, energy, args.seed) if args.method == "A" else None
        fit, values, variance = _fit_events(analysis, t_us, energy, pileup, args.seed, asym)
        if args.per_station:
            from analysis.methods import per_station_fits

            if calo is None:
                raise ConfigError("per-station: the tree has no calorimeter branch; name it with --calo-branch")

            def one(mask):
                sub = None if pileup is None else pileup.select(pileup.calo == int(calo[mask][0]))
                return _fit_events(analysis, t_us[mask], energy[mask], sub, args.seed, asym)[0]

            result_extra["stations"] = {str(k): f.to_dict() for k, f in per_station_fits(calo, one).items()}
    result_extra |= analysis.extra
    scans = {}
    for kind, times in (("start", starts), ("end", ends)):
        if times is None:
            continue
        from analysis.scans import end_time_scan, start_time_scan

        kw = analysis.fit_kwargs() | {"variance": variance, "blinder": blinder}
        scans[kind] = (start_time_scan(values, analysis.edges, times, end_us=settings.end_us, **kw) if kind == "start" else end_time_scan(values, analysis.edges, times, start_us=settings.start_us, **kw))
        result_extra[f"scan_{kind}"] = scans[kind].to_dict()
    _plots(args, fit, values, variance, analysis, scans)
    _emit(args, fit.to_dict() | result_extra)
    return 0


def _plots(args, fit, values, variance, analysis: _Analysis, scans: dict) -> None:
    import numpy as np
    from analysis import plots

    if args.method == "R":
        v, u = values, variance  # V and U histograms
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(v + u > 0, (v - u) / (v + u), 0.0)
            ratio_var = np.where(v + u > 0, np.maximum(1.0 - ratio**2, 1e-12) / np.maximum(v + u, 1.0), 1.0)
        values, variance = ratio, ratio_var
        if args.plot:
            plots.residual_fft_plot(values, analysis.edges, fit, args.plot, variance=variance)
    elif args.plot:
        plots.wiggle_plot(values, analysis.edges, fit, fit.expected_counts, args.plot)
    if args.residual_plot:
        f_a = fit.omega_a / (2.0 * math.pi)
        marks = {f"f_{k}": f for k, f in analysis.freqs.items()} | {"f_a": f_a}
        plots.residual_fft_plot(values, analysis.edges, fit, args.residual_plot, frequencies_mhz=marks, variance=variance)
    if args.scan_plot:
        plots.scan_plot(scans.get("start") or scans["end"], args.scan_plot)
    if args.correlation_plot:
        plots.correlation_plot(fit, args.correlation_plot)
    if args.pulls_plot:
        _, pull = plots.fit_pulls(values, analysis.edges, fit, variance)
        plots.pulls_plot(pull, args.pulls_plot, title=f"bin pulls of the {fit.model} fit ({fit.method}-method)")
