"""Calibrated Fermilab presets: the package's estimators on their simulated data give the published C_e and C_p."""

from __future__ import annotations

import pytest
import uproot

from ringsim.config import load_config
from ringsim.run_file import simulate_to_file
from workflows.closure import simulated_run_budget
from workflows.fit_file import FitOptions, fit_file

# published beam-dynamics corrections, ppb (value, uncertainty):
# Run-1: PRL 126, 141801 (2021) and PRD 103, 072002 (2021), Table II (seed 004's correction table);
# Run-2/3: PRL 131, 161802 (2023), Table II.
PUBLISHED = {"fnal-run1": {"C_e": (489.0, 53.0), "C_p": (180.0, 13.0)}, "fnal-run23": {"C_e": (451.0, 32.0), "C_p": (170.0, 10.0)}}


@pytest.mark.parametrize("preset", sorted(PUBLISHED))
def test_estimators_give_the_published_corrections(preset, tmp_path):
    """C_e from the fast rotation of the positron times, C_p from tracker-like vertical positions."""
    cfg = load_config(preset)
    assert cfg.ring.name == "fnal" and cfg.beam.momentum_spread == load_config("fnal").beam.momentum_spread
    path = tmp_path / f"{preset}.root"
    simulate_to_file(path, cfg, "fast", n_positrons=400_000, seed=11, progress=False)
    with uproot.open(path) as f:
        events = f["events"].arrays(library="np")
    fit = fit_file(FitOptions(files=(str(path),), seed=11)).fit
    budget = simulated_run_budget(cfg, fit, events, seed=11)  # C_e from the fast rotation (the default)
    lines = {line.name: line for line in budget.budget.lines}
    for name, (value, error) in PUBLISHED[preset].items():
        assert abs(lines[name].value_ppb - value) < error, (name, lines[name].value_ppb)
        assert lines[name].error_ppb < error  # the estimate is more precise than the published number


def test_unknown_preset_is_refused():
    from ringsim.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown preset 'fnal-run9'"):
        load_config("fnal-run9")
