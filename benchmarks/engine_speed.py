"""Engine speed: the same batch on the local engine and on a Dask LocalCluster of 1 and 2 workers.

    .venv/bin/python benchmarks/engine_speed.py [--files 8] [--seconds 30] [--pieces 8] [--jobs transcribe prepare]
                                                [--model piano_transcription/models/default.tflite] [--kill]
                                                [--repeat 1]

Two jobs of :mod:`piano_transcription.engine`, each on fresh output folders (nothing up to date):

* ``transcribe``: ``--files`` copies of ``--seconds`` s of the demo recording, with ``--model`` (default: the
  shipped TFLite model, which every worker loads in well under a second);
* ``prepare``: a synthetic MAESTRO-format corpus of ``--pieces`` pieces of ``--seconds`` s (built first, not timed).

Runs: ``direct`` (the job's function called in a plain loop in this process: the path before the engine existed),
``local`` (the local engine in this process: what the command line runs by default), ``dask-1`` and ``dask-2``
(a LocalCluster of 1 or 2 worker processes, model threads = cores / workers; each worker first runs one item of a
scratch copy of the job -- imports, model load -- so that the timed run is a long run's steady state; the first two
runs import the same modules first, and load the model in the timed run), and with
``--kill`` ``dask-kill-2`` (one worker killed with SIGKILL while it runs an item; its nanny starts a new one and
Dask reschedules the item).  Printed per run: wall seconds, items per minute, and for the Dask runs the cluster's
start-up, the workers' warm-up and the engine's overhead per item: (wall - seconds the functions ran / workers) /
items.  The last lines: local against direct (target: within 5 %), the throughput of 2 workers against 1 (target:
1.7x on 2 cores) and what the killed worker cost.
The load average before and after is printed too: the figures mean little on a machine that others are using.
"""

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import warnings

import numpy as np
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def transcription_plan(files, outdir, model):
    """The command line's job for ``files`` (defaults: no picture, no score, the model's thresholds)."""
    from piano_transcription.batch import model_digest, transcription_job, transcription_options
    from piano_transcription.cleanup import DEFAULT_PRESET, PRESETS
    from piano_transcription.outputs import requested_outputs

    options = transcription_options(cleanup=PRESETS[DEFAULT_PRESET])
    plan = [(f, f.stem, requested_outputs(outdir, f.stem)) for f in files]
    return transcription_job(plan, outdir, model, model_digest(model), options)


MODEL_THREADS: int | None = None  # --model-threads


def kill_one_busy_worker(address: str, done: threading.Event, killed: dict) -> None:
    """Kill (SIGKILL) the first worker process seen running an item."""
    import distributed

    def executing(dask_worker):
        return os.getpid(), len(dask_worker.state.executing)

    with distributed.Client(address) as client:
        while not done.is_set() and not killed:
            for pid, busy in client.run(executing).values():
                if busy:
                    os.kill(pid, signal.SIGKILL)
                    killed["pid"] = pid
                    return
            time.sleep(0.01)


