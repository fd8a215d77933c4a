"""Waiting notes: a first run says that numba compiles; nothing is said in CI or when redirected."""

from __future__ import annotations

import types

from ringsim import progress


def _module(tmp_path, name):
    path = tmp_path / f"{name}.py"
    path.write_text("", encoding="utf-8")
    return types.SimpleNamespace(__file__=str(path), __name__=f"pkg.{name}")


def test_modules_without_a_numba_cache_are_named(tmp_path):
    cold, warm = _module(tmp_path, "cold"), _module(tmp_path, "warm")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "warm.kernel-12.py311.nbi").write_bytes(b"")
    assert progress.uncompiled([cold, warm]) == ["pkg.cold"]


def test_compilation_is_announced_on_a_terminal_only(tmp_path, monkeypatch, capsys):
    cold = _module(tmp_path, "cold")
    monkeypatch.setattr(progress, "_interactive", lambda: True)
    progress.announce_compilation([cold], "simulate (fast mode)")
    err = capsys.readouterr().err
    assert err.startswith("simulate (fast mode): compiling the numba kernels of pkg.cold") and "first run" in err
    monkeypatch.setattr(progress, "_interactive", lambda: False)
    progress.announce_compilation([cold], "simulate (fast mode)")
    assert capsys.readouterr().err == ""
