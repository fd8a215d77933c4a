"""Reading events and histograms from ROOT files of any layout (analysis.ingest)."""

import re

import awkward as ak
import numpy as np
import pytest
import uproot

from analysis.fills import FillKey, fill_numbers
from analysis.ingest import read_events
from analysis.ingest_histograms import read_histogram
from analysis.units import mev_per_energy_unit, ns_per_time_unit, time_scale_check
from ringsim.errors import ConfigError, InputError
from ringsim.io import EventWriter

PROVENANCE = {"ringsim_version": "0.1.0", "seed": 99, "blinded": False}
N_ROWS = 3_000


def make_hits(n_rows=N_ROWS, seed=0):
    """Hit times (ns), energies (MeV) and calorimeter indices, written in two layouts below."""
    rng = np.random.default_rng(seed)
    return {
        "time_ns": rng.uniform(0.0, 7.0e5, n_rows),
        "energy_mev": rng.uniform(100.0, 3100.0, n_rows),
        "calo": rng.integers(1, 25, n_rows).astype(np.int32),
    }


def write_native(path, hits):
    """The ringsim layout: tree "events", branches time_ns / energy_mev / calo, provenance."""
    branches = {name: column.dtype for name, column in hits.items()}
    with EventWriter(path, branches=branches, provenance=PROVENANCE) as writer:
        writer.extend(hits)
    return path


def write_foreign(path, hits):
    """Another program's layout, with plain uproot: run1/calo/hits with t [μs], E [GeV], c."""
    with uproot.recreate(path) as root_file:
        root_file.mktree("run1/calo/hits", {"t": np.float64, "E": np.float64, "c": np.int32})
        half = len(hits["time_ns"]) // 2
        for part in (slice(0, half), slice(half, None)):
            root_file["run1/calo/hits"].extend(
                {
                    "t": hits["time_ns"][part] / 1.0e3,
                    "E": hits["energy_mev"][part] / 1.0e3,
                    "c": hits["calo"][part],
                }
            )
        root_file["note"] = "written by another program"
    return path


def write_tree(path, branches, tree="events"):
    with uproot.recreate(path) as root_file:
        root_file.mktree(tree, {name: column.dtype for name, column in branches.items()})
        if len(next(iter(branches.values()))):
            root_file[tree].extend(branches)
    return path


FOREIGN_OPTIONS = dict(tree="run1/calo/hits", time_branch="t", energy_branch="E", calo_branch="c", time_unit="us", energy_unit="GeV")


def test_native_layout_reads_back_with_provenance(tmp_path):
    hits = make_hits()
    data = read_events(write_native(tmp_path / "native.root", hits))
    np.testing.assert_array_equal(data.time_ns, hits["time_ns"])
    np.testing.assert_array_equal(data.energy_mev, hits["energy_mev"])
    np.testing.assert_array_equal(data.calo, hits["calo"])
    assert data.time_ns.dtype == np.float64 and data.calo.dtype == np.int64
    assert data.n_entries == N_ROWS
    assert data.source == f"{tmp_path / 'native.root'}:events"
    assert data.provenance == PROVENANCE


def test_foreign_layout_with_options_gives_the_same_arrays_in_ns_and_mev(tmp_path):
    hits = make_hits()
    native = read_events(write_native(tmp_path / "native.root", hits))
    foreign = read_events(write_foreign(tmp_path / "foreign.root", hits), **FOREIGN_OPTIONS)
    np.testing.assert_allclose(foreign.time_ns, native.time_ns, rtol=1e-15, atol=0)
    np.testing.assert_allclose(foreign.energy_mev, native.energy_mev, rtol=1e-15, atol=0)
    np.testing.assert_array_equal(foreign.calo, native.calo)
    assert foreign.source.endswith("foreign.root:run1/calo/hits")
    assert foreign.provenance == {}


