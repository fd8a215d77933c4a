"""The fit of a file: reading → selection → histogram by method → fit → scans and plots.

:func:`fit_file` is the engine of ``ringsim fit`` and the fit inside ``ringsim run``, so the two give
the same ω_a for the same file and seed. The analysis configuration of a ringsim file is the one
stored in its provenance; a ring or ``--set`` values given at fit time override it (and the result
says so in ``config_source``). Random streams derive from the seed by one rule
(:func:`ringsim.random_streams.stream`): stream ``FAST_ROTATION`` shifts each hit time by
±T_c/2, ``RATIO_SPLIT`` assigns the R-method subsets, ``PILEUP_SHIFT`` shifts the pileup pairs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from analysis.blinding import Blinder
from analysis.fitting import FitResult, fit_wiggle
from analysis.histograms import time_energy_histogram, weighted_time_histogram
from analysis.ingest import EventData, read_events
from analysis.ingest_histograms import read_histogram
from analysis.methods import (
    collapse_energy,
    energy_bin_weights,
    fit_ratio,
    hit_weights,
    measure_asymmetry,
    michel_asymmetry,
    ratio_histograms,
)
from analysis.models import LossSpectrum, beam_frequencies_mhz, parse_model
from analysis.units import time_scale_check
from analysis.wiggle import WiggleSettings, ring_settings
from ringsim.config import SimConfig, check_fit_window, config_from_dict, load_config
from ringsim.constants import codata
from ringsim.errors import ConfigError, FitError, InputError
from ringsim.random_streams import FAST_ROTATION, PILEUP_SHIFT, RATIO_SPLIT, stream
from ringsim.rings import RingKinematics, ring_kinematics

__all__ = ["FileFit", "FitOptions", "fit_file", "write_fit_plots"]

MIN_FIT_P_VALUE = 1e-3  # below it a fit is reported as not describing the data (issue 15: p < 10⁻³)
ENERGY_BINS = 48  # energy bins of the A-method asymmetry measurement, over [0, 1.2 E_max]
LOSS_BIN_US = 1.0  # bin width of the lost-muon spectrum


@dataclass(frozen=True)
class FitOptions:
    """What to read and how to fit it (the options of ``ringsim fit``, parsed).

    Times are in μs (window, scans), energies in MeV, pileup windows in ns; ``None`` takes the
    ring's analysis default. ``ring`` and ``overrides`` replace or amend the configuration stored in
    a ringsim file's provenance. ``pileup=None`` follows ``analysis.pileup_correction`` of the
    configuration where the file allows it (hits with fill identity, not the R method).
    """

    files: tuple[str, ...]
    ring: str | None = None
    overrides: tuple[str, ...] = ()
    tree: str | None = None
    time_branch: str = "time_ns"
    energy_branch: str | None = None
    calo_branch: str | None = None
    time_unit: str = "ns"
    fill_branch: str | None = None
    energy_unit: str = "MeV"
    selection: str | None = None
    hist: str | None = None
    method: str = "T"
    model: str = "5"
    fixed: dict[str, float] = field(default_factory=dict)
    frequencies_mhz: dict[str, float] = field(default_factory=dict)
    loss_tree: str | None = None
    loss_coincidences: bool = False
    threshold_mev: float | None = None
    a_weights: str = "fit"
    start_us: float | None = None
    end_us: float | None = None
    seed: int = 0
    pileup: bool | None = None
    dead_time_ns: float = 5.0
    shadow_gap_ns: float = 10.0
    shadow_window_ns: float = 5.0
    gain: tuple[float, float] | None = None
    per_station: bool = False
    scan_start_us: np.ndarray | None = None
    scan_end_us: np.ndarray | None = None
    blind: str | None = None


@dataclass
class FileFit:
    """A fitted file: the fit, the histogram it was fitted to, scans and the JSON extras.

    For the R method ``values`` and ``variance`` are the V and U histograms.
    """

    fit: FitResult
    values: np.ndarray
    variance: np.ndarray | None
    edges_us: np.ndarray
    cfg: SimConfig
    settings: WiggleSettings
    frequencies_mhz: dict[str, float]
    scans: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Return the fit's JSON keys and the extras (ring, configuration source, stations, scans, pileup, weights)."""
        return self.fit.to_dict() | self.extra


