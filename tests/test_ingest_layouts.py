"""Real-experiment layouts end to end (issue 15): clock-tick cluster ntuples split in subrun files,
the crystal ntuple as an RNTuple, one entry per fill with vectors, per-calorimeter TH2s, a TH3
time × energy × calorimeter, subtracted histograms with Sumw2, and mixed rings.

The simulation is only a source of hit times and energies; every layout file is written here
with bare uproot. ω_a is compared with the simulation's truth, fill counts with counts done here.
"""

import json

import awkward as ak
import numpy as np
import pytest
import uproot

from analysis.ingest import read_events
from ringsim.cli import main
from ringsim.config import load_config
from ringsim.run_file import simulate_to_file

CLOCK_TICK_NS = 1.25  # Fermilab WFD clock tick, 800 MHz (issue 15: clusterTree `time` in units of 1.25 ns)
RUN = 15921  # any run number
DEAD_TIME_NS, GAP_NS, WINDOW_NS = 5.0, 10.0, 5.0  # the fit's default shadow-window settings


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """Hits of a small Fermilab simulation (bare uproot read) and its true ω_a."""
    path = tmp_path_factory.mktemp("sim") / "sim.root"
    provenance = simulate_to_file(path, load_config("fnal"), n_positrons=150_000, seed=7, progress=False)
    with uproot.open(path) as f:
        hits = f["events"].arrays(["time_ns", "energy_mev", "calo", "fill"], library="np")
    order = np.lexsort((hits["time_ns"], hits["fill"]))
    return {k: v[order] for k, v in hits.items()} | {"omega_truth": provenance["omega_a_truth_rad_per_us"], "path": path}


def _fit(tmp_path, name, *args):
    out = tmp_path / f"{name}.json"
    assert main(["fit", *map(str, args), "--unblind", "--json", str(out)]) == 0
    return json.loads(out.read_text())


def _pull(result, sim):
    return (result["omega_a"] - sim["omega_truth"]) / result["omega_a_err"]


def _subruns(sim, n_files=2):
    """Subrun (1, 2, …) and event number (restarting at 0 in every subrun) of each hit."""
    subrun, event = np.zeros_like(sim["fill"]), np.zeros_like(sim["fill"])
    for number, chunk in enumerate(np.array_split(np.unique(sim["fill"]), n_files), start=1):
        keep = np.isin(sim["fill"], chunk)
        subrun[keep], event[keep] = number, sim["fill"][keep] - chunk[0]
    return subrun, event


def _subrun_files(tmp_path, sim):
    """clusterTree/clusters files, one per subrun; eventNum restarts at 0 in every file."""
    subruns, events = _subruns(sim)
    paths = []
    for subrun in np.unique(subruns).tolist():
        keep = subruns == subrun
        n = int(np.count_nonzero(keep))
        path = tmp_path / f"gm2offline_run{RUN}_{subrun:05d}.root"
        with uproot.recreate(path) as f:
            f.mktree(
                "clusterTree/clusters",
                {"time": np.float64, "energy": np.float64, "caloNum": np.uint32, "runNum": np.uint32, "subRunNum": np.uint32, "eventNum": np.uint32, "xtalEnergies": "var * float64"},
            )
            f["clusterTree/clusters"].extend(
                {
                    "time": sim["time_ns"][keep] / CLOCK_TICK_NS,
                    "energy": sim["energy_mev"][keep].astype(np.float64),
                    "caloNum": (sim["calo"][keep] + 1).astype(np.uint32),
                    "runNum": np.full(n, RUN, dtype=np.uint32),
                    "subRunNum": np.full(n, subrun, dtype=np.uint32),
                    "eventNum": events[keep].astype(np.uint32),
                    "xtalEnergies": ak.unflatten(np.repeat(0.5 * sim["energy_mev"][keep].astype(np.float64), 2), np.full(n, 2)),
                }
            )
        paths.append(path)
    return paths


def _flat_file(path, sim):
    """The same hits in ns with a unique fill number, tree `hits`."""
    with uproot.recreate(path) as f:
        f.mktree("hits", {"t_ns": np.float64, "e_mev": np.float64, "station": np.int32, "fill": np.int64})
        f["hits"].extend({"t_ns": sim["time_ns"], "e_mev": sim["energy_mev"].astype(np.float64), "station": (sim["calo"] + 1).astype(np.int32), "fill": sim["fill"].astype(np.int64)})
    return path


