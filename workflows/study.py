"""Systematic studies on dask.distributed: the ω_a shift (or C_e, C_p) versus one parameter.

A study varies one configuration key (``beam.momentum_spread``, ``analysis.fit_start_us``, an
element of a list key such as ``perturbations.normal_ppm[1]``) over a list of values and repeats
every point with K seeds. Nominal and varied samples share each seed, so their statistical
fluctuations are correlated and partly cancel in the difference (how much depends on how far the
change moves each muon's random history; truth observables such as C_e keep almost all of the
correlation). For a key of the ``analysis`` section the simulated sample is identical for every
point (only the analysis changes), so the varied fit sees a subset or a re-binning of the nominal
data.

One task is one (point, seed) simulate-and-fit of ``positrons`` recorded positrons: about 0.5 s
per 1e5 on one core in fast mode, against ~20 ms of scheduling and bookkeeping per task
(``benchmarks/bench_scan.py``), so tasks of 1e5–1e6 positrons keep the overhead at a few per cent
or less.

Results are written as they arrive, one atomic JSON per task in ``DIR/tasks/``; a rerun on the same
folder skips finished tasks, so an interrupted study resumes where it stopped, and a study with
more values or seeds on the same base extends it. The engine is a ``dask.distributed`` Client: a
LocalCluster of single-threaded worker processes by default, or an existing scheduler by address.
Tasks whose worker dies are rescheduled elsewhere by the scheduler; ``retries`` re-runs tasks that
raise. A worker plugin warms the numba kernels once per worker (including restarted workers).

Summary (``DIR/summary.json``, key ``points``): per point the mean shift over seeds in ppb and its
error from the spread over seeds (K ≥ 2), the nested-subset band √|σ_v² − σ_0²|/√K (the allowed
statistical spread of a fit on a subset of the nominal data, e.g. a later fit start), and a
polynomial sensitivity shift = Σ_k c_k (v − v_0)^k fitted by weighted least squares whose errors
come from the per-seed fits, which carries the correlation through the shared nominal sample.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import math
import os
import re
import shutil
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path

import dask
import numpy as np
from distributed import Client, LocalCluster, as_completed
from distributed.diagnostics.plugin import WorkerPlugin

from ringsim import __version__
from ringsim.config import RINGS, SimConfig, load_config
from ringsim.errors import ConfigError, InputError, RingsimError
from ringsim.io import atomic_output, write_json_atomic
from ringsim.progress import progress_bar

OBSERVABLES = ("omega_a", "C_e", "C_p")
MODES = ("fast", "track")
STUDY_FILE = "study.json"
SUMMARY_FILE = "summary.json"
TABLE_FILE = "summary.txt"
PLOT_FILE = "shift.png"
TASKS_DIR = "tasks"
_KEY = re.compile(r"^([a-z_]+)\.([a-z_0-9]+)(?:\[(\d+)\])?$")


@dataclass(frozen=True)
class Study:
    """A one-parameter systematic study (what to vary, how often, how big each sample is).

    Attributes
    ----------
    parameter : configuration key ``section.key`` or ``section.key[i]`` (element i of a list key).
    values : the parameter values (units of the key), the nominal is added if missing.
    nominal : the reference value; None takes the base configuration's value.
    seeds, first_seed : K seeds ``first_seed … first_seed + K − 1``, shared by all points.
    positrons : recorded positrons per task (1e5–1e6 keeps scheduling overhead at the per-mille level).
    mode : ``fast`` or ``track`` simulation.
    observable : ``omega_a`` (relative ω_a shift), ``C_e`` or ``C_p`` (truth corrections of the fitted positrons).
    degree : 1 or 2, degree of the sensitivity polynomial in (v − nominal).
    ring, config_path, overrides : base configuration (preset, TOML file, ``section.key=value``).
    """

    parameter: str
    values: tuple[float, ...]
    nominal: float | None = None
    seeds: int = 4
    first_seed: int = 1
    positrons: int = 500_000
    mode: str = "fast"
    observable: str = "omega_a"
    degree: int = 1
    ring: str = "fnal"
    config_path: str | None = None
    overrides: tuple[str, ...] = ()
    name: str = "scan"
    description: str = ""

    def to_dict(self) -> dict:
        """Return the study's fields as a dict."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class PreparedStudy:
    """A validated study: every point's configuration, the seeds, and the identity used to resume."""

    study: Study
    nominal: float
    values: tuple[float, ...]  # sorted, unique, nominal included
    seeds: tuple[int, ...]
    configs: dict  # value → SimConfig
    identity: dict
    study_id: str

    @property
    def nested(self) -> bool:
        """True when only the analysis changes: every point fits the same simulated sample."""
        return self.study.parameter.startswith("analysis.")

    def tasks(self) -> list[tuple[float, int]]:
        """Return the (parameter value, seed) of every task, all values of the first seed first."""
        return [(v, s) for s in self.seeds for v in self.values]


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigError(f"study.{name}: expected an integer ≥ {low}, got {value!r}")
    return int(value)


