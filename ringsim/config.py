"""Configuration: TOML presets and user files → frozen, validated dataclasses.

A configuration starts from a ring preset (``ringsim/presets/<ring>.toml``); a user file and
``section.key=value`` overrides are laid over it. Every value is checked; a bad one raises
:class:`~ringsim.errors.ConfigError` naming the key (``beam.momentum_spread``) and what was expected.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

from ringsim.errors import ConfigError

RINGS = ("fnal", "jparc")
# presets: the rings, and calibrated presets laid over their ring (the beam of one published data set)
PRESETS = {"fnal": "fnal", "jparc": "jparc", "fnal-run1": "fnal", "fnal-run23": "fnal"}
MAX_MUONS_PER_FILL = 1 << 20  # a fill is simulated in memory at once
HISTOGRAM_ENERGY_BINS = 16  # energy bins of a run file's per-station histograms
MAX_HISTOGRAM_CELLS = 1 << 25  # stations × time bins × energy bins of those histograms (256 MiB of counts)

MAX_FIT_BINS = 1 << 20  # time bins of a fit histogram (the A method keeps 48 energy bins of each: 400 MB)
# Checks named in each field's metadata: predicate and the phrase used in the error message.
_CHECKS = {
    "positive": (lambda v: v > 0, "a number > 0"),
    "nonnegative": (lambda v: v >= 0, "a number ≥ 0"),
    "open_unit": (lambda v: 0 < v < 1, "a number in the open interval (0, 1)"),
    "unit": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "polarization": (lambda v: -1 <= v <= 1, "a number in [-1, 1]"),
    "any": (lambda v: True, "a finite number"),
}

# Bounds that keep the ring physical (and the numbers far from overflow): key → (lowest, highest, what it means).
PHYSICAL_LIMITS = {
    "ring.radius_m": (0.01, 1000.0, "a ring of 1 cm to 1 km"),
    "ring.field_t": (1e-3, 100.0, "1 mT to 100 T"),
    "ring.n_detectors": (1, 1000, "1 to 1000 stations"),
    "muon.a_mu": (0.0, 0.1, "an anomaly below 0.1"),
    "muon.edm_eta": (-1.0, 1.0, "|η| ≤ 1"),
    "beam.momentum_offset": (-0.1, 0.1, "|Δp/p| ≤ 10 %"),
    "beam.momentum_spread": (0.0, 0.1, "an rms Δp/p ≤ 10 %"),
    "beam.spin_phase_rad": (-1e3, 1e3, "|angle| ≤ 1000 rad"),
    "detector.energy_resolution_stochastic": (0.0, 10.0, "σ_E/E terms ≤ 10"),
    "detector.energy_resolution_constant": (0.0, 10.0, "σ_E/E terms ≤ 10"),
    "detector.energy_min_mev": (0.0, 1e9, "at most 1e9 MeV"),
    "detector.time_resolution_ns": (0.0, 1e6, "at most 1 ms"),
    "detector.resolving_time_ns": (0.0, 1e6, "at most 1 ms"),
    "detector.gain_sag_amplitude": (-1.0, 1.0, "|C| ≤ 1 (a gain that stays ≥ 0)"),
    "detector.gain_drift_per_kfill": (-1.0, 1.0, "|drift| ≤ 1 per 1000 fills"),
    "analysis.energy_max_mev": (0.0, 1e9, "at most 1e9 MeV"),
    "analysis.fit_start_us": (0.0, 1e6, "at most 1 s"),
    "analysis.fit_end_us": (0.0, 1e6, "at most 1 s"),
    "tracking.steps_per_turn": (1, 100_000, "1 to 1e5 steps per turn"),
    "tracking.temperature_c": (-273.15, 1000.0, "-273.15 to 1000 °C"),
    "esq.station_start_deg": (0.0, 360.0, "an azimuth in [0, 360] degrees"),
    "esq.short_deg": (0.0, 360.0, "at most 360 degrees"),
    "esq.gap_deg": (0.0, 360.0, "at most 360 degrees"),
    "esq.long_deg": (0.0, 360.0, "at most 360 degrees"),
    "esq.rc_fraction": (-1.0, 1.0, "|f| ≤ 1"),
    "esq.scrape_us": (0.0, 1e6, "at most 1 s"),
    "esq.scrape_ramp_us": (0.0, 1e6, "at most 1 s"),
    "kicker.start_deg": (0.0, 360.0, "an azimuth in [0, 360] degrees"),
    "kicker.end_deg": (0.0, 360.0, "an azimuth in [0, 360] degrees"),
    "kicker.strength": (0.0, 10.0, "at most 10 design kicks"),
    "kicker.pulse_ns": (0.0, 1e6, "at most 1 ms"),
    "collimators.azimuth_deg": (0.0, 360.0, "an azimuth in [0, 360] degrees"),
    "perturbations.normal_ppm": (-1e5, 1e5, "|b_k| ≤ 1e5 ppm (10 %)"),
    "perturbations.skew_ppm": (-1e5, 1e5, "|a_k| ≤ 1e5 ppm (10 %)"),
    "perturbations.azimuthal_ppm": (-1e5, 1e5, "|ε| ≤ 1e5 ppm (10 %)"),
    "perturbations.radial_field_ppm": (-1e5, 1e5, "|B_r/B| ≤ 1e5 ppm (10 %)"),
    "perturbations.azimuthal_harmonic": (0, 1000, "m ≤ 1000"),
    "fastmodel.tune_x": (0.0, 1.0, "a weak-focusing tune ≤ 1 (0: from the optics)"),
    "fastmodel.tune_y": (0.0, 1.0, "a weak-focusing tune ≤ 1 (0: from the optics)"),
}
# Lengths that must fit inside the storage aperture (ring.aperture_radius_m).
APERTURE_LENGTHS = (
    "beam.radial_betatron_width_m",
    "beam.vertical_width_m",
    "esq.scrape_x_m",
    "esq.scrape_y_m",
    "fastmodel.cbo_amplitude_m",
    "perturbations.reference_radius_m",
    "kicker.injection_offset_m",
)


def _num(check: str) -> Any:
    return field(metadata={"check": check})


def _nums(check: str) -> Any:
    """Return a list of numbers, each passing ``check`` (stored as a tuple)."""
    return field(metadata={"check": check, "list": True})


@dataclass(frozen=True)
class RingConfig:
    """Ring geometry and guide field."""

    name: str
    radius_m: float = _num("positive")
    field_t: float = _num("positive")
    field_index: float = _num("open_unit")
    focusing: str = field(metadata={"choices": ("electric", "magnetic")})
    field_model: str = field(metadata={"choices": ("linear", "solenoid")})  # guide field: B₀ plus linear focusing, or the J-PARC coil model
    aperture_radius_m: float = _num("positive")
    n_detectors: int = _num("positive")


@dataclass(frozen=True)
class MuonConfig:
    """Muon properties given to the simulation as truth."""

    a_mu: float = _num("positive")
    edm_eta: float = _num("any")


@dataclass(frozen=True)
class BeamConfig:
    """Stored-beam phase space, time profile and polarisation."""

    momentum_offset: float = _num("any")
    momentum_spread: float = _num("nonnegative")
    radial_betatron_width_m: float = _num("nonnegative")
    vertical_width_m: float = _num("nonnegative")
    bunch_length_ns: float = _num("nonnegative")
    polarization: float = _num("polarization")
    spin_phase_rad: float = _num("any")
    injection: str = field(metadata={"choices": ("gaussian", "spiral")})  # track mode: Gaussian beam at φ = 0, or the J-PARC spiral injection


@dataclass(frozen=True)
class DetectorConfig:
    """Detector model and response: geometry, resolutions, efficiency, pileup, gain."""

    model: str = field(metadata={"choices": ("calorimeters", "vanes", "simple")})
    energy_resolution_stochastic: float = _num("nonnegative")
    energy_resolution_constant: float = _num("nonnegative")
    efficiency: float = _num("unit")
    energy_min_mev: float = _num("nonnegative")
    time_resolution_ns: float = _num("nonnegative")
    resolving_time_ns: float = _num("nonnegative")  # pulse-pair resolution: closer hits merge (pileup)
    gain_sag_amplitude: float = _num("any")  # in-fill gain E → E(1 − C e^{−t/τ_g})
    gain_sag_tau_us: float = _num("positive")
    gain_drift_per_kfill: float = _num("any")  # slow relative gain change per 1000 fills


@dataclass(frozen=True)
class RunConfig:
    """Fill structure of a run."""

    muons_per_fill: int = _num("positive")


@dataclass(frozen=True)
class FastModelConfig:
    """Parametric beam model of fast mode (calibrate it with :func:`ringsim.cbo_calibration.calibrate_from_tracking`)."""

    cbo_amplitude_m: float = _num("nonnegative")  # coherent radial betatron amplitude at injection
    cbo_phase_rad: float = _num("any")
    cbo_tau_us: float = _num("positive")  # decoherence time of the coherent motion
    tune_x: float = _num("nonnegative")  # 0: from the ring's linear optics
    tune_y: float = _num("nonnegative")
    loss_fraction: float = _num("unit")  # muons lost (not decaying in the ring), loss times ∝ e^{−t/τ_loss}
    loss_tau_us: float = _num("positive")


@dataclass(frozen=True)
class AnalysisConfig:
    """Default ω_a analysis of the ring: histogram, fit window, energy selection, blinding reference, pileup."""

    bin_width_ns: float = _num("positive")
    fit_start_us: float = _num("nonnegative")
    fit_end_us: float = _num("positive")
    energy_min_mev: float = _num("nonnegative")
    energy_max_mev: float = _num("positive")
    blinding_reference_mhz: float = _num("positive")
    pileup_correction: bool = field(metadata={"bool": True})  # shadow-window subtraction in the default fit


@dataclass(frozen=True)
class TrackingConfig:
    """Integrator and field-measurement settings."""

    steps_per_turn: int = _num("positive")
    temperature_c: float = _num("any")


@dataclass(frozen=True)
class EsqConfig:
    """Electrostatic quadrupoles: continuous (smooth) or discrete stations of short and long plates."""

    model: str = field(metadata={"choices": ("continuous", "discrete", "none")})
    station_start_deg: tuple = _nums("nonnegative")
    short_deg: float = _num("nonnegative")
    gap_deg: float = _num("nonnegative")
    long_deg: float = _num("nonnegative")
    rc_fraction: float = _num("any")  # κ(t) = κ₀(1 − rc_fraction·e^{−t/τ_RC})
    rc_tau_us: float = _num("positive")
    scrape_x_m: float = _num("any")  # scraping: radial offset of the field centre, E_r = κ(x − x_s)
    scrape_y_m: float = _num("any")  # vertical offset, E_y = −κ(y − y_s)
    scrape_us: float = _num("nonnegative")  # offsets held from injection to this time
    scrape_ramp_us: float = _num("nonnegative")  # then returned linearly to zero over this time


@dataclass(frozen=True)
class KickerConfig:
    """Injection: offset at the inflector exit and the pulsed kicker that moves the beam onto orbit."""

    enabled: bool = field(metadata={"bool": True})
    injection_offset_m: float = _num("any")
    start_deg: float = _num("nonnegative")
    end_deg: float = _num("nonnegative")
    strength: float = _num("nonnegative")  # 1 = the kick that centres the design muon
    pulse_ns: float = _num("positive")  # full width of the half-sine pulse


@dataclass(frozen=True)
class CollimatorConfig:
    """Circular collimators (radius ring.aperture_radius_m) at fixed azimuths; empty: aperture everywhere."""

    azimuth_deg: tuple = _nums("nonnegative")


@dataclass(frozen=True)
class PerturbationConfig:
    """Static field errors: B_y + iB_x += B₀Σ(b_k + i a_k)((x+iy)/r₀)^k (ppm), B_y·(1 + ε cos mφ), radial B."""

    reference_radius_m: float = _num("positive")
    normal_ppm: tuple = _nums("any")  # b_1 (quadrupole), b_2 (sextupole), …
    skew_ppm: tuple = _nums("any")
    azimuthal_ppm: float = _num("any")
    azimuthal_harmonic: int = _num("nonnegative")
    radial_field_ppm: float = _num("any")


@dataclass(frozen=True)
class SimConfig:
    """A complete, validated configuration."""

    ring: RingConfig
    muon: MuonConfig
    beam: BeamConfig
    detector: DetectorConfig
    analysis: AnalysisConfig
    tracking: TrackingConfig
    esq: EsqConfig
    kicker: KickerConfig
    collimators: CollimatorConfig
    perturbations: PerturbationConfig
    run: RunConfig
    fastmodel: FastModelConfig

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Return the configuration as nested dicts (section → key → value)."""
        return dataclasses.asdict(self)