def analysis_config(options: FitOptions, provenance: dict) -> tuple[SimConfig, str]:
    """Return the configuration of the analysis and where it came from.

    A ringsim file's provenance holds the full configuration it was simulated with; ``--ring``
    replaces it by a preset, ``--set`` values amend either. A foreign file takes the preset of
    ``--ring`` (default fnal).
    """
    stored = provenance.get("config") if isinstance(provenance.get("config"), dict) else None
    overrides = list(options.overrides)
    if options.ring is not None or stored is None:
        ring = options.ring or "fnal"
        note = f"preset {ring}" + (" (given with --ring, replacing the file's stored configuration)" if stored is not None else "")
        cfg = load_config(ring, overrides=overrides)
    else:
        cfg = config_from_dict(stored, overrides, origin="the file's provenance configuration")
        note = "the file's provenance"
    if overrides:
        note += " with --set " + ", ".join(overrides)
    return cfg, note


class _Analysis:
    """Everything one fit configuration needs, shared by the combined and the per-station fits."""

    def __init__(self, options: FitOptions, settings: WiggleSettings, kin: RingKinematics, blinder: Blinder | None, freqs: dict, loss: LossSpectrum | None):
        self.options, self.settings, self.kin, self.blinder = options, settings, kin, blinder
        self.freqs, self.loss = freqs, loss
        self.edges = settings.bin_width_us * np.arange(int(math.ceil(settings.end_us / settings.bin_width_us)) + 1)
        self.extra: dict = {}

    def fit_kwargs(self) -> dict:
        s, o = self.settings, self.options
        return {
            "model": o.model,
            "omega_ref_rad_per_us": s.omega_ref_rad_per_us,
            "tau_guess_us": s.gamma_tau_us,
            "loss": self.loss,
            "frequencies_mhz": self.freqs,
            "fixed": o.fixed,
            "method": o.method,
        }

    def fit(self, values: np.ndarray, variance: np.ndarray | None) -> FitResult:
        s = self.settings
        return fit_wiggle(values, self.edges, start_us=s.start_us, end_us=s.end_us, variance=variance, blinder=self.blinder, **self.fit_kwargs())

    def energy_cut(self) -> tuple[float, float]:
        """Energy window of the method: the ring's (T, R) or none (A, Q) unless a threshold is given."""
        if self.options.threshold_mev is not None or self.options.method in ("T", "R"):
            return self.settings.energy_min_mev, self.settings.energy_max_mev
        return 0.0, math.inf

    def randomized(self, t_us: np.ndarray, seed: int) -> np.ndarray:
        """Return times shifted uniformly by ±T_c/2 (fast-rotation randomisation)."""
        half = 0.5 * self.settings.randomize_us
        return t_us + stream(seed, FAST_ROTATION).uniform(-half, half, size=t_us.size)

    def asymmetry(self, counts2d: np.ndarray, energy_edges: np.ndarray):
        """A(E) weights for the A method, measured with a T-method fit's ω, φ, τ or from the Michel integral."""
        s = self.settings
        if self.options.a_weights == "michel":
            return michel_asymmetry(energy_edges, self.kin.gamma, codata().muon_mass_mev)
        t_counts = counts2d @ energy_bin_weights("T", energy_edges, threshold_mev=s.energy_min_mev, energy_max_mev=s.energy_max_mev)
        ref = fit_wiggle(t_counts, self.edges, "5", start_us=s.start_us, end_us=s.end_us, omega_ref_rad_per_us=s.omega_ref_rad_per_us, tau_guess_us=s.gamma_tau_us, method="T")
        return measure_asymmetry(counts2d, self.edges, energy_edges, start_us=s.start_us, end_us=s.end_us, omega_rad_per_us=ref.omega_a, phi=ref.params["phi"], tau_us=ref.params["tau_us"])

    def measured_weights(self, t_us: np.ndarray, energy_mev: np.ndarray, seed: int):
        """A-method weights from all hits, recorded in the JSON extras."""
        energy_edges = np.linspace(0.0, 1.2 * self.kin.e_max_mev, ENERGY_BINS + 1)
        asym = self.asymmetry(time_energy_histogram(self.randomized(t_us, seed), energy_mev, self.edges, energy_edges), energy_edges)
        self.extra["asymmetry_weights"] = {
            "source": asym.source,
            "energy_edges_mev": energy_edges.tolist(),
            "asymmetry": asym.asymmetry.tolist(),
            "error": [e if math.isfinite(e) else None for e in asym.error],
        }
        return asym

    def fit_events(self, t_us: np.ndarray, energy_mev: np.ndarray, pileup, seed: int, asym=None) -> tuple[FitResult, np.ndarray, np.ndarray | None]:
        """Histogram hits with the method (and pileup subtraction) and fit; returns (fit, values, variance)."""
        o, s = self.options, self.settings
        lo, hi = self.energy_cut()
        t_rand = self.randomized(t_us, seed)
        if o.method == "R":
            keep = (energy_mev >= lo) & (energy_mev < hi)
            v, u = ratio_histograms(t_rand[keep], self.edges, math.pi / s.omega_ref_rad_per_us, s.gamma_tau_us, seed=stream(seed, RATIO_SPLIT))
            kw = self.fit_kwargs()
            kw.pop("method")
            fit = fit_ratio(v, u, self.edges, start_us=s.start_us, end_us=s.end_us, half_period_us=math.pi / s.omega_ref_rad_per_us, weighting_tau_us=s.gamma_tau_us, blinder=self.blinder, **kw)
            return fit, v, u

        def weight(e_mev):
            return hit_weights(o.method, e_mev, threshold_mev=lo, energy_max_mev=hi, asymmetry=asym)

        values, variance = weighted_time_histogram(t_rand, weight(energy_mev), self.edges)
        if pileup is not None:
            from analysis.pileup import pileup_histogram

            shift = stream(seed, PILEUP_SHIFT).uniform(-0.5 * s.randomize_us, 0.5 * s.randomize_us, size=pileup.time_ns.size)
            pu_values, pu_variance = pileup_histogram(pileup, self.edges, weight, time_shift_us=shift)
            values, variance = values - pu_values, variance + pu_variance
        poisson = o.method == "T" and pileup is None
        return self.fit(values, None if poisson else variance), values, None if poisson else variance

    def fit_histogram(self, hist) -> tuple[FitResult, np.ndarray, np.ndarray | None]:
        """T/A/Q fit of a TH1 (T only), TH2 or TH3 read with ``hist``.

        Weighted histograms are fitted with their Sumw2 variances; a TH3's calorimeter bins are
        summed, and fitted one by one with ``per_station``.
        """
        o = self.options
        for option in ("pileup", "gain"):
            if getattr(o, option):
                raise ConfigError(f"{option}: needs hits, not a histogram (--hist)")
        if o.per_station and hist.stations is None:
            raise ConfigError("per-station: needs hits or a TH3 (time × energy × calorimeter) histogram")
        if o.method == "R":
            raise ConfigError("method: the R method needs hits (the subsets are shifted by T_a/2), not a histogram")
        counts, sumw2 = hist.counts, hist.variance
        if hist.stations is not None:
            counts, sumw2 = counts.sum(axis=2), None if sumw2 is None else sumw2.sum(axis=2)
        if isinstance(hist.edges, tuple):
            time_edges_ns, energy_edges = hist.edges
            self.edges = time_edges_ns * 1e-3
            lo, hi = self.energy_cut()
            asym = self.asymmetry(counts, energy_edges) if o.method == "A" else None
            weights = energy_bin_weights(o.method, energy_edges, threshold_mev=lo, energy_max_mev=hi, asymmetry=asym)

            def collapse(n, v):
                values, variance = collapse_energy(n, weights)
                if v is not None:
                    return values, v @ (weights * weights)
                return values, None if o.method == "T" else variance
        else:
            if o.method != "T":
                raise ConfigError(f"method: the {o.method} method needs energies; give a TH2 (time × energy) or a tree")
            self.edges = hist.edges * 1e-3

            def collapse(n, v):
                return n, v

        if o.per_station:
            stations = {}
            for index, station in enumerate(hist.stations.tolist()):
                n, v = hist.counts[:, :, index], None if hist.variance is None else hist.variance[:, :, index]
                if n.any():
                    try:
                        stations[str(station)] = self.fit(*collapse(n, v)).to_dict()
                    except FitError as exc:
                        raise FitError(f"station {station}: {exc}") from None
            self.extra["stations"] = stations
        values, variance = collapse(counts, sumw2)
        return self.fit(values, variance), values, variance


