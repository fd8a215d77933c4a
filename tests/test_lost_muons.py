"""Lost muons as minimum-ionising triples: hits in the calorimeters and their coincidences."""

import math

import numpy as np
import pytest
from scipy import stats

from analysis.lost_muons import station_window_ns, triple_coincidences
from ringsim.constants import SPEED_OF_LIGHT_M_PER_S
from ringsim.detectors.mip import MIP_STATIONS, MipResponse, first_station, lost_muon_hits
from ringsim.errors import ConfigError, InputError

N_ST, R0, BETA = 24, 7.112, 0.99942
WINDOW_NS = station_window_ns(R0, N_ST, BETA)


def _hits(n, seed=1, fills=50):
    rng = np.random.default_rng(seed)
    t = rng.uniform(0.0, 600e3, n)
    phi = rng.uniform(0.0, 2 * math.pi, n)
    fill = rng.integers(0, fills, n)
    return t, phi, fill, lost_muon_hits(rng.random((n, MIP_STATIONS)), t, phi, fill, N_ST, R0, BETA)


def test_mip_energies_follow_the_moyal_law():
    resp = MipResponse()
    _, _, _, hits = _hits(20000)
    ks = stats.kstest(hits["energy_mev"], stats.moyal(loc=resp.most_probable_mev, scale=resp.width_mev).cdf)
    assert ks.pvalue > 1e-3
    assert np.argmax(np.histogram(hits["energy_mev"], bins=np.arange(100, 300, 5))[0]) * 5 + 100 == pytest.approx(resp.most_probable_mev, abs=5)


