"""ringsim: simulation of muon g-2 storage rings (Fermilab 1.45 T and J-PARC 3 T).

Modules: ``config`` (TOML presets → validated dataclasses), ``constants`` (CODATA 2018/2022),
``rings`` (kinematics), ``optics`` (tunes), ``beam``, ``ring_fields`` (the tracker's field
description), ``jparc_solenoid`` (the J-PARC coil field), ``injection`` (J-PARC spiral injection),
``tracker`` (numba spin–orbit kernel), ``decay`` (Michel decay), ``detectors`` (calorimeters,
silicon vanes, response, lost-muon hits, sector model), ``fast_generation`` (the fast-mode kernel),
``cbo_calibration`` (fast mode's CBO from tracking), ``histogram_experiments`` (histogram-level
Monte Carlo), ``simulate`` (blocks of fills), ``track_mode``, ``lost_muon_clusters``,
``event_schema``, ``run_parts`` and ``run_file`` (the resumable run file), ``station_histograms``,
``random_streams`` (the seed rule), ``interrupts`` (SIGINT/SIGTERM), ``locks`` (one writer per
output), ``vecmath``, ``io``, ``progress``, ``cli`` (the command line). The companion import packages
``analysis`` (ω_a fits), ``calibration`` (corrections, a_μ) and ``workflows`` (pipelines) live in
the same distribution; ``ringsim`` imports none of them outside ``ringsim.cli``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ringsim")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

from ringsim.errors import ConfigError, FitError, InputError, RingsimError

__all__ = ["ConfigError", "FitError", "InputError", "RingsimError", "__version__"]
