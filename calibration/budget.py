"""The correction and uncertainty budget of R'_μ (docs/physics.md §4).

R'_μ = f_clock ω_a^m (1 + C_e + C_p + C_pa + C_dd + C_ml) / (f_calib ⟨ω'_p × M⟩ (1 + B_k + B_q)).

A :class:`Budget` is a list of lines, each a correction (value and uncertainty in ppb) with its place
in that formula: ``numerator`` or ``denominator`` (lines of the same ``group`` are summed inside one
factor 1 + Σ, e.g. the C's; each f is its own group), or ``uncertainty`` (no correction, e.g. the ω_a
statistics). The total correction is Σ_num − Σ_den (ppb, to first order), the total uncertainty the
quadrature sum of all lines, where lines sharing a ``correlation`` label are fully correlated (their
uncertainties add linearly first); the exact factor is used for R'_μ. Optional ``summary`` rows (an
uncertainty total such as the systematic one) follow the total. Text, JSON and LaTeX renderings.

The budget of a simulated run, built from its fit, truth and field data and closed against its
spin truth, is :func:`workflows.closure.simulated_run_budget`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from ringsim.errors import ConfigError

__all__ = ["Budget", "BudgetLine"]

ROLES = ("numerator", "denominator", "uncertainty")


@dataclass(frozen=True)
class BudgetLine:
    """One line of the budget: a correction (ppb) and its uncertainty (ppb); ``correlation`` names its correlation group."""

    name: str
    value_ppb: float
    error_ppb: float
    role: str = "numerator"
    group: str = ""
    note: str = ""
    correlation: str = ""

    def __post_init__(self) -> None:
        """Check the role and that the value and error (ppb) are finite, the error ≥ 0."""
        if self.role not in ROLES:
            raise ConfigError(f"budget line {self.name!r}: role must be one of {', '.join(ROLES)}, got {self.role!r}")
        if not (math.isfinite(self.value_ppb) and math.isfinite(self.error_ppb) and self.error_ppb >= 0.0):
            raise ConfigError(f"budget line {self.name!r}: value must be finite and error finite and >= 0, got {self.value_ppb!r} ± {self.error_ppb!r}")

    @property
    def effect_ppb(self) -> float:
        """Shift of R'_μ to first order: +value in the numerator, −value in the denominator."""
        return {"numerator": self.value_ppb, "denominator": -self.value_ppb, "uncertainty": 0.0}[self.role]


@dataclass(frozen=True)
class Budget:
    """An ordered set of budget lines."""

    lines: tuple[BudgetLine, ...]
    title: str = "R'_mu correction and uncertainty budget"
    summary: tuple[tuple[str, float], ...] = ()  # (name, uncertainty in ppb) rows shown after the total

    @property
    def total_correction_ppb(self) -> float:
        """Sum of the lines' effects on R'_μ in ppb."""
        return float(sum(line.effect_ppb for line in self.lines))

    @property
    def total_error_ppb(self) -> float:
        """Quadrature sum over the lines; the lines of one ``correlation`` label add linearly first."""
        groups: dict[object, float] = {}
        for i, line in enumerate(self.lines):
            key = line.correlation or i
            groups[key] = groups.get(key, 0.0) + line.error_ppb
        return math.sqrt(sum(err**2 for err in groups.values()))

    def factor(self) -> float:
        """Exact multiplicative correction of ω_a/⟨ω'_p M⟩: Π_num(1 + Σ_group) / Π_den(1 + Σ_group)."""
        sums: dict[tuple[str, str], float] = {}
        for line in self.lines:
            if line.role != "uncertainty":
                key = (line.role, line.group or line.name)
                sums[key] = sums.get(key, 0.0) + line.value_ppb * 1e-9
        num = math.prod(1.0 + v for (role, _), v in sums.items() if role == "numerator")
        den = math.prod(1.0 + v for (role, _), v in sums.items() if role == "denominator")
        return num / den

    def to_dict(self) -> dict:
        """JSON-able form: ``lines`` (name, value_ppb, error_ppb, role, group, note, correlation), the totals and ``summary``."""
        return {
            "title": self.title,
            "lines": [{"name": l.name, "value_ppb": l.value_ppb, "error_ppb": l.error_ppb, "role": l.role, "group": l.group, "note": l.note, "correlation": l.correlation} for l in self.lines],
            "total_correction_ppb": self.total_correction_ppb,
            "total_error_ppb": self.total_error_ppb,
            "summary": [{"name": name, "error_ppb": err} for name, err in self.summary],
        }

    def to_json(self) -> str:
        """Return :meth:`to_dict` as indented JSON text."""
        return json.dumps(self.to_dict(), indent=2)

    def to_text(self) -> str:
        """Fixed-width table: one line per correction, then the totals."""
        width = max([len(l.name) for l in self.lines] + [len(name) for name, _ in self.summary] + [len("total")])
        rows = [self.title, f"{'quantity':<{width}}  {'correction [ppb]':>17}  {'uncertainty [ppb]':>17}  place"]
        for l in self.lines:
            value = "–" if l.role == "uncertainty" else f"{l.value_ppb:.1f}"
            place = {"numerator": "× (num.)", "denominator": "÷ (den.)", "uncertainty": ""}[l.role]
            rows.append(f"{l.name:<{width}}  {value:>17}  {l.error_ppb:>17.1f}  {place}{'  ' + l.note if l.note else ''}")
        rows.append(f"{'total':<{width}}  {self.total_correction_ppb:>17.1f}  {self.total_error_ppb:>17.1f}")
        rows += [f"{name:<{width}}  {'–':>17}  {err:>17.1f}" for name, err in self.summary]
        return "\n".join(rows) + "\n"

    def to_latex(self) -> str:
        """Return a LaTeX ``tabular`` with the same content as :meth:`to_text`."""

        def tex(name: str) -> str:
            return name.replace("_", r"\_").replace("ω", r"$\omega$").replace("′", "'").replace("~", r"\~{}")

        rows = [r"\begin{tabular}{lrr}", r"\hline", r"Quantity & Correction (ppb) & Uncertainty (ppb) \\", r"\hline"]
        for l in self.lines:
            value = "--" if l.role == "uncertainty" else f"{l.value_ppb:.1f}"
            rows.append(f"{tex(l.name)} & {value} & {l.error_ppb:.1f} \\\\")
        rows += [r"\hline", f"Total & {self.total_correction_ppb:.1f} & {self.total_error_ppb:.1f} \\\\"]
        rows += [f"{tex(name)} & -- & {err:.1f} \\\\" for name, err in self.summary]
        rows += [r"\hline", r"\end{tabular}"]
        return "\n".join(rows) + "\n"
