"""calibration: from ω_a to a_μ — corrections, the magnetic field, the budget, theory and BSM.

Modules: ``beam_corrections`` (C_e, C_p, C_pa, C_dd, C_ml), ``fast_rotation`` (the x_e distribution
from the bunch structure), ``larmor`` (ω̃'_p(T) and the ideal ω_a of a field), ``field_maps``
(trolley and fixed-probe data, multipoles), ``omega_p`` (the muon-weighted ω̃'_p of a run),
``transients`` (B_k, B_q), ``budget`` (the correction table of R'_μ), ``amu`` (a_μ in the Fermilab
and E821 forms), ``theory`` (SM predictions and measurements), ``bsm``, ``plots``.
It imports ``ringsim`` and ``analysis`` only (docs/physics.md §4, §7).
"""

__all__ = ["amu", "beam_corrections", "bsm", "budget", "fast_rotation", "field_maps", "larmor", "measurement", "omega_p", "plots", "theory", "transients"]
