"""workflows: the pipelines of ringsim, built from the libraries below them.

Imports point one way: ``ringsim`` (simulation) ← ``analysis`` (ω_a fits) ← ``calibration``
(corrections, ω_p, a_μ) ← ``workflows`` ← ``ringsim.cli`` (argument parsing only).

Modules: :mod:`workflows.fit_file` (the fit of a file), :mod:`workflows.run` (the run chain of
``ringsim run``), :mod:`workflows.closure` (a simulated run's budget against its truth),
:mod:`workflows.study` and :mod:`workflows.study_library` (systematic scans on dask).
"""

__all__ = ["closure", "fit_file", "run", "study", "study_library"]
