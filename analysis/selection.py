"""Hit selections such as ``(E > 1.7) & (caloNum != 3)``, evaluated on per-hit arrays.

The same expression works on TTrees, RNTuples and one-entry-per-fill trees, because it is
evaluated after the hits are flattened: branch names, numbers, arithmetic, comparisons, ``&``,
``|``, ``~`` and the functions in ``FUNCTIONS``. Anything else is a ConfigError naming the
expression and the file.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence

import numpy as np

from ringsim.errors import ConfigError

FUNCTIONS = {"abs": np.abs, "sqrt": np.sqrt, "exp": np.exp, "log": np.log, "sin": np.sin, "cos": np.cos, "floor": np.floor, "ceil": np.ceil}
_NODES = (
    ast.Expression,
    ast.BinOp,
    ast.UnaryOp,
    ast.Compare,
    ast.Call,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.operator,
    ast.unaryop,
    ast.cmpop,
)


def _refused(selection: str, source: str, reason: str) -> ConfigError:
    return ConfigError(f"selection {selection!r} cannot be evaluated on {source} ({reason})")


def selection_branches(selection: str, source: str, branches: Sequence) -> list[str]:
    """Branches that ``selection`` uses, checked against the tree's ``branches``."""
    try:
        tree = ast.parse(selection.strip(), mode="eval")
    except SyntaxError as exc:
        raise _refused(selection, source, f"syntax error: {exc.msg}") from None
    for node in ast.walk(tree):
        if not isinstance(node, _NODES):
            hint = "; use & and | with parentheses" if isinstance(node, ast.BoolOp) else ""
            raise _refused(selection, source, f"'{type(node).__name__}' is not allowed{hint}")
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS):
            raise _refused(selection, source, f"only the functions {', '.join(FUNCTIONS)} are allowed")
    called = {node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call)}
    names = sorted({node.id for node in ast.walk(tree) if isinstance(node, ast.Name)} - called)
    missing = [name for name in names if name not in branches]
    if missing:
        raise _refused(selection, source, f"no branch '{missing[0]}'")
    return names


def evaluate_selection(selection: str, source: str, arrays: Mapping[str, np.ndarray], n_hits: int) -> np.ndarray:
    """Boolean mask of the hits that pass ``selection``, from per-hit ``arrays`` of its branches."""
    code = compile(ast.parse(selection.strip(), mode="eval"), "<selection>", "eval")
    try:
        with np.errstate(all="ignore"):
            mask = np.asarray(eval(code, {"__builtins__": {}}, {**FUNCTIONS, **arrays}))  # nodes checked by selection_branches
    except (TypeError, ValueError, ZeroDivisionError) as exc:
        raise _refused(selection, source, str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
    mask = np.broadcast_to(mask, (n_hits,)) if mask.ndim == 0 else mask
    if mask.dtype != np.bool_ or mask.shape != (n_hits,):
        raise _refused(selection, source, "it does not give one true/false value per hit")
    return mask
