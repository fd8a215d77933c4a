"""ROOT and JSON output that never leaves a partial file, provenance, and guarded ROOT opening.

Every writer here goes through :func:`atomic_output`: the data are written to a temporary file
``.NAME.tmp-<pid>`` in the target's directory and renamed onto the target only when writing
succeeded, so an interrupted run leaves either the old file or the complete new one. Event files
are TTrees written with uproot's ``mktree``/``extend`` in baskets of at least
:data:`BASKET_ROWS` rows, with the provenance stored next to the tree as a JSON ``TObjString``
named ``"provenance"``. Times are stored in ns and energies in MeV (the branch names say so).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import zlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import TracebackType

import numpy as np
import uproot

from ringsim.errors import ConfigError, InputError, RingsimError

BASKET_ROWS = 100_000
PROVENANCE_KEY = "provenance"

# What uproot raises on files that are not ROOT, truncated or corrupt (found by cutting and
# overwriting bytes of valid files): short reads, bad offsets, failed decompression, bad keys.
_UPROOT_READ_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    NotImplementedError,
    struct.error,
    zlib.error,
    uproot.deserialization.DeserializationError,
)

# Bytes a run file takes per requested positron or muon, with its kept parts (×2) while it is written:
# measured ≈ 60 B per positron (fnal fast mode, zstd, 5e4 positrons: 3.0 MB) and ≈ 160 B with --truth.
RUN_BYTES_PER_COUNT = 2 * 64
RUN_BYTES_PER_COUNT_TRUTH = 2 * 192


def _one_line(exc: BaseException, limit: int = 120) -> str:
    """Return the first line of an exception's message, shortened to ``limit`` characters."""
    lines = str(exc).strip().splitlines()
    text = lines[0].strip().rstrip(",") if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _json_default(obj: object) -> object:
    """Make numpy scalars and arrays and paths JSON-serialisable (``json.dumps`` ``default``)."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"object of type {type(obj).__name__} is not JSON-serialisable")


def _to_json(obj: object, what: str, indent: int | None = None) -> str:
    """Serialise ``obj`` to JSON text; InputError naming ``what`` if it cannot be."""
    try:
        return json.dumps(obj, indent=indent, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what}: cannot be written as JSON ({_one_line(exc)})") from None


def check_output_path(path: str | os.PathLike, overwrite: bool) -> Path:
    """Check that ``path`` can be written: its directory exists, and it is absent unless ``overwrite``.

    Returns
    -------
    Path
        The target path.

    Raises
    ------
    InputError
        If the directory is missing, ``path`` is a directory, or ``path`` exists and ``overwrite``
        is False.
    """
    target = Path(path)
    if not target.parent.is_dir():
        raise InputError(f"{target}: directory {target.parent} does not exist")
    if target.is_dir():
        raise InputError(f"{target}: is a directory, expected a file name")
    if target.exists() and not overwrite:
        raise InputError(f"{target}: file exists; pass --force/overwrite to replace it")
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise InputError(f"{target}: directory {target.parent} is not writable")
    return target


def _same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file (after links; an absent path by its resolved name)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def check_distinct_paths(outputs: Mapping[str, str | os.PathLike | None], inputs: Mapping[str, str | os.PathLike | None]) -> None:
    """Refuse an output path that is one of the inputs or another output, before any work.

    Parameters
    ----------
    outputs, inputs
        Option name (``--plot``, ``FILE.root``) → path; ``None`` entries are ignored.

    Raises
    ------
    InputError
        Naming the path and the two options that share it.
    """
    given = [(name, p) for name, p in outputs.items() if p]
    for name, path in given:
        for in_name, in_path in inputs.items():
            if in_path and _same_file(path, in_path):
                raise InputError(f"{path}: {name} would overwrite the input {in_name}; choose another output path")
    for i, (name, path) in enumerate(given):
        for other, other_path in given[i + 1 :]:
            if _same_file(path, other_path):
                raise InputError(f"{path}: given to both {name} and {other}; each output needs its own path")


def check_free_space(path: str | os.PathLike, n_bytes: float, what: str) -> None:
    """Refuse, before any work, an output of about ``n_bytes`` that the file system of ``path`` cannot hold.

    Raises
    ------
    InputError
        Naming ``path``, ``what`` needs it and the free space.
    """
    folder = Path(path).parent if not Path(path).is_dir() else Path(path)
    free = shutil.disk_usage(folder if folder.is_dir() else ".").free
    if n_bytes > free:
        raise InputError(f"{path}: {what} need about {n_bytes / 1e9:.3g} GB, the file system holds {free / 1e9:.3g} GB free")


@contextmanager
def atomic_output(path: str | os.PathLike, overwrite: bool = True, tmp_dir: str | os.PathLike | None = None) -> Iterator[Path]:
    """Write a file through a temporary name that is renamed onto ``path`` only on success.

    Parameters
    ----------
    path
        Final file name; its directory must exist.
    overwrite
        Replace an existing ``path``; if False an existing file raises InputError before the
        block runs.
    tmp_dir
        Folder of the temporary file, on the same file system as ``path`` (default: beside it).

    Yields
    ------
    Path
        The temporary file (``.NAME.tmp-<pid>``) for the block to write. On an exception in the
        block it is deleted and ``path`` is left untouched.
    """
    target = check_output_path(path, overwrite)
    tmp = (target.parent if tmp_dir is None else Path(tmp_dir)) / f".{target.name}.tmp-{os.getpid()}"
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"{target}: cannot write ({exc.strerror or _one_line(exc)})") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | os.PathLike, obj: object, overwrite: bool = True) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically (numpy scalars and arrays allowed)."""
    text = _to_json(obj, str(path), indent=2)
    with atomic_output(path, overwrite=overwrite) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")