_SECTION_CLASSES = {
    "ring": RingConfig,
    "muon": MuonConfig,
    "beam": BeamConfig,
    "detector": DetectorConfig,
    "analysis": AnalysisConfig,
    "tracking": TrackingConfig,
    "esq": EsqConfig,
    "kicker": KickerConfig,
    "collimators": CollimatorConfig,
    "perturbations": PerturbationConfig,
    "run": RunConfig,
    "fastmodel": FastModelConfig,
}


def _read_toml(text: str, origin: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}: invalid TOML: {exc}") from None


def preset_dict(ring: str) -> dict[str, Any]:
    """Return the raw preset as nested dicts: a ring's (``fnal``, ``jparc``) or a calibrated one laid over its ring's (``fnal-run1``)."""
    if ring not in PRESETS:
        raise ConfigError(f"ring: unknown preset {ring!r}; expected one of {', '.join(PRESETS)}")
    data = _read_toml(resources.files("ringsim.presets").joinpath(f"{PRESETS[ring]}.toml").read_text(encoding="utf-8"), f"preset {PRESETS[ring]}.toml")
    if ring != PRESETS[ring]:
        _merge(data, _read_toml(resources.files("ringsim.presets").joinpath(f"{ring}.toml").read_text(encoding="utf-8"), f"preset {ring}.toml"), f"preset {ring}.toml")
    return data


