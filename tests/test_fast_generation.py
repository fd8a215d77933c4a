"""Fused fast-mode kernel: same physics as the step-by-step numpy/njit path (calorimeters and vanes),
ω_a and γτ of N(t), flat stations, pileup ∝ rate², bit-identical output for any thread count and any chunking."""

import math

import numba
import numpy as np
import pytest
from reference_fast_model import decay_states
from scipy import stats
from scipy.optimize import curve_fit

from ringsim.beam import muon_charge_over_mass, sample_beam
from ringsim.config import load_config
from ringsim.constants import MUON_LIFETIME_S, codata
from ringsim.decay import boost_positron, decay_positrons, lab_fraction_and_asymmetry
from ringsim.detectors.calorimeter import CalorimeterGeometry, face_directions
from ringsim.detectors.vanes import VaneGeometry, reconstruct, vane_hits
from ringsim.errors import ConfigError
from ringsim.fast_generation import _B_AY2, _B_DELTA, _B_T0, _B_W_X, _B_X_BETA, _B_Y0, _beam, _lab_positron, _michel_fraction, fast_params, fill_streams, merged_order, simulate_fills, time_order
from ringsim.optics import smooth_tunes
from ringsim.rings import ring_kinematics
from ringsim.simulate import block_muons, generate, generate_block
from ringsim.track_mode import _stations

# an ideal detector: every hit is one recorded cluster carrying its true energy and time
IDEAL = ["detector.energy_resolution_stochastic=0", "detector.energy_resolution_constant=0", "detector.time_resolution_ns=0", "detector.resolving_time_ns=0", "detector.energy_min_mev=0"]


def _blocks(cfg, seed, n_blocks):
    out = [generate_block(cfg, "fast", seed, b) for b in range(n_blocks)]
    return {k: np.concatenate([o.positrons[k] for o in out]) for k in out[0].positrons}


def reference_decays(cfg, n, seed):
    """The step-by-step path up to the positron: sample_beam → decay_states → decay_positrons.

    Returns the beam, decay times [ns], decay states, positron energies [MeV] and unit momenta.
    """
    kin = ring_kinematics(cfg)
    rng = np.random.default_rng(seed)
    beam = sample_beam(cfg, n, rng)
    gamma = np.sqrt(1.0 + (kin.gamma * kin.beta * (1.0 + beam.delta_p)) ** 2)
    life_s = rng.exponential(1.0, n) * gamma * MUON_LIFETIME_S
    st = decay_states(cfg, kin, beam, life_s, muon_charge_over_mass())
    energy, direction = decay_positrons(np.array([0, n]), np.array([seed]), np.ascontiguousarray(st.u), np.ascontiguousarray(st.spin), cfg.beam.polarization, codata().muon_mass_mev)
    return beam, beam.t0_ns + life_s * 1e9, st, energy, direction


def _reference_hits(cfg, n, seed):
    """Hits of the step-by-step path: sample_beam → decay_states → decay_positrons → calorimeter_hits (track mode's stage)."""
    beam, decay_ns, st, energy, direction = reference_decays(cfg, n, seed)
    station, flight_ns, x_hit, _ = _stations(cfg, st, energy, direction)  # the calorimeter stage of track mode
    hit = (station >= 0) & (decay_ns + flight_ns >= 0.0)
    x_rel = np.hypot(st.position_m[:, 0], st.position_m[:, 2]) - cfg.ring.radius_m
    return {"truth_energy_mev": energy[hit], "x_hit_m": x_hit[hit], "truth_x_m": x_rel[hit], "truth_delta_p": beam.delta_p[hit], "calo": station[hit]}


