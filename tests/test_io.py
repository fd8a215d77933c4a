"""Atomic ROOT/JSON writing and provenance (ringsim.io), checked by reading back with plain uproot."""

import json
import os

import numpy as np
import pytest
import uproot

from ringsim.errors import ConfigError, InputError
from ringsim.io import BASKET_ROWS, EventWriter, atomic_output, read_provenance, write_json_atomic

BRANCHES = {"time_ns": np.float64, "energy_mev": np.float32, "calo": np.int16}
PROVENANCE = {"ringsim_version": "0.1.0", "seed": 12345, "config": {"ring": "fnal"}, "blinded": True}


def make_events(n_rows, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "time_ns": rng.uniform(0.0, 7.0e5, n_rows),
        "energy_mev": rng.uniform(0.0, 3100.0, n_rows).astype(np.float32),
        "calo": rng.integers(0, 24, n_rows).astype(np.int16),
    }


def write_events(path, events, chunk_sizes, **options):
    """Write ``events`` with one extend() per chunk size; returns the writer."""
    with EventWriter(path, branches=BRANCHES, provenance=PROVENANCE, **options) as writer:
        start = 0
        for size in chunk_sizes:
            writer.extend({name: column[start : start + size] for name, column in events.items()})
            start += size
    assert start == len(events["time_ns"])
    return writer


def test_round_trip_with_chunks_smaller_and_larger_than_a_basket(tmp_path):
    chunk_sizes = [7, 40_000, 2 * BASKET_ROWS + 13, 1, 60_000]
    events = make_events(sum(chunk_sizes))
    path = tmp_path / "events.root"
    writer = write_events(path, events, chunk_sizes)
    assert writer.n_entries == sum(chunk_sizes)
    with uproot.open(path) as root_file:
        arrays = root_file["events"].arrays(library="np")
    assert set(arrays) == set(BRANCHES)
    for name, column in events.items():
        assert arrays[name].dtype == np.dtype(BRANCHES[name])
        np.testing.assert_array_equal(arrays[name], column)


@pytest.mark.parametrize("name, algorithm", [("zstd", "ZSTD"), ("zlib", "ZLIB"), ("lz4", "LZ4")])
def test_files_are_compressed_as_asked_and_read_back_exactly(tmp_path, name, algorithm):
    events = make_events(50_000, seed=2)
    path = tmp_path / f"{name}.root"
    write_events(path, events, [50_000], compression=name)
    with uproot.open(path) as root_file:
        assert type(root_file.file.compression).__name__ == algorithm and root_file.file.compression.level == 1
        arrays = root_file["events"].arrays(library="np")
    for column, values in events.items():
        np.testing.assert_array_equal(arrays[column], values)


def test_an_unknown_compression_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ConfigError, match="compression: expected one of zstd, zlib, lz4"):
        EventWriter(tmp_path / "x.root", branches=BRANCHES, provenance=PROVENANCE, compression="gzip")
    assert not (tmp_path / "x.root").exists()


