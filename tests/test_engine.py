"""The engine layer on a real Dask LocalCluster of two worker processes (one shared by the module's tests):
the jobs give what the local engine gives, failures are records, killed workers cost nothing but time,
re-runs skip what is done, a changed model redoes it; the SLURM engine's job script."""

import collections
import json
import logging
import os
import shutil
import signal
import threading
import time
import warnings

import numpy as np
import pytest

from piano_transcription import engine as engine_module
from piano_transcription.assets import DEFAULT_TFLITE
from piano_transcription.engine import DaskEngine, EngineError, LocalEngine, SlurmEngine, read_ledger, run_job
from piano_transcription.training.maestro import load_shard, prepare_dataset, prepare_job, read_manifest

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    """``(scheduler address, client)`` of a LocalCluster on 127.0.0.1: two worker processes, one item at a time
    each, one model thread each (as on an existing cluster, through the workers' environment)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # port 8787 (the cluster's HTTP server) may be another test run's
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                           dashboard_address=None, silence_logs=logging.ERROR,
                                           env={"PIANO_TRANSCRIPTION_THREADS": "1"})
    with cluster, distributed.Client(cluster) as client:
        yield cluster.scheduler_address, client


def no_temporaries(folder):
    return [p for p in folder.rglob(".*") if ".tmp" in p.name]


def shards_equal(a, b) -> bool:
    x, y = load_shard(a), load_shard(b)
    return x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x)


def test_prepare_on_dask_equals_local_and_reruns_skip(cluster, synthetic_maestro, prepared, tmp_path):
    address, _ = cluster
    out = tmp_path / "dask"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        manifest = prepare_dataset(synthetic_maestro, out, engine=DaskEngine(address), progress=False)
    local = read_manifest(prepared)  # the same pieces, prepared in one process
    assert manifest["splits"] == local["splits"] and manifest["failed"] == []
    for entries in local["splits"].values():
        for e in entries.values():
            assert shards_equal(out / e["shard"], prepared / e["shard"])
    assert no_temporaries(out) == [] and not (out / ".prepare.failures.json").exists()
    # a re-run skips everything and leaves the shards alone; a changed input redoes its piece only
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.npz")}
    job, _, _ = prepare_job(synthetic_maestro, out)
    again = run_job(job, DaskEngine(address), progress=False)
    assert (again.items, again.skipped, again.done, again.failed) == (6, 6, 0, 0)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.npz")} == stamps
    # the workers that ran items (started by Dask's nanny with MALLOC_TRIM_THRESHOLD_) have glibc's thresholds back
    _, client = cluster
    state = client.run(lambda: (os.environ.get("MALLOC_TRIM_THRESHOLD_"), engine_module._MALLOC_TUNED))
    assert all(trim == "65536" for trim, _ in state.values()) and any(tuned for _, tuned in state.values())


def test_malloc_thresholds_are_restored_only_where_they_were_set():
    import subprocess
    import sys

    code = "from piano_transcription.engine import restore_malloc_thresholds as r; print(r(), r())"
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
    plain = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    dasky = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={**env, "MALLOC_TRIM_THRESHOLD_": "65536"})
    assert plain.stdout.split() == ["False", "False"], plain.stderr
    assert dasky.stdout.split() == ["True", "False"], dasky.stderr  # once per process


def test_changed_input_redoes_its_item_only(cluster, synthetic_maestro, tmp_path):
    address, _ = cluster
    src = tmp_path / "src"
    shutil.copytree(synthetic_maestro, src)
    job, _, _ = prepare_job(src, tmp_path / "out", splits=("train",))
    first = run_job(job, DaskEngine(address), progress=False)
    assert (first.done, first.skipped) == (4, 0)
    wav = sorted(src.rglob("*train*.wav"))[0]
    os.utime(wav, ns=(time.time_ns(), time.time_ns()))  # touched: its size and time are part of the fingerprint
    job, _, _ = prepare_job(src, tmp_path / "out", splits=("train",))
    second = run_job(job, DaskEngine(address), progress=False)
    assert (second.done, second.skipped) == (1, 3)


def test_corrupt_input_is_a_failure_record_and_the_others_finish(cluster, synthetic_maestro, tmp_path, capsys):
    from piano_transcription.cli import main

    address, _ = cluster
    src = tmp_path / "src"
    shutil.copytree(synthetic_maestro, src)
    bad = sorted(src.rglob("*train*.wav"))[1]
    bad.write_bytes(b"RIFF not really audio")
    out = tmp_path / "out"
    assert main(["prepare", str(src), str(out), "--engine", "dask", "--address", address]) == 1
    err = capsys.readouterr().err
    assert bad.name in err and "5 done" in err and "1 failed" in err
    failures = json.loads((out / ".prepare.failures.json").read_text())
    assert len(failures) == 1 and failures[0]["input"].endswith(bad.name) and failures[0]["reason"]
    manifest = read_manifest(out)
    assert sum(len(v) for v in manifest["splits"].values()) == 5 and bad.name in manifest["failed"][0]
    assert len(list(out.rglob("*.npz"))) == 5


def test_killed_worker_is_replaced_and_every_output_written_once(cluster, synthetic_maestro, tmp_path):
    address, client = cluster
    pids = set(client.run(os.getpid).values())
    out = tmp_path / "out"
    job, _, _ = prepare_job(synthetic_maestro, out)
    killed = {}

    def executing(dask_worker):
        return os.getpid(), [str(ts.key) for ts in dask_worker.state.executing]

    def kill_a_worker_mid_item():
        """Freeze a worker that runs an item; kill it if the item's shard is not written yet, else let it go on."""
        deadline = time.monotonic() + 60
        while not killed and time.monotonic() < deadline:
            for pid, keys in client.run(executing).values():
                if not keys:
                    continue
                item = job.items[int(keys[0].split("-")[1])]  # the engine's task keys: JOB-INDEX-RUN
                os.kill(pid, signal.SIGSTOP)
                if os.path.exists(item.outputs[0]):
                    os.kill(pid, signal.SIGCONT)
                    continue
                os.kill(pid, signal.SIGKILL)
                killed.update(pid=pid, item=item, ns=time.time_ns())
                return
            time.sleep(0.005)

    outcomes = collections.Counter()
    killer = threading.Thread(target=kill_a_worker_mid_item)
    killer.start()
    report = run_job(job, DaskEngine(address), progress=False,
                     on_outcome=lambda o: outcomes.update([(o.item.key, o.status)]))
    killer.join()
    assert killed, "no worker was seen running an item"
    assert (report.done, report.failed) == (6, 0)
    assert sorted(outcomes.values()) == [1] * 6 and {s for _, s in outcomes} == {"done"}
    assert os.stat(killed["item"].outputs[0]).st_mtime_ns > killed["ns"]  # the killed item was done again
    shards = sorted(out.rglob("*.npz"))
    assert len(shards) == 6 and all(load_shard(p)["mel"].size for p in shards)  # whole, readable shards
    assert no_temporaries(out) == []
    assert len(read_ledger(job.ledger_path)) == 6
    # the nanny replaced the killed process: the cluster has two workers again, one of them new
    client.wait_for_workers(2, timeout=30)
    now = set(client.run(os.getpid).values())
    assert killed["pid"] not in now and len(now - pids) == 1