def _reference_vane_tracks(cfg, n, seed):
    """Tracks of the array path: sample_beam → decay_states → decay_positrons → vane_hits → reconstruct."""
    beam, decay_ns, st, energy, direction = reference_decays(cfg, n, seed)
    geometry = VaneGeometry.from_config(cfg)
    tracks = reconstruct(vane_hits(st.position_m, direction, energy, decay_ns, geometry), geometry, seed)
    keep = tracks.accepted & (tracks.momentum_mev >= cfg.detector.energy_min_mev) & (tracks.time_ns >= 0.0)
    return {
        "energy_mev": tracks.momentum_mev[keep],
        "time_ns": tracks.time_ns[keep],
        "calo": tracks.first_vane[keep],
        "hemisphere": tracks.hemisphere[keep],
        "vertical_angle_rad": tracks.vertical_angle_rad[keep],
        "truth_energy_mev": energy[keep],
        "truth_decay_time_ns": decay_ns[keep],
    }


def _two_sample_chi2(a, b, edges):
    """χ² and its p-value for two histograms of independent samples having the same shape."""
    na, nb = np.histogram(a, edges)[0].astype(float), np.histogram(b, edges)[0].astype(float)
    use = na + nb > 0
    k1, k2 = math.sqrt(nb.sum() / na.sum()), math.sqrt(na.sum() / nb.sum())
    chi2 = np.sum((k1 * na[use] - k2 * nb[use]) ** 2 / (na[use] + nb[use]))
    return chi2, stats.chi2.sf(chi2, use.sum() - 1)


def test_michel_fraction_sampler_has_the_michel_spectrum():
    """Order statistics mixture against the CDF F(x) = 2x³ − x⁴ of the density 2x²(3 − 2x)."""

    @numba.njit
    def draw(u):
        return np.array([_michel_fraction(u[i, 0], u[i, 1], u[i, 2], u[i, 3], u[i, 4]) for i in range(u.shape[0])])

    x = draw(np.random.default_rng(3).random((400_000, 5)))
    assert stats.kstest(x, lambda v: 2 * v**3 - v**4).pvalue > 1e-3
    assert abs(x.mean() - 0.7) < 4 * math.sqrt((0.5 - 0.49) / x.size)  # ⟨x⟩ = 7/10, ⟨x²⟩ = 1/2


def test_lab_positron_equals_the_general_boost_for_a_muon_along_the_orbit():
    """The kernel's boost in the orbit frame against ringsim.decay.boost_positron (its frame: φ → φ + π for sin ψ < 0)."""
    rng = np.random.default_rng(4)
    mass = codata().muon_mass_mev
    for _ in range(2000):
        a, psi, phi = rng.uniform(-math.pi, math.pi, 3)
        x, cos_t, u = rng.uniform(0.0, 1.0), rng.uniform(-1.0, 1.0), rng.uniform(1.0, 40.0)
        gamma = math.sqrt(1.0 + u * u)
        t_hat, r_hat = np.array([-math.sin(a), 0.0, math.cos(a)]), np.array([math.cos(a), 0.0, math.sin(a)])
        spin = math.cos(psi) * t_hat - math.sin(psi) * r_hat
        phi_ref = phi if math.sin(psi) > 0 else phi + math.pi
        ref = boost_positron(*(u * t_hat), *spin, x, cos_t, math.cos(phi_ref), math.sin(phi_ref), mass)
        got = _lab_positron(gamma, u / gamma, math.sin(a), math.cos(a), math.sin(psi), math.cos(psi), x, cos_t, math.cos(phi), math.sin(phi), mass)
        np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-9 * ref[0])


def test_fill_streams_have_odd_strides_with_many_bit_changes():
    streams = fill_streams(7, 3, 20_000)
    stride = streams[:, 1::2]
    transitions = np.array([bin(int(v) ^ (int(v) >> 1)).count("1") for v in stride.ravel()])
    assert np.all(stride & np.uint64(1) == 1) and transitions.min() >= 24
    assert np.unique(streams[:, 0::2]).size == streams[:, 0::2].size  # distinct keys