def _number(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"study.{name}: expected a finite number, got {value!r}")
    return float(value) + 0.0  # −0.0 → 0.0, so that file names are unique


def _literal(value: float) -> str:
    """TOML literal of a parameter value (integral values without a point, for integer keys)."""
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def _base_value(cfg: SimConfig, parameter: str) -> float:
    section, key, index = _split_key(parameter)
    if not hasattr(cfg, section) or key not in {f.name for f in fields(getattr(cfg, section))}:
        raise ConfigError(f"study.parameter: unknown configuration key {section}.{key}")
    value = getattr(getattr(cfg, section), key)
    if index is not None:
        if not isinstance(value, tuple):
            raise ConfigError(f"study.parameter: {section}.{key} is not a list; drop the [{index}]")
        return float(value[index]) if index < len(value) else 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"study.parameter: {section}.{key} is not a number (got {value!r}); only numeric keys can be scanned")
    return float(value)


def _split_key(parameter: str) -> tuple[str, str, int | None]:
    m = _KEY.match(parameter)
    if not m:
        raise ConfigError(f"study.parameter: expected section.key or section.key[i], got {parameter!r}")
    return m.group(1), m.group(2), None if m.group(3) is None else int(m.group(3))


def parameter_override(base: SimConfig, parameter: str, value: float) -> str:
    """Return the ``section.key=value`` override that sets ``parameter`` to ``value`` on ``base``."""
    section, key, index = _split_key(parameter)
    if index is None:
        return f"{section}.{key}={_literal(value)}"
    items = list(getattr(getattr(base, section), key))
    items += [0.0] * (index + 1 - len(items))
    items[index] = value
    return f"{section}.{key}=[{', '.join(repr(float(v)) for v in items)}]"