def _merge(base: dict[str, Any], overlay: dict[str, Any], origin: str) -> None:
    for section, values in overlay.items():
        if section not in _SECTION_CLASSES:
            raise ConfigError(f"{origin}: unknown section [{section}]; expected one of {', '.join(_SECTION_CLASSES)}")
        if not isinstance(values, dict):
            raise ConfigError(f"{origin}: [{section}] must be a table of key = value pairs")
        known = {f.name for f in fields(_SECTION_CLASSES[section])}
        for key, value in values.items():
            if key not in known:
                raise ConfigError(f"{origin}: unknown key {section}.{key}; expected one of {', '.join(sorted(known))}")
            base[section][key] = value


def _parse_override(item: str) -> tuple[str, str, Any]:
    if "=" not in item or "." not in item.split("=", 1)[0]:
        raise ConfigError(f"override {item!r}: expected section.key=value")
    dotted, raw = item.split("=", 1)
    section, key = dotted.strip().split(".", 1)
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return section, key, value


def _build_section(section: str, values: dict[str, Any]) -> Any:
    cls = _SECTION_CLASSES[section]
    kwargs = {}
    for f in fields(cls):
        name = f"{section}.{f.name}"
        if f.name not in values:
            raise ConfigError(f"{name}: missing")
        value = values[f.name]
        if "choices" in f.metadata:
            if value not in f.metadata["choices"]:
                raise ConfigError(f"{name}: expected one of {', '.join(f.metadata['choices'])}, got {value!r}")
        elif f.metadata.get("bool"):
            if not isinstance(value, bool):
                raise ConfigError(f"{name}: expected true or false, got {value!r}")
        elif f.metadata.get("list"):
            if not isinstance(value, list):
                raise ConfigError(f"{name}: expected a list of numbers, got {value!r}")
            ok, phrase = _CHECKS[f.metadata["check"]]
            for item in value:
                if isinstance(item, bool) or not isinstance(item, (int, float)) or not math.isfinite(item) or not ok(item):
                    raise ConfigError(f"{name}: every element must be {phrase}, got {item!r}")
            value = tuple(float(v) for v in value)
        elif "check" in f.metadata:
            ok, phrase = _CHECKS[f.metadata["check"]]
            is_int = f.type in ("int", int)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (is_int and not isinstance(value, int)):
                kind = "an integer" if is_int else "a number"
                raise ConfigError(f"{name}: expected {kind}, got {value!r}")
            if not math.isfinite(value) or not ok(value):
                raise ConfigError(f"{name}: expected {phrase}, got {value!r}")
            value = int(value) if is_int else float(value)
        elif not isinstance(value, str):
            raise ConfigError(f"{name}: expected a string, got {value!r}")
        if name in PHYSICAL_LIMITS:
            lo, hi, meaning = PHYSICAL_LIMITS[name]
            for item in value if isinstance(value, tuple) else (value,):
                if not lo <= item <= hi:
                    raise ConfigError(f"{name}: expected a value in [{lo:g}, {hi:g}] ({meaning}), got {item!r}")
        kwargs[f.name] = value
    return cls(**kwargs)


