"""A published measurement of a_μ from its ingredients: a TOML file → budget table, R'_μ, a_μ.

The Fermilab ratio (docs/physics.md §4):

    R'_μ = f_clock ω_a^m (1 + C_e + C_p + C_pa + C_dd + C_ml) / (f_calib ⟨ω'_p × M⟩ (1 + B_k + B_q)),

then a_μ from R'_μ with :func:`calibration.amu.amu_fnal`. A file gives either the measured
frequencies (``[omega_a] value_rad_per_us`` = ω_a^m and ``[omega_p] value_rad_per_us`` =
f_calib⟨ω'_p × M⟩), from which R'_μ is computed with the exact correction factor, or the corrected
ratio itself (``[ratio] value``), in which case the corrections are listed for the budget only.
Every correction has a value and an uncertainty in ppb and an optional correlation label: the
uncertainties of one label add linearly, the labels in quadrature (the published Run-1 totals, seed
004 Table 3, are plain quadrature sums: every line its own label). Format::

    title = "…"                  # optional
    codata = 2018                # CODATA edition for a_μ (2018 or 2022)
    temperature_c = 34.7         # T_r of ω̃'_p(T_r), °C
    [omega_a]                    # ω_a^m: value_rad_per_us (unless [ratio]), stat_ppb, syst_ppb
    [omega_p]                    # f_calib⟨ω'_p × M⟩: value_rad_per_us (unless [ratio]), syst_ppb
    [ratio]                      # optional: value = R'_μ, error (optional; else the table total)
    [corrections.C_e]            # value_ppb, error_ppb, correlation (optional), note (optional)

Names of corrections: f_clock, C_e, C_p, C_pa, C_dd, C_ml (numerator), f_calib, B_k, B_q
(denominator). Every bad key or value raises :class:`~ringsim.errors.ConfigError` naming the file
and the key.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

from calibration.amu import AmuResult, amu_fnal
from calibration.budget import Budget, BudgetLine
from ringsim.errors import ConfigError, InputError

__all__ = ["CORRECTIONS", "MeasurementResult", "evaluate_measurement", "load_measurement"]

# name → (place in R'_μ, factor group): the lines of one group are summed inside one 1 + Σ
CORRECTIONS: dict[str, tuple[str, str]] = {
    "f_clock": ("numerator", "f_clock"),
    "C_e": ("numerator", "C"),
    "C_p": ("numerator", "C"),
    "C_pa": ("numerator", "C"),
    "C_dd": ("numerator", "C"),
    "C_ml": ("numerator", "C"),
    "f_calib": ("denominator", "f_calib"),
    "B_k": ("denominator", "B"),
    "B_q": ("denominator", "B"),
}
_TOP_KEYS = ("title", "codata", "temperature_c", "omega_a", "omega_p", "ratio", "corrections")
_SECTION_KEYS = {
    "omega_a": ("value_rad_per_us", "stat_ppb", "syst_ppb"),
    "omega_p": ("value_rad_per_us", "syst_ppb"),
    "ratio": ("value", "error"),
}
_CORRECTION_KEYS = ("value_ppb", "error_ppb", "correlation", "note")
# a published R'_μ error and the table total must agree this well (relative): the error is quoted to
# two digits, so a larger difference is a typo, not rounding
_RATIO_ERR_TOLERANCE = 0.05


@dataclass(frozen=True)
class MeasurementResult:
    """R'_μ, a_μ and the budget of one measurement.

    Attributes
    ----------
    title, source : str
        The measurement's title and the file it was read from.
    budget : Budget
        Every uncertainty and correction (ppb), with the systematic total and the fundamental
        constants' share as summary rows.
    ratio, ratio_err : float
        R'_μ = ω_a/ω̃'_p(T_r) and its uncertainty.
    ratio_given : bool
        True when the file gave R'_μ itself (the corrections are then not applied again).
    amu : AmuResult
        a_μ in the Fermilab form.
    temperature_c : float
        T_r, °C.
    total_systematic_ppb, constants_error_ppb : float
        Quadrature total of all uncertainties but the ω_a statistics; the fundamental constants'
        share of the a_μ uncertainty (m_μ/m_e, μ_e/μ'_p, g_e, shielding temperature coefficient).
    """

    title: str
    source: str
    budget: Budget
    ratio: float
    ratio_err: float
    ratio_given: bool
    amu: AmuResult
    temperature_c: float
    total_systematic_ppb: float
    constants_error_ppb: float

    @property
    def a_mu_error_ppb(self) -> float:
        """Relative uncertainty of a_μ, ppb."""
        return self.amu.a_mu_err / self.amu.a_mu * 1e9

    def to_dict(self) -> dict:
        """JSON-able form: the ``ringsim amu`` keys (``a_mu``, ``a_mu_err``, ``form``, ``codata``, ``ratio``, ``ratio_err``), ``budget``, the totals in ppb and the inputs' description."""
        return {
            **self.amu.to_dict(),
            "budget": self.budget.to_dict(),
            "total_correction_ppb": self.budget.total_correction_ppb,
            "total_systematic_ppb": self.total_systematic_ppb,
            "ratio_error_ppb": self.ratio_err / self.ratio * 1e9,
            "constants_error_ppb": self.constants_error_ppb,
            "a_mu_error_ppb": self.a_mu_error_ppb,
            "ratio_given": self.ratio_given,
            "temperature_c": self.temperature_c,
            "title": self.title,
            "measurement": self.source,
        }

    def summary_line(self) -> str:
        """One line: a_μ with its uncertainty in units of 1e-11 and ppm, the edition and R'_μ."""
        a11, e11 = self.amu.a_mu * 1e11, self.amu.a_mu_err * 1e11
        return (
            f"a_mu = {a11:.0f}({e11:.0f}) x 1e-11 ({self.a_mu_error_ppb * 1e-3:.2f} ppm, {self.amu.codata}, T_r = {self.temperature_c:g} °C) "
            f"from R'_mu = {self.ratio:.10f} ± {self.ratio_err:.1e}; total correction {self.budget.total_correction_ppb:.0f} ppb"
        )


def _number(path: str, key: str, value, *, minimum: float | None = None, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{path}: key '{key}': expected a number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ConfigError(f"{path}: key '{key}': expected a finite number, got {value!r}")
    if positive and not value > 0.0:
        raise ConfigError(f"{path}: key '{key}': expected a number > 0, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{path}: key '{key}': expected a number >= {minimum:g}, got {value!r}")
    return value


def _text(path: str, key: str, value) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{path}: key '{key}': expected a string, got {type(value).__name__} {value!r}")
    return value


def _table(path: str, key: str, value, allowed: tuple[str, ...]) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: key '{key}': expected a table ([{key}]), got {type(value).__name__}")
    for k in value:
        if k not in allowed:
            raise ConfigError(f"{path}: unknown key '{key}.{k}'; expected one of {', '.join(allowed)}")
    return value


def _require(path: str, table: dict, prefix: str, key: str):
    if key not in table:
        raise ConfigError(f"{path}: missing key '{prefix + '.' if prefix else ''}{key}'")
    return table[key]


def load_measurement(path: str | Path) -> dict:
    """Read and validate a measurement TOML file; returns its tables (see the module docstring)."""
    path_s = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path_s}: cannot read the measurement file ({exc.__class__.__name__}: {exc})") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path_s}: invalid TOML: {exc}") from None
    for k in doc:
        if k not in _TOP_KEYS:
            raise ConfigError(f"{path_s}: unknown key '{k}'; expected one of {', '.join(_TOP_KEYS)}")
    for name, keys in _SECTION_KEYS.items():
        if name in doc:
            _table(path_s, name, doc[name], keys)
    corrections = _table(path_s, "corrections", doc.get("corrections", {}), tuple(CORRECTIONS))
    for name, entry in corrections.items():
        _table(path_s, f"corrections.{name}", entry, _CORRECTION_KEYS)
    return doc