FLAT = ("--tree", "hits", "--time-branch", "t_ns", "--energy-branch", "e_mev", "--calo-branch", "station")
CLUSTERS = ("--tree", "clusterTree/clusters", "--time-branch", "time", "--time-unit", "ct", "--energy-branch", "energy", "--calo-branch", "caloNum")


def _shadow_pairs_by_hand(time_ns, energy_mev, group):
    """Shadow pairs counted here: per group, non-extending dead time, then pairs Δt ∈ [gap, gap + w)."""
    total = 0
    for g in np.unique(group):
        idx = np.flatnonzero(group == g)
        idx = idx[np.argsort(time_ns[idx], kind="stable")]
        t, e = time_ns[idx], energy_mev[idx]
        clusters, first, members = [], None, []
        for ti, ei in zip(t.tolist(), e.tolist(), strict=True):
            if first is None or ti - first >= DEAD_TIME_NS:
                if members:
                    clusters.append(members)
                first, members = ti, []
            members.append((ti, ei))
        clusters.append(members)
        times = np.sort([sum(a * b for a, b in c) / sum(b for _, b in c) for c in clusters])
        total += int(np.sum(np.searchsorted(times, times + GAP_NS + WINDOW_NS, side="left") - np.searchsorted(times, times + GAP_NS, side="left")))
    return total


def test_subrun_files_with_restarting_events_pair_hits_of_one_fill_only(sim, tmp_path):
    paths = _subrun_files(tmp_path, sim)
    composite = _fit(tmp_path, "composite", *paths, *CLUSTERS, "--fill-branch", "runNum,subRunNum,eventNum", "--pileup")
    per_file = _fit(tmp_path, "per_file", *paths, *CLUSTERS, "--fill-branch", "eventNum", "--pileup")
    unique = _fit(tmp_path, "unique", _flat_file(tmp_path / "flat.root", sim), *FLAT, "--pileup")

    group = sim["fill"] * 100 + sim["calo"]
    expected = _shadow_pairs_by_hand(sim["time_ns"], sim["energy_mev"].astype(float), group)
    merged = _shadow_pairs_by_hand(sim["time_ns"], sim["energy_mev"].astype(float), _subruns(sim)[1] * 100 + sim["calo"])
    assert expected > 100 and merged > 1.5 * expected  # files merged by eventNum alone would pair hits of two fills
    for result in (composite, per_file, unique):
        assert result["pileup"]["shadow_pairs"] == expected
    assert composite["pileup"]["fill_key"] == "runNum,subRunNum,eventNum"
    assert per_file["pileup"]["fill_key"] == "eventNum within each file"
    assert composite["omega_a"] == pytest.approx(unique["omega_a"], abs=1e-6 * unique["omega_a_err"])
    assert abs(_pull(composite, sim)) < 3.0


def test_clock_tick_files_fit_like_the_same_data_in_ns(sim, tmp_path):
    paths = _subrun_files(tmp_path, sim)
    key = ("--fill-branch", "runNum,subRunNum,eventNum")  # the ring's default fit subtracts pileup (fnal)
    in_ct = _fit(tmp_path, "ct", *paths, *CLUSTERS, *key)
    scaled = _fit(tmp_path, "scaled", *paths, *CLUSTERS, *key, "--time-unit", "1.25ns")
    in_ns = _fit(tmp_path, "ns", _flat_file(tmp_path / "flat.root", sim), *FLAT)
    assert in_ct["pileup"]["shadow_pairs"] == in_ns["pileup"]["shadow_pairs"] > 0
    assert in_ct["omega_a"] == pytest.approx(in_ns["omega_a"], abs=1e-6 * in_ns["omega_a_err"])
    assert scaled["omega_a"] == in_ct["omega_a"]
    assert abs(_pull(in_ct, sim)) < 3.0