def test_fast_mode_refuses_phases_beyond_the_sincos_range_and_beams_outside_the_aperture():
    cfg = load_config("fnal", overrides=["ring.radius_m=0.05"])  # a 5 cm ring at 3.1 GeV turns 6e6 rad in 37 γτ
    with pytest.raises(ConfigError, match="turn or spin phase"):
        fast_params(cfg, ring_kinematics(cfg), muon_charge_over_mass(), codata().muon_mass_mev)
    cfg = load_config("fnal", overrides=["beam.momentum_offset=0.02"])  # x_e = 16 cm, aperture 4.5 cm
    with pytest.raises(ConfigError, match="fits inside"):
        next(generate(cfg, "fast", n_muons=10, progress=False))


def test_kernel_beam_has_the_amplitudes_and_spreads_of_sample_beam():
    """The kernel's collimated beam against ringsim.beam.sample_beam: A_x, A_y, Δp/p, x_β, y, t₀ (two-sample KS)."""
    cfg = load_config("fnal")
    kin = ring_kinematics(cfg)
    p = fast_params(cfg, kin, muon_charge_over_mass(), codata().muon_mass_mev)
    n = 100_000
    streams = fill_streams(11, 0, 1)[0]
    kernel = np.empty((7, n))
    _beam(p, streams[0], streams[1], n, kernel)
    ref = sample_beam(cfg, n, np.random.default_rng(12))
    r0, (nu_x, nu_y) = cfg.ring.radius_m, smooth_tunes(cfg.ring.field_index)
    pairs = {
        "A_x": (np.hypot(kernel[_B_X_BETA], kernel[_B_W_X]), np.hypot(ref.x_beta_m, ref.xp_beta * r0 / nu_x)),
        "A_y": (np.sqrt(kernel[_B_AY2]), np.hypot(ref.y_m, ref.yp * r0 / nu_y)),
        "delta": (kernel[_B_DELTA], ref.delta_p),
        "x_beta": (kernel[_B_X_BETA], ref.x_beta_m),
        "y": (kernel[_B_Y0], ref.y_m),
        "t0": (kernel[_B_T0], ref.t0_ns),
    }
    for name, (a, b) in pairs.items():
        assert stats.ks_2samp(a, b).pvalue > 1e-3, name
    assert np.all((np.abs(p.dispersion * kernel[_B_DELTA]) + pairs["A_x"][0]) ** 2 + kernel[_B_AY2] <= cfg.ring.aperture_radius_m**2)


def test_time_order_is_a_stable_sort():
    rng = np.random.default_rng(1)
    t = np.concatenate([rng.exponential(64_400.0, 5000) + rng.normal(0.0, 30.0, 5000), np.full(20, 1000.0), [-5.0, 3e6]])
    rng.shuffle(t)
    np.testing.assert_array_equal(time_order(t, 64_400.0), np.argsort(t, kind="stable"))


def test_merged_order_equals_a_stable_lexsort_of_the_concatenation():
    rng = np.random.default_rng(2)
    fill_a, fill_b = np.sort(rng.integers(0, 5, 300)), np.sort(rng.integers(0, 6, 40))
    t_a, t_b = rng.integers(0, 50, 300).astype(float), rng.integers(0, 50, 40).astype(float)  # many ties across the two
    t_a = np.concatenate([np.sort(t_a[fill_a == f]) for f in range(5)])
    t_b = np.concatenate([np.sort(t_b[fill_b == f]) for f in range(6)])
    order = merged_order(fill_a, t_a, fill_b, t_b)
    np.testing.assert_array_equal(order, np.lexsort((np.concatenate([t_a, t_b]), np.concatenate([fill_a, fill_b]))))


