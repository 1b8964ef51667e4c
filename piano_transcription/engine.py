"""Scale-out: one engine layer that runs a long job's plan on this machine or on a cluster.

A job (:class:`Job`) is a plan -- work items (:class:`Item`), each naming the files it reads and the files
it writes -- and a pure function of one item, defined at module level (so that it pickles by reference and
runs the same code on every engine).  :func:`run_job` runs the function on every item that is not already
done, on one of three engines:

* ``local`` (the default, no new dependency): this process, or local worker processes
  (``concurrent.futures``), as every job ran before the engine existed;
* ``dask``: a Dask ``LocalCluster`` of worker processes, or an existing cluster by address
  (``--address tcp://host:8786`` or the environment variable ``DASK_SCHEDULER_ADDRESS``);
* ``slurm``: a dask-jobqueue ``SLURMCluster`` of ``--jobs N`` batch jobs.

Dask and dask-jobqueue are the optional extra ``cluster`` (``pip install 'piano-transcription[cluster]'``),
imported only here, only by the two cluster engines.  What the engine keeps, in the job's folder:

* the ledger ``.JOB.done.jsonl``: one line per finished item -- its fingerprint (the job's ``version``, e.g.
  the model's SHA-256 and the options; the item's parameters; its inputs' sizes and modification times),
  its outputs' sizes and modification times, and its result record.  Only the driver writes it, a line at a
  time, so a crash loses at most the item in flight.  A re-run skips an item whose fingerprint is unchanged
  and whose outputs are still as written (the job's ``force`` redoes everything);
* the failures file ``.JOB.failures.json``: ``[{"item", "input", "reason"}]`` of the last run (removed when a
  run has none; the summary line names it).  A failed item never stops the others; the caller exits non-zero.

Both are hidden files, so that an output folder lists the outputs only.

Outputs are written by the item function through :func:`piano_transcription.io.atomic_path`, so a reader
never sees half a file; the temporary files of a worker that died mid-item are removed at the end of the run.
Dask reschedules the items of a worker process that dies (its nanny starts a new one), and the local engine
starts a new pool of processes and runs the items that were out again, so every output ends up written once,
whole; an item that takes down ``distributed.scheduler.allowed-failures`` workers (default 3; locally
:data:`ALLOWED_DEATHS`) is recorded as a failure.  One progress bar (tqdm) covers the whole cluster, and a summary line ends the run.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path

from tqdm.auto import tqdm

from .io import atomic_path, temporary_siblings, write_json

ENGINES = ("local", "dask", "slurm")
CLUSTER_EXTRA = "pip install 'piano-transcription[cluster]'"
ADDRESS_ENV = "DASK_SCHEDULER_ADDRESS"  # an existing Dask scheduler (Dask's own variable)
THREADS_ENV = "PIANO_TRANSCRIPTION_THREADS"  # model threads per worker process, set on an existing cluster's workers
LEDGER_VERSION = 1
ALLOWED_DEATHS = 3  # worker processes an item may take down with it on the local engine (Dask: allowed-failures)
# glibc's own steady state for large allocations (its dynamic mmap threshold stops at 32 MiB, the trim threshold
# at twice that), restored in worker processes that were started with MALLOC_TRIM_THRESHOLD_ (Dask's nanny sets
# 65536): an explicit threshold switches the dynamic one off, so that every array above 128 KiB is mmap'ed,
# page-faulted and unmapped again -- measured: preparing 16 pieces of 120 s took 3.2-3.8 s instead of 2.0 s
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
TRIM_THRESHOLD_BYTES = 2 * MMAP_THRESHOLD_BYTES


class EngineError(RuntimeError):
    """An engine that cannot start (missing extra, bad options, unreachable scheduler)."""


# ----------------------------------------------------------------------------------------- plans
@dataclass(frozen=True)
class Item:
    """One unit of work: ``key`` (unique in its job, names it in records), the files it ``outputs`` (the first
    is the main one), the ``inputs`` it reads (their sizes and times enter its fingerprint) and ``params``,
    everything else the job's function needs (picklable, JSON-able)."""

    key: str
    outputs: tuple[str, ...]
    inputs: tuple[str, ...] = ()
    params: Mapping = field(default_factory=dict)