def load_config(ring: str = "fnal", path: str | Path | None = None, overrides: list[str] | None = None) -> SimConfig:
    """Build a validated configuration.

    Parameters
    ----------
    ring : preset to start from, ``"fnal"`` or ``"jparc"``.
    path : optional user TOML file laid over the preset (same sections and keys).
    overrides : ``"section.key=value"`` strings laid over both (values parsed as TOML literals).
    """
    data = preset_dict(ring)
    if path is not None:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read configuration: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: invalid TOML: not UTF-8 text") from None
        _merge(data, _read_toml(text, str(path)), str(path))
    return _built(data, overrides)


def config_from_dict(stored: dict[str, Any], overrides: list[str] | None = None, origin: str = "stored configuration") -> SimConfig:
    """Rebuild and validate a configuration from :meth:`SimConfig.to_dict` output (e.g. a file's provenance).

    Sections or keys it lacks (a file written by an older ringsim) take the values of the preset of
    its ring; ``overrides`` are laid over it as in :func:`load_config`.
    """
    ring = stored.get("ring", {}).get("name") if isinstance(stored.get("ring"), dict) else None
    if ring not in RINGS:
        raise ConfigError(f"{origin}: ring.name must be one of {', '.join(RINGS)}, got {ring!r}")
    data = preset_dict(ring)
    _merge(data, stored, origin)
    return _built(data, overrides)


