"""The one rule by which every random stream of ringsim derives from a user's seed.

Every stage draws from ``numpy.random.SeedSequence(seed, spawn_key=key)`` with a key fixed per
stage, either as a numpy Generator (:func:`stream`) or, inside numba kernels, as the state words
``generate_state`` gives of the same sequence (the counter-based SplitMix64 walks of
:mod:`ringsim.fast_generation`, the per-block seed of the track-mode detector response). Streams are
therefore independent between stages and identical for any thread count or grouping of blocks.

Keys:

- ``(block,)``: simulation block ``block`` (muon generation, decays and detector response);
- ``(block, MIP_STREAM)``: the lost muons' calorimeter hits of that block;
- ``(ANALYSIS, k)``: analysis stage ``k`` of a file's fit: ``FAST_ROTATION`` (the ±T_c/2 shift of
  each hit time), ``RATIO_SPLIT`` (the R-method subsets), ``PILEUP_SHIFT`` (the shift of the
  pileup pairs), ``CLOSURE`` (the tracker smearing and field bootstrap of a run's closure).
"""

from __future__ import annotations

import numpy as np

__all__ = ["ANALYSIS", "CLOSURE", "FAST_ROTATION", "MIP_STREAM", "PILEUP_SHIFT", "RATIO_SPLIT", "seed_sequence", "stream"]

MIP_STREAM = 1
ANALYSIS = 2**31  # above any block number a run can reach
FAST_ROTATION, RATIO_SPLIT, PILEUP_SHIFT, CLOSURE = 0, 1, 2, 3


def seed_sequence(seed: int, *key: int) -> np.random.SeedSequence:
    """Return the sequence of stream ``key`` of ``seed`` (a non-negative integer)."""
    return np.random.SeedSequence(int(seed), spawn_key=tuple(int(k) for k in key))


def stream(seed: int, stage: int) -> np.random.Generator:
    """Return the Generator of analysis stage ``stage`` (``FAST_ROTATION``, …) of ``seed``."""
    return np.random.default_rng(seed_sequence(seed, ANALYSIS, stage))