def test_units_are_case_insensitive_and_seconds_convert(tmp_path):
    times_s = np.array([1.0e-9, 2.5e-6, 7.0e-4])
    path = write_tree(tmp_path / "s.root", {"t": times_s, "e": np.array([1.0, 2.0, 3.0])})
    data = read_events(path, time_branch="t", energy_branch="e", time_unit="S", energy_unit="gev")
    np.testing.assert_allclose(data.time_ns, [1.0, 2500.0, 7.0e5], rtol=1e-15)
    np.testing.assert_array_equal(data.energy_mev, [1000.0, 2000.0, 3000.0])
    for bad in (dict(time_unit="min"), dict(energy_unit="eV"), dict(time_unit="-1.25ns")):
        with pytest.raises(ConfigError, match="is not one of"):
            read_events(path, time_branch="t", **bad)


def test_single_tree_is_found_anywhere_and_several_must_be_named(tmp_path):
    hits = make_hits()
    data = read_events(write_foreign(tmp_path / "foreign.root", hits), time_branch="t", time_unit="us")
    assert data.source.endswith(":run1/calo/hits")
    assert data.energy_mev is None and data.calo is None

    two = tmp_path / "two.root"
    with uproot.recreate(two) as root_file:
        for name in ("a/events", "b/events"):
            root_file.mktree(name, {"time_ns": np.float64})
            root_file[name].extend({"time_ns": hits["time_ns"]})
    with pytest.raises(InputError, match=r"holds 2 trees \(a/events, b/events\)"):
        read_events(two)
    np.testing.assert_array_equal(read_events(two, tree="b/events").time_ns, hits["time_ns"])

    none = tmp_path / "none.root"
    write_object(none, "wiggle", np.histogram([1.0, 2.0]))
    with pytest.raises(InputError, match=r"none\.root: holds no TTree or RNTuple; objects in the file: wiggle \(TH1D\)"):
        read_events(none)


def test_calorimeter_indices_stored_as_floats_must_be_whole_numbers(tmp_path):
    times = np.array([1.0, 2.0, 3.0])
    whole = write_tree(tmp_path / "whole.root", {"time_ns": times, "calo": np.array([1.0, 24.0, 7.0])})
    np.testing.assert_array_equal(read_events(whole).calo, [1, 24, 7])
    assert read_events(whole).calo.dtype == np.int64
    half = write_tree(tmp_path / "half.root", {"time_ns": times, "calo": np.array([1.0, 2.5, 7.0])})
    with pytest.raises(InputError, match="branch 'calo' holds non-integer values"):
        read_events(half)


def test_optional_branches_by_default_and_required_when_named(tmp_path):
    hits = make_hits()
    path = write_tree(tmp_path / "t.root", {"time_ns": hits["time_ns"], "calo": hits["calo"]})
    data = read_events(path)
    assert data.energy_mev is None
    np.testing.assert_array_equal(data.calo, hits["calo"])
    with pytest.raises(InputError, match=r"no branch 'energy'; branches: time_ns, calo") as info:
        read_events(path, energy_branch="energy")
    assert str(path) in str(info.value) and ":events" in str(info.value)


def test_selection_is_applied_in_file_units(tmp_path):
    hits = make_hits()
    path = write_foreign(tmp_path / "foreign.root", hits)
    data = read_events(path, selection="(E > 1.7) & (c != 3)", **FOREIGN_OPTIONS)
    keep = (hits["energy_mev"] / 1.0e3 > 1.7) & (hits["calo"] != 3)
    assert 0 < data.n_entries == np.count_nonzero(keep) < N_ROWS
    np.testing.assert_allclose(data.time_ns, hits["time_ns"][keep], rtol=1e-15)
    with pytest.raises(ConfigError, match="selection 'Q > 1' cannot be evaluated"):
        read_events(path, selection="Q > 1", **FOREIGN_OPTIONS)
    with pytest.raises(InputError, match="no entries pass the selection"):
        read_events(path, selection="E > 1000", **FOREIGN_OPTIONS)


