"""Fill identity of hits read from several files: a composite key made into one fill number per hit.

A fill is named by one or more integer branches (``fill``; ``runNum,subRunNum,eventNum``) or, in a
tree with one entry per fill, by the entry. Whether equal keys in different files are one fill:

- a key of two or more branches (run, subrun, event) is global: hits of different files with the
  whole key equal are the same fill (a fill split over files), all others are different fills;
- a key of one branch (``fill``, ``eventNum``) or the entry number counts within its file (event
  numbers restart in every subrun file), so the file's index is part of the key.

Fill numbers are dense (0 … n_fills − 1) in the order of the sorted keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ENTRY_KEY = "entry"


@dataclass(frozen=True)
class FillKey:
    """Where the fill of a hit comes from.

    Attributes
    ----------
    branches
        Branch names of the key, or ``("entry",)`` for one entry per fill.
    per_file
        True if the file index is part of the key (one branch or the entry).
    """

    branches: tuple[str, ...]
    per_file: bool

    @classmethod
    def of(cls, branches: Sequence[str]) -> FillKey:
        """Make the key of ``branches``: global if composite, within each file otherwise."""
        return cls(tuple(branches), per_file=len(branches) < 2)

    def describe(self) -> str:
        """One line for reports, e.g. ``runNum,subRunNum,eventNum`` or ``fill within each file``."""
        names = "entry (one entry per fill)" if self.branches == (ENTRY_KEY,) else ",".join(self.branches)
        return f"{names} within each file" if self.per_file else names


def _dense(codes: np.ndarray) -> tuple[np.ndarray, int]:
    """Integer codes renumbered 0 … n − 1 in sorted order, and n (a lookup table when their range is small)."""
    if codes.size == 0:
        return np.zeros(0, dtype=np.int64), 0
    low, high = int(codes.min()), int(codes.max())
    if high - low <= 4 * codes.size + 1024:
        present = np.zeros(high - low + 1, dtype=bool)
        shifted = codes.astype(np.int64) - low
        present[shifted] = True
        number = np.cumsum(present, dtype=np.int64) - 1
        return number[shifted], int(number[-1]) + 1
    unique, inverse = np.unique(codes, return_inverse=True)
    return inverse.astype(np.int64).ravel(), int(unique.size)


def fill_numbers(key: FillKey, columns_per_file: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
    """One dense fill number per hit from the key columns of every file.

    Parameters
    ----------
    key
        The fill key; with ``per_file`` the file index becomes its first component.
    columns_per_file
        Per file, one int64 array per key branch (all of the file's hit count).

    Returns
    -------
    numpy.ndarray
        int64 fill numbers of the hits of all files, concatenated in file order.
    """
    columns = [np.concatenate([file_columns[k] for file_columns in columns_per_file]) for k in range(len(key.branches))]
    if key.per_file and len(columns_per_file) > 1:
        sizes = [len(file_columns[0]) for file_columns in columns_per_file]
        (codes, n), rest = (np.repeat(np.arange(len(sizes), dtype=np.int64), sizes), len(sizes)), columns
    else:
        (codes, n), rest = _dense(columns[0]), columns[1:]
    for column in rest:
        inverse, m = _dense(column)
        if n * m >= 2**62:
            codes, n = _dense(codes)
        codes, n = codes * m + inverse, n * m
    return _dense(codes)[0] if rest else codes