def test_hits_match_the_step_by_step_path():
    """Energy spectrum × acceptance, beam and decay position of the hits, against the numpy/njit path."""
    cfg = load_config("fnal", overrides=IDEAL)
    n_blocks = 5
    fused = _blocks(cfg, 3, n_blocks)
    n_muons = n_blocks * block_muons(cfg, "fast")
    ref = _reference_hits(cfg, n_muons, 4)
    assert np.all(fused["n_hits"] == 1) and np.array_equal(fused["energy_mev"], fused["truth_energy_mev"])
    # acceptance (hits per muon): two binomial samples
    p1, p2 = fused["calo"].size / n_muons, ref["calo"].size / n_muons
    sigma = math.sqrt(p1 * (1 - p1) / n_muons + p2 * (1 - p2) / n_muons)
    assert abs(p1 - p2) < 4 * sigma
    # Michel lab spectrum folded with the acceptance, hit position, beam, decay position
    e_max = ring_kinematics(cfg).e_max_mev
    assert _two_sample_chi2(fused["truth_energy_mev"], ref["truth_energy_mev"], np.linspace(0.0, e_max, 41))[1] > 1e-3
    assert _two_sample_chi2(fused["x_hit_m"], ref["x_hit_m"], np.linspace(-0.275, -0.05, 31))[1] > 1e-3
    for key in ("truth_delta_p", "truth_x_m"):
        assert stats.ks_2samp(fused[key], ref[key]).pvalue > 1e-3, key
    # stations: the ring is symmetric, every station sees the same number of positrons
    counts = np.bincount(fused["calo"], minlength=24)
    assert stats.chisquare(counts).pvalue > 1e-3


def test_vane_tracks_match_the_array_path():
    """J-PARC: acceptance, momentum and angle spectra, hemispheres, first vane and time resolution of the
    reconstructed tracks against vane_hits + reconstruct. Per-crossing efficiency 0.5: the first detected
    hit is often not the first crossing; 20 % momentum resolution: the error of the subtracted flight
    time, ∝ the flight to the first detected hit, is seen in reconstructed minus true decay time."""
    cfg = load_config("jparc", overrides=["detector.efficiency=0.5", "detector.energy_resolution_constant=0.2"])
    n_blocks = 2
    fused = _blocks(cfg, 3, n_blocks)
    n_muons = n_blocks * block_muons(cfg, "fast")
    ref = _reference_vane_tracks(cfg, n_muons, 4)
    assert np.all(fused["n_hits"] == 1) and np.all(fused["x_hit_m"] == 0.0) and np.all(fused["y_hit_m"] == 0.0)
    assert np.all(np.diff(fused["fill"]) >= 0) and np.all(np.diff(fused["time_ns"])[np.diff(fused["fill"]) == 0] >= 0)  # (fill, time) order
    np.testing.assert_array_equal(fused["hemisphere"], np.where(fused["vertical_angle_rad"] >= 0.0, 1, -1))

    def proportions_agree(k1, k2, n1, n2):
        p1, p2 = k1 / n1, k2 / n2
        return abs(p1 - p2) < 4 * math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)

    assert proportions_agree(fused["calo"].size, ref["calo"].size, n_muons, n_muons)  # tracks per muon
    window = (fused["energy_mev"] > 200.0) & (fused["energy_mev"] < 275.0), (ref["energy_mev"] > 200.0) & (ref["energy_mev"] < 275.0)
    for a, b in ((np.ones(fused["calo"].size, bool), np.ones(ref["calo"].size, bool)), window):  # up fraction: all, and in the 200–275 MeV window
        assert proportions_agree(np.count_nonzero(fused["hemisphere"][a] > 0), np.count_nonzero(ref["hemisphere"][b] > 0), a.sum(), b.sum())
    e_max = ring_kinematics(cfg).e_max_mev
    assert _two_sample_chi2(fused["energy_mev"], ref["energy_mev"], np.linspace(50.0, 1.05 * e_max, 55))[1] > 1e-3
    assert _two_sample_chi2(fused["truth_energy_mev"], ref["truth_energy_mev"], np.linspace(0.0, e_max, 41))[1] > 1e-3
    assert _two_sample_chi2(fused["vertical_angle_rad"], ref["vertical_angle_rad"], np.linspace(-0.6, 0.6, 49))[1] > 1e-3
    assert _two_sample_chi2(fused["calo"], ref["calo"], np.arange(41) - 0.5)[1] > 1e-3
    dt_fused, dt_ref = fused["time_ns"] - fused["truth_decay_time_ns"], ref["time_ns"] - ref["truth_decay_time_ns"]
    assert _two_sample_chi2(dt_fused, dt_ref, np.linspace(-4.0, 4.0, 41))[1] > 1e-3
    assert _two_sample_chi2(fused["truth_decay_time_ns"], ref["truth_decay_time_ns"], np.linspace(0.0, 40_000.0, 41))[1] > 1e-3