def test_local_processes_replace_a_killed_one(synthetic_maestro, tmp_path):
    import multiprocessing

    out = tmp_path / "out"
    job, _, _ = prepare_job(synthetic_maestro, out)
    killed, before = [], {p.pid for p in multiprocessing.active_children()}  # e.g. the cluster's workers

    def kill_a_pool_process():
        deadline = time.monotonic() + 60
        while not killed and time.monotonic() < deadline:
            children = [p for p in multiprocessing.active_children() if p.pid not in before]
            if children and not any(out.rglob("*.npz")):
                os.kill(children[0].pid, signal.SIGKILL)
                killed.append(children[0].pid)
            time.sleep(0.01)

    killer = threading.Thread(target=kill_a_pool_process)
    killer.start()
    report = run_job(job, LocalEngine(2), progress=False)
    killer.join()
    assert killed and (report.done, report.failed) == (6, 0)
    assert len(list(out.rglob("*.npz"))) == 6 and no_temporaries(out) == []


def test_corpus_on_dask_equals_local(cluster, synthetic_maestro, tmp_path):
    from piano_transcription.corpus.builder import build_corpus
    from piano_transcription.midi import read_midi

    address, _ = cluster
    maps = tmp_path / "maps"
    maps.mkdir()
    for wav in sorted(synthetic_maestro.rglob("*train*.wav"))[:2]:
        shutil.copy(wav, maps / wav.name)
        notes = read_midi(wav.with_suffix(".midi"))
        (maps / wav.with_suffix(".tsv").name).write_text(
            "# onset,offset,note,velocity\n" + "".join(f"{a:.6f}\t{b:.6f}\t{int(p)}\t{int(v)}\n"
                                                        for a, b, p, v in notes))
    args = dict(splits={"train": {"midi": [], "maps": maps}}, counts={"train": 2}, mix={"maps": 1}, per_shard=1,
                progress=False)
    local = build_corpus(out_dir=tmp_path / "local", engine=LocalEngine(1), **args)
    dask = build_corpus(out_dir=tmp_path / "dask", engine=DaskEngine(address), **args)
    assert dask["splits"] == local["splits"] and len(dask["splits"]["train"]) == 2 and dask["failed"] == []
    for e in local["splits"]["train"].values():
        assert shards_equal(tmp_path / "dask" / e["shard"], tmp_path / "local" / e["shard"])
    # a corpus that a version before the engine rendered (no ledger) is resumed, not rendered again
    (tmp_path / "local" / ".corpus.done.jsonl").unlink()
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "local").rglob("*.npz")}
    again = build_corpus(out_dir=tmp_path / "local", engine=LocalEngine(1), **args)
    assert again["splits"] == local["splits"]
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "local").rglob("*.npz")} == stamps