def _loss_spectrum(options: FitOptions, events: EventData | None, cfg: SimConfig, settings: WiggleSettings, kin: RingKinematics) -> LossSpectrum:
    """Lost-muon spectrum ℓ(t) from the loss-tree times or from the triple coincidences among the clusters."""
    if options.loss_tree:
        try:
            times_ns = read_events(list(options.files), tree=options.loss_tree, time_branch=options.time_branch, time_unit=options.time_unit, energy_branch=None).time_ns
        except InputError as exc:
            if "has no entries" not in str(exc):
                raise
            raise InputError(f"{exc}: the run recorded no lost muons (a fast-mode run loses muons only with fastmodel.loss_fraction > 0); fit a model without the loss term (5, 9, 13)") from None
    else:
        from analysis.lost_muons import station_window_ns, triple_coincidences

        if cfg.detector.model != "calorimeters":
            raise ConfigError(f"loss-coincidences: needs calorimeter stations, the {cfg.ring.name} detector is {cfg.detector.model!r}")
        if events is not None:
            events.require_fills("loss-coincidences")
        if events is None or events.energy_mev is None or events.calo is None or events.fill is None:
            raise ConfigError("loss-coincidences: needs a tree with energy, calo and fill branches")
        window_ns = station_window_ns(cfg.ring.radius_m, cfg.ring.n_detectors, kin.beta)
        times_ns = triple_coincidences(events.fill, events.calo, events.time_ns, events.energy_mev, cfg.ring.n_detectors, window_ns)
    edges = np.arange(0.0, settings.end_us + LOSS_BIN_US, LOSS_BIN_US)
    return LossSpectrum(edges, np.histogram(times_ns * 1e-3, bins=edges)[0], settings.gamma_tau_us)


