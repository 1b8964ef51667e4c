"""Evaluating a model on a prepared split: frame and note metrics per piece, averaged over pieces.

Test pieces are whole pieces, compared with the notes of their MIDI file (sustain applied), as in
the papers.  Validation (and training) segments are compared with notes decoded from their label
rolls (times on the 32 ms frame grid), since a segment has no MIDI file of its own.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from ..constants import DEFAULT_THRESHOLD, FRAMES_PER_SECOND, MIN_MIDI_PITCH, N_KEYS, PEDAL_CHANNELS
from ..midi import END, PITCH, START, VELOCITY


def label_notes(onsets: np.ndarray, frames: np.ndarray, velocities: np.ndarray) -> np.ndarray:
    """Reference notes from label rolls (the decoder on the 0/1 labels); velocities as 1..127."""
    from ..decode import decode_notes

    notes = decode_notes(frames.astype(np.float32), onsets.astype(np.float32), None, DEFAULT_THRESHOLD,
                         DEFAULT_THRESHOLD)
    if len(notes):
        starts = np.round(notes[:, START] * FRAMES_PER_SECOND).astype(int)
        keys = notes[:, PITCH].astype(int) - MIN_MIDI_PITCH
        notes[:, VELOCITY] = np.maximum(velocities[starts, keys] * 127.0, 1.0)
    return notes


def piece_metrics(rolls: dict, ref_notes: np.ndarray, ref_frames: np.ndarray, onset_threshold=DEFAULT_THRESHOLD,
                  frame_threshold=DEFAULT_THRESHOLD) -> dict[str, float]:
    """Frame and note metrics of one piece's predicted rolls against its reference."""
    from ..decode import decode_notes, per_key
    from .metrics import frame_metrics, note_metrics

    est_notes = decode_notes(rolls["frame"], rolls["onset"], rolls["velocity"], onset_threshold, frame_threshold)
    est_frames = (rolls["frame"] >= per_key(frame_threshold)) | (rolls["onset"] >= per_key(onset_threshold))
    return {**frame_metrics(ref_frames, est_frames), **note_metrics(ref_notes, est_notes)}


def score_notes(ref_notes: np.ndarray, est_notes: np.ndarray, n_frames: int) -> dict[str, float]:
    """Note metrics (mir_eval, the papers' settings) and frame metrics of transcribed notes against reference
    notes, both drawn on the 32 ms frame grid over ``n_frames`` frames (the same rule for every system)."""
    from .labels import notes_to_rolls
    from .metrics import frame_metrics, note_metrics

    ref_roll = notes_to_rolls(ref_notes, n_frames=n_frames).frames
    est_roll = notes_to_rolls(est_notes, n_frames=n_frames).frames if len(est_notes) else np.zeros_like(ref_roll)
    return {**note_metrics(ref_notes, est_notes), **frame_metrics(ref_roll, est_roll)}


def predict_split(model, prepared_dir, split: str, progress: bool = True, limit: int | None = None):
    """Yield one dict per example: ``piece``, ``segment``, predicted ``rolls`` and the reference
    ``ref_notes``, ``ref_frames``, ``ref_onsets``, ``ref_pedal`` and ``ref_keys`` (with ``pedal_known`` and
    ``keys_known``: whether the source had those labels)."""
    from tqdm.auto import tqdm

    from ..inference import predict_mel
    from .maestro import iter_examples, read_manifest
    from ..midi import read_midi

    manifest = read_manifest(prepared_dir)
    entries = manifest["splits"].get(split, {})
    items = itertools.islice(iter_examples(prepared_dir, split), limit)  # one shard in memory at a time
    for pid, shard in tqdm(items, total=min(len(entries), limit or len(entries)), desc=f"evaluate {split}",
                           disable=not progress):
        for k, length in enumerate(shard["lengths"]):
            length = int(length)
            rolls = predict_mel(model, shard["mel"][k][:length])
            ref_frames = shard["frames"][k][:length]
            midi = entries[pid].get("midi")
            source = Path(manifest.get("source", "")) / midi if midi else None
            if split == "test" and len(shard["lengths"]) == 1 and source is not None and source.exists():
                ref_notes = read_midi(source)
            else:
                ref_notes = label_notes(shard["onsets"][k][:length], ref_frames, shard["velocities"][k][:length])
            yield dict(piece=pid, segment=k, rolls=rolls, ref_notes=ref_notes, ref_frames=ref_frames,
                       ref_onsets=shard["onsets"][k][:length], ref_pedal=shard["pedal"][k][:length],
                       pedal_known=bool(shard["pedal_mask"][k]), ref_keys=shard["keys"][k][:length],
                       keys_known=bool(shard["keys_mask"][k]))


def evaluate(model, prepared_dir, split: str = "test", onset_threshold=DEFAULT_THRESHOLD,
             frame_threshold=DEFAULT_THRESHOLD,
             progress: bool = True, limit: int | None = None):
    """Per-example metrics (a pandas DataFrame, one row per piece or segment) and their mean (dict)."""
    import pandas as pd

    from .metrics import mean_metrics

    rows = []
    for ex in predict_split(model, prepared_dir, split, progress, limit):
        rows.append({"piece": ex["piece"], "segment": ex["segment"],
                     **piece_metrics(ex["rolls"], ex["ref_notes"], ex["ref_frames"], onset_threshold, frame_threshold)})
    df = pd.DataFrame(rows)
    return df, mean_metrics([{k: v for k, v in r.items() if k not in ("piece", "segment")} for r in rows])