def _built(data: dict[str, Any], overrides: list[str] | None) -> SimConfig:
    """Lay the overrides over ``data``, build every section and check the cross-section rules."""
    for item in overrides or []:
        section, key, value = _parse_override(item)
        _merge(data, {section: {key: value}}, "override")
    cfg = SimConfig(**{s: _build_section(s, data[s]) for s in _SECTION_CLASSES})
    _check_physical(cfg)
    if cfg.analysis.fit_end_us <= cfg.analysis.fit_start_us:
        raise ConfigError("analysis.fit_end_us: must exceed analysis.fit_start_us")
    if cfg.run.muons_per_fill > MAX_MUONS_PER_FILL:
        raise ConfigError(f"run.muons_per_fill: expected at most {MAX_MUONS_PER_FILL} (a fill is simulated in memory at once), got {cfg.run.muons_per_fill}")
    cells = cfg.ring.n_detectors * histogram_time_bins(cfg.analysis) * HISTOGRAM_ENERGY_BINS
    if cells > MAX_HISTOGRAM_CELLS:
        raise ConfigError(
            f"analysis.bin_width_ns, analysis.fit_end_us, ring.n_detectors: {cfg.ring.n_detectors} stations × {histogram_time_bins(cfg.analysis)} time bins × "
            f"{HISTOGRAM_ENERGY_BINS} energy bins make {cells} histogram cells, above {MAX_HISTOGRAM_CELLS}; use wider bins, a shorter fit or fewer stations"
        )
    if cfg.analysis.energy_max_mev <= cfg.analysis.energy_min_mev:
        raise ConfigError("analysis.energy_max_mev: must exceed analysis.energy_min_mev")
    if cfg.esq.model != "none" and cfg.ring.focusing != "electric":
        raise ConfigError(f"esq.model: {cfg.esq.model!r} needs ring.focusing = 'electric'; use 'none' for a magnetic ring")
    if cfg.ring.field_model == "solenoid" and cfg.ring.focusing != "magnetic":
        raise ConfigError("ring.field_model: 'solenoid' needs ring.focusing = 'magnetic'")
    if cfg.beam.injection == "spiral" and cfg.ring.field_model != "solenoid":
        raise ConfigError("beam.injection: 'spiral' needs ring.field_model = 'solenoid' (the J-PARC coil model)")
    if (cfg.esq.scrape_x_m or cfg.esq.scrape_y_m) and cfg.esq.model == "none":
        raise ConfigError("esq.scrape_x_m: scraping offsets need esq.model = 'continuous' or 'discrete'")
    if cfg.esq.model == "discrete" and not cfg.esq.station_start_deg:
        raise ConfigError("esq.station_start_deg: discrete quadrupoles need at least one station")
    if cfg.kicker.end_deg <= cfg.kicker.start_deg and cfg.kicker.enabled:
        raise ConfigError("kicker.end_deg: must exceed kicker.start_deg")
    return cfg