def _check_options(options: FitOptions) -> None:
    if "loss" in parse_model(options.model).terms and not (options.loss_tree or options.loss_coincidences):
        raise ConfigError(
            f"model: {options.model!r} has the lost-muon term, which needs a lost-muon spectrum: give --loss-tree TREE (e.g. lost_muons of a ringsim file) or --loss-coincidences, or fit a model without it (5, 9, 13)"
        )
    if options.method == "R" and (options.scan_start_us is not None or options.scan_end_us is not None):
        raise ConfigError("scan: start/end-time scans are available for the T, A and Q methods")


def _time_scale_warning(options: FitOptions, settings: WiggleSettings, events: EventData | None, hist) -> str | None:
    """ConfigError for times that miss the fit window by orders of magnitude; a warning if their lifetime is off (:mod:`analysis.units`)."""
    if hist is None:
        keep = slice(None) if events.energy_mev is None else (events.energy_mev >= settings.energy_min_mev) & (events.energy_mev < settings.energy_max_mev)
        times_ns, weights, source = events.time_ns[keep], None, events.source
    else:
        edges = hist.edges[0] if isinstance(hist.edges, tuple) else hist.edges
        times_ns, weights, source = 0.5 * (edges[:-1] + edges[1:]), hist.counts.reshape(len(edges) - 1, -1).sum(axis=1), hist.source
    return time_scale_check(times_ns, (settings.start_us * 1e3, settings.end_us * 1e3), settings.gamma_tau_us * 1e3, options.time_unit, source, weights=weights)


