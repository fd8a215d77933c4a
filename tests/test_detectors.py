"""Fermilab calorimeters, detector response and run output: geometry, pileup, gain, resumption."""

import math

import numpy as np
import pytest

from ringsim.config import load_config
from ringsim.detectors.calorimeter import CalorimeterGeometry, calorimeter_hits, merge_pileup
from ringsim.detectors.response import respond
from ringsim.errors import InputError

R0, B_T = 7.112, 1.4513
GEO = CalorimeterGeometry()


def _hits(pos, direction, energy):
    return calorimeter_hits(pos, direction, energy, B_T, R0, GEO.azimuths_rad(), GEO.inner_x_m, GEO.outer_x_m, GEO.half_height_m, GEO.chamber_outer_x_m, GEO.chamber_inner_x_m)


def _positrons_on_orbit(energy, azimuth):
    pos = np.stack([R0 * np.cos(azimuth), np.zeros_like(azimuth), R0 * np.sin(azimuth)], axis=1)
    direction = np.stack([-np.sin(azimuth), np.zeros_like(azimuth), np.cos(azimuth)], axis=1)
    return pos, direction, energy


def test_face_crossing_matches_a_small_step_integration_of_the_orbit():
    rng = np.random.default_rng(1)
    n = 40
    energy = rng.uniform(600.0, 3000.0, n)
    azimuth = rng.uniform(0.0, 2 * math.pi, n)
    pos, direction, _ = _positrons_on_orbit(energy, azimuth)
    direction[:, 1] = rng.normal(0.0, 0.005, n)
    direction /= np.linalg.norm(direction, axis=1)[:, None]
    station, flight_ns, x_hit, y_hit = _hits(pos, direction, energy)
    c = 299792458.0
    for i in range(n):
        # integrate dv/dt = (e/γm) v × B with small steps; stop at the first face crossed going downstream
        p, v = pos[i].copy(), direction[i] * c
        omega = c * c * B_T / (energy[i] * 1e6)  # eB/(γm) = ec²B/E
        dt = 2e-12
        found = (-1, 0.0)
        for step in range(1, 30000):
            a = omega * np.cross(v, [0.0, 1.0, 0.0])
            v_new = v + a * dt
            v_new *= c / np.linalg.norm(v_new)
            p_new = p + 0.5 * (v + v_new) * dt
            phi_old, phi_new = math.atan2(p[2], p[0]) % (2 * math.pi), math.atan2(p_new[2], p_new[0]) % (2 * math.pi)
            for k, az in enumerate(GEO.azimuths_rad() % (2 * math.pi)):
                small_step = abs((phi_new - phi_old + math.pi) % (2 * math.pi) - math.pi) < 1
                crossed = (phi_old - az) % (2 * math.pi) > math.pi and (phi_new - az) % (2 * math.pi) < math.pi and small_step
                if crossed:
                    x = math.hypot(p_new[0], p_new[2]) - R0
                    if GEO.inner_x_m <= x <= GEO.outer_x_m and abs(p_new[1]) <= GEO.half_height_m:
                        found = (k, step * dt * 1e9)
            x_now = math.hypot(p_new[0], p_new[2]) - R0
            if found[0] >= 0 or not GEO.chamber_inner_x_m < x_now < GEO.chamber_outer_x_m:
                break
            p, v = p_new, v_new
        assert station[i] == found[0]
        if found[0] >= 0:
            assert flight_ns[i] == pytest.approx(found[1], abs=0.02)