@pytest.mark.parametrize("step_size", [1, 7, 1000, "1 kB", "100 MB"])
def test_chunked_reading_gives_identical_results(tmp_path, step_size):
    hits = make_hits()
    path = write_foreign(tmp_path / "foreign.root", hits)
    whole = read_events(path, step_size=10 * N_ROWS, **FOREIGN_OPTIONS)
    chunked = read_events(path, step_size=step_size, **FOREIGN_OPTIONS)
    for name in ("time_ns", "energy_mev", "calo"):
        np.testing.assert_array_equal(getattr(chunked, name), getattr(whole, name))


def test_bad_step_size_is_a_config_error(tmp_path):
    path = write_native(tmp_path / "native.root", make_hits())
    for bad in (0, "lots", "0 MB", True):
        with pytest.raises(ConfigError, match="step_size"):
            read_events(path, step_size=bad)


def test_multiple_files_concatenate_in_order(tmp_path):
    first, second = make_hits(seed=1), make_hits(n_rows=500, seed=2)
    paths = [write_native(tmp_path / "a.root", first), write_native(tmp_path / "b.root", second)]
    data = read_events(paths)
    np.testing.assert_array_equal(data.time_ns, np.concatenate([first["time_ns"], second["time_ns"]]))
    np.testing.assert_array_equal(data.calo, np.concatenate([first["calo"], second["calo"]]))
    assert data.n_entries == N_ROWS + 500
    assert data.source == f"{paths[0]}:events, {paths[1]}:events"

    other = write_foreign(tmp_path / "other.root", first)
    with pytest.raises(InputError, match=r"other\.root: no tree 'events'; trees in the file: run1/calo/hits"):
        read_events([paths[0], other])


def test_files_must_share_optional_branches(tmp_path):
    hits = make_hits()
    with_energy = write_native(tmp_path / "a.root", hits)
    without = write_tree(tmp_path / "b.root", {"time_ns": hits["time_ns"], "calo": hits["calo"]})
    with pytest.raises(InputError, match="all files must have the same branches"):
        read_events([with_energy, without])


def write_object(path, name, obj):
    with uproot.recreate(path) as root_file:
        root_file[name] = obj


def write_jagged(path):
    with uproot.recreate(path) as root_file:
        root_file.mktree("events", {"time_ns": np.float64, "energy_mev": "var * float64"})
        root_file["events"].extend({"time_ns": np.array([1.0, 2.0]), "energy_mev": ak.Array([[1.0], [2.0, 3.0]])})


def write_cut_in_half(path):
    hits = make_hits(n_rows=200_000)
    write_native(path, hits)
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])


def write_bad_times(path, bad):
    times = make_hits()["time_ns"]
    times[[5, 17, 2000]] = bad
    write_tree(path, {"time_ns": times})