def fit_file(options: FitOptions) -> FileFit:
    """Read the files, correct, histogram by method, fit, and scan the start or end time.

    Raises
    ------
    ringsim.errors.InputError
        A file, tree, branch or histogram that cannot be read as asked.
    ringsim.errors.ConfigError
        Inconsistent options (e.g. pileup on a histogram, the R method with scans).
    """
    _check_options(options)
    events = hist = None
    if options.hist:
        hist = read_histogram(list(options.files), options.hist, time_unit=options.time_unit, energy_unit=options.energy_unit)
        provenance = hist.provenance
    else:
        events = read_events(
            list(options.files),
            tree=options.tree,
            time_branch=options.time_branch,
            energy_branch=options.energy_branch,
            calo_branch=options.calo_branch,
            time_unit=options.time_unit,
            energy_unit=options.energy_unit,
            selection=options.selection,
            fill_branch=options.fill_branch,
        )
        provenance = events.provenance
    cfg, config_source = analysis_config(options, provenance)
    kin = ring_kinematics(cfg)
    settings = ring_settings(cfg, options.start_us, options.end_us, options.threshold_mev)
    scan_us = [*(() if options.scan_start_us is None else options.scan_start_us), *(() if options.scan_end_us is None else options.scan_end_us)]
    check_fit_window(settings.start_us, settings.end_us, settings.bin_width_us, _data_end_us(events, hist), end_given=options.end_us is not None, scan_us=scan_us)
    warning = _time_scale_warning(options, settings, events, hist)
    freqs = beam_frequencies_mhz(kin.omega_c_rad_per_s / (2.0 * math.pi) * 1e-6, kin.field_index) | options.frequencies_mhz
    loss = _loss_spectrum(options, events, cfg, settings, kin) if options.loss_tree or options.loss_coincidences else None
    blinder = Blinder(options.blind, settings.omega_ref_rad_per_us) if options.blind is not None else None
    analysis = _Analysis(options, settings, kin, blinder, freqs, loss)
    extra: dict = {"ring": cfg.ring.name, "config_source": config_source}

    warnings: list[str] = [warning] if warning else []
    if hist is not None:
        if options.pileup is None and cfg.analysis.pileup_correction:
            warnings.append("pileup: not corrected in a histogram (--hist); a pileup-subtracted histogram is fitted as it is")
        fit, values, variance = analysis.fit_histogram(hist)
    else:
        fit, values, variance = _fit_hits(options, analysis, events, extra, _pileup_wanted(options, cfg, events, warnings))
    extra |= analysis.extra
    quality = fit_quality(fit)
    extra["fit_p_value"] = quality
    if quality < MIN_FIT_P_VALUE:
        warnings.append(
            f"fit quality: χ²/ndf = {fit.chi2:.1f}/{fit.ndf} = {fit.chi2 / max(fit.ndf, 1):.2f} (p = {quality:.1e}): the model does not describe the data; "
            "check the time and energy units (--time-unit, --energy-unit), the model (--model) and the fit window"
        )
    scans = {}
    for kind, times in (("start", options.scan_start_us), ("end", options.scan_end_us)):
        if times is None:
            continue
        from analysis.scans import end_time_scan, start_time_scan

        kw = analysis.fit_kwargs() | {"variance": variance, "blinder": blinder}
        scans[kind] = (
            start_time_scan(values, analysis.edges, times, end_us=settings.end_us, **kw) if kind == "start" else end_time_scan(values, analysis.edges, times, start_us=settings.start_us, **kw)
        )
        extra[f"scan_{kind}"] = scans[kind].to_dict()
    if warnings:
        extra["warnings"] = warnings
    return FileFit(fit, values, variance, analysis.edges, cfg, settings, freqs, scans, extra, warnings)


def _data_end_us(events: EventData | None, hist) -> float:
    """Time of the last hit, or the last time edge of the histogram, in μs."""
    if hist is not None:
        return float((hist.edges[0] if isinstance(hist.edges, tuple) else hist.edges)[-1]) * 1e-3
    return float(np.max(events.time_ns, initial=0.0)) * 1e-3


def fit_quality(fit: FitResult) -> float:
    """P-value of the fit's χ² (Poisson or binomial deviance, or least squares) for its ndf."""
    from scipy.stats import chi2

    return float(chi2.sf(fit.chi2, fit.ndf)) if fit.ndf > 0 else 1.0


def _pileup_wanted(options: FitOptions, cfg: SimConfig, events: EventData, warnings: list[str]) -> bool:
    """Whether to subtract pileup: as asked, else as the configuration says where the data allow it."""
    if options.pileup is not None:
        return options.pileup
    if not cfg.analysis.pileup_correction:
        return False
    reason = None
    if options.method == "R":
        reason = "the R method has no shadow-window subtraction"
    elif events.fill is None or events.calo is None:
        reason = "the hits have no fill and calorimeter identity (name them with --fill-branch and --calo-branch)"
    if reason is not None:
        warnings.append(f"pileup: not corrected, {reason}; pass --no-pileup to fit without it knowingly")
        return False
    return True