def test_acceptance_versus_energy_has_the_known_shape():
    rng = np.random.default_rng(2)
    n = 200_000
    energy = rng.uniform(100.0, 3090.0, n)
    azimuth = rng.uniform(0.0, 2 * math.pi, n)
    station, flight_ns, _, _ = _hits(*_positrons_on_orbit(energy, azimuth))
    sector = np.floor(azimuth / (2 * math.pi / 24)).astype(int)
    offset = (station - sector) % 24  # 0: the station closing the decay's own sector
    bins = np.linspace(100, 3090, 13)
    which = np.digitize(energy, bins) - 1
    hit = station >= 0
    accept = np.array([hit[which == b].mean() for b in range(12)])
    mean_flight = np.array([flight_ns[hit & (which == b)].mean() for b in range(12)])
    nearest = np.array([np.mean(offset[hit & (which == b)] == 0) for b in range(12)])
    far = np.array([np.mean(offset[hit & (which == b)] >= 2) for b in range(12)])
    mid = slice(3, 11)
    # positrons of higher energy fly longer before a hit, and reach farther stations
    assert np.all(np.diff(mean_flight[mid]) > 0)
    assert nearest[3] > nearest[10] and far[10] > 0.2 > far[3]
    # the highest energies stay near the orbit: the acceptance falls at the end point
    assert accept[-1] < accept[-3] and accept.max() > 0.5


def test_pileup_doublets_scale_with_the_square_of_the_rate_and_fall_twice_as_fast():
    gamma_tau_ns, window = 64_400.0, 5.0
    rng = np.random.default_rng(3)
    counts = {}
    for per_fill in (200, 400):
        fills = 400
        n = per_fill * fills
        t = rng.exponential(gamma_tau_ns, n)
        fill = np.repeat(np.arange(fills), per_fill)
        cluster_of, _, e_c = merge_pileup(fill, np.zeros(n, dtype=np.int32), t, np.ones(n), window)
        first = np.unique(cluster_of)
        doublet_times = t[first[e_c[first] >= 2]]
        counts[per_fill] = doublet_times
        # expected pairs closer than the window per fill: ∫ λ(t)² w dt = N² w/(2γτ)
        expected = fills * per_fill**2 * window / (2 * gamma_tau_ns)
        assert doublet_times.size == pytest.approx(expected, rel=4 / math.sqrt(expected))
    ratio = counts[400].size / counts[200].size
    assert ratio == pytest.approx(4.0, rel=0.2)
    slope = 1 / np.mean(counts[400])  # exponential of rate 2/γτ
    assert slope * gamma_tau_ns == pytest.approx(2.0, rel=4 / math.sqrt(counts[400].size))


def test_a_positron_count_that_records_nothing_stops_and_leaves_nothing(tmp_path, monkeypatch):
    import ringsim.run_file as rf
    import ringsim.simulate as sim
    from ringsim.errors import ConfigError

    monkeypatch.setitem(sim.TARGET_BLOCK_MUONS, "fast", 20_000)  # blocks smaller than the limit: empty ones are saved first
    cfg = load_config("fnal", overrides=["detector.energy_min_mev=1e9"])
    for attempt in range(2):
        with pytest.raises(ConfigError, match=f"no positron recorded in the first {sim.NO_POSITRON_MUONS // 20_000 * 20_000 + 20_000} muons"):
            rf.simulate_to_file(tmp_path / "none.root", cfg, "fast", n_positrons=10)
        assert list(tmp_path.iterdir()) == []


def test_a_damaged_block_file_is_recognised(tmp_path):
    import ringsim.run_parts as parts
    import ringsim.simulate as sim

    block = sim.Block(3, {"time_ns": np.arange(5.0), "calo": np.arange(5, dtype=np.int16)}, {"fill": np.arange(2)}, None)
    part = parts.save_part(tmp_path, block)
    good = part.read_bytes()
    assert parts.load_part(part, "e.")["calo"].tolist() == [0, 1, 2, 3, 4] and parts.load_part(part, "t.") == {}
    header = good[8 : 8 + int.from_bytes(good[:8], "little")]
    fractional = header.replace(b"5]", b"5.0]")  # lengths 5.0: the same bytes, but not a count
    damaged = {
        "cut": good[:-1],
        "longer": good + b"\0",
        "random": np.random.default_rng(1).bytes(1024),
        "huge header": (2**64 - 1).to_bytes(8, "little") + good[8:],
        "object dtype": good.replace(b'"<i2"', b'"|O8"'),
        "fractional length": len(fractional).to_bytes(8, "little") + fractional + good[8 + len(header) :],
        "empty": b"",
    }
    for what, content in damaged.items():
        part.write_bytes(content)
        assert parts._part_contents(part) is None, what
        with pytest.raises(InputError, match="damaged block"):
            parts.load_part(part, "e.")


