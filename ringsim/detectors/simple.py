"""The sector-station model: the idealised detector of studies that need no geometry.

It records a positron in the azimuthal sector of its decay point with no flight time.
"""

from __future__ import annotations

import math

import numpy as np


def sector_station(azimuth_rad: np.ndarray, n_stations: int) -> np.ndarray:
    """Station = azimuthal sector of the decay point."""
    sector = 2.0 * math.pi / n_stations
    return np.minimum((np.mod(azimuth_rad, 2.0 * math.pi) / sector).astype(np.int32), n_stations - 1)