def test_clock_ticks_read_as_ns_warn_and_a_unit_off_by_orders_is_refused(sim, tmp_path, capsys):
    paths = _subrun_files(tmp_path, sim)
    capsys.readouterr()
    main(["fit", *map(str, paths), *CLUSTERS[:-4], "--time-unit", "ns", "--energy-branch", "energy", "--calo-branch", "caloNum", "--unblind"])
    err = capsys.readouterr().err
    lifetime = [line for line in err.splitlines() if line.startswith("warning:") and "apparent lifetime" in line]
    assert len(lifetime) == 1 and "--time-unit ct" in lifetime[0]

    flat = _flat_file(tmp_path / "flat.root", sim)
    assert main(["fit", str(flat), *FLAT, "--time-unit", "us", "--json", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: time unit:") and "--time-unit ns?" in err and err.count("\n") == 1
    assert not (tmp_path / "x.json").exists()
    assert main(["fit", str(flat), *FLAT, "--time-unit", "fortnight"]) == 2
    assert "time unit 'fortnight' is not one of ns, us" in capsys.readouterr().err


def test_pileup_without_a_fill_names_the_fill_branch_option(sim, tmp_path, capsys):
    path = tmp_path / "nofill.root"
    with uproot.recreate(path) as f:
        f.mktree("hits", {"t_ns": np.float64, "e_mev": np.float64, "station": np.int32})
        f["hits"].extend({"t_ns": sim["time_ns"][:5000], "e_mev": sim["energy_mev"][:5000].astype(np.float64), "station": sim["calo"][:5000].astype(np.int32)})
    assert main(["fit", str(path), *FLAT, "--pileup"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: pileup:") and "--fill-branch" in err and err.count("\n") == 1


def _crystal_columns(sim):
    return {
        "time": sim["time_ns"] / CLOCK_TICK_NS,
        "energy": sim["energy_mev"].astype(np.float64),
        "caloIndex": sim["calo"].astype(np.int32),
        "runIndex": np.full(sim["time_ns"].size, RUN, dtype=np.int32),
        "subrunIndex": np.ones(sim["time_ns"].size, dtype=np.int32),
        "fillIndex": sim["fill"].astype(np.int32),
    }


def test_rntuple_crystal_ntuple_reads_and_fits_like_the_ttree(sim, tmp_path):
    columns = _crystal_columns(sim)
    rntuple, ttree = tmp_path / "rntuple.root", tmp_path / "ttree.root"
    with uproot.recreate(rntuple) as f:
        f["crystalTreeMaker1EP/ntuple"] = columns  # dict assignment writes an RNTuple (uproot ≥ 5.7)
    with uproot.recreate(ttree) as f:
        f.mktree("crystalTreeMaker1EP/ntuple", {k: v.dtype for k, v in columns.items()})
        f["crystalTreeMaker1EP/ntuple"].extend(columns)
    with uproot.open(rntuple) as f:
        assert f.classnames(cycle=False)["crystalTreeMaker1EP/ntuple"] == "ROOT::RNTuple"
    options = dict(time_branch="time", energy_branch="energy", calo_branch="caloIndex", time_unit="ct", fill_branch="runIndex,subrunIndex,fillIndex", selection="(energy > 1000) & (caloIndex != 3)")
    a, b = read_events(rntuple, step_size=7000, **options), read_events(ttree, **options)
    keep = (columns["energy"] > 1000) & (columns["caloIndex"] != 3)
    assert a.n_entries == b.n_entries == np.count_nonzero(keep)
    for name in ("time_ns", "energy_mev", "calo", "fill"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(a.fill, np.unique(columns["fillIndex"][keep], return_inverse=True)[1])

    argv = ("--time-branch", "time", "--time-unit", "ct", "--energy-branch", "energy", "--calo-branch", "caloIndex", "--fill-branch", "runIndex,subrunIndex,fillIndex", "--pileup")
    from_rntuple, from_ttree = _fit(tmp_path, "r", rntuple, *argv), _fit(tmp_path, "t", ttree, *argv)
    assert from_rntuple["omega_a"] == from_ttree["omega_a"]
    assert from_rntuple["pileup"]["shadow_pairs"] == from_ttree["pileup"]["shadow_pairs"] > 0
    assert abs(_pull(from_rntuple, sim)) < 3.0


def test_one_entry_per_fill_vectors_are_flattened_with_the_entry_as_fill(sim, tmp_path):
    path = tmp_path / "per_fill.root"
    fills, starts = np.unique(sim["fill"], return_index=True)
    counts = np.diff(np.append(starts, sim["fill"].size))
    with uproot.recreate(path) as f:
        f.mktree("fills", {"time": "var * float64", "energy": "var * float32", "calo": "var * int32", "n": np.int32})
        f["fills"].extend(
            {
                "time": ak.unflatten(sim["time_ns"], counts),
                "energy": ak.unflatten(sim["energy_mev"].astype(np.float32), counts),
                "calo": ak.unflatten(sim["calo"].astype(np.int32), counts),
                "n": counts.astype(np.int32),
            }
        )
    data = read_events(path, time_branch="time", energy_branch="energy", calo_branch="calo", selection="n > 0")
    np.testing.assert_array_equal(data.time_ns, sim["time_ns"])
    np.testing.assert_array_equal(data.fill, np.repeat(np.arange(fills.size), counts))
    assert data.fill_key == "entry (one entry per fill) within each file"

    vectors = _fit(tmp_path, "v", path, "--time-branch", "time", "--energy-branch", "energy", "--calo-branch", "calo", "--pileup")
    flat = _fit(tmp_path, "f", _flat_file(tmp_path / "flat.root", sim), *FLAT, "--pileup")
    assert vectors["pileup"]["shadow_pairs"] == flat["pileup"]["shadow_pairs"] > 0
    assert vectors["omega_a"] == pytest.approx(flat["omega_a"], abs=1e-6 * flat["omega_a_err"])


def test_vectors_of_unequal_length_are_refused(tmp_path):
    path = tmp_path / "bad.root"
    with uproot.recreate(path) as f:
        f.mktree("fills", {"time": "var * float64", "energy": "var * float64"})
        f["fills"].extend({"time": ak.Array([[1.0, 2.0], [3.0]]), "energy": ak.Array([[1.0, 2.0], [3.0, 4.0]])})
    with pytest.raises(Exception, match=r"bad\.root:fills: branch 'energy' holds another number of values per entry than the time branch 'time'"):
        read_events(path, time_branch="time", energy_branch="energy")


ENERGY_EDGES = np.linspace(0.0, 3500.0, 36)


def _time_edges():
    a = load_config("fnal").analysis
    return np.arange(0.0, 7.5e5 + a.bin_width_ns, a.bin_width_ns)


def test_per_calorimeter_th2s_and_a_th3_fit_like_the_hits(sim, tmp_path):
    t_edges, calo_edges = _time_edges(), np.arange(0.5, 25.5)
    station = sim["calo"] + 1
    per_calo = tmp_path / "calos.root"
    with uproot.recreate(per_calo) as f:
        for n in range(1, 25):
            keep = station == n
            counts, _, _ = np.histogram2d(sim["time_ns"][keep], sim["energy_mev"][keep], bins=(t_edges, ENERGY_EDGES))
            f[f"calos/Calo{n}_Times_And_Energies"] = _th2(f"Calo{n}_Times_And_Energies", counts, t_edges, ENERGY_EDGES, dtype=np.float32)
        f["calos/notes"] = "not a histogram"
    cube = tmp_path / "master.root"
    counts3, _ = np.histogramdd((sim["time_ns"], sim["energy_mev"], station), bins=(t_edges, ENERGY_EDGES, calo_edges))
    with uproot.recreate(cube) as f:
        f["master_3d"] = (counts3, t_edges, ENERGY_EDGES, calo_edges)
    with uproot.open(per_calo) as f:
        assert f.classnames(cycle=False)["calos/Calo7_Times_And_Energies"] == "TH2F"

    summed = _fit(tmp_path, "sum", per_calo, "--hist", "calos/Calo*_Times_And_Energies")
    from_cube = _fit(tmp_path, "cube", cube, "--hist", "master_3d", "--per-station")
    assert summed["omega_a"] == pytest.approx(from_cube["omega_a"], rel=1e-9)
    assert abs(_pull(summed, sim)) < 3.0
    assert sorted(map(int, from_cube["stations"])) == list(range(1, 25))
    one = _fit(tmp_path, "seven", per_calo, "--hist", "calos/Calo7_Times_And_Energies")
    assert from_cube["stations"]["7"]["omega_a"] == pytest.approx(one["omega_a"], rel=1e-9)

    halves = [tmp_path / "first.root", tmp_path / "second.root"]
    for path, part in zip(halves, (sim["fill"] % 2 == 0, sim["fill"] % 2 == 1), strict=True):
        counts, _, _ = np.histogram2d(sim["time_ns"][part], sim["energy_mev"][part], bins=(t_edges, ENERGY_EDGES))
        with uproot.recreate(path) as f:
            f["clusters/calo_all/hTimeEnergy"] = (counts, t_edges, ENERGY_EDGES)
    over_files = _fit(tmp_path, "files", *halves, "--hist", "clusters/calo*/hTimeEnergy")
    assert over_files["omega_a"] == pytest.approx(summed["omega_a"], rel=1e-9)


def _th2(name, counts, t_edges, e_edges, sumw2=None, dtype=np.float64):
    """A TH2F/TH2D through uproot's writer, with Sumw2 if given (flow bins included, ROOT's x-fastest order)."""
    pad = lambda a: np.pad(a, 1).T.ravel().astype(dtype)  # noqa: E731 - (x, y) → ROOT's flattened order with flow
    axis = lambda axis_name, edges: uproot.writing.identify.to_TAxis(axis_name, "", len(edges) - 1, edges[0], edges[-1], edges)  # noqa: E731
    stored = np.zeros(0) if sumw2 is None else pad(sumw2).astype(np.float64)
    total = float(counts.sum())
    return uproot.writing.identify.to_TH2x(name, "", pad(counts), total, total, float(stored.sum()), 0.0, 0.0, 0.0, 0.0, 0.0, stored, axis("xaxis", t_edges), axis("yaxis", e_edges))


def test_subtracted_histogram_is_fitted_with_its_sumw2_and_bad_ones_are_refused(sim, tmp_path, capsys):
    t_edges = _time_edges()
    counts, _, _ = np.histogram2d(sim["time_ns"], sim["energy_mev"], bins=(t_edges, ENERGY_EDGES))
    background = np.random.default_rng(1).poisson(0.3, counts.shape).astype(float)
    subtracted = counts - background  # a flat background taken off: negative bins where it exceeds the data
    assert np.any(subtracted < 0)
    variance = counts + background
    paths = {}
    for name, var in (("one", variance), ("four", 4.0 * variance)):
        paths[name] = tmp_path / f"{name}.root"
        with uproot.recreate(paths[name]) as f:
            f["sub"] = _th2("sub", subtracted, t_edges, ENERGY_EDGES, sumw2=var)
    one, four = (_fit(tmp_path, name, paths[name], "--hist", "sub") for name in ("one", "four"))
    assert four["omega_a"] == pytest.approx(one["omega_a"], rel=1e-7)
    assert four["omega_a_err"] == pytest.approx(2.0 * one["omega_a_err"], rel=1e-4)  # χ² with σ² × 4: errors × 2
    assert abs(_pull(one, sim)) < 3.0

    no_sumw2 = tmp_path / "nosumw2.root"
    with uproot.recreate(no_sumw2) as f:
        f["dir/sub"] = (subtracted, t_edges, ENERGY_EDGES)
    profile = tmp_path / "profile.root"
    with uproot.recreate(profile) as f:
        zeros = np.zeros(5)
        f["prof"] = uproot.writing.identify.to_TProfile("prof", "", zeros, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, zeros, zeros, zeros, uproot.writing.identify.to_TAxis("xaxis", "", 3, 0.0, 3.0))
    capsys.readouterr()
    for path, name, words in ((no_sumw2, "dir/sub", "bins are negative and the histogram stores no Sumw2"), (profile, "prof", "is a TProfile, a profile of mean values per bin")):
        assert main(["fit", str(path), "--hist", name, "--json", str(tmp_path / "x.json")]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {path}:{name}: ") and words in err and err.count("\n") == 1
        assert not (tmp_path / "x.json").exists()


def test_files_of_two_rings_are_refused_and_foreign_files_take_the_ring_option(sim, tmp_path, capsys):
    jparc = tmp_path / "jparc.root"
    simulate_to_file(jparc, load_config("jparc"), n_positrons=20_000, seed=2, progress=False)
    assert main(["fit", str(jparc), str(sim["path"]), "--json", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {sim['path']}: simulated for the fnal ring but {jparc} for the jparc ring") and err.count("\n") == 1
    assert not (tmp_path / "x.json").exists()

    foreign = tmp_path / "foreign.root"
    with uproot.open(jparc) as f:
        hits = f["events"].arrays(["time_ns", "energy_mev", "calo", "fill"], library="np")
    with uproot.recreate(foreign) as f:
        f.mktree("events", {name: column.dtype for name, column in hits.items()})
        f["events"].extend(hits)
    hists = []
    for path in (jparc, sim["path"]):
        hists.append(tmp_path / f"hist_{path.name}")
        with uproot.open(path) as f:
            provenance = str(f["provenance"])
        with uproot.recreate(hists[-1]) as f:
            f["provenance"] = provenance
            f["wiggle"] = np.histogram([1.0e4, 2.0e4], bins=np.linspace(0.0, 1.0e5, 11))
    assert main(["fit", *map(str, hists), "--hist", "wiggle"]) == 2
    assert capsys.readouterr().err.startswith(f"error: {hists[1]}: simulated for the fnal ring but {hists[0]} for the jparc ring")

    assert _fit(tmp_path, "foreign", foreign, "--ring", "jparc")["ring"] == "jparc"
    assert _fit(tmp_path, "mixed", jparc, foreign)["ring"] == "jparc"