def test_gain_sag_shifts_the_energy_scale_as_configured():
    det = load_config(
        "fnal",
        overrides=[
            "detector.gain_sag_amplitude=0.05",
            "detector.gain_sag_tau_us=30",
            "detector.energy_resolution_stochastic=0",
            "detector.energy_resolution_constant=0",
            "detector.time_resolution_ns=0",
            "detector.resolving_time_ns=0",
        ],
    ).detector
    n = 100_000
    rng = np.random.default_rng(4)
    t = rng.uniform(0.0, 300_000.0, n)
    out = respond(np.random.default_rng(5), det, np.arange(n), np.zeros(n, dtype=np.int32), t, np.full(n, 2000.0))
    expected = 2000.0 * (1 - 0.05 * np.exp(-out["time_ns"] * 1e-3 / 30.0))
    np.testing.assert_allclose(out["energy_mev"], expected, rtol=1e-12)


def test_an_interrupted_and_resumed_run_equals_an_uninterrupted_one(tmp_path, monkeypatch):
    import uproot

    import ringsim.run_file as rf
    import ringsim.run_parts as parts
    import ringsim.simulate as sim

    cfg = load_config("fnal", overrides=["run.muons_per_fill=4000", "fastmodel.loss_fraction=0.02"])
    whole = tmp_path / "whole.root"
    rf.simulate_to_file(whole, cfg, "fast", n_positrons=150_000, seed=9, truth=True)
    resumed = tmp_path / "resumed.root"
    real_save = parts.save_part

    def save_then_stop(folder, block):
        part = real_save(folder, block)
        if block.number == 0:  # of two
            raise KeyboardInterrupt
        return part

    monkeypatch.setattr(rf, "save_part", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        rf.simulate_to_file(resumed, cfg, "fast", n_positrons=150_000, seed=9, truth=True)
    assert not resumed.exists() and len(list(parts.parts_folder(resumed).glob("block-*.part"))) == 1
    monkeypatch.setattr(rf, "save_part", real_save)
    with pytest.raises(InputError, match="differs in: truth_tree"):  # the truth tree is part of the request
        rf.simulate_to_file(resumed, cfg, "fast", n_positrons=150_000, seed=9)
    rf.simulate_to_file(resumed, cfg, "fast", n_positrons=150_000, seed=9, truth=True)
    assert not parts.parts_folder(resumed).exists()
    with uproot.open(whole) as a, uproot.open(resumed) as b:
        assert a["truth"].num_entries == a["fills"]["n_muons"].array(library="np").sum() > 0
        # the run ends with the fill of its 150 000th positron, in every tree
        events = a["events"].arrays(["fill", "truth_mip"], library="np")
        last = events["fill"][events["truth_mip"] == 0].max()
        assert a["truth"]["fill"].array(library="np").max() == a["fills"]["fill"].array(library="np").max() == last
        assert a["lost_muons"]["fill"].array(library="np").max() <= last
        for tree in ("events", "lost_muons", "fills", "truth"):
            da, db = a[tree].arrays(library="np"), b[tree].arrays(library="np")
            for key in da:
                np.testing.assert_array_equal(da[key], db[key])
        np.testing.assert_array_equal(a["hist/calo_05"].values(), b["hist/calo_05"].values())
    # interrupted after its last block (killed: its run file left half-written in the parts folder)
    again = tmp_path / "again.root"
    monkeypatch.setattr(rf._RunSummary, "lost_muons", lambda self: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        rf.simulate_to_file(again, cfg, "fast", n_positrons=150_000, seed=9, truth=True)
    monkeypatch.undo()
    folder = parts.parts_folder(again)
    assert not again.exists() and len(list(folder.glob("block-*.part"))) == 2
    (folder / ".again.root.tmp-1").write_bytes(b"root" * 1000)
    real_generate, yielded = sim.generate, []

    def counted(*args, **kwargs):
        for block in real_generate(*args, **kwargs):
            yielded.append(block.number)
            yield block

    monkeypatch.setattr(sim, "generate", counted)
    rf.simulate_to_file(again, cfg, "fast", n_positrons=150_000, seed=9, truth=True)
    monkeypatch.undo()
    assert yielded == [] and not folder.exists()  # made from the saved blocks alone; nothing left beside the file
    with uproot.open(whole) as a, uproot.open(again) as b:
        for tree in ("events", "lost_muons", "fills", "truth"):
            da, db = a[tree].arrays(library="np"), b[tree].arrays(library="np")
            for key in da:
                np.testing.assert_array_equal(da[key], db[key])
        np.testing.assert_array_equal(a["hist/calo_05"].values(), b["hist/calo_05"].values())
    # a different request does not mix with the parts of another
    monkeypatch.setattr(rf, "save_part", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        rf.simulate_to_file(tmp_path / "x.root", cfg, "fast", n_positrons=150_000, seed=9)
    monkeypatch.setattr(rf, "save_part", real_save)
    with pytest.raises(InputError, match="differs in: seed"):
        rf.simulate_to_file(tmp_path / "x.root", cfg, "fast", n_positrons=150_000, seed=10)
    # a damaged block is made again
    part = next(parts.parts_folder(tmp_path / "x.root").glob("block-*.part"))
    part.write_bytes(part.read_bytes()[:-100])
    rf.simulate_to_file(tmp_path / "x.root", cfg, "fast", n_positrons=150_000, seed=9)
    with uproot.open(whole) as a, uproot.open(tmp_path / "x.root") as b:
        np.testing.assert_array_equal(a["events"]["time_ns"].array(library="np"), b["events"]["time_ns"].array(library="np"))


def test_fast_mode_calibrated_by_tracking_reproduces_the_cbo():
    from reference_fast_model import decay_states

    from ringsim.beam import muon_charge_over_mass, sample_beam
    from ringsim.cbo_calibration import calibrate_from_tracking, centroid_versus_turn_angle, fit_coherent_oscillation
    from ringsim.rings import ring_kinematics

    cfg = load_config("fnal", overrides=["kicker.strength=0.8"])  # an under-kick leaves a large CBO
    cal = calibrate_from_tracking(cfg, n_muons=1500, n_turns=150, steps_per_turn=32, seed=3)
    assert cal.amplitude_m > 5 * cal.amplitude_err_m and 0.9 < cal.tune_x < 1.0
    fast_cfg = load_config("fnal", overrides=["kicker.strength=0.8", *cal.overrides()])
    kin = ring_kinematics(fast_cfg)
    beam = sample_beam(fast_cfg, 200_000, np.random.default_rng(4))
    life_s = np.random.default_rng(5).uniform(0.0, 150 * 2 * math.pi / kin.omega_c_rad_per_s, beam.delta_p.size)
    states = decay_states(fast_cfg, kin, beam, life_s, muon_charge_over_mass())
    x = np.hypot(states.position_m[:, 0], states.position_m[:, 2]) - fast_cfg.ring.radius_m - beam.x_e_m
    theta = kin.omega_c_rad_per_s * life_s
    late = theta > 2 * math.pi
    centres, centroid = centroid_versus_turn_angle(x[late], theta[late], 2 * math.pi / 8)
    values, errors = fit_coherent_oscillation(centres, centroid, cal.tune_x)
    # the fast beam shows the tracked coherent oscillation: frequency and amplitude within errors
    assert values[2] == pytest.approx(cal.tune_x, abs=3 * math.hypot(errors[2], cal.tune_x_err))
    assert abs(values[1]) == pytest.approx(cal.amplitude_m, abs=3 * math.hypot(errors[1], cal.amplitude_err_m))
    # and the CBO frequency seen by a fixed detector, f_c(1 − ν_x), is the ring's (discrete-ESQ optics)
    from ringsim.optics import one_turn_tunes

    assert cal.tune_x == pytest.approx(one_turn_tunes(cfg)[0], abs=2e-3)
