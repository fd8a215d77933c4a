"""ringsim: simulation of muon g-2 storage rings (Fermilab 1.45 T and J-PARC 3 T).

The companion import packages ``analysis`` (omega_a fits) and ``calibration`` (corrections, a_mu)
live in the same distribution.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ringsim")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

from ringsim.errors import ConfigError, FitError, InputError, RingsimError

__all__ = ["ConfigError", "FitError", "InputError", "RingsimError", "__version__"]
