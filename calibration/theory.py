"""Standard Model predictions and experimental values of a_μ, as data with their sources (docs/physics.md §4).

Also the comparison of a measurement with them: Δa_μ = a_μ(exp) − a_μ(SM) and its significance.

Tags as in docs/physics.md: [V] read in the public source named; the seeds are the talks in
``/work/shared/seeds`` (001, 002: 2022 talks quoting the 2021 4.2σ; 003: the E821 value with
CODATA 2018 constants and its 3.7σ).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ringsim.errors import ConfigError

__all__ = ["EXPERIMENTS", "SM_PREDICTIONS", "AmuValue", "combine", "delta_amu", "significance"]


@dataclass(frozen=True)
class AmuValue:
    """One value of a_μ with its standard uncertainty and where it comes from."""

    label: str
    a_mu: float
    a_mu_err: float
    source: str

    @property
    def relative_err_ppb(self) -> float:
        """Relative error of a_μ in ppb."""
        return self.a_mu_err / self.a_mu * 1e9


SM_PREDICTIONS: dict[str, AmuValue] = {
    "TI2020": AmuValue(
        "SM, Theory Initiative 2020",
        116_591_810e-11,
        43e-11,
        "T. Aoyama et al., Phys. Rep. 887 (2020) 1, data-driven HVP [V: docs/physics.md §4; seed 003]",
    ),
    "TI2025": AmuValue(
        "SM, Theory Initiative 2025",
        116_592_033e-11,
        62e-11,
        "R. Aliberti et al., arXiv:2505.21476 (2025), lattice HVP [V: docs/physics.md §4]",
    ),
}

EXPERIMENTS: dict[str, AmuValue] = {
    "E821": AmuValue("BNL E821 final", 11_659_208.0e-10, 6.3e-10, "G. W. Bennett et al., Phys. Rev. D 73 (2006) 072003 [V: docs/physics.md §4]"),
    "E821_2018": AmuValue(
        "BNL E821, CODATA 2018 constants",
        116_592_089e-11,
        63e-11,
        "E821 re-evaluated with the CODATA 2018 λ, as combined in 2021 [V: seed 003]",
    ),
    "FNAL_Run1": AmuValue("FNAL Run-1", 116_592_040e-11, 54e-11, "B. Abi et al., Phys. Rev. Lett. 126 (2021) 141801 [V: docs/physics.md §4]"),
    "FNAL_Run2_3": AmuValue("FNAL Run-2/3", 116_592_057e-11, 25e-11, "D. P. Aguillard et al., Phys. Rev. Lett. 131 (2023) 161802 [V: docs/physics.md §4]"),
    "FNAL_final": AmuValue("FNAL final (Runs 1–6)", 1_165_920_705e-12, 148e-12, "D. P. Aguillard et al., arXiv:2506.03069 (2025) [V: docs/physics.md §4]"),
    "WA2021": AmuValue("world average 2021", 116_592_061e-11, 41e-11, "E821 (CODATA 2018) and FNAL Run-1, B. Abi et al., Phys. Rev. Lett. 126 (2021) 141801; 4.2σ from TI 2020 [V: seeds 001, 002]"),
    "WA2025": AmuValue("world average 2025", 1_165_920_715e-12, 145e-12, "D. P. Aguillard et al., arXiv:2506.03069 (2025) [V: docs/physics.md §4]"),
}


def _check(value: AmuValue, name: str) -> None:
    if not (math.isfinite(value.a_mu) and math.isfinite(value.a_mu_err) and value.a_mu_err > 0.0):
        raise ConfigError(f"{name}: a_mu and a positive a_mu_err are needed, got {value.a_mu!r} ± {value.a_mu_err!r}")


def delta_amu(experiment: AmuValue, prediction: AmuValue) -> tuple[float, float]:
    """Δa_μ = a_μ(exp) − a_μ(SM) and its error (independent errors in quadrature)."""
    _check(experiment, "experiment")
    _check(prediction, "prediction")
    return experiment.a_mu - prediction.a_mu, math.hypot(experiment.a_mu_err, prediction.a_mu_err)


def significance(experiment: AmuValue, prediction: AmuValue) -> float:
    """Δa_μ in units of its standard error (σ)."""
    delta, err = delta_amu(experiment, prediction)
    return delta / err


def combine(values: list[AmuValue], label: str = "weighted average") -> AmuValue:
    """Inverse-variance weighted average of independent measurements."""
    if not values:
        raise ConfigError("combine: need at least one value")
    for i, v in enumerate(values):
        _check(v, f"values[{i}]")
    weights = [1.0 / v.a_mu_err**2 for v in values]
    mean = sum(w * v.a_mu for w, v in zip(weights, values)) / sum(weights)
    return AmuValue(label, mean, 1.0 / math.sqrt(sum(weights)), "combination of " + ", ".join(v.label for v in values))