def prepare(study: Study) -> PreparedStudy:
    """Validate a study and build every point's configuration (ConfigError before any work)."""
    if study.ring not in RINGS:
        raise ConfigError(f"study.ring: expected one of {', '.join(RINGS)}, got {study.ring!r}")
    if study.mode not in MODES:
        raise ConfigError(f"study.mode: expected one of {', '.join(MODES)}, got {study.mode!r}")
    if study.observable not in OBSERVABLES:
        raise ConfigError(f"study.observable: expected one of {', '.join(OBSERVABLES)}, got {study.observable!r}")
    if study.degree not in (1, 2):
        raise ConfigError(f"study.degree: expected 1 or 2, got {study.degree!r}")
    n_seeds = _check_int("seeds", study.seeds, 1)
    first = _check_int("first_seed", study.first_seed, 0)
    _check_int("positrons", study.positrons, 1)
    if not study.values:
        raise ConfigError("study.values: expected at least one value")
    base = load_config(study.ring, study.config_path, list(study.overrides))
    nominal = _base_value(base, study.parameter) if study.nominal is None else _number("nominal", study.nominal)
    values = tuple(sorted({_number("values", v) for v in study.values} | {nominal}))
    if len(values) - 1 < study.degree:
        raise ConfigError(f"study.values: a degree-{study.degree} sensitivity needs at least {study.degree} value(s) besides the nominal {nominal!r}")
    configs = {v: load_config(study.ring, study.config_path, [*study.overrides, parameter_override(base, study.parameter, v)]) for v in values}
    identity = {
        "ringsim_version": __version__,
        "parameter": study.parameter,
        "nominal": nominal,
        "mode": study.mode,
        "positrons": int(study.positrons),
        "nominal_config": configs[nominal].to_dict(),
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    seeds = tuple(range(first, first + n_seeds))
    return PreparedStudy(study, nominal, values, seeds, configs, identity, digest)


def run_task(cfg: SimConfig, mode: str, n_positrons: int, seed: int, numba_threads: int | None = None) -> dict:
    """Simulate ``n_positrons`` with ``seed``, fit ω_a and compute C_e and C_p from the truth.

    The fit uses the configuration's analysis; C_e and C_p come from the truth of the fitted
    positrons. Runs on a worker.

    ``numba_threads`` sets the numba threads of the calling thread (None: numba's default, all
    cores); results do not depend on it.
    """
    import numba

    from analysis.wiggle import histogram_and_fit, ring_settings, select_energy
    from calibration.beam_corrections import electric_field_correction, pitch_correction
    from ringsim.rings import ring_kinematics
    from ringsim.simulate import generate

    if numba_threads is not None:
        numba.set_num_threads(numba_threads)
    start = time.perf_counter()
    names = ("time_ns", "energy_mev", "truth_x_e_m", "truth_y_m", "truth_mip")
    chunks = [block.positrons for block in generate(cfg, mode, n_positrons=int(n_positrons), seed=int(seed), progress=False)]
    ev = {k: np.concatenate([c[k] for c in chunks]) for k in names}
    settings = ring_settings(cfg)
    fit, _, _ = histogram_and_fit(select_energy(ev["time_ns"], ev["energy_mev"], settings), settings, seed=int(seed))
    t_us = ev["time_ns"] * 1e-3
    used = (ev["energy_mev"] >= settings.energy_min_mev) & (ev["energy_mev"] < settings.energy_max_mev) & (t_us >= fit.start_us) & (t_us < fit.end_us)
    used &= ev["truth_mip"] == 0  # the truth of positrons, not of the lost muons' clusters
    ring = cfg.ring
    if ring.focusing == "electric":
        c_e, c_e_err = electric_field_correction(ev["truth_x_e_m"][used], ring.field_index, ring.radius_m, ring_kinematics(cfg).beta)
    else:
        c_e, c_e_err = 0.0, 0.0
    c_p, c_p_err = pitch_correction(ev["truth_y_m"][used], ring.field_index, ring.radius_m)
    return {
        "omega_a": fit.omega_a,
        "omega_a_err": fit.omega_a_err,
        "C_e": c_e,
        "C_e_err": c_e_err,
        "C_p": c_p,
        "C_p_err": c_p_err,
        "n_fitted": fit.n_entries,
        "chi2": fit.chi2,
        "ndf": fit.ndf,
        "start_us": fit.start_us,
        "end_us": fit.end_us,
        "elapsed_s": time.perf_counter() - start,
    }


def _warm_kernels(cfg: SimConfig, mode: str) -> None:
    import analysis.wiggle  # noqa: F401  (iminuit and scipy imported once)
    from ringsim.simulate import generate

    count = {"n_positrons": 256} if mode == "fast" else {"n_muons": 4}
    for _ in generate(cfg, mode, seed=0, progress=False, **count):
        pass


class NumbaWarmup(WorkerPlugin):
    """Worker plugin: load (or compile) the numba kernels of ``mode`` once when a worker starts.

    Runs in a thread so that the worker keeps answering the scheduler; restarted workers get it too.
    Registered once per mode (idempotent), so later studies on the same cluster do not repeat it.
    """

    idempotent = True

    def __init__(self, cfg: SimConfig, mode: str):
        self.cfg = cfg
        self.mode = mode
        self.name = f"ringsim-numba-warmup-{mode}"

    async def setup(self, worker) -> None:
        """Compile the numba kernels of the mode on ``worker`` (in a thread, off its event loop)."""
        await asyncio.to_thread(_warm_kernels, self.cfg, self.mode)


def local_cluster(n_workers: int) -> LocalCluster:
    """Start a LocalCluster of ``n_workers`` worker processes with one task thread each.

    Dask's default ``MALLOC_TRIM_THRESHOLD_`` for worker processes is left unset: it pins glibc's
    mmap threshold, so that every large array is a fresh mmap, which slows a task by ~35 %.
    """
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
        return LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},  # metrics server on a free port, no dashboard
            silence_logs=logging.ERROR,
        )