def test_hits_are_at_the_next_three_faces_at_the_ring_speed():
    t, phi, fill, hits = _hits(200)
    sector = 2 * math.pi / N_ST
    for i in (0, 17, 123):
        k0 = int(phi[i] // sector)  # the face of station k is at (k + 1)·sector
        for j in range(MIP_STATIONS):
            row = MIP_STATIONS * i + j
            face = (k0 + 1 + j) * sector
            assert hits["calo"][row] == (k0 + j) % N_ST
            assert hits["time_ns"][row] == pytest.approx(t[i] + R0 * (face - phi[i]) / (BETA * SPEED_OF_LIGHT_M_PER_S) * 1e9, rel=1e-12)
            assert hits["fill"][row] == fill[i] and hits["muon"][row] == i
    assert first_station(np.array([2 * math.pi - 1e-9, 0.0, sector + 1e-9]), N_ST).tolist() == [23, 0, 1]


def test_every_lost_muon_is_found_once_at_its_first_face():
    t, phi, fill, hits = _hits(3000, fills=3000)
    found = triple_coincidences(hits["fill"], hits["calo"], hits["time_ns"], hits["energy_mev"], N_ST, WINDOW_NS, energy_window_mev=(0.0, 1e9))
    expected = np.sort(hits["time_ns"][::MIP_STATIONS])
    np.testing.assert_array_equal(found, expected)


def test_the_window_follows_the_geometry():
    # 12 stations on a 1 m ring: 1.75 ns from face to face, outside the Fermilab window
    n_st, r0 = 12, 1.0
    rng = np.random.default_rng(4)
    t = rng.uniform(0.0, 1e5, 500)
    phi = rng.uniform(0.0, 2 * math.pi, 500)
    fill = np.arange(500)
    hits = lost_muon_hits(rng.random((500, MIP_STATIONS)), t, phi, fill, n_st, r0, BETA)
    spacing_ns = r0 * 2 * math.pi / n_st / (BETA * SPEED_OF_LIGHT_M_PER_S) * 1e9
    window = station_window_ns(r0, n_st, BETA)
    assert window[0] < spacing_ns < window[1] and not WINDOW_NS[0] < spacing_ns < WINDOW_NS[1]
    args = (hits["fill"], hits["calo"], hits["time_ns"], hits["energy_mev"], n_st)
    assert triple_coincidences(*args, window, energy_window_mev=(0.0, 1e9)).size == 500
    assert triple_coincidences(*args, WINDOW_NS, energy_window_mev=(0.0, 1e9)).size == 0


def test_accidental_triples_of_random_clusters_match_the_analytic_rate():
    rng = np.random.default_rng(5)
    n_fill, span_ns, per_station = 400, 1000.0, 40  # rate r = 0.04 per ns per station
    n = n_fill * N_ST * per_station
    fill = np.repeat(np.arange(n_fill), N_ST * per_station)
    calo = np.tile(np.repeat(np.arange(N_ST), per_station), n_fill)
    time_ns = rng.uniform(0.0, span_ns, n)
    dt = (4.0, 8.5)
    found = triple_coincidences(fill, calo, time_ns, np.full(n, 170.0), N_ST, dt)
    # P(at least one cluster in a window of width w) = 1 − e^{−r w}, for each of the two later stations
    # (windows near the end of the span are cut: count only candidates whose windows fit)
    r = per_station / span_ns
    p1 = -math.expm1(-r * (dt[1] - dt[0]))
    p2 = -math.expm1(-r * 2 * (dt[1] - dt[0]))
    eligible = np.sum(time_ns < span_ns - 2 * dt[1])
    expected = eligible * p1 * p2
    observed = np.sum(found < span_ns - 2 * dt[1])
    assert expected > 1000
    assert abs(observed - expected) < 5 * math.sqrt(expected)


def test_clusters_outside_the_energy_window_are_ignored_and_bad_input_is_rejected():
    _, _, _, hits = _hits(100, fills=100)
    low = np.full(hits["energy_mev"].size, 20.0)
    assert triple_coincidences(hits["fill"], hits["calo"], hits["time_ns"], low, N_ST, WINDOW_NS).size == 0
    with pytest.raises(ConfigError, match="energy_window_mev"):
        triple_coincidences(hits["fill"], hits["calo"], hits["time_ns"], hits["energy_mev"], N_ST, WINDOW_NS, energy_window_mev=(300.0, 100.0))
    with pytest.raises(ConfigError, match="station_dt_ns"):
        triple_coincidences(hits["fill"], hits["calo"], hits["time_ns"], hits["energy_mev"], N_ST, (5.0, 1.0))
    bad_t = hits["time_ns"].copy()
    bad_t[3] = np.nan
    with pytest.raises(InputError, match="finite"):
        triple_coincidences(hits["fill"], hits["calo"], bad_t, hits["energy_mev"], N_ST, WINDOW_NS)
    with pytest.raises(InputError, match="calo"):
        triple_coincidences(hits["fill"], hits["calo"] + N_ST, hits["time_ns"], hits["energy_mev"], N_ST, WINDOW_NS)


@pytest.fixture(scope="module")
def lossy_run(tmp_path_factory):
    from ringsim.cli import main

    path = tmp_path_factory.mktemp("lossy") / "events.root"
    args = ["simulate", "--ring", "fnal", "--positrons", "150000", "--seed", "2", "-o", str(path), "--set", "fastmodel.loss_fraction=0.05", "--set", "fastmodel.loss_tau_us=30"]
    assert main(args) == 0
    return path


def test_simulated_lost_muons_are_found_as_triples_in_the_events(lossy_run):
    import uproot

    with uproot.open(lossy_run) as f:
        ev = f["events"].arrays(library="np")
        lost = f["lost_muons"].arrays(library="np")
    mip = ev["truth_mip"] == 1
    assert np.all(np.isnan(ev["truth_decay_time_ns"][mip])) and not np.any(np.isnan(ev["truth_decay_time_ns"][~mip]))
    whole = ev["fill"] < ev["fill"].max()  # the last fill is cut where the positron count was reached
    found = triple_coincidences(ev["fill"][whole], ev["calo"][whole], ev["time_ns"][whole], ev["energy_mev"][whole], N_ST, WINDOW_NS)
    # every lost muon of those fills gives one triple at its first face (time resolution 0.5 ns; accidentals are rare)
    sector = 2 * math.pi / N_ST
    phi = lost["azimuth_rad"].astype(float)
    first_face_ns = lost["time_ns"] + R0 * ((np.floor(phi / sector) + 1) * sector - phi) / (BETA * SPEED_OF_LIGHT_M_PER_S) * 1e9
    recorded = np.sort(first_face_ns[(lost["fill"] < ev["fill"].max()) & (first_face_ns >= 0.0)])
    assert recorded.size > 1000
    assert found.size == pytest.approx(recorded.size, rel=0.01)
    nearest = np.abs(recorded[np.clip(np.searchsorted(recorded, found), 0, recorded.size - 1)] - found)
    assert np.median(nearest) < 1.0


def test_fit_takes_the_loss_term_from_the_coincidences(lossy_run, tmp_path):
    import json

    from ringsim.cli import main

    out = tmp_path / "fit.json"
    assert main(["fit", str(lossy_run), "--model", "5+loss", "--loss-coincidences", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert math.isfinite(result["params"]["k_loss"]) and result["errors"]["k_loss"] > 0
    # the loss term from the data has the shape of the true losses: L(t) of the coincidences and of
    # the lost-muon truth agree (Kolmogorov distance of the two cumulative spectra)
    import uproot

    from analysis.models import LossSpectrum

    with uproot.open(lossy_run) as f:
        ev = f["events"].arrays(library="np")
        lost = f["lost_muons"].arrays(library="np")
    edges = np.arange(0.0, 651.0, 1.0)
    found = triple_coincidences(ev["fill"], ev["calo"], ev["time_ns"], ev["energy_mev"], N_ST, WINDOW_NS)
    spectra = [LossSpectrum(edges, np.histogram(t_ns * 1e-3, bins=edges)[0], 64.4) for t_ns in (found, lost["time_ns"])]
    t_us = np.linspace(0.0, 650.0, 651)
    distance = np.max(np.abs(spectra[0].cumulative(t_us) - spectra[1].cumulative(t_us)))
    assert distance < 3 * math.sqrt(2.0 / found.size) + 0.02  # KS scale, plus the flight-time offset of the first face
    assert main(["fit", str(lossy_run), "--ring", "jparc", "--loss-coincidences"]) == 2


def test_corrections_ignore_the_lost_muons_clusters_at_low_thresholds(lossy_run):
    """With a threshold below the MIP peak the truth corrections use the positrons only (no NaN)."""
    import uproot

    from analysis.wiggle import histogram_and_fit, ring_settings, select_energy
    from ringsim.config import load_config
    from workflows.closure import simulated_run_budget
    from workflows.study import run_task

    cfg = load_config("fnal", overrides=["fastmodel.loss_fraction=0.05", "analysis.energy_min_mev=100"])
    task = run_task(cfg, "fast", 60_000, 1)
    assert all(math.isfinite(task[k]) for k in ("omega_a", "C_e", "C_p"))
    with uproot.open(lossy_run) as f:
        ev = f["events"].arrays(library="np")
    settings = ring_settings(cfg)
    assert np.any((ev["truth_mip"] == 1) & (ev["energy_mev"] >= settings.energy_min_mev))
    fit, _, _ = histogram_and_fit(select_energy(ev["time_ns"], ev["energy_mev"], settings), settings, seed=1)
    run = simulated_run_budget(cfg, fit, ev, seed=1)
    assert math.isfinite(run.amu.a_mu) and all(math.isfinite(line.value_ppb) and math.isfinite(line.error_ppb) for line in run.budget.lines)
