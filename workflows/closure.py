"""Closure of a simulated run: its budget, R'_μ and a_μ against the truth it was simulated with.

:func:`simulated_run_budget` builds the correction table of a simulated run from its fit, its
events with their truth branches and the synthetic field data (docs/physics.md §4), derives a_μ
in the Fermilab and E821 forms, and compares every correction with the spin truth of the events.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from calibration.amu import AmuResult, amu_e821, amu_fnal
from calibration.budget import Budget, BudgetLine
from ringsim.constants import ELECTRON_PROTON_MOMENT_RATIO
from ringsim.errors import ConfigError, InputError

__all__ = ["RunBudget", "simulated_run_budget", "spin_truth"]

REQUIRED_TRUTH = ("time_ns", "energy_mev", "truth_x_e_m", "truth_y_m", "truth_delta_p", "truth_spin_phase_rad", "truth_t0_ns")


@dataclass
class RunBudget:
    """The budget of a run, R'_μ, a_μ in both forms, and the closure against the simulation truth.

    Attributes
    ----------
    budget : Budget
    ratio, ratio_err : float
        R'_μ = ω_a/ω̃'_p(T_r) with all corrections, and its uncertainty.
    amu, amu_e821 : AmuResult
        a_μ in the Fermilab form and in the E821 form a = R/(λ' − R), λ' = μ_μ/μ'_p(T_r).
    omega_p : calibration.omega_p.OmegaPResult
    fast_rotation : calibration.fast_rotation.FastRotationResult or None
    closure : dict
        Truth values and pulls (see :func:`simulated_run_budget`).
    """

    budget: Budget
    ratio: float
    ratio_err: float
    amu: AmuResult
    amu_e821: AmuResult
    omega_p: object
    fast_rotation: object | None
    closure: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-able summary: the budget, R'_μ, both a_μ, ω̃'_p and the closure numbers."""
        op = self.omega_p
        return {
            "budget": self.budget.to_dict(),
            "ratio": self.ratio,
            "ratio_err": self.ratio_err,
            "a_mu": self.amu.a_mu,
            "a_mu_err": self.amu.a_mu_err,
            "codata": self.amu.codata,
            "a_mu_e821": self.amu_e821.a_mu,
            "a_mu_e821_err": self.amu_e821.a_mu_err,
            "omega_p_tilde_rad_per_us": op.omega_p_rad_per_s * 1e-6,
            "omega_p_errors_ppb": dict(op.errors_ppb),
            "f_calib": op.f_calib,
            "closure": self.closure,
        }

    def write(self, folder: str | os.PathLike) -> None:
        """Write ``budget.txt``, ``budget.json`` (the full :meth:`to_dict`) and ``budget.tex`` into a folder."""
        from ringsim.io import atomic_output, write_json_atomic

        folder = Path(folder)
        if not folder.is_dir():
            raise InputError(f"{folder}: not a folder")
        with atomic_output(folder / "budget.txt") as tmp:
            Path(tmp).write_text(self.budget.to_text(), encoding="utf-8")
        with atomic_output(folder / "budget.tex") as tmp:
            Path(tmp).write_text(self.budget.to_latex(), encoding="utf-8")
        write_json_atomic(folder / "budget.json", self.to_dict())


def _wrap(phase: np.ndarray) -> np.ndarray:
    return (phase + math.pi) % (2.0 * math.pi) - math.pi


def spin_truth(truth: Mapping[str, np.ndarray], omega_a0_rad_per_s: float, injection_phase_rad: float, used: np.ndarray) -> dict:
    """Frequency shifts and phase drifts of the fitted muons from their true spin phases at decay.

    The residual r = wrap(φ_decay − φ_inj − ω_a0(t_decay − t₀)) of each muon is its own frequency
    shift times its lifetime plus its initial phase offset. Returns:

    - ``total``: −(1/ω_a0)·(least-squares slope of r against the detection time over the fitted
      positrons): the relative shift of the fitted ω_a from all spin effects together
      (C_e + C_p + C_ml + C_dd; dimensionless, ×1e9 for ppb);
    - ``phase_per_delta_rad``: k of r = c₀ + (c + c'δ)τ + kδ, the injected phase–momentum
      correlation (c'δ takes a frequency linear in δ, e.g. from a momentum slightly off magic);
    each with its least-squares standard error (``*_err``). The errors are heteroscedasticity-
    consistent (sandwich, HC1): the spread of r grows with the lifetime (each muon's own shift times
    τ), which the homoscedastic formula would underestimate.
    """
    t_ns = np.asarray(truth["truth_decay_time_ns"] if "truth_decay_time_ns" in truth else truth["time_ns"], dtype=float)[used]
    t0_ns = np.asarray(truth["truth_t0_ns"], dtype=float)[used]
    tau_s = (t_ns - t0_ns) * 1e-9
    r = _wrap(np.asarray(truth["truth_spin_phase_rad"], dtype=float)[used] - injection_phase_rad - omega_a0_rad_per_s * tau_s)
    delta = np.asarray(truth["truth_delta_p"], dtype=float)[used]
    n = r.size
    if n < 10:
        raise InputError(f"truth: only {n} fitted positrons; need at least 10 for the spin truth")

    def ols(design: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scale = np.abs(design).max(axis=0)
        scale[scale == 0.0] = 1.0
        coef, *_ = np.linalg.lstsq(design / scale, r, rcond=None)
        x = design / scale
        resid = r - x @ coef
        bread = np.linalg.inv(x.T @ x)
        meat = (x * resid[:, None] ** 2).T @ x
        cov = bread @ meat @ bread * n / (n - design.shape[1])
        return coef / scale, np.sqrt(np.diag(cov)) / scale

    (_, slope), (_, slope_err) = ols(np.stack([np.ones(n), t_ns * 1e-9], axis=1))
    coef, err = ols(np.stack([np.ones(n), tau_s, tau_s * delta, delta], axis=1))
    return {
        "total": -slope / omega_a0_rad_per_s,
        "total_err": slope_err / omega_a0_rad_per_s,
        "phase_per_delta_rad": float(coef[3]),
        "phase_per_delta_err_rad": float(err[3]),
    }


def _fit_dict(fit) -> dict:
    d = fit.to_dict() if hasattr(fit, "to_dict") else dict(fit)
    for key in ("omega_a", "omega_a_err", "start_us", "end_us"):
        if key not in d:
            raise InputError(f"fit: missing key '{key}' (pass FitResult.to_dict())")
    if d.get("blinded", False):
        raise ConfigError("fit: the ω_a fit is blinded; a budget and a_μ need the unblinded fit")
    return d


def _truth_arrays(truth: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    missing = [k for k in REQUIRED_TRUTH if k not in truth]
    if missing:
        raise InputError(f"truth: missing branch(es) {', '.join(missing)}")
    n = np.asarray(truth["time_ns"]).size
    out = {}
    for key, value in truth.items():
        arr = np.asarray(value)
        if arr.shape != (n,):
            raise InputError(f"truth: branch '{key}' has shape {arr.shape}, expected ({n},) like time_ns")
        out[key] = arr
    return out


def _phase_slope_per_x(truth: dict, used: np.ndarray, settings, omega_a_rad_per_us: float, seed: int) -> tuple[float, float]:
    """dφ/dx (rad/m) of the detected wiggle: five-parameter fits in terciles of the decay radius."""
    from analysis.wiggle import histogram_and_fit

    x = np.asarray(truth["truth_x_m"] if "truth_x_m" in truth else truth["truth_x_e_m"], dtype=float)
    t_us = np.asarray(truth["time_ns"], dtype=float) * 1e-3
    energy = np.asarray(truth["energy_mev"], dtype=float)
    in_energy = (energy >= settings.energy_min_mev) & (energy < settings.energy_max_mev)
    edges = np.quantile(x[used], [0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0])
    xs, phases, errors = [], [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = in_energy & (x >= lo) & (x <= hi)
        fit, _, _ = histogram_and_fit(t_us[sel], settings, seed=seed)
        # compare the phases at the common ω_a: φ + (ω_fit − ω_a)·t̄, with t̄ the time at which the
        # fitted phase and frequency are uncorrelated (the phase error is then the conditional one)
        rho = fit.correlation["phi"]["R_ppm"]
        sigma_omega = settings.omega_ref_rad_per_us * fit.errors["R_ppm"] * 1e-6
        t_bar = -rho * fit.errors["phi"] / sigma_omega
        xs.append(float(np.mean(x[sel & used])))
        phases.append(fit.params["phi"] + (fit.omega_a - omega_a_rad_per_us) * t_bar)
        errors.append(fit.errors["phi"] * math.sqrt(max(1.0 - rho**2, 1e-12)))
    phases = np.unwrap(np.asarray(phases))
    w = 1.0 / np.asarray(errors) ** 2
    xs_arr = np.asarray(xs)
    x_bar = np.dot(w, xs_arr) / w.sum()
    sxx = np.dot(w, (xs_arr - x_bar) ** 2)
    return float(np.dot(w, (xs_arr - x_bar) * phases) / sxx), float(1.0 / math.sqrt(sxx))


def simulated_run_budget(
    cfg,
    fit,
    truth: Mapping[str, np.ndarray],
    *,
    lost: Mapping[str, np.ndarray] | None = None,
    n_muons: int | None = None,
    field_dataset=None,
    codata_edition: int = 2018,
    c_e_source: str = "fast_rotation",
    tracker_resolution_m: float = 0.5e-3,
    tracker_resolution_err_m: float = 0.05e-3,
    tracker_systematic_rel: float = 0.03,
    transients: Mapping[str, tuple] | None = None,
    f_clock_ppb: float = 0.0,
    f_clock_err_ppb: float = 0.0,
    seed: int = 0,
) -> RunBudget:
    """Return the full budget, R'_μ and a_μ of a simulated run, with the closure against its truth.

    Parameters
    ----------
    cfg : ringsim.config.SimConfig
        Configuration the run was simulated with.
    fit : analysis.fitting.FitResult or dict
        The unblinded ω_a fit (or its ``to_dict()``): ``omega_a``, ``omega_a_err`` (rad/μs),
        ``start_us``, ``end_us``.
    truth : mapping of str → numpy.ndarray
        Branches of the events tree, one entry per recorded positron: ``time_ns``, ``energy_mev``,
        ``truth_x_e_m``, ``truth_y_m``, ``truth_delta_p``, ``truth_spin_phase_rad``,
        ``truth_t0_ns``; optional ``calo`` (fast-rotation alignment), ``truth_decay_time_ns``
        (else ``time_ns`` is the decay time), ``truth_x_m`` (decay radius, for C_pa and the
        field weighting; else x_e) and ``truth_mip`` (rows with 1, the lost muons' clusters, are
        left out).
    lost : mapping, optional
        The lost-muon records, ``time_ns`` and ``truth_delta_p``; needs ``n_muons``.
    n_muons : int, optional
        Muons stored in the run (decayed and lost), the population the lost ones are taken from.
    field_dataset : calibration.field_maps.FieldDataset, optional
        Field data of the run; default: :func:`calibration.field_maps.synthetic_field_dataset` of the
        configured (static) field, with a drift whose run average vanishes.
    codata_edition : int
        CODATA edition of the constants (2018 or 2022).
    c_e_source : str
        ``"fast_rotation"`` (x_e distribution from the positron times; electric rings) or ``"truth"``
        (the truth x_e of the fitted positrons).
    tracker_resolution_m, tracker_resolution_err_m : float
        Vertical resolution of the simulated tracker measurement of y (and its uncertainty), m.
    tracker_systematic_rel : float
        Relative systematic uncertainty of C_p from the tracker: acceptance (the y of detected
        decays under-represents large amplitudes by ~1 % with the calorimeter geometry) and the
        formula n⟨y²⟩/(2R₀²) itself, which spin tracking of the discrete-ESQ ring confirms to 3 %.
    transients : mapping, optional
        ``{"kicker": (params, cov), "esq": (params, cov)}`` of fitted transient fields
        (:func:`calibration.transients.fit_transient`, amplitudes in ppb); absent ones give
        B_k, B_q = 0 ± 0 (the simulation has no transient fields).
    f_clock_ppb, f_clock_err_ppb : float
        Clock correction f_clock − 1 and its error, ppb.
    seed : int
        Seed of the tracker smearing, the field data set and its bootstrap.

    Returns
    -------
    RunBudget
        ``closure`` holds ``a_mu_true``, ``pull`` ((a_μ − truth)/error), the spin truth
        (``truth_total_ppb``, ``truth_C_e_ppb``, ``truth_C_p_ppb`` with errors), the same
        corrections from the truth positions (``formula_C_e_ppb``, ``formula_C_p_ppb``) and the pulls
        of the budget's values against the spin truth.
    """
    from analysis.wiggle import ring_settings
    from calibration.beam_corrections import (
        differential_decay_correction,
        electric_field_correction,
        lost_muon_correction,
        phase_acceptance_correction,
        pitch_correction,
        pitch_correction_from_tracker,
    )
    from calibration.field_maps import synthetic_field_dataset
    from calibration.omega_p import BeamMoments, omega_p_tilde_from_field
    from calibration.transients import transient_correction
    from ringsim.constants import codata
    from ringsim.rings import ring_kinematics

    if c_e_source not in ("fast_rotation", "truth"):
        raise ConfigError(f"c_e_source: expected 'fast_rotation' or 'truth', got {c_e_source!r}")
    fd = _fit_dict(fit)
    tr = _truth_arrays(truth)
    kin = ring_kinematics(cfg, codata_edition)
    ring = cfg.ring
    n, r0 = ring.field_index, ring.radius_m
    settings = ring_settings(cfg)
    omega_a = float(fd["omega_a"])
    start_us, end_us = float(fd["start_us"]), float(fd["end_us"])
    gamma_tau_us = kin.gamma_tau_us
    t_us = tr["time_ns"].astype(float) * 1e-3
    energy = tr["energy_mev"].astype(float)
    positron = np.asarray(tr["truth_mip"]) == 0 if "truth_mip" in tr else np.ones(energy.size, dtype=bool)  # not a lost muon's cluster
    used = positron & (energy >= settings.energy_min_mev) & (energy < settings.energy_max_mev) & (t_us >= start_us) & (t_us < end_us)
    if np.count_nonzero(used) < 100:
        raise InputError(f"truth: only {np.count_nonzero(used)} positrons in the fit window and energy range; need >= 100")
    rng = np.random.default_rng(seed)
    ppb = 1e9
    lines: list[BudgetLine] = [BudgetLine("ω_a statistical", 0.0, float(fd["omega_a_err"]) / omega_a * ppb, "uncertainty")]
    closure: dict = {}

    # C_e: electric-field correction
    x_e_used = tr["truth_x_e_m"][used].astype(float)
    fr_result = None
    if ring.focusing == "electric":
        c_e_formula, c_e_formula_err = electric_field_correction(x_e_used, n, r0, kin.beta)
        if c_e_source == "fast_rotation":
            from calibration.fast_rotation import fast_rotation_analysis

            fr_result = fast_rotation_analysis(
                tr["time_ns"][positron].astype(float),
                kin.cyclotron_period_ns,
                r0,
                ring.aperture_radius_m,
                calo=tr["calo"][positron] if "calo" in tr else None,
                n_stations=ring.n_detectors if "calo" in tr else None,
                start_us=min(1.0, 0.5 * start_us),
                end_us=min(150.0, start_us + 120.0),
            )
            prefactor = 2.0 * n * (1.0 - n) * kin.beta**2 / r0**2
            c_e, c_e_err, note = prefactor * fr_result.x2_mean_m2, prefactor * fr_result.x2_mean_err_m2, "fast rotation"
        else:
            c_e, c_e_err, note = c_e_formula, c_e_formula_err, "truth x_e"
    else:
        c_e = c_e_err = c_e_formula = c_e_formula_err = 0.0
        note = "no electric field"
    lines.append(BudgetLine("C_e", c_e * ppb, c_e_err * ppb, "numerator", "C", note))

    # C_p: pitch from tracker-like measurements of y (truth y smeared by the resolution)
    y_used = tr["truth_y_m"][used].astype(float)
    y_meas = y_used + rng.normal(0.0, tracker_resolution_m, y_used.size)
    c_p, c_p_stat = pitch_correction_from_tracker(y_meas, tracker_resolution_m, tracker_resolution_err_m, n, r0)
    c_p_err = math.hypot(c_p_stat, tracker_systematic_rel * c_p)
    c_p_formula, c_p_formula_err = pitch_correction(y_used, n, r0)
    lines.append(BudgetLine("C_p", c_p * ppb, c_p_err * ppb, "numerator", "C", "tracker y, resolution unfolded"))

    # phase-momentum correlation of the injected beam (from the decays' true spin phases)
    truth_spin = spin_truth(tr, kin.omega_a_rad_per_s, cfg.beam.spin_phase_rad, used)
    k, k_err = truth_spin["phase_per_delta_rad"], truth_spin["phase_per_delta_err_rad"]

    # C_pa: detected-phase dependence on the decay radius × drift of the mean radius in the fill
    slope_x, slope_x_err = _phase_slope_per_x(tr, used, settings, omega_a, seed)
    # ⟨x⟩(t) in ~20 bins of equal counts, with edges on whole g-2 periods so that the detected
    # radius's modulation at ω_a cancels within each bin
    x_decay = np.asarray(tr["truth_x_m"] if "truth_x_m" in tr else tr["truth_x_e_m"], dtype=float)
    period_us = 2.0 * math.pi / omega_a
    quantiles = np.quantile(t_us[used], np.linspace(0.0, 1.0, 21))
    bins = start_us + period_us * np.unique(np.round((quantiles - start_us) / period_us))
    inside = used & (t_us >= bins[0]) & (t_us < bins[-1])
    idx = np.digitize(t_us[inside], bins) - 1
    xs = x_decay[inside]
    counts = np.bincount(idx, minlength=bins.size - 1)
    filled = counts >= 2
    if np.count_nonzero(filled) < 3:
        raise InputError("truth: fewer than 3 whole-period bins with positrons in the fit window; too few events for C_pa")
    mean_x = np.bincount(idx, weights=xs, minlength=bins.size - 1)[filled] / counts[filled]
    var_x = np.bincount(idx, weights=xs**2, minlength=bins.size - 1)[filled] / counts[filled] - mean_x**2
    centres = (0.5 * (bins[:-1] + bins[1:]))[filled]
    counts = counts[filled]
    c_pa, c_pa_err = phase_acceptance_correction(centres, mean_x[:, None], np.sqrt(var_x / counts)[:, None], [slope_x], [slope_x_err], omega_a, start_us, end_us, gamma_tau_us)
    lines.append(BudgetLine("C_pa", c_pa * ppb, c_pa_err * ppb, "numerator", "C", "dφ/dx × d⟨x⟩/dt"))

    # C_dd: momentum-dependent decay × phase-momentum correlation
    delta_used = tr["truth_delta_p"][used].astype(float)
    c_dd, c_dd_err = differential_decay_correction(delta_used, k, k_err, kin.gamma, omega_a, start_us, end_us)
    lines.append(BudgetLine("C_dd", c_dd * ppb, c_dd_err * ppb, "numerator", "C"))

    # C_ml: lost muons
    if lost is not None and np.asarray(lost["time_ns"]).size > 0:
        if n_muons is None:
            raise ConfigError("n_muons: the number of stored muons is needed with lost-muon records")
        loss_t_us = np.asarray(lost["time_ns"], dtype=float) * 1e-3
        loss_weight = np.exp(loss_t_us / gamma_tau_us)  # losses seen only if the muon had not decayed
        # C_ml is linear in k: compute it per unit k, then scale (so that k ≈ 0 keeps its error)
        per_k, per_k_stat = lost_muon_correction(
            loss_t_us, np.asarray(lost["truth_delta_p"], dtype=float), delta_used, omega_a, start_us, end_us, gamma_tau_us, loss_weight * delta_used.size / n_muons
        )
        c_ml, c_ml_err = k * per_k, math.hypot(k * per_k_stat, per_k * k_err)
        ml_note = f"{loss_t_us.size} lost muons"
    else:
        c_ml, c_ml_err, ml_note = 0.0, 0.0, "no lost muons recorded"
    lines.append(BudgetLine("C_ml", c_ml * ppb, c_ml_err * ppb, "numerator", "C", ml_note))
    lines.append(BudgetLine("f_clock", f_clock_ppb, f_clock_err_ppb, "numerator", "f_clock"))

    # ω̃'_p: field data weighted with the muon distribution
    dataset = field_dataset if field_dataset is not None else synthetic_field_dataset(cfg, seed=seed, codata_edition=codata_edition)
    if "truth_x_m" in tr:
        moments = BeamMoments.from_samples(tr["truth_x_m"][used].astype(float), y_meas)
    else:
        sigma_b = cfg.beam.radial_betatron_width_m
        moments = BeamMoments.from_samples(x_e_used, y_meas, extra_x2_m2=sigma_b**2, extra_x2_err_m2=0.1 * sigma_b**2)
    moments = dataclasses.replace(moments, y2_m2=moments.y2_m2 - tracker_resolution_m**2)
    omega_p = omega_p_tilde_from_field(dataset, moments, seed=seed)
    errs = omega_p.errors_ppb
    lines += [
        BudgetLine("f_calib (probe calibration)", (omega_p.f_calib - 1.0) * ppb, errs["calibration"], "denominator", "f_calib"),
        BudgetLine("ω_p trolley maps" if ring.name == "fnal" else "ω_p field maps (mapping probe)", 0.0, errs["trolley"], "uncertainty"),
        BudgetLine("ω_p fixed-probe tracking", 0.0, errs["fixed_probes"], "uncertainty"),
        BudgetLine("ω_p muon weighting", 0.0, errs["muon_weighting"], "uncertainty"),
    ]

    # transient fields
    for kind, name in (("kicker", "B_k"), ("esq", "B_q")):
        if transients is not None and kind in transients:
            params, cov = transients[kind]
            value, err = transient_correction(kind, params, cov, start_us, end_us, gamma_tau_us)
            lines.append(BudgetLine(name, value, err, "denominator", "B"))
        else:
            lines.append(BudgetLine(name, 0.0, 0.0, "denominator", "B", "no transient field simulated"))

    budget = Budget(tuple(lines))
    omega_p_raw_rad_per_us = omega_p.omega_p_rad_per_s / omega_p.f_calib * 1e-6
    ratio = omega_a / omega_p_raw_rad_per_us * budget.factor()
    ratio_err = ratio * budget.total_error_ppb / ppb
    amu = amu_fnal(ratio, ratio_err, codata_edition=codata_edition, temperature_c=omega_p.temperature_c)
    c = codata(codata_edition)
    mu_e_over_mu_p_t = 1.0 / c.shielded_proton_to_electron_moment_ratio(omega_p.temperature_c)
    lam = c.muon_proton_moment_ratio * mu_e_over_mu_p_t / ELECTRON_PROTON_MOMENT_RATIO
    amu_b = amu_e821(ratio, ratio_err, lam=lam, lam_err=lam * c.muon_proton_moment_ratio_err / c.muon_proton_moment_ratio)

    a_true = cfg.muon.a_mu
    estimate_c = (c_e + c_p + c_dd + c_ml) * ppb
    estimate_c_err = math.sqrt(c_e_err**2 + c_p_err**2 + c_dd_err**2 + c_ml_err**2) * ppb
    truth_total, truth_total_err = truth_spin["total"] * ppb, truth_spin["total_err"] * ppb
    # the spin shift left after the electric-field shift of the truth x_e (the fast model's ω_a is
    # the C_e formula in x_e, checked against spin tracking in the tests)
    truth_c_p = truth_total - c_e_formula * ppb - (c_dd + c_ml) * ppb
    truth_c_p_err = math.hypot(truth_total_err, c_e_formula_err * ppb)

    def pull(value, err, reference, reference_err):
        denom = math.hypot(err, reference_err)
        return (value - reference) / denom if denom > 0.0 else 0.0

    closure.update(
        {
            "a_mu_true": a_true,
            "pull": (amu.a_mu - a_true) / amu.a_mu_err,
            "pull_e821": (amu_b.a_mu - a_true) / amu_b.a_mu_err,
            "truth_total_ppb": truth_total,
            "truth_total_err_ppb": truth_total_err,
            "estimated_total_ppb": estimate_c,
            "estimated_total_err_ppb": estimate_c_err,
            "pull_total": pull(estimate_c, estimate_c_err, truth_total, truth_total_err),
            "truth_x_e_C_e_ppb": c_e_formula * ppb,
            "truth_x_e_C_e_err_ppb": c_e_formula_err * ppb,
            "pull_C_e": pull(c_e * ppb, c_e_err * ppb, c_e_formula * ppb, 0.0 if c_e_source == "truth" else c_e_formula_err * ppb),
            "truth_y_C_p_ppb": c_p_formula * ppb,
            "truth_y_C_p_err_ppb": c_p_formula_err * ppb,
            "spin_C_p_ppb": truth_c_p,
            "spin_C_p_err_ppb": truth_c_p_err,
            "pull_C_p": pull(c_p * ppb, c_p_err * ppb, truth_c_p, truth_c_p_err),
            "phase_per_delta_rad": k,
            "phase_per_delta_err_rad": k_err,
        }
    )
    if fr_result is not None:
        closure.update(
            {
                "fast_rotation_mean_mm": fr_result.mean_m * 1e3,
                "fast_rotation_width_mm": fr_result.width_m * 1e3,
                "truth_x_e_mean_mm": float(x_e_used.mean()) * 1e3,
                "truth_x_e_width_mm": float(x_e_used.std()) * 1e3,
            }
        )
    return RunBudget(budget, ratio, ratio_err, amu, amu_b, omega_p, fr_result, closure)