def test_wiggle_gives_the_configured_omega_a_and_gamma_tau():
    cfg = load_config("fnal", overrides=["detector.resolving_time_ns=0"])  # no pileup distortion of N(t)
    kin = ring_kinematics(cfg)
    d = _blocks(cfg, 5, 12)
    t_us = d["time_ns"][d["energy_mev"] > 1700.0] * 1e-3
    edges = np.arange(30.0, 300.0, 0.1492)
    counts = np.histogram(t_us, edges)[0].astype(float)
    t = 0.5 * (edges[1:] + edges[:-1])
    omega0, tau0 = kin.omega_a_rad_per_us, kin.gamma_tau_s * 1e6
    weight = np.exp(t / tau0)  # start values by projection of the de-exponentialised histogram
    phase = math.atan2(-np.sum(counts * weight * np.sin(omega0 * t)), np.sum(counts * weight * np.cos(omega0 * t)))

    def five(t, n0, tau, a, omega, phi):
        return n0 * np.exp(-(t - 30.0) / tau) * (1.0 + a * np.cos(omega * t + phi))

    values = [counts[0], tau0, 0.3, omega0, phase]
    for _ in range(2):  # Pearson χ²: errors from the previous model, not from the (low) counts
        values, cov = curve_fit(five, t, counts, p0=values, sigma=np.sqrt(np.maximum(five(t, *values), 1.0)), absolute_sigma=True)
    errors = np.sqrt(np.diag(cov))
    # beam-dynamics shift of ω_a (C_e + C_p ≈ 0.5 ppm) ≪ the statistical error here (~100 ppm)
    assert abs(values[3] - omega0) < 4 * errors[3]
    assert abs(values[1] - tau0) < 4 * errors[1]
    # asymmetry: P times the Michel lab asymmetry above 1.7 GeV (acceptance and resolution change it a little)
    assert values[2] == pytest.approx(cfg.beam.polarization * lab_fraction_and_asymmetry(kin.gamma, 1700.0, 1e4, codata().muon_mass_mev)[1], abs=0.05)