def _fit_hits(options: FitOptions, analysis: _Analysis, events: EventData, extra: dict, subtract_pileup: bool):
    """Gain correction, pileup, method histogram and fit of the hits; per-station fits when asked."""
    if events.energy_mev is None:
        raise ConfigError("energy branch: the fit methods need positron energies; name the branch with --energy-branch")
    t_ns, energy, calo, fill = events.time_ns, events.energy_mev, events.calo, events.fill
    if options.gain is not None:
        from analysis.gain import correct_gain, exponential_gain

        energy = correct_gain(t_ns, energy, exponential_gain(*options.gain))
    pileup = None
    if subtract_pileup:
        from analysis.pileup import apply_dead_time, shadow_pileup

        if options.method == "R":
            raise ConfigError("pileup: shadow-window subtraction is not available with the R method")
        events.require_fills("pileup")
        merged = apply_dead_time(t_ns, energy, calo, fill, dead_time_ns=options.dead_time_ns)
        t_ns, energy, calo, fill = merged["time_ns"], merged["energy_mev"], merged["calo"], merged["fill"]
        pileup = shadow_pileup(t_ns, energy, calo, fill, dead_time_ns=options.dead_time_ns, gap_ns=options.shadow_gap_ns, window_ns=options.shadow_window_ns)
        extra["pileup"] = {
            "corrected": True,
            "shadow_pairs": pileup.n_pairs,
            "dead_time_ns": options.dead_time_ns,
            "gap_ns": options.shadow_gap_ns,
            "window_ns": options.shadow_window_ns,
            "fill_key": events.fill_key,
        }
    t_us = t_ns * 1e-3
    asym = analysis.measured_weights(t_us, energy, options.seed) if options.method == "A" else None
    fit, values, variance = analysis.fit_events(t_us, energy, pileup, options.seed, asym)
    if options.per_station:
        from analysis.methods import per_station_fits

        if calo is None:
            raise ConfigError("per-station: the tree has no calorimeter branch; name it with --calo-branch")

        def one(mask):
            sub = None if pileup is None else pileup.select(pileup.calo == int(calo[mask][0]))
            return analysis.fit_events(t_us[mask], energy[mask], sub, options.seed, asym)[0]

        extra["stations"] = {str(k): f.to_dict() for k, f in per_station_fits(calo, one).items()}
    return fit, values, variance


def write_fit_plots(result: FileFit, *, plot=None, residual_plot=None, scan_plot=None, correlation_plot=None, pulls_plot=None) -> None:
    """Draw the asked plots of a fitted file (PNG paths; ``None`` skips a plot)."""
    from analysis import plots

    fit, values, variance, edges = result.fit, result.values, result.variance, result.edges_us
    if fit.method == "R":
        v, u = values, variance  # V and U histograms
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(v + u > 0, (v - u) / (v + u), 0.0)
            ratio_var = np.where(v + u > 0, np.maximum(1.0 - ratio**2, 1e-12) / np.maximum(v + u, 1.0), 1.0)
        values, variance = ratio, ratio_var
        if plot:
            plots.residual_fft_plot(values, edges, fit, plot, variance=variance)
    elif plot:
        plots.wiggle_plot(values, edges, fit, fit.expected_counts, plot)
    if residual_plot:
        marks = {f"f_{k}": f for k, f in result.frequencies_mhz.items()} | {"f_a": fit.omega_a / (2.0 * math.pi)}
        plots.residual_fft_plot(values, edges, fit, residual_plot, frequencies_mhz=marks, variance=variance)
    if scan_plot:
        plots.scan_plot(result.scans.get("start") or result.scans["end"], scan_plot)
    if correlation_plot:
        plots.correlation_plot(fit, correlation_plot)
    if pulls_plot:
        _, pull = plots.fit_pulls(values, edges, fit, variance)
        plots.pulls_plot(pull, pulls_plot, title=f"bin pulls of the {fit.model} fit ({fit.method}-method)")