@contextmanager
def open_root(path: str | os.PathLike) -> Iterator[uproot.ReadOnlyDirectory]:
    """Open a ROOT file for reading; any failure to read it becomes a one-line InputError.

    Errors uproot raises inside the block (truncated baskets, corrupt keys) are re-raised as
    ``InputError`` naming the file, without the traceback chain; ringsim errors pass through.
    """
    source = Path(path)
    if not source.exists():
        raise InputError(f"{source}: no such file")
    if source.is_dir():
        raise InputError(f"{source}: is a directory, expected a ROOT file")
    if source.stat().st_size == 0:
        raise InputError(f"{source}: empty file (0 bytes), expected a ROOT file")
    try:
        with open(source, "rb") as handle:
            signature = handle.read(4)
    except OSError as exc:
        raise InputError(f"{source}: cannot be read ({exc.strerror or _one_line(exc)})") from None
    if signature != b"root":
        raise InputError(f"{source}: not a ROOT file (it does not start with the ROOT signature)")
    try:
        root_file = uproot.open(source)
    except _UPROOT_READ_ERRORS as exc:
        raise _unreadable(source, exc) from None
    with root_file:
        try:
            yield root_file
        except _UPROOT_READ_ERRORS as exc:
            raise _unreadable(source, exc) from None


def _unreadable(source: Path, exc: BaseException) -> InputError:
    """Return the error for a ROOT file that uproot failed to read."""
    return InputError(f"{source}: unreadable ROOT file, truncated or corrupt ({_one_line(exc)})")


def provenance_of(root_file: uproot.ReadOnlyDirectory, path: str | os.PathLike) -> dict | None:
    """Return the provenance dict stored in an open ROOT file, or None if it holds no ``"provenance"``.

    Raises
    ------
    InputError
        If ``"provenance"`` is not a TObjString holding a JSON object.
    """
    classnames = root_file.classnames(recursive=False, cycle=False)
    if PROVENANCE_KEY not in classnames:
        return None
    if classnames[PROVENANCE_KEY] != "TObjString":
        found = classnames[PROVENANCE_KEY]
        raise InputError(f"{path}: '{PROVENANCE_KEY}' is a {found}, expected a JSON TObjString")
    try:
        provenance = json.loads(str(root_file[PROVENANCE_KEY]))
    except json.JSONDecodeError:
        provenance = None
    if not isinstance(provenance, dict):
        raise InputError(f"{path}: '{PROVENANCE_KEY}' is not a JSON object")
    return provenance


def read_provenance(path: str | os.PathLike) -> dict:
    """Return the provenance dict written by :class:`EventWriter` into the ROOT file ``path``.

    Raises
    ------
    InputError
        If the file cannot be read, has no ``"provenance"``, or it is not a JSON object.
    """
    with open_root(path) as root_file:
        provenance = provenance_of(root_file, path)
    if provenance is None:
        raise InputError(f"{path}: no '{PROVENANCE_KEY}' object (file not written by ringsim?)")
    return provenance


def _branch_dtypes(branches: Mapping[str, object], path: Path) -> dict[str, np.dtype]:
    """Validate the branch specification: names to numeric or boolean scalar numpy dtypes."""
    if not branches:
        raise ConfigError(f"{path}: no branches given; expected a dict of branch name to numpy dtype")
    dtypes = {}
    for name, spec in branches.items():
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{path}: branch name {name!r} must be a non-empty string")
        try:
            dtype = np.dtype(spec)
        except TypeError:
            dtype = None
        if dtype is None or dtype.kind not in "biuf" or dtype.shape != ():
            raise ConfigError(f"{path}: branch '{name}' has type {spec!r}; expected a numeric or bool numpy dtype")
        dtypes[name] = dtype
    return dtypes


