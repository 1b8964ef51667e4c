"""Batch transcription as an engine job: many recordings, each to its MIDI (and on request its picture and score).

The ``transcribe`` job of :mod:`piano_transcription.engine` (``piano-transcribe folder/ -o out/ --engine dask``):
one item per recording, its outputs the files :func:`~piano_transcription.outputs.requested_outputs` names,
and one function, :func:`transcribe_item`, the command line's per-input work (transcribe, then write every
requested output or none) on whichever engine runs it.  The model loads once per worker process (per worker
thread, as TFLite interpreters are not shared between threads), never once per file: :func:`cached_predictor`
keeps it under its path and SHA-256, with the engine's share of the machine's cores as its threads.  The model's
SHA-256 (with its thresholds file) and the options are part of every item's fingerprint, so that a re-run
skips what the same model and options made and a changed model makes no old output count as done.
"""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from pathlib import Path

from .engine import Item, Job, item_progress, worker_threads
from .predictor import thresholds_path

JOB_NAME = "transcribe"

_PREDICTORS: dict = {}  # (model path, SHA-256, thread) -> Predictor, in each worker process


def model_digest(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a model file and of the thresholds file beside it (both decide the notes)."""
    h = hashlib.sha256()
    for p in (Path(path), thresholds_path(path)):
        if p.exists():
            with open(p, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        h.update(b"\0")
    return h.hexdigest()


def remember_predictor(predictor, digest: str) -> None:
    """Put an already loaded predictor in this thread's cache (the driver's model, on the local engine)."""
    _PREDICTORS[(str(Path(predictor.path).absolute()), digest, threading.get_ident())] = predictor


def cached_predictor(path: str, digest: str, threads: int | None = None):
    """The predictor of the model file at ``path`` with hash ``digest``, loaded once per process and thread,
    running on ``threads`` threads (None: the library's default)."""
    key = (str(Path(path).absolute()), digest, threading.get_ident())
    if key not in _PREDICTORS:
        from .predictor import TFLitePredictor, load_predictor

        if str(path).lower().endswith(".tflite"):
            _PREDICTORS[key] = TFLitePredictor(path, num_threads=threads)
        else:
            from .tf_env import limit_threads

            limit_threads(threads)
            _PREDICTORS[key] = load_predictor(path)
    return _PREDICTORS[key]


def transcription_options(onset_threshold=None, frame_threshold=None, offset_threshold=None, cleanup=None,
                          tempo_map: bool = True, durations: str | None = None) -> dict:
    """The options every item of a run shares (JSON-able: they enter the fingerprint); ``cleanup``: a
    :class:`~piano_transcription.cleanup.Cleanup`."""
    from .constants import DEFAULT_DURATIONS

    return {"onset_threshold": onset_threshold, "frame_threshold": frame_threshold,
            "offset_threshold": offset_threshold, "tempo_map": bool(tempo_map),
            "durations": durations or DEFAULT_DURATIONS,
            "cleanup": None if cleanup is None else {"min_note": cleanup.min_note,
                                                     "merge_within": cleanup.merge_within}}


def transcription_job(inputs: list[tuple[Path, str, dict[str, Path]]], outdir: str | os.PathLike,
                      model_path: str | os.PathLike, digest: str, options: dict, overwrite: bool = False,
                      progress: bool = False) -> Job:
    """The job for ``inputs`` ``(audio path, item key, {output kind: path})`` with the model at ``model_path``
    (hash ``digest``): ``overwrite`` redoes items that are up to date; ``progress``: per-file progress bars
    where the items run in the calling process."""
    model_path = str(Path(model_path).absolute())
    items = [Item(key, tuple(str(Path(p).absolute()) for p in outputs.values()), (str(Path(audio).absolute()),),
                  {"audio": str(Path(audio).absolute()), "title": Path(audio).name, "model": model_path,
                   "model_sha256": digest, "options": options,
                   "outputs": {kind: str(Path(p).absolute()) for kind, p in outputs.items()}})
             for audio, key, outputs in inputs]
    # local worker processes are spawned: TensorFlow (loaded here to check the model) does not survive a fork
    return Job(JOB_NAME, transcribe_item, items, Path(outdir), version={"model_sha256": digest}, force=overwrite,
               unit="file", progress=progress, spawn=True)


def transcribe_item(item: Item) -> dict:
    """The ``transcribe`` job's function: one recording to all of its requested outputs or none; returns
    ``{"notes", "tempo", "key", "seconds" (audio), "warnings"}`` (the warnings the recording raised)."""
    from .cleanup import DEFAULT_PRESET, Cleanup
    from .outputs import write_outputs
    from .transcribe import transcribe

    p = item.params
    predictor = cached_predictor(p["model"], p["model_sha256"], worker_threads())
    options = dict(p["options"])
    cleanup = options.pop("cleanup")
    outputs = {kind: Path(path) for kind, path in p["outputs"].items()}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = transcribe(p["audio"], predictor, progress=item_progress(), keep_rolls="plot" in outputs,
                            cleanup=Cleanup(**cleanup) if cleanup else DEFAULT_PRESET, **options)
        write_outputs(result, outputs, title=p["title"])
    return {"notes": len(result.notes), "tempo": float(result.tempo), "key": result.key,
            "seconds": float(result.seconds), "warnings": [str(w.message) for w in caught]}
