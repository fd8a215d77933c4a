"""Linear optics of the ring model: one-turn transfer matrices and tunes (no tracking).

The one place for tunes: :func:`smooth_tunes` (√(1 − n), √n), :func:`one_turn_tunes` (the
discrete focusing sections) and :func:`model_tunes` (what fast mode uses).

Sections: dipole gaps (horizontal focusing 1/R₀², vertical none) and focusing sections with local
index n_loc (horizontal (1 − n_loc)/R₀², vertical n_loc/R₀²). Used by ``ringsim validate`` as the
expectation for the tracker's discrete-ESQ tunes.
"""

from __future__ import annotations

import math

import numpy as np

from ringsim.config import SimConfig


def _matrix(k_per_m2: float, length_m: float) -> np.ndarray:
    """Transfer matrix of x'' = −k x over a length."""
    if k_per_m2 > 0:
        w = math.sqrt(k_per_m2)
        c, s = math.cos(w * length_m), math.sin(w * length_m)
        return np.array([[c, s / w], [-w * s, c]])
    if k_per_m2 < 0:
        w = math.sqrt(-k_per_m2)
        c, s = math.cosh(w * length_m), math.sinh(w * length_m)
        return np.array([[c, s / w], [w * s, c]])
    return np.array([[1.0, length_m], [0.0, 1.0]])


def focusing_sections(cfg: SimConfig) -> list[tuple[float, float, float]]:
    """(start, end) azimuths in degrees and local field index of each part of the ring, covering 360°."""
    n, esq = cfg.ring.field_index, cfg.esq
    if cfg.ring.focusing == "magnetic" or esq.model == "continuous":
        return [(0.0, 360.0, n)]
    if esq.model == "none":
        return [(0.0, 360.0, 0.0)]
    plates = []
    for start in esq.station_start_deg:
        plates += [(start, start + esq.short_deg), (start + esq.short_deg + esq.gap_deg, start + esq.short_deg + esq.gap_deg + esq.long_deg)]
    n_local = n * 360.0 / sum(b - a for a, b in plates)
    parts, position = [], 0.0
    for a, b in sorted(plates):
        if a > position:
            parts.append((position, a, 0.0))
        parts.append((a, b, n_local))
        position = b
    if position < 360.0:
        parts.append((position, 360.0, 0.0))
    return parts


def one_turn_tunes(cfg: SimConfig) -> tuple[float, float]:
    """Fractional-and-integer tunes (ν_x, ν_y) from the one-turn matrices (ν_x taken in (0.5, 1))."""
    r0 = cfg.ring.radius_m
    mx, my = np.eye(2), np.eye(2)
    for a, b, n_loc in focusing_sections(cfg):
        length = r0 * math.radians(b - a)
        mx = _matrix((1.0 - n_loc) / r0**2, length) @ mx
        my = _matrix(n_loc / r0**2, length) @ my
    mu_x = math.acos(np.clip(0.5 * np.trace(mx), -1, 1)) / (2 * math.pi)
    mu_y = math.acos(np.clip(0.5 * np.trace(my), -1, 1)) / (2 * math.pi)
    return 1.0 - mu_x, mu_y


def smooth_tunes(field_index: float) -> tuple[float, float]:
    """Smooth-approximation tunes (ν_x, ν_y) = (√(1 − n), √n)."""
    return math.sqrt(1.0 - field_index), math.sqrt(field_index)


def model_tunes(cfg: SimConfig) -> tuple[float, float]:
    """Tunes used by fast mode: the configured ones, else those of the ring's linear optics."""
    nu_x, nu_y = one_turn_tunes(cfg)
    fm = cfg.fastmodel
    return fm.tune_x or nu_x, fm.tune_y or nu_y