def test_pileup_doublets_scale_with_the_square_of_the_rate_and_fall_twice_as_fast():
    doublets, fills = {}, {}
    for per_fill in (2000, 4000):
        cfg = load_config("fnal", overrides=["detector.energy_min_mev=0", "detector.energy_resolution_stochastic=0", "detector.energy_resolution_constant=0", f"run.muons_per_fill={per_fill}"])
        per_block = block_muons(cfg, "fast") // per_fill
        n_blocks = max(1, 240 // per_block)
        d = _blocks(cfg, 6, n_blocks)
        doublets[per_fill], fills[per_fill] = d["time_ns"][d["n_hits"] >= 2], n_blocks * per_block
        assert np.all(np.diff(d["fill"]) >= 0) and np.all(np.diff(d["time_ns"])[np.diff(d["fill"]) == 0] >= 0)  # (fill, time) order
    low, high = doublets[2000].size, doublets[4000].size
    ratio = (high / fills[4000]) / (low / fills[2000])  # doublets per fill
    assert ratio == pytest.approx(4.0, abs=4 * 4.0 * math.sqrt(1 / low + 1 / high))
    # after the bunch structure has gone, doublets fall as e^{−2t/γτ}
    tau_ns = ring_kinematics(load_config("fnal")).gamma_tau_s * 1e9
    late = doublets[4000][doublets[4000] > 60_000.0] - 60_000.0
    assert 1 / np.mean(late) * tau_ns == pytest.approx(2.0, abs=4 * 2.0 / math.sqrt(late.size))


def test_output_does_not_depend_on_how_the_fills_are_grouped():
    cfg = load_config("fnal", overrides=["run.muons_per_fill=1500", "fastmodel.loss_fraction=0.05"])
    p = fast_params(cfg, ring_kinematics(cfg), muon_charge_over_mass(), codata().muon_mass_mev)
    cos_az, sin_az = face_directions(CalorimeterGeometry().azimuths_rad())
    fill_muons = np.array([1500, 1500, 700, 0, 1500, 1500, 1200])
    streams = fill_streams(3, 0, fill_muons.size)
    one, one_lost, _ = simulate_fills(p, streams, fill_muons, 10, cos_az, sin_az, 1)
    assert one[0].size > 1000 and one_lost[0].size > 0
    for n_groups in (2, 3, 7, 50):
        events, lost, _ = simulate_fills(p, streams, fill_muons, 10, cos_az, sin_az, n_groups)
        for a, b in zip((*one, *one_lost), (*events, *lost)):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "ring, overrides",
    [("fnal", ["detector.resolving_time_ns=0"]), ("jparc", ["detector.efficiency=0.9"])],
)
def test_output_is_identical_for_one_and_two_threads_and_any_number_of_muons_used(ring, overrides):
    cfg = load_config(ring, overrides=["run.muons_per_fill=3000", "fastmodel.loss_fraction=0.05", *overrides])
    numba.set_num_threads(1)
    try:
        one = generate_block(cfg, "fast", 8, 2)
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    two = generate_block(cfg, "fast", 8, 2)
    for a, b in ((one.positrons, two.positrons), (one.lost, two.lost)):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    assert one.lost["time_ns"].size > 0
    # the first n_use muons are the same: whole fills identical, the cut fill a subset
    first_fill = 2 * (block_muons(cfg, "fast") // 3000)
    n_use = 2 * 3000 + 1234
    _, cut, cut_lost, _ = generate_block(cfg, "fast", 8, 2, n_use)
    _, full, full_lost, _ = two
    for key in full:
        whole = full["fill"] < first_fill + 2
        np.testing.assert_array_equal(cut[key][cut["fill"] < first_fill + 2], full[key][whole])
    cut_fill = (cut["fill"] == first_fill + 2) & (cut["truth_mip"] == 0)  # positrons (lost muons' clusters have no decay time)
    full_fill = (full["fill"] == first_fill + 2) & (full["truth_mip"] == 0)
    assert set(cut["truth_decay_time_ns"][cut_fill]) < set(full["truth_decay_time_ns"][full_fill])
    assert cut["fill"].max() == first_fill + 2 and set(cut_lost["time_ns"]) <= set(full_lost["time_ns"])
    # generate() cuts runs into the same blocks
    blocks = list(generate(cfg, "fast", n_muons=2 * block_muons(cfg, "fast") + 5000, seed=8, progress=False))
    np.testing.assert_array_equal(blocks[1].positrons["time_ns"], generate_block(cfg, "fast", 8, 1).positrons["time_ns"])
    np.testing.assert_array_equal(blocks[2].positrons["truth_energy_mev"], generate_block(cfg, "fast", 8, 2, 5000).positrons["truth_energy_mev"])


@pytest.mark.parametrize("ring", ["fnal", "jparc"])
def test_lost_muons_station_is_the_first_face_downstream_of_the_loss(ring):
    cfg = load_config(ring, overrides=["run.muons_per_fill=2000", "fastmodel.loss_fraction=0.1"])
    lost = generate_block(cfg, "fast", 3, 0, n_use=20_000).lost
    n = cfg.ring.n_detectors
    assert lost["time_ns"].size > 300
    # faces at azimuths (k + 1)·2π/n: the loss in sector k meets face k first
    sector = np.floor(lost["azimuth_rad"].astype(float) * n / (2 * math.pi)).astype(int)
    np.testing.assert_array_equal(lost["calo"], sector % n)
    assert set(np.unique(lost["calo"])) == set(range(n))