def test_outputs_of_a_run_before_the_engine_are_adopted(synthetic_maestro, prepared, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(prepared, old)
    (old / ".prepare.done.jsonl").unlink()  # as a version before the engine left it: shards and manifest only
    stamps = {p: p.stat().st_mtime_ns for p in old.rglob("*.npz")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        manifest = prepare_dataset(synthetic_maestro, old, progress=False)
    assert {p: p.stat().st_mtime_ns for p in old.rglob("*.npz")} == stamps
    assert manifest["splits"] == read_manifest(prepared)["splits"] and len(read_ledger(old / ".prepare.done.jsonl")) == 6


def test_ledger_survives_a_torn_last_line(tmp_path):
    ledger = tmp_path / ".job.done.jsonl"
    ledger.write_text(json.dumps({"key": "a", "fingerprint": "1"}) + "\n" + json.dumps({"key": "b", "fingerprint": "2"})
                      + "\n" + '{"key": "c", "finger')  # the driver died while writing c's line
    assert sorted(read_ledger(ledger)) == ["a", "b"]


def test_slurm_job_script():
    pytest.importorskip("dask_jobqueue")
    engine = SlurmEngine(jobs=3, cores=8, memory="16GB", walltime="04:00:00", account="piano", partition="cpu",
                         processes=4)
    assert engine.threads() == 2 and engine.workers == 12
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the dashboard's port may be taken
        cluster = engine.slurm_cluster()
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    for line in ("#SBATCH -A piano", "#SBATCH -p cpu", "#SBATCH --cpus-per-task=8", "#SBATCH -t 04:00:00",
                 "#SBATCH --mem=15G", "export PIANO_TRANSCRIPTION_THREADS=2"):
        assert line in script, script
    assert "--nworkers 4" in script and "--nthreads 1" in script


def test_missing_cluster_extra_is_one_line(monkeypatch, tmp_path, capsys):
    import sys

    from piano_transcription.cli import main

    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(EngineError, match=r"cluster extra: pip install 'piano-transcription\[cluster\]'"):
        DaskEngine()
    assert main(["prepare", str(tmp_path), str(tmp_path / "out"), "--engine", "dask"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("piano-transcribe: ") and "[cluster]" in err and len(err.splitlines()) == 1


# ------------------------------------------------------------------------------------ transcription
TFLITE = str(DEFAULT_TFLITE)  # the light model: quick to load in every worker


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Four 5 s excerpts of the demo recording, and a corrupt file beside them."""
    import soundfile as sf

    from piano_transcription.assets import DEMO_AUDIO

    folder = tmp_path_factory.mktemp("clips")
    audio, sr = sf.read(DEMO_AUDIO, dtype="float32")
    for k, start in enumerate((0, 6, 12, 18)):
        sf.write(folder / f"clip{k}.flac", audio[start * sr:(start + 5) * sr], sr)
    (folder / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt nonsense" * 8)
    return folder


def midi_notes(path):
    import pretty_midi

    return sorted((n.pitch, round(n.start, 4), round(n.end, 4), n.velocity)
                  for n in pretty_midi.PrettyMIDI(str(path)).instruments[0].notes)


def test_batch_transcription_on_dask_equals_local(cluster, clips, tmp_path, capsys):
    from piano_transcription.cli import main

    from piano_transcription import batch

    address, client = cluster
    local, dask = tmp_path / "local", tmp_path / "dask"
    batch._PREDICTORS.clear()
    assert main([str(clips), "-o", str(local), "--tflite", os.path.relpath(TFLITE), "-q"]) == 1  # the corrupt file
    assert len(batch._PREDICTORS) == 1  # the model the command loaded to check it transcribed every file
    capsys.readouterr()
    assert main([str(clips), "-o", str(dask), "--tflite", TFLITE, "--engine", "dask", "--address", address]) == 1
    captured = capsys.readouterr()
    failures = json.loads((dask / ".transcribe.failures.json").read_text())
    assert [f["input"] for f in failures] == [str(clips / "corrupt.wav")], failures
    assert "corrupt.wav" in captured.err and "4 done" in captured.err and "1 failed" in captured.err
    assert captured.out.count(" notes, ") == 4
    for k in range(4):
        assert midi_notes(dask / f"clip{k}.mid") == midi_notes(local / f"clip{k}.mid") != []
    # each worker loaded the model once, however many files it transcribed
    loads = client.run(lambda: [key[:2] for key in __import__("piano_transcription.batch").batch._PREDICTORS])
    assert all(len(keys) == len(set(keys)) for keys in loads.values()) and sum(map(len, loads.values())) >= 1
    # a re-run skips what is done and leaves it alone
    stamps = {p: p.stat().st_mtime_ns for p in dask.glob("*.mid")}
    assert main([str(clips / f"clip{k}.flac") for k in range(4)]
                + ["-o", str(dask), "--tflite", TFLITE, "--engine", "dask", "--address", address]) == 0
    assert capsys.readouterr().out.count("up to date") == 4
    assert {p: p.stat().st_mtime_ns for p in dask.glob("*.mid")} == stamps
    assert not (dask / ".transcribe.failures.json").exists() and no_temporaries(dask) == []


def test_changed_model_invalidates_old_outputs(cluster, clips, tmp_path, capsys):
    from piano_transcription.cli import main
    from piano_transcription.predictor import thresholds_path

    address, _ = cluster
    model = tmp_path / "model.tflite"
    shutil.copy(TFLITE, model)
    shutil.copy(thresholds_path(TFLITE), thresholds_path(model))
    inputs = [str(clips / "clip0.flac"), str(clips / "clip1.flac")]
    run = inputs + ["-o", str(tmp_path / "out"), "--tflite", str(model), "--engine", "dask", "--address", address]
    assert main(run + ["-q"]) == 0
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "out").glob("*.mid")}
    shutil.copy(DEFAULT_TFLITE.with_name("default.fp16.tflite"), model)  # same path, other weights
    capsys.readouterr()
    assert main(run + ["-q"]) == 1  # not up to date any more: the old outputs are refused, not skipped
    assert capsys.readouterr().err.count("exists (use --overwrite") == 2
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert main(run + ["-q", "--overwrite"]) == 0
    assert all(p.stat().st_mtime_ns != stamps[p] for p in stamps)  # made again, with the new weights
    assert main(run) == 0 and capsys.readouterr().out.count("up to date") == 2
