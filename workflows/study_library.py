"""Named systematic studies of the effects that dominate the published ω_a budgets (Fermilab ring).

Each entry is a :class:`~workflows.study.Study` with documented defaults; run one with
``ringsim scan NAME -o DIR`` and change any default from the command line (``--param``,
``--seeds``, ``--positrons``, ``--set``). Fast-mode tasks take ~0.5 s per 1e5 positrons on one
core; track-mode tasks ~30 positrons per second per core, a cluster's work.

- ``momentum_spread``: C_e from truth versus rms Δp/p (0–1.5e-3), quadratic. The collimator
  aperture is opened to 0.5 m so that the stored momentum distribution stays Gaussian and
  ⟨x_e²⟩ = (R₀σ/(1−n))²: the docs/physics.md §4 form C_e = 2n(1−n)β²⟨x_e²⟩/R₀² then predicts
  C_e = 2nβ²σ²/(1−n) = 0.242σ² (242 ppb at σ = 1e-3). With the 45 mm
  aperture (``--set ring.aperture_radius_m=0.045``) the collimators cut the momentum tails and C_e
  grows more slowly.
- ``field_index``: C_e versus the ring-averaged n around the Run-2 value 0.108 (real aperture).
- ``vertical_width``: C_p from truth versus the rms vertical width (0–17 mm), quadratic; docs/physics.md §4
  checks C_p = 177 ppb at σ_y = 12.88 mm without collimation.
- ``fit_start``: ω_a versus the fit start (30.2–100 μs, Run-1 window first); every point fits a
  subset of the nominal sample, so shifts must stay inside the nested band √|σ_v² − σ_0²|.
- ``gain_sag``: ω_a versus the in-fill gain sag amplitude C of E → E(1 − C e^{−t/τ_g}), 0–1 %.
- ``cbo_amplitude``: ω_a from the 5-parameter fit versus the coherent betatron amplitude of the
  fast-mode beam model (0–6 mm), quadratic: the bias of a fit without a CBO term.
- ``lost_muons``: ω_a versus the fraction of muons lost before decaying (0–5 %).
- ``field_multipoles``: ω_a versus the normal sextupole b₂ (``perturbations.normal_ppm[1]``,
  0–200 ppm at r₀ = 45 mm) in track mode (fast mode has no field perturbations).

Pileup is not in the library yet: the study's fit (:func:`analysis.wiggle.histogram_and_fit`)
applies no pileup subtraction, so a pileup study would only measure the uncorrected distortion; add
it (``detector.resolving_time_ns`` or ``run.muons_per_fill``) once the fit subtracts pileup.
"""

from __future__ import annotations

from ringsim.errors import ConfigError
from workflows.study import Study

# name, parameter, values, nominal, observable, degree, seeds, positrons, other Study fields
_ROWS = (
    ("momentum_spread", "beam.momentum_spread", (0.0, 0.25e-3, 0.5e-3, 0.75e-3, 1.0e-3, 1.25e-3, 1.5e-3), 0.0, "C_e", 2, 4, 200_000, {"overrides": ("ring.aperture_radius_m=0.5",)}),
    ("field_index", "ring.field_index", (0.09, 0.108, 0.12, 0.135), 0.108, "C_e", 2, 4, 200_000, {}),
    ("vertical_width", "beam.vertical_width_m", (0.0, 0.005, 0.009, 0.013, 0.017), 0.0, "C_p", 2, 4, 200_000, {}),
    ("fit_start", "analysis.fit_start_us", (30.2, 40.0, 50.0, 60.0, 80.0, 100.0), 30.2, "omega_a", 1, 8, 500_000, {}),
    ("gain_sag", "detector.gain_sag_amplitude", (0.0, 0.002, 0.005, 0.01), 0.0, "omega_a", 1, 8, 500_000, {}),
    ("cbo_amplitude", "fastmodel.cbo_amplitude_m", (0.0, 0.002, 0.004, 0.006), 0.0, "omega_a", 2, 8, 500_000, {}),
    ("lost_muons", "fastmodel.loss_fraction", (0.0, 0.01, 0.02, 0.05), 0.0, "omega_a", 1, 8, 500_000, {}),
    ("field_multipoles", "perturbations.normal_ppm[1]", (0.0, 50.0, 100.0, 200.0), 0.0, "omega_a", 1, 2, 20_000, {"mode": "track"}),
)

_DESCRIPTIONS = {
    "momentum_spread": "C_e versus rms momentum spread, uncollimated (docs/physics.md §4: C_e = 2nβ²σ²/(1−n))",
    "field_index": "C_e versus the ring-averaged field index n (ESQ voltage)",
    "vertical_width": "C_p versus the rms vertical beam width (docs/physics.md §4: C_p = n⟨y²⟩/(2R0²))",
    "fit_start": "ω_a versus the fit start time; shifts must stay inside the nested-subset band",
    "gain_sag": "ω_a versus the in-fill gain sag amplitude (no gain correction in the fit)",
    "cbo_amplitude": "ω_a of the 5-parameter fit versus the coherent betatron (CBO) amplitude",
    "lost_muons": "ω_a versus the fraction of muons lost before decaying",
    "field_multipoles": "ω_a versus the normal sextupole b2 of the guide field (track mode)",
}

STUDIES: dict[str, Study] = {
    name: Study(name=name, parameter=parameter, values=values, nominal=nominal, observable=observable, degree=degree, seeds=seeds, positrons=positrons, description=_DESCRIPTIONS[name], **other)
    for name, parameter, values, nominal, observable, degree, seeds, positrons, other in _ROWS
}


def library_study(name: str) -> Study:
    """Return the library study ``name``; ConfigError listing the names when it is unknown."""
    try:
        return STUDIES[name]
    except KeyError:
        raise ConfigError(f"study: unknown library study {name!r}; expected one of {', '.join(STUDIES)}") from None