def connect(scheduler: str) -> Client:
    """Connect a Client to an existing scheduler; InputError naming the address when it cannot connect."""
    try:
        return Client(scheduler, timeout="10s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(f"scheduler: cannot connect to {scheduler!r} ({' '.join(str(exc).split())[:120]})") from None


def _task_path(out: Path, value: float, seed: int) -> Path:
    return out / TASKS_DIR / f"v={value!r}_s={seed}.json"


def _check_folder(out: Path, prepared: PreparedStudy, force: bool) -> bool:
    """Return whether ``out`` holds this study to resume.

    InputError for another study's or a foreign folder without ``force`` (nothing is touched here).
    """
    if not out.parent.is_dir():
        raise InputError(f"{out}: parent folder {out.parent} does not exist")
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    if not out.exists() or not any(out.iterdir()) or force:
        return False
    record = out / STUDY_FILE
    if not record.is_file():
        raise InputError(f"{out}: folder is not empty and holds no study; pass --force to replace it")
    try:
        previous = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise InputError(f"{record}: unreadable study record; pass --force to replace the folder") from None
    if previous.get("id") != prepared.study_id:
        old = previous.get("identity", {})
        differ = sorted(k for k in prepared.identity if old.get(k) != prepared.identity[k])
        raise InputError(f"{out}: holds another study (differs in {', '.join(differ) or 'identity'}); pass --force to replace it")
    return True


def _init_folder(out: Path, prepared: PreparedStudy, resume: bool) -> None:
    if not resume and out.exists():
        shutil.rmtree(out)
    (out / TASKS_DIR).mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / STUDY_FILE, {"id": prepared.study_id, "study": prepared.study.to_dict(), "identity": prepared.identity})


def _load_finished(out: Path, prepared: PreparedStudy) -> dict[tuple[float, int], dict]:
    done = {}
    for value, seed in prepared.tasks():
        path = _task_path(out, value, seed)
        if path.is_file():
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                raise InputError(f"{path}: unreadable task result; delete it to run that task again") from None
            if record.get("study_id") != prepared.study_id:
                raise InputError(f"{path}: belongs to another study; delete it to run that task again")
            done[(value, seed)] = record
    return done


@contextmanager
def _client(client: Client | None, scheduler: str | None, n_workers: int | None, needed: bool) -> Iterator[Client | None]:
    """Return the caller's client, one connected to ``scheduler``, or a LocalCluster's; None if not ``needed``."""
    if client is not None or not needed:
        yield client
    elif scheduler is not None:
        with connect(scheduler) as remote:
            yield remote
    else:
        with local_cluster(n_workers or len(os.sched_getaffinity(0))) as cluster, Client(cluster) as local:
            yield local


def run_study(
    study: Study | PreparedStudy,
    out_dir: str | os.PathLike,
    *,
    client: Client | None = None,
    scheduler: str | None = None,
    n_workers: int | None = None,
    force: bool = False,
    retries: int = 2,
    numba_threads: int | None = 1,
    progress: bool | None = None,
    on_result: Callable[[float, int, dict], None] | None = None,
) -> dict:
    """Run (or resume) a study in ``out_dir`` and write its summary, table and plot.

    Parameters
    ----------
    client : an existing Client to use (left open); else ``scheduler`` (address) or a LocalCluster
        of ``n_workers`` processes (default: the usable cores).
    force : replace a folder that holds another study or other files (else InputError).
    retries : re-runs of a task that raised (a task whose worker died is rescheduled anyway).
    numba_threads : numba threads per task; 1 suits one single-threaded worker per core, None lets
        each task use all cores of its machine (one worker process per node).
    progress : tqdm bar over finished tasks; None shows it on a terminal outside CI.
    on_result : called as ``on_result(value, seed, record)`` after each task result is written.

    Returns
    -------
    dict
        The summary (see :func:`summarize`) with ``tasks`` counts, also written to ``summary.json``.
    """
    prepared = study if isinstance(study, PreparedStudy) else prepare(study)
    out = Path(out_dir)
    resume = _check_folder(out, prepared, force)
    done = _load_finished(out, prepared) if resume else {}
    todo = [task for task in prepared.tasks() if task not in done]
    with _client(client, scheduler, n_workers, bool(todo)) as engine:
        _init_folder(out, prepared, resume)
        if todo:
            _run_tasks(engine, prepared, out, todo, done, retries, numba_threads, progress, on_result)
    summary = summarize(prepared, done)
    summary["tasks"] = {"total": len(prepared.tasks()), "run": len(todo), "resumed": len(prepared.tasks()) - len(todo)}
    write_json_atomic(out / SUMMARY_FILE, summary)
    with atomic_output(out / TABLE_FILE) as tmp:
        tmp.write_text(summary_table(summary), encoding="utf-8")
    shift_plot(summary, out / PLOT_FILE)
    return summary