# compression of written files by name; ZSTD level 1 (ROOT ≥ 6.20 reads it) wrote 4 × 10⁶ positrons
# 6 times faster than ZLIB level 1, uproot's default, into a file of the same size
COMPRESSIONS = {"zstd": uproot.ZSTD(1), "zlib": uproot.ZLIB(1), "lz4": uproot.LZ4(1)}


def compression_setting(name: str) -> uproot.compression.Compression:
    """Return the uproot compression of a name of :data:`COMPRESSIONS`; ConfigError for another."""
    if name not in COMPRESSIONS:
        raise ConfigError(f"compression: expected one of {', '.join(COMPRESSIONS)}, got {name!r}")
    return COMPRESSIONS[name]


class EventWriter:
    """Write one TTree of per-event branches to a ROOT file, atomically, with provenance.

    Use as a context manager; rows passed to :meth:`extend` are buffered and written in baskets
    of at least ``basket_rows`` rows (fewer only if the whole tree is shorter). On a clean exit
    the remaining rows and the provenance (JSON ``TObjString`` ``"provenance"``) are written and
    the temporary file is renamed onto ``path``; on an exception the temporary file is deleted.

    Parameters
    ----------
    path
        Output ROOT file.
    tree
        Tree name, possibly inside directories (``"run1/events"``).
    branches
        Branch name to numpy dtype, e.g. ``{"time_ns": np.float64, "energy_mev": np.float32}``.
    provenance
        JSON-serialisable description of how the data were made (version, config, seed, …).
    overwrite
        Replace an existing ``path``; otherwise an existing file raises InputError at once.
    basket_rows
        Minimum number of rows per written basket.
    compression
        ``"zstd"`` (default), ``"zlib"`` (for ROOT older than 6.20) or ``"lz4"``, see :data:`COMPRESSIONS`.
    tmp_dir
        Folder of the temporary file (see :func:`atomic_output`).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        tree: str = "events",
        *,
        branches: Mapping[str, object],
        provenance: Mapping[str, object],
        overwrite: bool = False,
        basket_rows: int = BASKET_ROWS,
        compression: str = "zstd",
        tmp_dir: str | os.PathLike | None = None,
    ) -> None:
        self.path = check_output_path(path, overwrite)
        self.compression = compression_setting(compression)
        if not isinstance(tree, str) or tree.strip("/") in ("", PROVENANCE_KEY):
            raise ConfigError(f"{self.path}: tree name {tree!r} must be a non-empty string other than '{PROVENANCE_KEY}'")
        if not isinstance(provenance, Mapping):
            raise ConfigError(f"{self.path}: provenance must be a dict, got {type(provenance).__name__}")
        if not isinstance(basket_rows, int | np.integer) or basket_rows < 1:
            raise ConfigError(f"{self.path}: basket_rows must be a positive integer, got {basket_rows!r}")
        self.tree = tree.strip("/")
        self.dtypes = _branch_dtypes(branches, self.path)
        self.basket_rows = int(basket_rows)
        self.n_entries = 0
        self._overwrite = overwrite
        self._tmp_dir = tmp_dir
        self.provenance = dict(provenance)  # may be completed before the writer closes
        _to_json(self.provenance, f"{self.path}: provenance")  # fail early on what cannot be stored
        self._buffer: dict[str, list[np.ndarray]] = {name: [] for name in self.dtypes}
        self._n_buffered = 0
        self._stack: ExitStack | None = None
        self._file = None
        self._tree = None

    def __enter__(self) -> EventWriter:
        """Open the temporary file the run is written to."""
        if self._stack is not None:
            raise RingsimError(f"{self.path}: EventWriter is already open")
        with ExitStack() as stack:
            tmp = stack.enter_context(atomic_output(self.path, overwrite=self._overwrite, tmp_dir=self._tmp_dir))
            try:
                self._file = stack.enter_context(uproot.recreate(tmp, compression=self.compression))
            except OSError as exc:
                reason = exc.strerror or _one_line(exc)
                raise InputError(f"{self.path}: cannot create output file ({reason})") from None
            self._tree = self._file.mktree(self.tree, self.dtypes)
            self._stack = stack.pop_all()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Rename the finished file into place, or remove the temporary after an error."""
        stack, self._stack = self._stack, None
        try:
            if exc_type is not None:
                stack.__exit__(exc_type, exc, tb)
                return
            with stack:
                self._write_baskets(final=True)
                self._file[PROVENANCE_KEY] = _to_json(self.provenance, f"{self.path}: provenance")
        finally:
            self._file = self._tree = None

    def extend(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Append rows: one 1-D array per declared branch, all of the same length.

        Values are cast to the declared dtypes; a cast across kinds (float into an int branch)
        raises InputError.
        """
        if self._stack is None:
            raise RingsimError(f"{self.path}: EventWriter.extend called outside its with block")
        if set(arrays) != set(self.dtypes):
            raise InputError(f"{self.path}: extend got branches {sorted(arrays)}; expected exactly {sorted(self.dtypes)}")
        columns = {}
        for name, dtype in self.dtypes.items():
            column = np.asarray(arrays[name])
            if column.ndim != 1:
                raise InputError(f"{self.path}: branch '{name}' got a {column.ndim}-D array; expected 1-D")
            if not np.can_cast(column.dtype, dtype, casting="same_kind"):
                raise InputError(f"{self.path}: branch '{name}' got {column.dtype} values; expected {dtype}")
            columns[name] = np.array(column, dtype=dtype)
        lengths = {len(column) for column in columns.values()}
        if len(lengths) != 1:
            raise InputError(f"{self.path}: extend got arrays of different lengths {sorted(lengths)}")
        for name, column in columns.items():
            self._buffer[name].append(column)
        n_rows = lengths.pop()
        self._n_buffered += n_rows
        self.n_entries += n_rows
        if self._n_buffered >= 2 * self.basket_rows:
            self._write_baskets(final=False)

    def write_tree(self, name: str, arrays: Mapping[str, np.ndarray]) -> None:
        """Write a further, complete tree (e.g. lost muons) in one go, next to the event tree."""
        if self._stack is None:
            raise RingsimError(f"{self.path}: EventWriter.write_tree called outside its with block")
        columns = {key: np.asarray(value) for key, value in arrays.items()}
        tree = self._file.mktree(name, {key: column.dtype for key, column in columns.items()})
        if next(iter(columns.values())).size:
            tree.extend(columns)

    def write_tree_in_chunks(self, name: str, branches: Mapping[str, object], chunks: Iterable[Mapping[str, np.ndarray]]) -> None:
        """Write a further tree chunk by chunk (one basket per non-empty chunk), next to the event tree."""
        if self._stack is None:
            raise RingsimError(f"{self.path}: EventWriter.write_tree_in_chunks called outside its with block")
        dtypes = _branch_dtypes(branches, self.path)
        tree = self._file.mktree(name, dtypes)
        for chunk in chunks:
            if len(next(iter(chunk.values()))):
                tree.extend({key: np.asarray(chunk[key], dtype=dtype) for key, dtype in dtypes.items()})

    def write_histogram(self, name: str, counts: np.ndarray, *edges: np.ndarray) -> None:
        """Write a TH1 (one edge array) or TH2 (two) of counts."""
        if self._stack is None:
            raise RingsimError(f"{self.path}: EventWriter.write_histogram called outside its with block")
        self._file[name] = (np.asarray(counts, dtype=np.float64), *edges)

    def _write_baskets(self, final: bool) -> None:
        """Write buffered rows in baskets of ``basket_rows`` rows.

        Unless ``final``, at least ``basket_rows`` rows stay buffered, so that the rows left at
        the end join the last basket: every basket then holds at least ``basket_rows`` rows
        (fewer only if the whole tree is shorter).
        """
        n_rows = self._n_buffered
        n_baskets = max(n_rows // self.basket_rows, 1) if final else n_rows // self.basket_rows - 1
        if n_rows == 0 or n_baskets < 1:
            return
        written = n_rows if final else n_baskets * self.basket_rows
        bounds = [i * self.basket_rows for i in range(n_baskets)] + [written]
        columns = {name: np.concatenate(parts) for name, parts in self._buffer.items()}
        for start, stop in zip(bounds[:-1], bounds[1:]):
            self._tree.extend({name: column[start:stop] for name, column in columns.items()})
        left = n_rows > written
        self._buffer = {name: [column[written:].copy()] if left else [] for name, column in columns.items()}
        self._n_buffered = n_rows - written


@contextmanager
def all_or_none(*paths: str | os.PathLike | None) -> Iterator[None]:
    """Write several outputs as one: if the body fails, remove those of ``paths`` it created (files or folders)."""
    fresh = [Path(p) for p in paths if p is not None and not Path(p).exists()]
    try:
        yield
    except BaseException:
        for path in fresh:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        raise
