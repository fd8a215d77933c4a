"""analysis: the ω_a analysis of decay-positron data, from any ROOT file to a fitted frequency.

Modules: ``ingest`` (trees and histograms of any ROOT file, in ns and MeV), ``histograms`` (the
fillers), ``models`` (composable fit functions), ``fitting`` (iminuit fits), ``methods`` (T, A, Q,
R), ``wiggle`` (ring defaults and the T-method chain of arrays), ``blinding``, ``pileup``, ``gain``,
``lost_muons``, ``scans``, ``edm``, ``systematics``, ``precision`` (Fisher information),
``pseudo_data`` (pseudo-experiments independent of the fit models), ``plots``.
It imports ``ringsim`` only (docs/physics.md §3, §5, §6).
"""

__all__ = [
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
]