def _check_physical(cfg: SimConfig) -> None:
    """Refuse values that pass their own check but not with the others: an aperture inside the ring, a beam inside the aperture, a bunch inside the fill."""
    aperture, radius = cfg.ring.aperture_radius_m, cfg.ring.radius_m
    if not aperture < radius:
        raise ConfigError(f"ring.aperture_radius_m: expected less than ring.radius_m ({radius} m), got {aperture!r}")
    for name in APERTURE_LENGTHS:
        section, key = name.split(".")
        value = getattr(getattr(cfg, section), key)
        if abs(value) > 10.0 * aperture:
            raise ConfigError(f"{name}: expected at most 10 × ring.aperture_radius_m ({10.0 * aperture:g} m), got {value!r}")
    fill_ns = cfg.analysis.fit_end_us * 1e3
    if cfg.beam.bunch_length_ns > fill_ns:
        raise ConfigError(f"beam.bunch_length_ns: expected at most the analysed fill, analysis.fit_end_us = {fill_ns:g} ns, got {cfg.beam.bunch_length_ns!r}")


def check_fit_window(start_us: float, end_us: float, bin_width_us: float, data_end_us: float, *, end_given: bool = True, scan_us=()) -> None:
    """Refuse a fit window (and scan times) outside the data or of more than MAX_FIT_BINS bins, before histogramming.

    Parameters
    ----------
    start_us, end_us : float
        The fit window in μs.
    bin_width_us : float
        Histogram bin width in μs.
    data_end_us : float
        Time of the last hit (or the last histogram edge) in μs.
    end_given : bool
        Whether the end came from --end (a preset's end may lie beyond a short file).
    scan_us : iterable of float
        Start- and end-scan times in μs.

    Raises
    ------
    ConfigError
        Naming --start, --end or the scan.
    """
    if not (math.isfinite(end_us) and end_us / bin_width_us <= MAX_FIT_BINS):
        raise ConfigError(f"end: expected a fit end of at most {MAX_FIT_BINS} bins of {bin_width_us:g} μs ({MAX_FIT_BINS * bin_width_us:g} μs), got {end_us!r}")
    if not start_us < data_end_us:
        raise ConfigError(f"start: the fit starts at {start_us:g} μs, after the data, whose last time is {data_end_us:g} μs")
    if end_given and end_us > data_end_us + bin_width_us:
        raise ConfigError(f"end: expected a fit end within the data (last time {data_end_us:g} μs), got {end_us:g} μs")
    for t in scan_us:
        if not 0.0 <= t <= max(end_us, data_end_us + bin_width_us):
            raise ConfigError(f"scan: expected scan times in [0, {max(end_us, data_end_us):g}] μs (within the data), got {t:g}")


def histogram_time_bins(analysis: AnalysisConfig) -> int:
    """Time bins of a run file's per-station histograms: ``analysis.bin_width_ns`` wide, to 10 % beyond the fit end."""
    return int(math.ceil(1.1 * analysis.fit_end_us * 1e3 / analysis.bin_width_ns))
