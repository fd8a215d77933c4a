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
MAX_MUONS_PER_FILL = 1 << 20  # a fill is simulated in memory at once
HISTOGRAM_ENERGY_BINS = 16  # energy bins of a run file's per-station histograms
MAX_HISTOGRAM_CELLS = 1 << 25  # stations × time bins × energy bins of those histograms (256 MiB of counts)

# Checks named in each field's metadata: predicate and the phrase used in the error message.
_CHECKS = {
    "positive": (lambda v: v > 0, "a number > 0"),
    "nonnegative": (lambda v: v >= 0, "a number ≥ 0"),
    "open_unit": (lambda v: 0 < v < 1, "a number in the open interval (0, 1)"),
    "unit": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "polarization": (lambda v: -1 <= v <= 1, "a number in [-1, 1]"),
    "any": (lambda v: True, "a finite number"),
}


def _num(check: str) -> Any:
    return field(metadata={"check": check})


def _nums(check: str) -> Any:
    """A list of numbers, each passing ``check`` (stored as a tuple)."""
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
    """The raw preset of a ring as nested dicts."""
    if ring not in RINGS:
        raise ConfigError(f"ring: unknown ring {ring!r}; expected one of {', '.join(RINGS)}")
    text = resources.files("ringsim.presets").joinpath(f"{ring}.toml").read_text(encoding="utf-8")
    return _read_toml(text, f"preset {ring}.toml")


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


def histogram_time_bins(analysis: AnalysisConfig) -> int:
    """Time bins of a run file's per-station histograms: ``analysis.bin_width_ns`` wide, to 10 % beyond the fit end."""
    return int(math.ceil(1.1 * analysis.fit_end_us * 1e3 / analysis.bin_width_ns))