@dataclass
class Job:
    """A plan and its function: ``function(item) -> result`` (a JSON-able dict; ``result["seconds"]``, the audio
    seconds the item covered, feeds the throughput figure).  ``version``: what every item's output depends on
    beyond its own inputs (model hash, options); ``force``: redo items that are up to date; ``spawn``: local worker
    processes start by spawn, not fork; ``adopt(item)``: the result of an item that a run before the engine existed
    finished (its job's own manifest says so), or None -- it is recorded in the ledger instead of done again."""

    name: str
    function: Callable[[Item], dict]
    items: list[Item]
    folder: Path
    version: Mapping = field(default_factory=dict)
    force: bool = False
    spawn: bool = False
    unit: str = "item"  # what an item is, for the progress bar
    progress: bool = False  # items that run in the calling process may show their own progress bars
    adopt: Callable[[Item], dict | None] | None = None  # the result of an item done before the ledger existed

    @property
    def ledger_path(self) -> Path:
        return Path(self.folder) / f".{self.name}.done.jsonl"

    @property
    def failures_path(self) -> Path:
        return Path(self.folder) / f".{self.name}.failures.json"


@dataclass
class Outcome:
    """What became of one item: ``status`` ``done``, ``skipped`` (up to date) or ``failed``; its ``result``
    (also for a skipped item: the one recorded when it was done), or the ``reason`` and ``error`` (exception
    type) of a failure; ``busy`` the seconds the function ran."""

    item: Item
    status: str
    result: dict | None = None
    reason: str | None = None
    error: str | None = None
    busy: float = 0.0


@dataclass
class Report:
    """A run's figures: item counts, wall and start-up seconds, seconds the functions ran, audio seconds."""

    job: str
    engine: str
    items: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    wall: float = 0.0
    startup: float = 0.0
    busy: float = 0.0
    audio: float = 0.0
    failures: list = field(default_factory=list)
    failures_path: Path | None = None

    def summary(self) -> str:
        """One line: items, failures, wall time, audio hours per hour (and where the failures are listed)."""
        rate = f", {self.audio / self.wall:.0f} audio hours per hour" if self.audio and self.wall > 0 else ""
        listed = f"; failures listed in {self.failures_path}" if self.failed and self.failures_path else ""
        return (f"{self.job}: {self.items} items, {self.done} done, {self.skipped} up to date, {self.failed} failed "
                f"in {self.wall:.1f} s ({self.engine}){rate}{listed}")


def file_stamp(path: str | os.PathLike) -> list | None:
    """``[size in bytes, modification time in ns]`` of a file, or None where there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def fingerprint(job: Job, item: Item) -> str:
    """Hex SHA-256 of everything an item's outputs depend on: the job's name and version, the item's key and
    parameters, its inputs' paths, sizes and times, and its outputs' names."""
    data = {"job": job.name, "version": job.version, "key": item.key, "params": item.params,
            "inputs": [[str(p), file_stamp(p)] for p in item.inputs], "outputs": [str(p) for p in item.outputs]}
    return sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


# ---------------------------------------------------------------------------------------- ledger
def read_ledger(path: str | os.PathLike) -> dict[str, dict]:
    """The ledger's latest record per item key (a torn last line, from a crash, is ignored)."""
    records = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(rec, dict) and "key" in rec:
                    records[rec["key"]] = rec
    except (FileNotFoundError, NotADirectoryError):  # no run yet (or no folder: the caller says so)
        pass
    return records


def is_up_to_date(record: dict | None, digest: str, item: Item) -> bool:
    """Whether a ledger record says ``item`` is done: same fingerprint, outputs as they were written."""
    return (record is not None and record.get("fingerprint") == digest
            and record.get("stamps") == [file_stamp(p) for p in item.outputs])


def up_to_date(job: Job) -> set[str]:
    """Keys of the job's items that a re-run skips (none when the job is forced)."""
    if job.force:
        return set()
    records = read_ledger(job.ledger_path)
    return {item.key for item in job.items if is_up_to_date(records.get(item.key), fingerprint(job, item), item)}


