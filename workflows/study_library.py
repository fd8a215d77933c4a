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

STUDIES: dict[str, Study] = {
    "momentum_spread": Study(
        name="momentum_spread",
        description="C_e versus rms momentum spread, uncollimated (docs/physics.md §4: C_e = 2nβ²σ²/(1−n))",
        parameter="beam.momentum_spread",
        values=(0.0, 0.25e-3, 0.5e-3, 0.75e-3, 1.0e-3, 1.25e-3, 1.5e-3),
        nominal=0.0,
        observable="C_e",
        degree=2,
        seeds=4,
        positrons=200_000,
        overrides=("ring.aperture_radius_m=0.5",),
    ),
    "field_index": Study(
        name="field_index",
        description="C_e versus the ring-averaged field index n (ESQ voltage)",
        parameter="ring.field_index",
        values=(0.09, 0.108, 0.12, 0.135),
        nominal=0.108,
        observable="C_e",
        degree=2,
        seeds=4,
        positrons=200_000,
    ),
    "vertical_width": Study(
        name="vertical_width",
        description="C_p versus the rms vertical beam width (docs/physics.md §4: C_p = n⟨y²⟩/(2R0²))",
        parameter="beam.vertical_width_m",
        values=(0.0, 0.005, 0.009, 0.013, 0.017),
        nominal=0.0,
        observable="C_p",
        degree=2,
        seeds=4,
        positrons=200_000,
    ),
    "fit_start": Study(
        name="fit_start",
        description="ω_a versus the fit start time; shifts must stay inside the nested-subset band",
        parameter="analysis.fit_start_us",
        values=(30.2, 40.0, 50.0, 60.0, 80.0, 100.0),
        nominal=30.2,
        observable="omega_a",
        degree=1,
        seeds=8,
        positrons=500_000,
    ),
    "gain_sag": Study(
        name="gain_sag",
        description="ω_a versus the in-fill gain sag amplitude (no gain correction in the fit)",
        parameter="detector.gain_sag_amplitude",
        values=(0.0, 0.002, 0.005, 0.01),
        nominal=0.0,
        observable="omega_a",
        degree=1,
        seeds=8,
        positrons=500_000,
    ),
    "cbo_amplitude": Study(
        name="cbo_amplitude",
        description="ω_a of the 5-parameter fit versus the coherent betatron (CBO) amplitude",
        parameter="fastmodel.cbo_amplitude_m",
        values=(0.0, 0.002, 0.004, 0.006),
        nominal=0.0,
        observable="omega_a",
        degree=2,
        seeds=8,
        positrons=500_000,
    ),
    "lost_muons": Study(
        name="lost_muons",
        description="ω_a versus the fraction of muons lost before decaying",
        parameter="fastmodel.loss_fraction",
        values=(0.0, 0.01, 0.02, 0.05),
        nominal=0.0,
        observable="omega_a",
        degree=1,
        seeds=8,
        positrons=500_000,
    ),
    "field_multipoles": Study(
        name="field_multipoles",
        description="ω_a versus the normal sextupole b2 of the guide field (track mode)",
        parameter="perturbations.normal_ppm[1]",
        values=(0.0, 50.0, 100.0, 200.0),
        nominal=0.0,
        observable="omega_a",
        degree=1,
        seeds=2,
        positrons=20_000,
        mode="track",
    ),
}


def library_study(name: str) -> Study:
    """The library study ``name``; ConfigError listing the names when it is unknown."""
    try:
        return STUDIES[name]
    except KeyError:
        raise ConfigError(f"study: unknown library study {name!r}; expected one of {', '.join(STUDIES)}") from None
