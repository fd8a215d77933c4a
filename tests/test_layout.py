"""The code's layout: imports point down the layers, no import circle, each package names its API."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ringsim", "analysis", "calibration", "workflows")
# ringsim (simulation) ← analysis (fits) ← calibration (corrections, a_μ) ← workflows (pipelines) ← ringsim.cli
LAYER = {"ringsim": 0, "analysis": 1, "calibration": 2, "workflows": 3, "ringsim.cli": 4}


def _layer(module: str) -> int | None:
    if module == "ringsim.cli" or module.startswith("ringsim.cli."):
        return LAYER["ringsim.cli"]
    return LAYER.get(module.split(".")[0])


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules that ``path`` imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        found |= {name for name in names if name in modules}
    return found


MODULES = _modules()
GRAPH = {name: _imports(path, MODULES) - {name} for name, path in MODULES.items()}


def test_imports_point_down_the_layers():
    upward = [f"{m} imports {target}" for m, targets in GRAPH.items() for target in targets if _layer(target) > _layer(m) and not m.startswith(target + ".") and target != "ringsim"]
    assert upward == []


def test_no_import_circle():
    """Depth-first search over every import (package __init__ files re-export nothing circular)."""
    graph = {m: {t for t in targets if t not in PACKAGES} for m, targets in GRAPH.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(node, stack):
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                cycles.append(stack[stack.index(target) :] + [target])
            elif target not in state:
                visit(target, stack + [target])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


PUBLIC_API = {
    "ringsim": ["ConfigError", "FitError", "InputError", "RingsimError", "__version__"],
    "analysis": [
        "blinding",
        "edm",
        "fills",
        "fitting",
        "gain",
        "histograms",
        "ingest",
        "ingest_histograms",
        "lost_muons",
        "methods",
        "models",
        "pileup",
        "plots",
        "precision",
        "pseudo_data",
        "scans",
        "selection",
        "survey",
        "systematics",
        "units",
        "wiggle",
    ],
    "calibration": ["amu", "beam_corrections", "bsm", "budget", "fast_rotation", "field_maps", "larmor", "measurement", "omega_p", "plots", "theory", "transients"],
    "workflows": ["closure", "fit_file", "run", "study", "study_library"],
}


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_names_its_api(package):
    module = importlib.import_module(package)
    assert sorted(module.__all__) == sorted(PUBLIC_API[package])
    for name in module.__all__:
        assert hasattr(module, name) or importlib.util.find_spec(f"{package}.{name}") is not None, name