def _run_tasks(client, prepared, out, todo, done, retries, numba_threads, progress, on_result) -> None:
    client.register_plugin(NumbaWarmup(prepared.configs[prepared.nominal], prepared.study.mode))
    st = prepared.study
    futures = {}
    for value, seed in todo:
        key = f"ringsim-scan-{prepared.study_id}-{value!r}-s{seed}"
        fut = client.submit(run_task, prepared.configs[value], st.mode, st.positrons, seed, numba_threads, key=key, retries=retries, pure=False)
        futures[fut] = (value, seed)
    try:
        with progress_bar(total=len(futures), unit="tasks", enabled=progress) as bar:
            for fut in as_completed(futures):
                value, seed = futures[fut]
                record = _result(fut, st.parameter, value, seed)
                record.update(study_id=prepared.study_id, value=value, seed=seed)
                write_json_atomic(_task_path(out, value, seed), record)
                done[(value, seed)] = record
                bar.update(1)
                if on_result is not None:
                    on_result(value, seed, record)
    finally:
        client.cancel(list(futures))


def _result(fut, parameter: str, value: float, seed: int) -> dict:
    """Return the task's record; its RingsimError re-raised naming the point, a dead-worker failure as RingsimError."""
    from distributed.scheduler import KilledWorker

    try:
        return fut.result()
    except RingsimError as exc:
        raise type(exc)(f"scan point {parameter}={value!r}, seed {seed}: {exc}") from None
    except KilledWorker:
        raise RingsimError(f"scan point {parameter}={value!r}, seed {seed}: every worker that ran it died (out of memory?)") from None


def _observable(record: dict, name: str, nominal: dict) -> tuple[float, float]:
    """Value and error of an observable in ppb (ω_a relative to the nominal fit of the same seed)."""
    if name == "omega_a":
        return record["omega_a"] / nominal["omega_a"] * 1e9, record["omega_a_err"] / nominal["omega_a"] * 1e9
    return record[name] * 1e9, record[f"{name}_err"] * 1e9


def summarize(prepared: PreparedStudy, records: dict[tuple[float, int], dict]) -> dict:
    """Per-point shifts and errors over seeds, and the fitted sensitivity.

    The shift of seed s at value v is x(v, s) − x(v₀, s) in ppb (for ω_a relative to ω(v₀, s)).
    ``shift_err_ppb`` is the standard error over seeds (K ≥ 2); with one seed it is the nested band
    √|σ_v² − σ_0²| for an analysis key and √(σ_v² + σ_0²) otherwise. ``band_ppb`` is always the
    nested band √⟨|σ_v² − σ_0²|⟩/√K.
    """
    st = prepared.study
    seeds = [s for s in prepared.seeds if all((v, s) in records for v in prepared.values)]
    if not seeds:
        raise InputError("study: no seed has results for every point")
    k = len(seeds)
    points = []
    per_seed = {}
    for v in prepared.values:
        point = {"value": v, "n_seeds": k, "observables": {}}
        for name in OBSERVABLES:
            d, band2, indep2, mean = [], [], [], []
            for s in seeds:
                nom = records[(prepared.nominal, s)]
                x_v, e_v = _observable(records[(v, s)], name, nom)
                x_0, e_0 = _observable(nom, name, nom)
                d.append(x_v - x_0)
                band2.append(abs(e_v**2 - e_0**2))
                indep2.append(e_v**2 + e_0**2)
                mean.append(x_v)
            d = np.array(d)
            band = math.sqrt(np.mean(band2) / k)
            if v == prepared.nominal:
                err, method = 0.0, "nominal"
            elif k >= 2:
                err, method = float(np.std(d, ddof=1) / math.sqrt(k)), "seed spread"
            elif prepared.nested:
                err, method = band, "nested band"
            else:
                err, method = math.sqrt(np.mean(indep2) / k), "independent samples"
            entry = {"shift_ppb": float(d.mean()), "shift_err_ppb": err, "band_ppb": band, "error_method": method}
            if name != "omega_a":
                entry["mean_ppb"] = float(np.mean(mean))
            point["observables"][name] = entry
            if name == st.observable:
                per_seed[v] = d
        chosen = point["observables"][st.observable]
        point.update({key: chosen[key] for key in ("shift_ppb", "shift_err_ppb", "band_ppb", "error_method")})
        points.append(point)
    varied = [p for p in points if p["value"] != prepared.nominal]
    sensitivity = fit_sensitivity(
        np.array([p["value"] for p in varied]) - prepared.nominal,
        np.array([p["shift_ppb"] for p in varied]),
        np.array([p["shift_err_ppb"] for p in varied]),
        st.degree,
        np.array([per_seed[p["value"]] for p in varied]) if k >= 2 else None,
    )
    return {
        "name": st.name,
        "description": st.description,
        "parameter": st.parameter,
        "nominal": prepared.nominal,
        "observable": st.observable,
        "ring": st.ring,
        "mode": st.mode,
        "positrons_per_task": st.positrons,
        "seeds": list(seeds),
        "study_id": prepared.study_id,
        "points": points,
        "sensitivity": sensitivity,
    }