def evaluate_measurement(path: str | Path, codata_edition: int | None = None) -> MeasurementResult:
    """R'_μ, a_μ and the full budget of the measurement in a TOML file.

    Parameters
    ----------
    path : str or Path
        The measurement file (format in the module docstring).
    codata_edition : int, optional
        Overrides the file's ``codata`` edition.

    Returns
    -------
    MeasurementResult
    """
    p = str(path)
    doc = load_measurement(path)
    title = _text(p, "title", doc.get("title", Path(path).stem))
    edition = doc.get("codata", 2018) if codata_edition is None else codata_edition
    if isinstance(edition, bool) or edition not in (2018, 2022):
        raise ConfigError(f"{p}: key 'codata': expected the CODATA edition 2018 or 2022, got {edition!r}")
    temperature_c = _number(p, "temperature_c", _require(p, doc, "", "temperature_c"))
    given = "ratio" in doc

    lines: list[BudgetLine] = []
    omega_a = doc.get("omega_a")
    if omega_a is None and not given:
        raise ConfigError(f"{p}: missing table '[omega_a]' (ω_a^m) or '[ratio]' (R'_μ)")
    if omega_a is not None:
        for key, label in (("stat_ppb", "ω_a statistical"), ("syst_ppb", "ω_a systematic")):
            lines.append(BudgetLine(label, 0.0, _number(p, f"omega_a.{key}", _require(p, omega_a, "omega_a", key), minimum=0.0), "uncertainty"))
    corrections = doc.get("corrections", {})
    field_names = [n for n in CORRECTIONS if CORRECTIONS[n][0] == "denominator"]
    for name in (n for n in CORRECTIONS if n not in field_names):
        if name in corrections:
            lines.append(_correction_line(p, name, corrections[name]))
    omega_p = doc.get("omega_p")
    if omega_p is None and not given:
        raise ConfigError(f"{p}: missing table '[omega_p]' (f_calib⟨ω'_p × M⟩)")
    if omega_p is not None:
        lines.append(BudgetLine("ω_p systematic", 0.0, _number(p, "omega_p.syst_ppb", _require(p, omega_p, "omega_p", "syst_ppb"), minimum=0.0), "uncertainty"))
    for name in field_names:
        if name in corrections:
            lines.append(_correction_line(p, name, corrections[name]))

    table = Budget(tuple(lines), title)
    if given:
        for section in ("omega_a", "omega_p"):
            if section in doc and "value_rad_per_us" in doc[section]:
                raise ConfigError(f"{p}: key '{section}.value_rad_per_us': give either the frequencies or '[ratio]', not both")
        ratio = _number(p, "ratio.value", _require(p, doc["ratio"], "ratio", "value"), positive=True)
        if "error" in doc["ratio"]:
            ratio_err = _number(p, "ratio.error", doc["ratio"]["error"], minimum=0.0)
            table_err = ratio * table.total_error_ppb * 1e-9
            if lines and abs(ratio_err - table_err) > _RATIO_ERR_TOLERANCE * table_err:
                raise ConfigError(f"{p}: key 'ratio.error': {ratio_err:.3g} disagrees with the budget's total {table_err:.3g} (= {table.total_error_ppb:.0f} ppb); omit one of them")
        elif lines:
            ratio_err = ratio * table.total_error_ppb * 1e-9
        else:
            raise ConfigError(f"{p}: missing key 'ratio.error' (no budget lines give the uncertainty of R'_μ)")
    else:
        omega_a_rad_per_us = _number(p, "omega_a.value_rad_per_us", _require(p, omega_a, "omega_a", "value_rad_per_us"), positive=True)
        omega_p_rad_per_us = _number(p, "omega_p.value_rad_per_us", _require(p, omega_p, "omega_p", "value_rad_per_us"), positive=True)
        ratio = omega_a_rad_per_us / omega_p_rad_per_us * table.factor()
        ratio_err = ratio * table.total_error_ppb * 1e-9

    amu = amu_fnal(ratio, ratio_err, codata_edition=edition, temperature_c=temperature_c)
    rel_a, rel_r = amu.a_mu_err / amu.a_mu, ratio_err / ratio
    constants_ppb = math.sqrt(max(rel_a**2 - rel_r**2, 0.0)) * 1e9
    systematic = Budget(tuple(l for l in lines if l.name != "ω_a statistical")).total_error_ppb
    summary = [("total systematic", systematic), (f"fundamental constants ({amu.codata})", constants_ppb), ("total on a_mu", rel_a * 1e9)]
    table = Budget(tuple(lines), title, tuple(summary))
    return MeasurementResult(title, p, table, ratio, ratio_err, given, amu, temperature_c, systematic, constants_ppb)


def _correction_line(path: str, name: str, entry: dict) -> BudgetLine:
    prefix = f"corrections.{name}"
    value = _number(path, f"{prefix}.value_ppb", _require(path, entry, prefix, "value_ppb"))
    error = _number(path, f"{prefix}.error_ppb", _require(path, entry, prefix, "error_ppb"), minimum=0.0)
    correlation = _text(path, f"{prefix}.correlation", entry.get("correlation", ""))
    note = _text(path, f"{prefix}.note", entry.get("note", ""))
    role, group = CORRECTIONS[name]
    return BudgetLine(name, value, error, role, group, note, correlation)
