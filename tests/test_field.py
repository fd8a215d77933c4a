"""Field maps: multipole expansion, weighting with a known beam (analytic averages derived here),
drift tracking by the fixed probes at the accuracy the probe noise allows, calibration, files."""

import dataclasses
import math

import numpy as np
import pytest

from calibration.field_maps import (
    analyze_field,
    evaluate_multipoles,
    fit_multipoles,
    load_field_dataset,
    probe_layout,
    save_field_dataset,
    synthetic_field_dataset,
)
from calibration.larmor import muon_weighted_field_t, omega_p_tilde_rad_per_s
from calibration.omega_p import BeamMoments, moment_basis, omega_p_tilde_from_field, sample_basis
from ringsim.config import load_config
from ringsim.errors import InputError

R0_REF = 0.045
ORDER = 4
NOISELESS = {"trolley_noise_ppb": 0.0, "fixed_noise_ppb": 0.0, "calibration_noise_ppb": 1e-3}


def _polar_field(coeffs, r, theta):
    """B(r, θ) = Σ (r/r₀)^k [a_k cos kθ + b_k sin kθ] written in polar form (the docs/physics.md §4 definition)."""
    total = coeffs[0] * np.ones_like(r)
    for k in range(1, (len(coeffs) - 1) // 2 + 1):
        total = total + (r / R0_REF) ** k * (coeffs[2 * k - 1] * np.cos(k * theta) + coeffs[2 * k] * np.sin(k * theta))
    return total


def test_basis_matches_the_polar_definition():
    rng = np.random.default_rng(1)
    coeffs = rng.normal(0, 100, 2 * ORDER + 1)
    r, theta = rng.uniform(0, R0_REF, 50), rng.uniform(0, 2 * math.pi, 50)
    np.testing.assert_allclose(evaluate_multipoles(coeffs, r * np.cos(theta), r * np.sin(theta), R0_REF), _polar_field(coeffs, r, theta), rtol=1e-12, atol=1e-9)


def test_seventeen_probes_determine_the_multipoles_up_to_order_4():
    layout = probe_layout("fnal")
    radius = np.hypot(layout.probe_x_m, layout.probe_y_m)
    assert layout.probe_x_m.size == 17 and radius.max() <= 0.045
    assert layout.fixed_x_m.size == 378 and layout.station_azimuth_rad.size == 72
    coeffs = np.random.default_rng(2).normal(0, 500, 2 * ORDER + 1)
    readings = _polar_field(coeffs, radius, np.arctan2(layout.probe_y_m, layout.probe_x_m))
    fitted, _ = fit_multipoles(layout.probe_x_m, layout.probe_y_m, readings, R0_REF, ORDER)
    np.testing.assert_allclose(fitted, coeffs, atol=1e-8)


def _gaussian_average(coeffs, xm, ym, sx, sy):
    """⟨B⟩ over independent Gaussians x ~ N(x̄, σx²), y ~ N(ȳ, σy²) up to the octupole k = 3:
    ⟨x²⟩ = x̄² + σx², ⟨x³⟩ = x̄³ + 3x̄σx², ⟨xy²⟩ = x̄⟨y²⟩, ⟨x²y⟩ = ⟨x²⟩ȳ, ⟨y³⟩ = ȳ³ + 3ȳσy²."""
    a0, a1, b1, a2, b2, a3, b3 = coeffs
    x2, y2 = xm**2 + sx**2, ym**2 + sy**2
    x3, y3 = xm**3 + 3 * xm * sx**2, ym**3 + 3 * ym * sy**2
    return a0 + (a1 * xm + b1 * ym) / R0_REF + (a2 * (x2 - y2) + b2 * 2 * xm * ym) / R0_REF**2 + (a3 * (x3 - 3 * xm * y2) + b3 * (3 * x2 * ym - y3)) / R0_REF**3


def test_weighting_with_a_gaussian_beam_matches_the_analytic_average():
    coeffs = np.array([100.0, 300.0, -200.0, 500.0, 150.0, 80.0, -60.0])  # ppb, up to k = 3
    xm, ym, sx, sy = 0.002, -0.001, 0.012, 0.009
    expected = _gaussian_average(coeffs, xm, ym, sx, sy)
    # quadrupole and sextupole: ⟨B⟩ = a0 + a1x̄/r0 + b1ȳ/r0 + a2(σx² − σy² + x̄² − ȳ²)/r0² + 2b2x̄ȳ/r0²
    moments = BeamMoments(x_m=xm, y_m=ym, x2_m2=xm**2 + sx**2, y2_m2=ym**2 + sy**2, xy_m2=xm * ym)
    two_moment = moment_basis(moments, R0_REF, 3) @ coeffs
    assert two_moment == pytest.approx(_gaussian_average(np.r_[coeffs[:5], 0, 0], xm, ym, sx, sy), rel=1e-12)
    # with samples the octupole is included too
    rng = np.random.default_rng(3)
    n = 400_000
    x, y = rng.normal(xm, sx, n), rng.normal(ym, sy, n)
    values = evaluate_multipoles(coeffs, x, y, R0_REF)
    sampled = sample_basis(x, y, R0_REF, 3) @ coeffs
    assert sampled == pytest.approx(values.mean(), rel=1e-12)
    assert abs(sampled - expected) < 4 * values.std() / math.sqrt(n)
    # dropping the octupole costs only the third-moment terms
    assert abs(two_moment - expected) == pytest.approx(abs(_gaussian_average(np.r_[0, 0, 0, 0, 0, coeffs[5:]], xm, ym, sx, sy)), rel=1e-9)


def _static(layout, rng):
    n_az = layout.map_azimuth_rad.size
    static = np.zeros((n_az, 2 * ORDER + 1))
    static[:, 0] = 400 * np.cos(3 * layout.map_azimuth_rad)  # azimuthal variation of the dipole
    static[:, 1:5] = [300.0, -150.0, 600.0, 100.0]
    static[:, 5:] = rng.normal(0, 50, (n_az, 4))
    return static


def test_noiseless_run_average_equals_the_analytic_muon_weighted_field():
    """Static multipoles plus a drift whose run average vanishes: the maps carried by the fixed
    probes and weighted by the beam give the analytic ⟨B⟩ of the static field."""
    cfg = load_config("fnal")
    layout = probe_layout("fnal")
    static = _static(layout, np.random.default_rng(4))
    ds = synthetic_field_dataset(cfg, extra_static_ppb=static, drift_ppb=300.0, seed=5, calibration_offset_rms_ppb=0.0, **NOISELESS)
    moments = BeamMoments(x_m=0.001, y_m=0.0005, x2_m2=0.001**2 + 0.015**2, y2_m2=0.0005**2 + 0.010**2, xy_m2=0.001 * 0.0005)
    result = omega_p_tilde_from_field(ds, moments, n_replicas=2)
    expected = np.mean(static @ moment_basis(moments, R0_REF, ORDER))
    assert result.value_ppb == pytest.approx(expected, abs=0.5)  # linear interpolation of the drift between readings
    assert result.omega_p_rad_per_s == pytest.approx(omega_p_tilde_rad_per_s(cfg.ring.field_t) * (1 + result.value_ppb * 1e-9), rel=1e-12)


def test_calibration_offsets_are_removed():
    cfg = load_config("fnal")
    ds = synthetic_field_dataset(cfg, calibration_offset_rms_ppb=40.0, drift_ppb=0.0, seed=6, **NOISELESS)
    offsets = np.asarray(ds.meta["synthetic_truth"]["calibration_offsets_ppb"])
    moments = BeamMoments(0.0, 0.0, 0.0, 0.0)
    result = omega_p_tilde_from_field(ds, moments, n_replicas=2)
    assert result.value_ppb == pytest.approx(0.0, abs=1e-3)
    # without calibration, a centred point beam sees the offsets' fitted dipole
    layout = probe_layout("fnal")
    offset_a0 = fit_multipoles(layout.probe_x_m, layout.probe_y_m, offsets, R0_REF, ORDER)[0][0]
    assert result.raw_value_ppb == pytest.approx(offset_a0, abs=1e-3)
    assert result.f_calib - 1 == pytest.approx(-offset_a0 * 1e-9, rel=1e-6)


def test_fixed_probes_track_a_drift_to_the_probe_noise_over_root_n():
    """A common dipole drift, 20 ppb probe noise: the ring-averaged tracked change between two
    readings scatters by σ√2·√(Σ_s v_s)/S, v_s = 1/6 or 1/4 for 6- or 4-probe stations (≈ σ√2/√378)."""
    cfg = load_config("fnal")
    layout = probe_layout("fnal")
    sigma = 20.0

    def drift(t_s):
        t = np.asarray(t_s, dtype=float)
        out = np.zeros((t.size, layout.station_azimuth_rad.size, 3))
        out[:, :, 0] = (1500.0 * t / 86400.0 + 400.0 * np.sin(2 * math.pi * t / 86400.0))[:, None]
        return out

    ds = synthetic_field_dataset(cfg, drift=drift, fixed_noise_ppb=sigma, trolley_noise_ppb=0.0, seed=7)
    analysis = analyze_field(ds)
    assert analysis.fixed_noise_ppb == pytest.approx(sigma, rel=0.05)
    tracked = analysis.tracking_at(ds.fixed_time_s)[:, :, 0].mean(axis=1)  # ring-averaged a0 at each reading
    recovered = tracked - tracked[0]
    truth = drift(ds.fixed_time_s)[:, 0, 0] - drift(ds.fixed_time_s[:1])[0, 0, 0]
    per_probe = np.bincount(layout.fixed_station)
    expected = sigma * math.sqrt(2 * np.sum(1.0 / per_probe)) / per_probe.size
    assert expected == pytest.approx(sigma * math.sqrt(2 / 378), rel=0.1)
    resid = (recovered - truth)[1:]
    # each reading's error is expected/√2; the first reading's error is a common offset of all differences
    assert np.std(resid) == pytest.approx(expected / math.sqrt(2), rel=0.25)
    assert np.max(np.abs(resid)) < 5 * expected


def test_bootstrap_errors_match_the_scatter_of_independent_data_sets():
    cfg = load_config("fnal")
    moments = BeamMoments(0.002, 0.0, 0.015**2, 0.010**2)
    layout = probe_layout("fnal")
    static = _static(layout, np.random.default_rng(8))
    truth = np.mean(static @ moment_basis(moments, R0_REF, ORDER))
    values, errors = [], []
    for seed in range(6):
        r = omega_p_tilde_from_field(synthetic_field_dataset(cfg, extra_static_ppb=static, seed=100 + seed), moments, n_replicas=8, seed=seed)
        values.append(r.value_ppb)
        errors.append(r.total_error_ppb)
    pulls = (np.asarray(values) - truth) / np.asarray(errors)
    assert np.sqrt(np.mean(pulls**2)) < 2.5  # six pulls: rms ≈ 1 when the errors are right
    assert 0.3 < np.mean(errors) < 5.0  # ppb level for the default noise


def test_jparc_mapping_scheme_sees_the_weak_focusing_gradient():
    """Magnetic focusing B = B₀(1 − n x/R₀): the weighted field equals the closed form for a beam at x̄."""
    cfg = load_config("jparc")
    layout = probe_layout("jparc")
    assert np.hypot(layout.probe_x_m, layout.probe_y_m).max() <= 0.03 and layout.map_interval_days is None
    ds = synthetic_field_dataset(cfg, seed=9, calibration_offset_rms_ppb=0.0, **NOISELESS)
    assert ds.map_time_s.shape[0] == 2  # mapped before and after the run
    x_bar = 0.004
    result = omega_p_tilde_from_field(ds, BeamMoments(x_bar, 0.0, x_bar**2, 0.0), n_replicas=2)
    expected_field = muon_weighted_field_t(cfg.ring.field_t, cfg.ring.field_index, cfg.ring.radius_m, [x_bar], "magnetic")
    # a₁ = −n r₀/R₀ = −13.5 ppm: 1.8 ppm at x̄ = 4 mm, reproduced to the drift interpolation (< 0.3 ppb)
    assert 1 + result.value_ppb * 1e-9 == pytest.approx(expected_field / cfg.ring.field_t, abs=3e-10)


def test_file_round_trip_and_errors(tmp_path):
    cfg = load_config("fnal")
    ds = synthetic_field_dataset(cfg, seed=10)
    path = tmp_path / "field.npz"
    save_field_dataset(path, ds)
    back = load_field_dataset(path)
    assert back.ring == "fnal" and back.reference_hz == ds.reference_hz
    np.testing.assert_allclose(back.map_offset_hz, ds.map_offset_hz, rtol=1e-6, atol=1e-4)
    np.testing.assert_array_equal(back.fixed_station, ds.fixed_station)
    assert back.meta["synthetic_truth"]["noise_ppb"]["trolley"] == 15.0
    # a missing array and a wrong shape are named
    content = dict(np.load(path))
    del content["fixed_time_s"]
    np.savez(tmp_path / "missing.npz", **content)
    with pytest.raises(InputError, match="missing key 'fixed_time_s'") as info:
        load_field_dataset(tmp_path / "missing.npz")
    assert "\n" not in str(info.value)
    content = dict(np.load(path))
    content["fixed_x_m"] = content["fixed_x_m"][:-1]
    np.savez(tmp_path / "shape.npz", **content)
    with pytest.raises(InputError, match="key 'fixed_x_m': dimension F"):
        load_field_dataset(tmp_path / "shape.npz")
    with pytest.raises(InputError, match="cannot read"):
        load_field_dataset(tmp_path / "absent.npz")


def test_invalid_inputs_raise():
    with pytest.raises(InputError, match="^x_m, y_m: "):
        BeamMoments.from_samples([0.0], [0.0])
    cfg = load_config("fnal")
    ds = synthetic_field_dataset(cfg, seed=11)
    with pytest.raises(InputError, match="^time: outside"):
        analyze_field(ds).tracking_at([1e9])
    with pytest.raises(InputError, match="^extra_static_ppb: "):
        synthetic_field_dataset(cfg, extra_static_ppb=np.zeros((3, 3)))
    bad = dataclasses.replace(ds, calib_trolley_offset_hz=ds.calib_trolley_offset_hz[:1], calib_probe_offset_hz=ds.calib_probe_offset_hz[:1])
    with pytest.raises(InputError, match="^calibration: "):
        analyze_field(bad)


@pytest.mark.parametrize("ring", ["fnal", "jparc"])
def test_data_samples_hold_the_configured_field(ring):
    """The sample files (data_samples/make_field_samples.py): the configured field with a drift of zero
    run average, so a centred beam sees the nominal field within the quoted errors."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "data_samples" / f"{ring}_field.npz"
    ds = load_field_dataset(path)
    assert ds.ring == ring and path.stat().st_size < 500_000
    cfg = load_config(ring)
    assert ds.reference_hz * 2 * math.pi == pytest.approx(omega_p_tilde_rad_per_s(cfg.ring.field_t), rel=1e-12)
    result = omega_p_tilde_from_field(ds, BeamMoments(0.0, 0.0, 0.0, 0.0), n_replicas=8)
    assert abs(result.value_ppb) < 4 * result.total_error_ppb + 0.5