def evaluate_pedal(examples, threshold: float = DEFAULT_THRESHOLD, onset_threshold: float | None = None) -> dict[str, float]:
    """Mean sustain-pedal scores (:func:`~piano_transcription.training.metrics.pedal_metrics`) over the
    examples from :func:`predict_split` that have pedal labels and a pedal prediction."""
    from ..decode import decode_pedal
    from .metrics import mean_metrics, pedal_metrics

    rows = []
    for ex in examples:
        if not ex.get("pedal_known") or "pedal" not in ex["rolls"]:
            continue
        ref = ex["ref_pedal"]
        ref_intervals = decode_pedal(ref, DEFAULT_THRESHOLD, min_duration=0.0, onset_threshold=DEFAULT_THRESHOLD)
        est = ex["rolls"]["pedal"]
        down = PEDAL_CHANNELS.index("frame")
        kw = {} if onset_threshold is None else {"onset_threshold": onset_threshold}
        rows.append(pedal_metrics(ref_intervals, decode_pedal(est, threshold, **kw), ref[:, down] > 0,
                                  est[:, down] >= threshold))
    return mean_metrics(rows)


def octave_groups() -> list[np.ndarray]:
    """Key indices (0..87) grouped by octave of the piano (A0-B0, C1-B1, ..., C8)."""
    pitches = np.arange(N_KEYS) + MIN_MIDI_PITCH
    octave = pitches // 12 - 1
    return [np.flatnonzero(octave == o) for o in np.unique(octave)]


def tune_thresholds(examples: list[dict], candidates=np.round(np.arange(0.1, 0.95, 0.05), 2)) -> dict[str, np.ndarray]:
    """Per-octave onset and frame thresholds that maximise F1 on (validation) examples.

    ``examples``: dicts from :func:`predict_split` (``rolls``, ``ref_onsets``, ``ref_frames``).  For each
    octave of keys, the onset threshold maximises the frame-level F1 of the onset roll against the
    onset labels, and the frame threshold the F1 of the frame roll.  Returns ``{"onset": [88], "frame": [88]}``.
    """
    out = {"onset": np.full(N_KEYS, DEFAULT_THRESHOLD), "frame": np.full(N_KEYS, DEFAULT_THRESHOLD)}
    for name, ref_key in (("onset", "ref_onsets"), ("frame", "ref_frames")):
        for keys in octave_groups():
            best, best_f = DEFAULT_THRESHOLD, -1.0
            for t in candidates:
                tp = fp = fn = 0.0
                for ex in examples:
                    est = ex["rolls"][name][:, keys] >= t
                    ref = ex[ref_key][:, keys] > 0
                    tp += np.sum(est & ref)
                    fp += np.sum(est & ~ref)
                    fn += np.sum(~est & ref)
                f = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
                if f > best_f:
                    best, best_f = float(t), f
            out[name][keys] = best
    return out


def false_positives_per_octave(examples: list[dict], onset_threshold=DEFAULT_THRESHOLD,
                               frame_threshold=DEFAULT_THRESHOLD) -> np.ndarray:
    """Transcribed notes that match no reference note (mir_eval onset matching, 50 ms), counted per
    piano octave (index ``pitch // 12 - 1``: 0 = A0-B0 ... 8 = C8) over ``examples`` from :func:`predict_split`."""
    import mir_eval

    from ..decode import decode_notes

    counts = np.zeros(len(octave_groups()), int)
    for ex in examples:
        est = decode_notes(ex["rolls"]["frame"], ex["rolls"]["onset"], None, onset_threshold, frame_threshold)
        ref = ex["ref_notes"]
        matched = set()
        if len(est) and len(ref):
            pairs = mir_eval.transcription.match_notes(
                ref[:, START:END + 1], mir_eval.util.midi_to_hz(ref[:, PITCH]), est[:, START:END + 1],
                mir_eval.util.midi_to_hz(est[:, PITCH]), offset_ratio=None)
            matched = {j for _, j in pairs}
        for j, pitch in enumerate(est[:, PITCH].astype(int)):
            if j not in matched:
                counts[pitch // 12 - 1] += 1
    return counts


def tune_and_save(model_path, prepared_dir, split: str = "validation", limit: int | None = None) -> dict:
    """Tune per-octave thresholds of a model on a prepared split and write them beside the model
    (``X.thresholds.json``, read by the transcription code); return them."""
    from ..io import write_json
    from ..model import load_model
    from ..predictor import read_sidecar, thresholds_path

    examples = list(predict_split(load_model(model_path), prepared_dir, split, limit=limit))
    tuned = tune_thresholds(examples)
    write_json(thresholds_path(model_path), {**read_sidecar(model_path),  # the model's timing and offset stay
                                             **{k: [round(float(x), 3) for x in v] for k, v in tuned.items()}})
    return tuned