def fit_sensitivity(dx, shift, err, degree: int, per_seed: np.ndarray | None = None) -> dict:
    """Weighted least-squares fit shift = Σ_{k=1..degree} c_k dx^k (no constant: zero at the nominal).

    Parameters
    ----------
    dx, shift, err : offsets from the nominal (parameter units), shifts and errors (ppb).
    per_seed : optional (n_points, K) shifts of each seed; the same linear estimator applied to
        each seed gives K coefficient sets whose standard error replaces the WLS error (it carries
        the correlation between points that share the nominal sample).

    Returns
    -------
    dict
        ``coefficients_ppb`` (c_1 in ppb per unit, c_2 in ppb per unit²), ``errors_ppb``,
        ``chi2``/``ndf`` of the WLS fit, ``error_method``, and ``ppb_per_unit`` = c_1 with its error.
    """
    dx, shift, err = (np.asarray(a, dtype=float) for a in (dx, shift, err))
    design = np.stack([dx ** (p + 1) for p in range(degree)], axis=1)
    weights = 1.0 / err**2 if np.all(err > 0.0) else np.ones_like(err)
    normal = design.T @ (design * weights[:, None])
    estimator = np.linalg.solve(normal, design.T * weights)  # (degree, n_points)
    coef = estimator @ shift
    residual = shift - design @ coef
    if per_seed is not None:
        by_seed = estimator @ per_seed
        errors, method = by_seed.std(axis=1, ddof=1) / math.sqrt(per_seed.shape[1]), "seed spread of per-seed fits"
    else:
        errors, method = np.sqrt(np.diag(np.linalg.inv(normal))), "weighted least squares"
    return {
        "degree": degree,
        "model": "shift_ppb = " + " + ".join(f"c{p + 1}·(v − v0)^{p + 1}" for p in range(degree)),
        "coefficients_ppb": coef.tolist(),
        "errors_ppb": errors.tolist(),
        "ppb_per_unit": float(coef[0]),
        "ppb_per_unit_err": float(errors[0]),
        "chi2": float(np.sum(weights * residual**2)) if np.all(err > 0.0) else None,
        "ndf": int(dx.size - degree),
        "error_method": method,
    }


def summary_table(summary: dict) -> str:
    """Return the per-point table and the sensitivity as text."""
    s = summary["sensitivity"]
    lines = [
        f"study {summary['name']}: {summary['observable']} shift vs {summary['parameter']} (nominal {summary['nominal']!r}), "
        f"{len(summary['seeds'])} seed(s) × {summary['positrons_per_task']} positrons, {summary['ring']} {summary['mode']} mode",
        f"{'value':>14} {'shift [ppb]':>13} {'error [ppb]':>12} {'band [ppb]':>11} {'seeds':>6}",
    ]
    for p in summary["points"]:
        lines.append(f"{p['value']:>14.6g} {p['shift_ppb']:>13.2f} {p['shift_err_ppb']:>12.2f} {p['band_ppb']:>11.2f} {p['n_seeds']:>6d}")
    terms = ", ".join(f"c{k + 1} = {c:.6g} ± {e:.3g} ppb/unit^{k + 1}" for k, (c, e) in enumerate(zip(s["coefficients_ppb"], s["errors_ppb"])))
    chi2 = "n/a" if s["chi2"] is None else f"{s['chi2']:.2f}"
    flag = ""
    if s["chi2"] is not None and s["ndf"] > 0:
        from scipy.stats import chi2 as chi2_distribution

        p_value = float(chi2_distribution.sf(s["chi2"], s["ndf"]))
        flag = f", p = {p_value:.2g}" + (": the polynomial does not describe the shifts; raise --degree or check the points" if p_value < 1e-3 else "")
    lines.append(f"sensitivity ({s['model']}): {terms}; chi2/ndf = {chi2}/{s['ndf']} ({s['error_method']}{flag})")
    return "\n".join(lines) + "\n"