def run_engine(name: str, make_job, engine_name: str, workers: int = 1, kill: bool = False) -> dict:
    """One run: ``{"name", "wall", "startup", "warmup", "busy", "items", "failed", "workers"}``.  A Dask run
    starts its LocalCluster (``startup``), then lets every worker run one item of a scratch copy of the job
    (``warmup``: imports, model load), then times the job (``wall``): the steady state of a long run."""
    from piano_transcription import batch
    from piano_transcription.engine import DaskEngine, LocalEngine, execute, run_job

    job = make_job()
    out = {"name": name, "startup": 0.0, "warmup": 0.0, "items": len(job.items), "workers": workers}
    if engine_name in ("direct", "local"):
        scratch = make_job("here")
        assert execute(scratch.function, scratch.items[0])["ok"]  # imports done before the clock starts
        batch._PREDICTORS.clear()  # but the model loads in the timed run, once, as in a fresh command
    if engine_name == "direct":
        t0 = time.perf_counter()
        recs = [execute(job.function, item) for item in job.items]
        assert all(r["ok"] for r in recs), recs
        return {**out, "wall": time.perf_counter() - t0, "busy": sum(r["busy"] for r in recs), "failed": 0}
    if engine_name == "local":
        report = run_job(job, LocalEngine(1), progress=False)
        return {**out, "wall": report.wall, "busy": report.busy, "failed": report.failed}
    import logging

    import distributed

    threads = MODEL_THREADS or max(1, len(os.sched_getaffinity(0)) // workers)
    t0 = time.perf_counter()
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, silence_logs=logging.CRITICAL) as cluster, \
            distributed.Client(cluster) as client:
        out["startup"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        scratch = [make_job(k) for k in range(workers)]
        warm = [client.submit(execute, w.function, w.items[0], threads, workers=[addr], pure=False)
                for w, addr in zip(scratch, client.scheduler_info()["workers"])]
        assert all(f.result()["ok"] for f in warm)
        out["warmup"] = time.perf_counter() - t0
        engine = DaskEngine(cluster.scheduler_address, threads=threads)  # as its own LocalCluster would
        done, killed = threading.Event(), {}
        killer = threading.Thread(target=kill_one_busy_worker, args=(cluster.scheduler_address, done, killed))
        if kill:
            killer.start()
        report = run_job(job, engine, progress=False)
        done.set()
        if kill:
            killer.join()
            assert killed, "no worker was killed"
    return {**out, "wall": report.wall, "busy": report.busy, "failed": report.failed}


def show(r: dict) -> None:
    line = f"{r['name']:<22} {r['wall']:6.1f} s, {60 * r['items'] / r['wall']:6.1f} items/min"
    if r["name"].endswith("local"):
        line += f", engine overhead {(r['wall'] - r['busy']) / r['items'] * 1000:+.1f} ms/item"
    if r["name"].split()[-1].startswith("dask"):
        overhead = (r["wall"] - r["busy"] / r["workers"]) / r["items"]
        line += (f" (cluster start-up {r['startup']:.1f} s and worker warm-up {r['warmup']:.1f} s before), "
                 f"engine overhead {overhead:+.3f} s/item")
    if r["failed"]:
        line += f", {r['failed']} FAILED"
    print(line, flush=True)


def best_of(plans: dict, repeat: int, results: dict) -> None:
    """Run every plan ``repeat`` times, the kinds alternating (a drift of the machine's speed then touches
    every kind alike), keep each one's fastest run in ``results`` and print it."""
    for _ in range(repeat):
        for name, (plan, engine_name, workers, out) in plans.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = run_engine(name, plan, engine_name.split("-")[0], workers, kill=engine_name.endswith("kill"))
            shutil.rmtree(out, ignore_errors=True)
            results[name] = min(results.get(name, r), r, key=lambda x: x["wall"])
    for name in plans:
        show(results[name])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--files", type=int, default=8)
    p.add_argument("--pieces", type=int, default=8)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--jobs", nargs="+", choices=("transcribe", "prepare"), default=["transcribe", "prepare"])
    p.add_argument("--model", default=str(ROOT / "piano_transcription" / "models" / "default.tflite"))
    p.add_argument("--kill", action="store_true", help="also a 2-worker run with one worker killed mid-item")
    p.add_argument("--repeat", type=int, default=1, help="runs of each kind, the kinds alternating (the fastest is kept)")
    p.add_argument("--model-threads", type=int, default=None,
                   help="model threads per Dask worker (default: cores / workers, so 1 and 2 workers both use every "
                        "core; 1: each worker as on a one-core node, which shows how the engine scales)")
    a = p.parse_args()
    global MODEL_THREADS
    MODEL_THREADS = a.model_threads
    import soundfile as sf

    from piano_transcription.assets import DEMO_AUDIO
    from piano_transcription.batch import model_digest
    from piano_transcription.corpus.synthetic import build_synthetic_maestro
    from piano_transcription.training.maestro import prepare_job

    print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        results = {}
        if "transcribe" in a.jobs:
            audio, sr = sf.read(DEMO_AUDIO, dtype="float32")
            files = []
            for k in range(a.files):
                files.append(tmp / "audio" / f"take{k:03d}.flac")
                files[-1].parent.mkdir(exist_ok=True)
                reps = -(-int(a.seconds * sr) // len(audio))  # the demo (30 s) repeated to --seconds
                sf.write(files[-1], np.concatenate([audio] * reps)[: int(a.seconds * sr)], sr)
            runs = [("direct", 1), ("local", 1), ("dask", 1), ("dask", 2)] + [("dask-kill", 2)] * a.kill
            t0 = time.perf_counter()
            model_digest(a.model)
            print(f"transcribe: {a.files} files of {a.seconds:g} s, {Path(a.model).name} (its SHA-256, once per run: "
                  f"{1000 * (time.perf_counter() - t0):.0f} ms)", flush=True)
            plans = {}
            for engine_name, workers in runs:
                out = tmp / f"midi-{engine_name}-{workers}"
                name = f"transcribe {engine_name}" + (f"-{workers}" if engine_name.startswith("dask") else "")

                def plan(k=None, out=out):
                    return transcription_plan(files, out if k is None else tmp / f"warm{k}", a.model)

                plans[name] = (plan, engine_name, workers, out)
            best_of(plans, a.repeat, results)
        if "prepare" in a.jobs:
            src = build_synthetic_maestro(tmp / "maestro", {"train": a.pieces - 2, "validation": 1, "test": 1},
                                          duration=a.seconds, seed=1)
            print(f"prepare: {a.pieces} pieces of {a.seconds:g} s (MAESTRO format)", flush=True)
            plans = {}
            for engine_name, workers in [("direct", 1), ("local", 1), ("dask", 1), ("dask", 2)]:
                out = tmp / f"prepared-{engine_name}-{workers}"
                name = f"prepare {engine_name}" + (f"-{workers}" if engine_name == "dask" else "")

                def plan(k=None, out=out):
                    return prepare_job(src, out if k is None else tmp / f"warm{k}")[0]

                plans[name] = (plan, engine_name, workers, out)
            best_of(plans, a.repeat, results)
    for job in a.jobs:
        r = {k.split()[-1]: v for k, v in results.items() if k.startswith(job)}
        rate = {k: v["items"] / v["wall"] for k, v in r.items()}
        print(f"{job}: local / direct wall {r['local']['wall'] / r['direct']['wall']:.3f}; "
              f"dask 2 / 1 workers: {rate['dask-2'] / rate['dask-1']:.2f}x the throughput"
              + (f"; the killed worker cost {r['dask-kill-2']['wall'] - r['dask-2']['wall']:+.1f} s "
                 f"(an item takes {r['dask-2']['busy'] / r['dask-2']['items']:.1f} s)" if "dask-kill-2" in r else ""))
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