class Ledger:
    """The driver's append-only record of finished items (see the module's docstring)."""

    def __init__(self, path: Path):
        self.path = path
        self.records = read_ledger(path)
        self._lines = sum(1 for _ in open(path, encoding="utf-8")) if path.exists() else 0
        self._file = None

    def add(self, item: Item, digest: str, result: dict) -> None:
        rec = {"v": LEDGER_VERSION, "key": item.key, "fingerprint": digest,
               "stamps": [file_stamp(p) for p in item.outputs], "result": result}
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")
        self._file.write(json.dumps(rec, default=str) + "\n")
        self._file.flush()
        self.records[item.key] = rec
        self._lines += 1

    def close(self) -> None:
        """Close, and rewrite the file with one line per item when it holds older lines too."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._lines > len(self.records):
            with atomic_path(self.path) as tmp:
                tmp.write_text("".join(json.dumps(r, default=str) + "\n" for r in self.records.values()),
                               encoding="utf-8")
            self._lines = len(self.records)


# ------------------------------------------------------------------------------------ execution
_CONTEXT = {"threads": None, "progress": False}  # of the item running in this process (set by execute)


def worker_threads() -> int | None:
    """Threads the running item's model may use: the engine's share of this machine's cores (cores divided
    by the worker processes on it), else ``PIANO_TRANSCRIPTION_THREADS``, else None (the library's default)."""
    if _CONTEXT["threads"]:
        return _CONTEXT["threads"]
    env = os.environ.get(THREADS_ENV)
    return int(env) if env and env.isdigit() and int(env) > 0 else None


def item_progress() -> bool:
    """Whether the running item may show its own progress bars (it runs in the calling process, and its job
    asked for them)."""
    return bool(_CONTEXT["progress"])


def available_cores() -> int:
    """Cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def failure_reason(exc: BaseException) -> str:
    """A failure's one-line reason: the message of an input or set-up error, else the type and message."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, (OSError, ValueError, ImportError, LookupError)):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def named(name: str, reason: str) -> str:
    """``name: reason``, without naming it twice when the reason's first part already holds the name."""
    return reason if str(name) in reason.split(": ", 1)[0] else f"{name}: {reason}"


_MALLOC_TUNED: list[bool] = []  # whether this process has had restore_malloc_thresholds' check


def restore_malloc_thresholds() -> bool:
    """Once per process: where ``MALLOC_TRIM_THRESHOLD_`` was set before it started (a Dask nanny's worker) and
    the C library is glibc, set its mmap and trim thresholds to glibc's own steady state (:data:`MMAP_THRESHOLD_BYTES`),
    so that numpy's large temporary arrays are reused instead of mapped and page-faulted anew each time.
    Returns whether it changed them."""
    if _MALLOC_TUNED:
        return False
    _MALLOC_TUNED.append(True)
    if not os.environ.get("MALLOC_TRIM_THRESHOLD_") or not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
        return bool(libc.mallopt(m_mmap_threshold, MMAP_THRESHOLD_BYTES)
                    and libc.mallopt(m_trim_threshold, TRIM_THRESHOLD_BYTES))
    except (OSError, AttributeError):  # not glibc (musl): nothing to restore
        return False


def execute(function: Callable[[Item], dict], item: Item, threads: int | None = None, progress: bool = False) -> dict:
    """Run one item (in whichever process the engine chose): ``{"ok", "result" | "reason", "error", "busy"}``."""
    restore_malloc_thresholds()
    _CONTEXT.update(threads=threads, progress=progress)
    t0 = time.perf_counter()
    try:
        result = function(item) or {}
    except Exception as exc:  # noqa: BLE001 - one bad item must not stop the others; it becomes a record
        return {"ok": False, "reason": failure_reason(exc), "error": type(exc).__name__,
                "busy": time.perf_counter() - t0}
    return {"ok": True, "result": result, "busy": time.perf_counter() - t0}


class LocalEngine:
    """This machine: the items in this process (``workers`` <= 1) or in ``workers`` local processes."""

    name = "local"

    def __init__(self, workers: int = 1):
        self.workers = max(1, int(workers))

    @property
    def in_process(self) -> bool:
        """Whether items run in the calling process (their own progress bars and messages may show)."""
        return self.workers <= 1

    def describe(self) -> str:
        return "this process" if self.in_process else f"{self.workers} local processes"

    def run(self, job: Job, items: list[Item]) -> Iterator[tuple[Item, dict]]:
        """Yield ``(item, execute's record)`` as items finish."""
        if self.in_process:
            for item in items:
                yield item, execute(job.function, item, progress=job.progress)
            return
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
        from concurrent.futures.process import BrokenProcessPool

        threads = max(1, available_cores() // self.workers)
        context = multiprocessing.get_context("spawn") if job.spawn else None
        queue, deaths = list(reversed(items)), collections.Counter()
        while queue:  # one pool; a new one after a worker process died (its items go back in the queue)
            with ProcessPoolExecutor(self.workers, mp_context=context) as pool:
                running: dict = {}
                while queue or running:
                    while queue and len(running) < self.workers:  # as many items out as processes: each runs
                        item = queue.pop()
                        running[pool.submit(execute, job.function, item, threads)] = item
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    broken = False
                    for fut in finished:
                        item = running.pop(fut)
                        try:
                            yield item, fut.result()
                        except BrokenProcessPool as exc:
                            broken = True
                            deaths[item.key] += 1
                            if deaths[item.key] < ALLOWED_DEATHS:
                                queue.append(item)
                            else:
                                yield item, {"ok": False, "reason": f"its worker process died {ALLOWED_DEATHS} times "
                                                                    f"({failure_reason(exc)})",
                                             "error": type(exc).__name__, "busy": 0.0}
                    if broken:
                        for fut, item in running.items():  # the pool is gone: what was out goes back
                            queue.append(item)
                        break


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise EngineError(f"the dask and slurm engines need the cluster extra: {CLUSTER_EXTRA}") from None
    return distributed


class DaskEngine:
    """A Dask cluster: a LocalCluster of ``workers`` processes (one item at a time each), or the existing
    scheduler at ``address`` (default: ``DASK_SCHEDULER_ADDRESS``) when one is given."""

    name = "dask"
    in_process = False

    def __init__(self, address: str | None = None, workers: int | None = None, threads: int | None = None):
        self.address = address or os.environ.get(ADDRESS_ENV) or None
        self.workers = max(1, int(workers)) if workers else max(1, available_cores())
        self.model_threads, self.startup = threads, 0.0
        _import_distributed()

    def describe(self) -> str:
        if self.address:
            return f"the Dask cluster at {self.address}"
        return f"a Dask LocalCluster of {self.workers} workers"

    def threads(self) -> int | None:
        """Model threads per item: as given, else this machine's cores over its worker processes (None on an
        existing cluster: the workers' ``PIANO_TRANSCRIPTION_THREADS`` or the library's default)."""
        if self.model_threads:
            return self.model_threads
        return None if self.address else max(1, available_cores() // self.workers)

    def cluster(self):
        """A new cluster to run on, or None to connect to ``address``."""
        if self.address:
            return None
        import logging
        import warnings

        distributed = _import_distributed()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Port 8787 is already in use": another cluster's; it takes another
            return distributed.LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                            host="127.0.0.1", dashboard_address=None, silence_logs=logging.ERROR)

    def run(self, job: Job, items: list[Item]) -> Iterator[tuple[Item, dict]]:
        """Yield ``(item, execute's record)`` as items finish anywhere on the cluster."""
        import contextlib

        distributed = _import_distributed()
        t0 = time.perf_counter()
        with contextlib.ExitStack() as stack:
            cluster = self.cluster()
            if cluster is not None:
                stack.enter_context(cluster)
            try:
                client = stack.enter_context(distributed.Client(cluster if cluster is not None else self.address,
                                                                timeout="30s"))
            except (OSError, TimeoutError) as exc:
                raise EngineError(f"cannot reach the Dask scheduler at {self.address}: {exc}") from None
            self.startup = time.perf_counter() - t0
            run_id, threads = uuid.uuid4().hex[:8], self.threads()
            futures = {client.submit(execute, job.function, item, threads, key=f"{job.name}-{i}-{run_id}",
                                     pure=False): item for i, item in enumerate(items)}
            try:
                for fut in distributed.as_completed(futures):
                    item = futures.pop(fut)
                    try:
                        record = fut.result()
                    except Exception as exc:  # noqa: BLE001 - the item killed its workers, or never reached them
                        killed = isinstance(exc, distributed.KilledWorker)
                        record = {"ok": False, "error": type(exc).__name__, "busy": 0.0,
                                  "reason": f"its worker processes died ({failure_reason(exc)})" if killed else
                                  f"the worker could not run it ({failure_reason(exc)}; is the package installed "
                                  "there?)"}
                    fut.release()
                    yield item, record
            finally:
                client.cancel(list(futures))


class SlurmEngine(DaskEngine):
    """A dask-jobqueue SLURMCluster scaled to ``jobs`` batch jobs of ``cores`` CPUs, ``memory`` and
    ``walltime`` each (``account``, ``partition`` as SLURM's ``-A`` / ``-p``), ``processes`` workers per job
    (one item at a time each, with ``cores / processes`` model threads)."""

    name = "slurm"

    def __init__(self, jobs: int = 2, cores: int = 4, memory: str = "8GB", walltime: str = "02:00:00",
                 account: str | None = None, partition: str | None = None, processes: int | None = None):
        if jobs < 1 or cores < 1:
            raise EngineError(f"--jobs and --cores must be at least 1, got {jobs} and {cores}")
        self.jobs, self.cores, self.memory, self.walltime = int(jobs), int(cores), memory, walltime
        self.account, self.partition = account, partition
        self.processes = max(1, min(int(processes or max(1, cores // 2)), self.cores))
        self.address, self.workers, self.startup = None, self.jobs * self.processes, 0.0
        try:
            import dask_jobqueue  # noqa: F401
        except ImportError:
            raise EngineError(f"the slurm engine needs the cluster extra: {CLUSTER_EXTRA}") from None

    def describe(self) -> str:
        return f"SLURM ({self.jobs} jobs of {self.cores} cores, {self.processes} workers each)"

    def threads(self) -> int:
        return max(1, self.cores // self.processes)

    def slurm_cluster(self):
        """The SLURMCluster, not yet scaled (``cluster.job_script()`` shows what ``sbatch`` will receive): one
        Dask thread per worker process, ``cores`` CPUs per job."""
        import logging

        from dask_jobqueue import SLURMCluster

        return SLURMCluster(cores=self.processes, processes=self.processes, job_cpu=self.cores,
                            memory=self.memory, walltime=self.walltime, account=self.account, queue=self.partition,
                            job_name="piano-transcription", silence_logs=logging.ERROR,
                            job_script_prologue=[f"export {THREADS_ENV}={self.threads()}"])

    def cluster(self):
        """The SLURMCluster, scaled to ``jobs`` batch jobs."""
        cluster = self.slurm_cluster()
        cluster.scale(jobs=self.jobs)
        return cluster


# ------------------------------------------------------------------------------------------- run
def run_job(job: Job, engine=None, progress: bool = True, on_outcome: Callable[[Outcome], None] | None = None,
            checkpoint: Callable[[], None] | None = None, checkpoint_seconds: float = 2.0,
            summary: bool | None = None, failures: list[dict] | None = None) -> Report:
    """Run ``job`` on ``engine`` (default: :class:`LocalEngine` in this process) and return its :class:`Report`.

    Items already done (see the module's docstring) are skipped; ``on_outcome`` sees every item's
    :class:`Outcome` in the driver, skipped ones first, the others as they finish; ``checkpoint`` (the job's
    own manifest, say) runs at most every ``checkpoint_seconds`` and once at the end.  ``failures``: records
    ``{"item", "input", "reason"}`` of inputs that failed before they became items (planning), for the
    failures file and the counts.  With ``progress``: one bar over all items and (unless ``summary`` is
    False) the summary line, on stderr."""
    engine = engine or LocalEngine()
    t0 = time.perf_counter()
    ledger = Ledger(job.ledger_path)
    planned = list(failures or [])
    report = Report(job.name, engine.describe(), items=len(job.items) + len(planned), failed=len(planned),
                    failures=planned, failures_path=job.failures_path)
    todo, digests = [], {}
    last = time.monotonic()

    def handle(outcome: Outcome) -> None:
        nonlocal last
        if outcome.result:
            report.audio += float(outcome.result.get("seconds") or 0.0)
        if on_outcome is not None:
            on_outcome(outcome)
        if checkpoint is not None and time.monotonic() - last >= checkpoint_seconds:
            checkpoint()
            last = time.monotonic()

    try:
        for item in job.items:
            digests[item.key] = digest = fingerprint(job, item)
            record = ledger.records.get(item.key)
            if record is None and job.adopt is not None and not job.force and all(map(os.path.exists, item.outputs)):
                adopted = job.adopt(item)
                if adopted is not None:
                    ledger.add(item, digest, adopted)
                    record = ledger.records[item.key]
            if not job.force and is_up_to_date(record, digest, item):
                report.skipped += 1
                handle(Outcome(item, "skipped", result=record.get("result") or {}))
            else:
                todo.append(item)
        with tqdm(total=len(todo), desc=job.name, unit=job.unit, disable=not progress or not todo,
                  file=sys.stderr) as bar:
            for item, rec in (engine.run(job, todo) if todo else ()):
                report.busy += rec.get("busy", 0.0)
                if rec["ok"]:
                    ledger.add(item, digests[item.key], rec["result"])
                    report.done += 1
                    outcome = Outcome(item, "done", result=rec["result"], busy=rec.get("busy", 0.0))
                else:
                    report.failed += 1
                    report.failures.append({"item": item.key, "input": item.inputs[0] if item.inputs else None,
                                            "reason": rec["reason"]})
                    outcome = Outcome(item, "failed", reason=rec["reason"], error=rec.get("error"),
                                      busy=rec.get("busy", 0.0))
                handle(outcome)
                bar.update()
                elapsed = time.perf_counter() - t0
                bar.set_postfix_str(f"{report.failed} failed"
                                    + (f", {report.audio / elapsed:.0f} audio h/h" if report.audio else ""),
                                    refresh=False)
    finally:
        ledger.close()
        for item in job.items:  # what workers that died mid-item left behind
            for out in item.outputs:
                for tmp in temporary_siblings(out):
                    tmp.unlink(missing_ok=True)
        if report.failures:
            write_json(job.failures_path, report.failures)
        elif job.failures_path.exists() and report.done + report.skipped == report.items:
            job.failures_path.unlink()
        if checkpoint is not None:
            checkpoint()
    report.wall = time.perf_counter() - t0
    report.startup = getattr(engine, "startup", 0.0)
    if (progress if summary is None else summary) and report.items:
        print(report.summary(), file=sys.stderr)
    return report


# ------------------------------------------------------------------------------------- options
def add_engine_arguments(parser: argparse.ArgumentParser, local_workers: int = 1) -> None:
    """The engine options every long job takes (``--engine``, ``--address``, ``--workers``, the SLURM ones);
    ``local_workers``: the job's default number of processes on the local engine."""
    g = parser.add_argument_group("engine", "where the work runs (dask and slurm need the cluster extra: "
                                            f"{CLUSTER_EXTRA})")
    g.add_argument("--engine", choices=ENGINES, default="local",
                   help="local: this machine, as always (default); dask: a Dask LocalCluster, or an existing "
                        f"cluster with --address / ${ADDRESS_ENV}; slurm: SLURM batch jobs through dask-jobqueue")
    g.add_argument("--address", default=None, metavar="tcp://HOST:8786",
                   help=f"an existing Dask scheduler (--engine dask; default ${ADDRESS_ENV})")
    where = "this process" if local_workers <= 1 else f"{local_workers} processes"
    g.add_argument("--workers", type=int, default=None, metavar="N",
                   help=f"worker processes on this machine: local (default {where}) and a Dask LocalCluster "
                        "(default one per core)")
    g.add_argument("--jobs", type=int, default=2, metavar="N", help="SLURM jobs (default %(default)s)")
    g.add_argument("--cores", type=int, default=4, metavar="N", help="CPUs per SLURM job (default %(default)s)")
    g.add_argument("--processes", type=int, default=None, metavar="N",
                   help="worker processes per SLURM job (default: cores / 2)")
    g.add_argument("--memory", default="8GB", help="memory per SLURM job (default %(default)s)")
    g.add_argument("--walltime", default="02:00:00", help="time limit per SLURM job (default %(default)s)")
    g.add_argument("--account", default=None, help="SLURM account (sbatch -A)")
    g.add_argument("--partition", default=None, help="SLURM partition (sbatch -p)")


def engine_from_args(args, local_workers: int = 1) -> LocalEngine | DaskEngine | SlurmEngine:
    """The engine the options of :func:`add_engine_arguments` name; :class:`EngineError` for a bad combination
    or a missing extra."""
    if args.workers is not None and args.workers < 1:
        raise EngineError(f"--workers must be at least 1, got {args.workers}")
    if args.address and args.engine != "dask":
        raise EngineError("--address names a Dask scheduler: use it with --engine dask")
    if args.engine == "dask":
        return DaskEngine(args.address, args.workers)
    if args.engine == "slurm":
        return SlurmEngine(args.jobs, args.cores, args.memory, args.walltime, args.account, args.partition,
                           args.processes)
    return LocalEngine(args.workers or local_workers)