@pytest.mark.parametrize(
    "chunk_sizes",
    [[3], [999, 1], [250] * 9, [1, 5_000, 2], [1_999, 1_999, 3]],
    ids=["one-short", "exactly-one-basket", "many-small", "one-large", "mixed"],
)
def test_every_basket_holds_at_least_basket_rows(tmp_path, chunk_sizes):
    basket_rows = 1_000
    n_rows = sum(chunk_sizes)
    events = make_events(n_rows, seed=1)
    path = tmp_path / "baskets.root"
    write_events(path, events, chunk_sizes, basket_rows=basket_rows)
    with uproot.open(path) as root_file:
        branch = root_file["events"]["time_ns"]
        sizes = [int(stop - start) for start, stop in map(branch.basket_entry_start_stop, range(branch.num_baskets))]
        np.testing.assert_array_equal(branch.array(library="np"), events["time_ns"])
    assert sum(sizes) == n_rows
    assert all(size >= min(basket_rows, n_rows) for size in sizes)
    assert len(sizes) == max(n_rows // basket_rows, 1)


def test_tree_in_a_directory_and_empty_tree(tmp_path):
    path = tmp_path / "empty.root"
    with EventWriter(path, tree="run7/events", branches={"time_ns": "f8"}, provenance={"seed": 1}):
        pass
    with uproot.open(path) as root_file:
        assert root_file.classnames(cycle=False)["run7/events"] == "TTree"
        assert root_file["run7/events"].num_entries == 0
    assert read_provenance(path) == {"seed": 1}


def test_provenance_round_trips_with_numpy_values(tmp_path):
    path = tmp_path / "prov.root"
    provenance = dict(PROVENANCE, seed=np.int64(7), omega=np.float64(1.5), window=np.array([1.0, 2.0]))
    with EventWriter(path, branches=BRANCHES, provenance=provenance) as writer:
        writer.extend(make_events(10))
    expected = dict(PROVENANCE, seed=7, omega=1.5, window=[1.0, 2.0])
    assert read_provenance(path) == expected
    with uproot.open(path) as root_file:
        assert root_file.classnames(cycle=False)["provenance"] == "TObjString"
        assert json.loads(str(root_file["provenance"])) == expected


def test_read_provenance_rejects_files_without_json_provenance(tmp_path):
    missing = tmp_path / "plain.root"
    not_json = tmp_path / "text.root"
    with uproot.recreate(missing) as root_file:
        root_file["note"] = "hello"
    with uproot.recreate(not_json) as root_file:
        root_file["provenance"] = "seed=3"
    for path, words in [(missing, "no 'provenance'"), (not_json, "not a JSON object")]:
        with pytest.raises(InputError, match=words) as info:
            read_provenance(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(InputError, match="no such file"):
        read_provenance(tmp_path / "absent.root")


def test_exception_inside_with_leaves_no_file_and_no_temporary(tmp_path):
    path = tmp_path / "crash.root"
    with pytest.raises(RuntimeError, match="simulated crash"):
        with EventWriter(path, branches=BRANCHES, provenance=PROVENANCE) as writer:
            writer.extend(make_events(3 * BASKET_ROWS))
            assert sorted(os.listdir(tmp_path)) == [f".crash.root.tmp-{os.getpid()}"]
            raise RuntimeError("simulated crash")
    assert os.listdir(tmp_path) == []


def test_refuses_to_overwrite_before_any_work(tmp_path):
    path = tmp_path / "keep.root"
    path.write_bytes(b"precious")
    with pytest.raises(InputError, match="exists; pass --force/overwrite") as info:
        EventWriter(path, branches=BRANCHES, provenance=PROVENANCE)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert path.read_bytes() == b"precious"
    assert os.listdir(tmp_path) == ["keep.root"]

    write_events(path, make_events(5), [5], overwrite=True)
    with uproot.open(path) as root_file:
        assert root_file["events"].num_entries == 5


@pytest.mark.parametrize(
    "arrays, words",
    [
        ({"time_ns": np.zeros(3)}, "expected exactly"),
        (dict(make_events(3), calo=np.zeros(4, np.int16)), "different lengths"),
        (dict(make_events(3), calo=np.full(3, 2.5)), "got float64 values; expected int16"),
        (dict(make_events(3), time_ns=np.zeros((3, 2))), "expected 1-D"),
    ],
    ids=["missing-branch", "lengths", "float-into-int", "2d"],
)
def test_extend_rejects_bad_arrays_and_leaves_no_file(tmp_path, arrays, words):
    path = tmp_path / "bad.root"
    with pytest.raises(InputError, match=words):
        with EventWriter(path, branches=BRANCHES, provenance=PROVENANCE) as writer:
            writer.extend(arrays)
    assert os.listdir(tmp_path) == []


def test_bad_writer_options(tmp_path):
    with pytest.raises(ConfigError, match="branch 'x' has type"):
        EventWriter(tmp_path / "a.root", branches={"x": "U10"}, provenance={})
    with pytest.raises(ConfigError, match="no branches"):
        EventWriter(tmp_path / "a.root", branches={}, provenance={})
    with pytest.raises(InputError, match="cannot be written as JSON"):
        EventWriter(tmp_path / "a.root", branches=BRANCHES, provenance={"f": object()})
    with pytest.raises(InputError, match="does not exist"):
        EventWriter(tmp_path / "no" / "a.root", branches=BRANCHES, provenance={})
    assert os.listdir(tmp_path) == []


def test_write_json_atomic(tmp_path):
    path = tmp_path / "fit.json"
    result = {"omega_a": np.float64(1.439), "ndf": np.int64(4), "params": np.array([1.0, 2.5]), "blinded": True}
    write_json_atomic(path, result)
    assert json.loads(path.read_text()) == {"omega_a": 1.439, "ndf": 4, "params": [1.0, 2.5], "blinded": True}

    write_json_atomic(path, {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1}
    with pytest.raises(InputError, match="exists"):
        write_json_atomic(path, {"a": 2}, overwrite=False)
    with pytest.raises(InputError, match="cannot be written as JSON"):
        write_json_atomic(path, {"a": {1, 2}})
    assert json.loads(path.read_text()) == {"a": 1}
    assert os.listdir(tmp_path) == ["fit.json"]


def test_atomic_output_keeps_the_old_file_on_error(tmp_path):
    path = tmp_path / "plot.png"
    path.write_bytes(b"old")
    with pytest.raises(ValueError, match="boom"):
        with atomic_output(path) as tmp:
            assert tmp.parent == tmp_path and tmp.name.startswith(".plot.png.tmp-")
            tmp.write_bytes(b"half")
            raise ValueError("boom")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["plot.png"]

    with atomic_output(path) as tmp:
        tmp.write_bytes(b"new")
        assert path.read_bytes() == b"old"
    assert path.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["plot.png"]


def test_outputs_written_together_are_all_or_none(tmp_path):
    from ringsim.io import all_or_none

    made, existing, folder = tmp_path / "made.tex", tmp_path / "existing.json", tmp_path / "run"
    existing.write_text("mine")
    with pytest.raises(OSError):
        with all_or_none(made, existing, folder, None):
            made.write_text("half")
            folder.mkdir()
            (folder / "events.root").write_bytes(b"x")
            raise OSError(28, "No space left on device")
    assert not made.exists() and not folder.exists() and existing.read_text() == "mine"  # what was there before is kept