MALFORMED = {
    "missing": (lambda path: None, "no such file"),
    "random-bytes": (lambda path: path.write_bytes(np.random.default_rng(3).bytes(4096)), "not a ROOT file"),
    "text": (lambda path: path.write_text("time_ns\n1.0\n"), "not a ROOT file"),
    "truncated": (write_cut_in_half, "truncated or corrupt"),
    "empty": (lambda path: path.write_bytes(b""), r"empty file \(0 bytes\)"),
    "tree-missing": (lambda path: write_tree(path, {"time_ns": np.ones(3)}, tree="other"), "no tree 'events'"),
    "branch-missing": (lambda path: write_tree(path, {"t": np.ones(3)}), "no branch 'time_ns'; branches: t"),
    "not-a-tree": (
        lambda path: write_object(path, "events", np.histogram([1.0, 2.0])),
        "'events' is a TH1D, not a TTree or RNTuple",
    ),
    "nan-times": (lambda path: write_bad_times(path, np.nan), "3 entries have negative or non-finite times"),
    "inf-times": (lambda path: write_bad_times(path, np.inf), "3 entries have negative or non-finite times"),
    "negative-times": (lambda path: write_bad_times(path, -1.0), "3 entries have negative or non-finite times"),
    "nan-energy": (
        lambda path: write_tree(path, {"time_ns": np.ones(3), "energy_mev": np.array([1.0, np.nan, 2.0])}),
        "1 entries have non-finite energies",
    ),
    "zero-entries": (lambda path: write_tree(path, {"time_ns": np.zeros(0)}), "tree has no entries"),
    "vector-energy-with-scalar-time": (
        write_jagged,
        r"branch 'energy_mev' holds double\[\] but the time branch 'time_ns' one number per entry",
    ),
    "string-branch": (
        lambda path: write_object(path, "events", {"time_ns": np.ones(2), "energy_mev": ak.Array(["a", "b"])}),
        r"branch 'energy_mev' holds .*; expected numbers",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_input_raises_a_one_line_input_error_naming_the_file(tmp_path, case):
    make, words = MALFORMED[case]
    path = tmp_path / f"{case}.root"
    make(path)
    with pytest.raises(InputError, match=words) as info:
        read_events(path, tree="events")
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message
    error = info.value
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)


def test_histograms_th1_and_th2_read_back_in_ns_and_mev(tmp_path):
    rng = np.random.default_rng(4)
    t_us, e_gev = rng.uniform(30.0, 700.0, 5000), rng.uniform(0.5, 3.0, 5000)
    counts1, edges1 = np.histogram(t_us, bins=np.linspace(30.0, 700.0, 150))
    counts2, t_edges, e_edges = np.histogram2d(t_us, e_gev, bins=(40, 12))
    path = tmp_path / "hist.root"
    with uproot.recreate(path) as root_file:
        root_file["wiggle"] = (counts1, edges1)
        root_file["calo/time_energy"] = (counts2, t_edges, e_edges)
        root_file["note"] = "not a histogram"

    th1 = read_histogram(path, "wiggle", time_unit="us")
    np.testing.assert_array_equal(th1.counts, counts1)
    np.testing.assert_allclose(th1.edges, edges1 * 1.0e3, rtol=1e-15)
    assert "read in us" in th1.unit_note and "MeV" not in th1.unit_note

    counts, edges, note = read_histogram(path, "calo/time_energy", time_unit="us", energy_unit="GeV")[:3]
    np.testing.assert_array_equal(counts, counts2)
    np.testing.assert_allclose(edges[0], t_edges * 1.0e3, rtol=1e-15)
    np.testing.assert_allclose(edges[1], e_edges * 1.0e3, rtol=1e-15)
    assert counts.sum() == 5000 and "read in GeV" in note

    with pytest.raises(InputError, match=r"no histogram matches 'missing'; histograms in the file: calo/time_energy, wiggle"):
        read_histogram(path, "missing")
    with pytest.raises(InputError, match="note: is a TObjString, expected a TH1, TH2 or TH3"):
        read_histogram(path, "note")
    with pytest.raises(ConfigError, match="time unit 'min'"):
        read_histogram(path, "wiggle", time_unit="min")


def test_time_and_energy_units_by_name_scaled_and_in_clock_ticks():
    # Fermilab WFD clock tick: 1.25 ns (issue 15, the clusterTree `time` unit)
    expected_ns = {"ns": 1.0, "NS": 1.0, "us": 1.0e3, "μs": 1.0e3, "µs": 1.0e3, "ms": 1.0e6, "s": 1.0e9, "ct": 1.25, "1.25ns": 1.25, "2.5 us": 2.5e3, "1e-3s": 1.0e6}
    for unit, factor in expected_ns.items():
        assert ns_per_time_unit(unit) == pytest.approx(factor, rel=1e-15), unit
    for unit, factor in {"keV": 1.0e-3, "MeV": 1.0, "gev": 1.0e3, "0.5GeV": 500.0, "100 keV": 0.1}.items():
        assert mev_per_energy_unit(unit) == pytest.approx(factor, rel=1e-15), unit
    for bad in ("min", "0ns", "-1ns", "ns2", "", "1.25", "nan ns"):
        with pytest.raises(ConfigError, match=r"time unit .* is not one of ns, us \(μs\), ms, s, ct"):
            ns_per_time_unit(bad)
    with pytest.raises(ConfigError, match="energy unit 'eV' is not one of keV, MeV, GeV"):
        mev_per_energy_unit("eV")


def _decays_ns(n, tau_us=64.4, start_us=30.0, end_us=650.0, seed=5):
    """Exponential decay times (ns) in [0, end): the shape a ring's hits follow (docs/physics.md §3)."""
    t = np.random.default_rng(seed).exponential(tau_us * 1e3, 3 * n)
    return t[t < end_us * 1e3][:n]


def test_time_scale_check_warns_on_clock_ticks_and_refuses_orders_of_magnitude():
    window_ns, tau_ns = (30.0e3, 650.0e3), 64.4e3
    times = _decays_ns(20_000)
    assert time_scale_check(times, window_ns, tau_ns, "ns", "f.root:t") is None
    warning = time_scale_check(times / 1.25, window_ns, tau_ns, "ns", "f.root:t")  # clock ticks read as ns
    assert warning.startswith("f.root:t: the hits decay") and re.search(r"0\.(79|80|81)\d? ×", warning) and "--time-unit ct" in warning and "\n" not in warning
    assert "--time-unit ct" not in time_scale_check(times * 1.3, window_ns, tau_ns, "ns", "f.root:t")
    assert time_scale_check(_decays_ns(150) / 1.25, window_ns, tau_ns, "ns", "f.root:t") is None  # 20 % is < 5σ with 150 hits
    short = (30.0e3, 40.0e3)  # a 10 μs window measures τ poorly: 20 % is < 5σ there with 20 000 hits
    assert time_scale_check(times / 1.25, short, tau_ns, "ns", "f.root:t") is None
    with pytest.raises(ConfigError, match=r"median time of f\.root:t is .* with --time-unit us, far outside .*; is the unit --time-unit ns\?"):
        time_scale_check(times * 1e3, window_ns, tau_ns, "us", "f.root:t")  # ns read as μs
    with pytest.raises(ConfigError, match=r"--time-unit us\?"):
        time_scale_check(times * 1e-3, window_ns, tau_ns, "ns", "f.root:t")  # μs read as ns
    counts, edges = np.histogram(times / 1.25, bins=np.arange(0.0, 6.5e5, 150.0))
    assert "--time-unit ct" in time_scale_check(0.5 * (edges[1:] + edges[:-1]), window_ns, tau_ns, "ns", "h.root:h", weights=counts)


def test_fill_keys_of_one_branch_count_per_file_and_composite_keys_are_global():
    restart = [[np.array([0, 0, 1])], [np.array([0, 1, 1])]]  # eventNum restarting in the second file
    np.testing.assert_array_equal(fill_numbers(FillKey.of(["eventNum"]), restart), [0, 0, 1, 2, 3, 3])
    run, subrun = np.full(3, 7), np.full(3, 1)
    split = [[run, subrun, np.array([4, 5, 5])], [run, subrun, np.array([5, 6, 4])]]  # one subrun's fills over two files
    np.testing.assert_array_equal(fill_numbers(FillKey.of(["runNum", "subRunNum", "eventNum"]), split), [0, 1, 1, 1, 2, 0])
    subruns = [[run, subrun, np.array([4, 5, 5])], [run, subrun + 1, np.array([4, 5, 5])]]
    np.testing.assert_array_equal(fill_numbers(FillKey.of(["runNum", "subRunNum", "eventNum"]), subruns), [0, 1, 1, 2, 3, 3])
    assert FillKey.of(["fill"]).describe() == "fill within each file"


def test_fill_branch_option_reads_composite_keys_and_checks_names(tmp_path):
    times = np.arange(6.0) + 0.5
    a = write_tree(tmp_path / "a.root", {"time_ns": times, "run": np.full(6, 3, dtype=np.int32), "event": np.array([1, 1, 2, 2, 3, 3], dtype=np.uint32)})
    b = write_tree(tmp_path / "b.root", {"time_ns": times, "run": np.full(6, 4, dtype=np.int32), "event": np.array([1, 1, 2, 2, 3, 3], dtype=np.uint32)})
    data = read_events([a, b], fill_branch="run,event")
    np.testing.assert_array_equal(data.fill, [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
    assert data.fill_key == "run,event"
    assert read_events([a, b]).fill is None
    with pytest.raises(ConfigError, match="pileup: needs the fill of every hit.*--fill-branch NAME"):
        read_events(a).require_fills("pileup")
    with pytest.raises(InputError, match=r"a\.root:events: no branch 'subrun'"):
        read_events(a, fill_branch="run,subrun,event")
    for bad in ("run,,event", "run,run"):
        with pytest.raises(ConfigError, match="fill-branch: expected NAME"):
            read_events(a, fill_branch=bad)
    with pytest.raises(InputError, match="branch 'time_ns' holds non-integer values"):
        read_events(a, fill_branch="time_ns,run")


@pytest.mark.parametrize(
    "selection, words",
    [
        ("(E > 1) and (c != 3)", "'BoolOp' is not allowed; use & and | with parentheses"),
        ("__import__('os').getcwd() > 0", "only the functions abs, sqrt"),
        ("E.real > 1", "'Attribute' is not allowed"),
        ("E >", "syntax error"),
        ("E + 1", "one true/false value per hit"),
    ],
)
def test_selections_outside_the_grammar_are_config_errors(tmp_path, selection, words):
    path = write_foreign(tmp_path / "foreign.root", make_hits(n_rows=50))
    with pytest.raises(ConfigError, match=f"selection .* cannot be evaluated on .*foreign.root:run1/calo/hits .*{re.escape(words)}"):
        read_events(path, selection=selection, **FOREIGN_OPTIONS)


def _write_rntuple(path, branches, tree="events"):
    with uproot.recreate(path) as root_file:
        root_file[tree] = branches  # dict assignment writes an RNTuple (uproot ≥ 5.7)
    return path


@pytest.mark.parametrize(
    "branches, options, words",
    [
        ({"t": np.ones(3)}, {}, r"no branch 'time_ns'; branches: t"),
        ({"time_ns": np.array([1.0, -2.0, np.nan])}, {}, "2 entries have negative or non-finite times"),
        ({"time_ns": np.ones(3), "calo": np.array([1.0, 2.5, 3.0])}, {}, "branch 'calo' holds non-integer values"),
        ({"time_ns": np.ones(3)}, {"selection": "Q > 1"}, r"selection 'Q > 1' cannot be evaluated on FILE:events \(no branch 'Q'\)"),
        ({"time_ns": np.ones(3)}, {"fill_branch": "eventNum"}, "no branch 'eventNum'"),
        ({"time_ns": np.ones(3)}, {"time_unit": "min"}, "time unit 'min' is not one of"),
    ],
)
def test_rntuple_and_ttree_give_the_same_errors(tmp_path, branches, options, words):
    messages = []
    for writer in (write_tree, _write_rntuple):
        path = writer(tmp_path / f"{writer.__name__}.root", branches)
        with pytest.raises((InputError, ConfigError)) as info:
            read_events(path, **options)
        messages.append(str(info.value).replace(str(path), "FILE"))
    assert messages[0] == messages[1]
    assert re.search(words, messages[0])


def test_rntuple_reads_like_the_ttree_with_every_option(tmp_path):
    hits = make_hits()
    branches = {"t": hits["time_ns"] / 1.25, "E": hits["energy_mev"] / 1.0e3, "c": hits["calo"].astype(np.uint32), "fillNum": np.arange(N_ROWS) // 100}
    options = dict(time_branch="t", energy_branch="E", calo_branch="c", time_unit="ct", energy_unit="GeV", selection="(E > 1.7) & (c != 3)", fill_branch="fillNum", step_size=500)
    a = read_events(write_tree(tmp_path / "ttree.root", branches, tree="run/hits"), **options)
    b = read_events(_write_rntuple(tmp_path / "rntuple.root", branches, tree="run/hits"), **options)
    keep = (hits["energy_mev"] > 1700.0) & (hits["calo"] != 3)
    assert a.n_entries == b.n_entries == np.count_nonzero(keep)
    for name in ("time_ns", "energy_mev", "calo", "fill"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_allclose(b.time_ns, hits["time_ns"][keep], rtol=1e-15)