def shift_plot(summary: dict, path):
    """Draw the shift versus parameter with error bars and the fitted sensitivity curve (PNG, atomic); return the figure."""
    from matplotlib.figure import Figure

    v = np.array([p["value"] for p in summary["points"]])
    y = np.array([p["shift_ppb"] for p in summary["points"]])
    e = np.array([p["shift_err_ppb"] for p in summary["points"]])
    band = np.array([p["band_ppb"] for p in summary["points"]])
    s = summary["sensitivity"]
    grid = np.linspace(v.min(), v.max(), 200)
    curve = sum(c * (grid - summary["nominal"]) ** (k + 1) for k, c in enumerate(s["coefficients_ppb"]))
    fig = Figure(figsize=(7.0, 4.5))
    ax = fig.subplots()
    ax.fill_between(v, -band, band, color="0.85", label="nested-subset band ±√|σ²−σ₀²|/√K")
    ax.errorbar(v, y, yerr=e, fmt="o", color="black", ms=4, label="mean shift over seeds")
    ax.plot(grid, curve, "-", color="tab:red", label=s["model"])
    ax.axhline(0.0, color="0.5", lw=0.6)
    ax.set_xlabel(summary["parameter"])
    ax.set_ylabel(f"{summary['observable']} shift [ppb]")
    unit = summary["parameter"].rsplit(".", 1)[-1]
    terms = "; ".join(f"c{k + 1} = {c:.4g} ± {e:.2g} ppb/({unit}){'' if k == 0 else f'^{k + 1}'}" for k, (c, e) in enumerate(zip(s["coefficients_ppb"], s["errors_ppb"])))
    ax.set_title(textwrap.fill(f"{summary['observable']} shift against {summary['parameter']} ({summary['name']}, {len(summary['seeds'])} seeds): {terms}", 90), fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return fig


def study_from_toml(path: str | os.PathLike, changes: dict | None = None) -> Study:
    """Read a study from a TOML file.

    The file holds a ``[study]`` table (fields of :class:`Study`) and, optionally, configuration
    sections (``[beam]``, ``[ring]``, …) laid over the ring preset.

    ``changes`` (fields of :class:`Study`, e.g. from the command line) replace the file's values;
    extra ``overrides`` there are appended to the file's.
    """
    import tomllib

    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read study file: {exc.strerror}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: invalid TOML: {' '.join(str(exc).split())}") from None
    table = data.pop("study", None)
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: missing [study] table (parameter, values, seeds, positrons, …)")
    known = {f.name for f in fields(Study)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown key study.{unknown[0]}; expected one of {', '.join(sorted(known))}")
    overrides = table.get("overrides", [])
    if not (isinstance(overrides, list) and all(isinstance(o, str) for o in overrides)):
        raise ConfigError(f'{path}: study.overrides must be a list of "section.key=value" strings')
    for section, items in data.items():
        if not isinstance(items, dict):
            raise ConfigError(f"{path}: {section} must be a table of configuration keys")
        overrides = overrides + [f"{section}.{key}={_toml_value(value)}" for key, value in items.items()]
    if "config_path" in table:
        table["config_path"] = str((path.parent / table["config_path"]).resolve())
    table.setdefault("name", path.stem)
    changes = dict(changes or {})
    if changes.get("parameter", table.get("parameter")) != table.get("parameter") and "nominal" not in changes:
        table.pop("nominal", None)  # another key: its nominal is the base configuration's value
    table["overrides"] = tuple(overrides) + tuple(changes.pop("overrides", ()))
    table.update(changes)
    if "parameter" not in table or "values" not in table:
        raise ConfigError(f"{path}: [study] needs parameter and values (or give --param KEY=V1,V2,…)")
    if not isinstance(table["values"], (list, tuple)):
        raise ConfigError(f"{path}: study.values must be a list of numbers, got {table['values']!r}")
    table["values"] = tuple(table["values"])
    return Study(**table)


def _toml_value(value) -> str:
    """Write a configuration value back as a TOML literal, for a ``section.key=value`` override."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)
