"""MAESTRO: metadata, splits, cutting at quiet points, and the prepared (shard) data set.

Prepared layout (``prepare_dataset``)::

    OUT/manifest.json                     splits -> pieces (id, shard, segments, frames, seconds)
    OUT/{train,validation,test}/ID.npz    one shard per piece

A shard holds ``mel`` (float16 ``[segments, frames, 229]``), ``onsets`` / ``offsets`` /
``frames`` (uint8 ``[segments, frames, 88]``), ``velocities`` (float16) and ``lengths`` (valid
frames per segment).  Train and validation pieces are cut at quiet points into 5-20 s segments,
each zero-padded to 626 frames (20 s); test pieces stay whole (one segment).
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..constants import (HOP_LENGTH, N_KEYS, SAMPLE_RATE, SEGMENT_FRAMES, SEGMENT_MIN_SECONDS, SEGMENT_SECONDS,
                        frames_for_samples)
from ..midi import START

MAESTRO_V3_URL = "https://storage.googleapis.com/magentadata/datasets/maestro/v3.0.0/maestro-v3.0.0.zip"
SPLITS = ("train", "validation", "test")
COLUMNS = ("canonical_composer", "canonical_title", "split", "year", "midi_filename", "audio_filename", "duration")
# Column names used by other releases or by hand-made tables, mapped to MAESTRO v2/v3's names.
COLUMN_ALIASES = {"composer": "canonical_composer", "title": "canonical_title", "midi": "midi_filename",
                  "audio": "audio_filename", "wav_filename": "audio_filename", "split_name": "split"}


class DatasetError(ValueError):
    """A MAESTRO folder or prepared data set that cannot be used."""


# --------------------------------------------------------------------------------------- metadata
def find_metadata(root: str | os.PathLike) -> Path:
    """The metadata file in a MAESTRO folder (v3, v2 or v1; CSV preferred over JSON)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder")
    for pattern in ("maestro-v*.csv", "maestro-v*.json", "*.csv"):
        found = sorted(root.glob(pattern), reverse=True)
        if found:
            return found[0]
    raise DatasetError(f"{root}: no MAESTRO metadata (maestro-v*.csv or .json) found")


def read_metadata(path: str | os.PathLike):
    """MAESTRO metadata (CSV or JSON, v1 / v2 / v3) as a pandas DataFrame with MAESTRO's column names.

    v1/v2 JSON is a list of records, v3 JSON maps each column to ``{row: value}``; both are read.
    """
    import pandas as pd

    path = Path(path)
    if path.is_dir() or not path.suffix:
        path = find_metadata(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file")
    if path.suffix == ".json":
        raw = json.loads(path.read_text())
        df = pd.DataFrame(raw) if isinstance(raw, list) else pd.DataFrame({k: pd.Series(v) for k, v in raw.items()})
    else:
        df = pd.read_csv(path)
    df = df.rename(columns={k: v for k, v in COLUMN_ALIASES.items() if k in df.columns and v not in df.columns})
    missing = [c for c in ("split", "midi_filename", "audio_filename") if c not in df.columns]
    if missing:
        raise DatasetError(f"{path}: metadata lacks the columns {missing}")
    bad = sorted(set(df["split"]) - set(SPLITS))
    if bad:
        raise DatasetError(f"{path}: unknown split names {bad}")
    df = df.reset_index(drop=True)
    df["id"] = [piece_id(p) for p in df["audio_filename"]]
    return df


def piece_id(audio_filename: str) -> str:
    """A file-name-safe identifier of a piece from its audio file name."""
    stem = str(audio_filename).rsplit(".", 1)[0]
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)


def missing_files(df, root: str | os.PathLike) -> list[str]:
    """Referenced audio / MIDI files that do not exist under ``root``."""
    root = Path(root)
    return [f for col in ("audio_filename", "midi_filename") for f in df[col] if not (root / f).exists()]


def split_summary(df):
    """Pieces, hours and composers per split (a DataFrame)."""
    import pandas as pd

    g = df.groupby("split")
    out = pd.DataFrame({"pieces": g.size()})
    if "duration" in df:
        out["hours"] = g["duration"].sum() / 3600.0
    if "canonical_composer" in df:
        out["composers"] = g["canonical_composer"].nunique()
    return out.reindex([s for s in SPLITS if s in out.index])


# ------------------------------------------------------------------------------------ split points
def silent_gaps(notes: np.ndarray, total: float) -> list[tuple[float, float]]:
    """Intervals (s) within ``[0, total]`` during which no note sounds."""
    gaps, cursor = [], 0.0
    for start, end in notes[np.argsort(notes[:, START]), :2]:
        if start > cursor:
            gaps.append((cursor, float(start)))
        cursor = max(cursor, float(end))
    if cursor < total:
        gaps.append((cursor, total))
    return gaps


def quietest_time(samples: np.ndarray, sr: int, lo: float, hi: float, window: float = 0.1) -> float:
    """Time (s) in ``[lo, hi]`` whose surrounding ``window`` of audio has the lowest RMS."""
    hop = max(int(window * sr / 2), 1)
    a, b = int(lo * sr), int(hi * sr)
    if b - a <= 2 * hop:
        return (lo + hi) / 2
    seg = samples[a:b].astype(np.float64)
    n = (len(seg) - 2 * hop) // hop + 1
    energies = np.array([np.mean(seg[i * hop: i * hop + 2 * hop] ** 2) for i in range(n)])
    return lo + (int(np.argmin(energies)) * hop + hop) / sr


def find_split_points(notes: np.ndarray, samples: np.ndarray, sr: int = SAMPLE_RATE,
                      min_length: float = SEGMENT_MIN_SECONDS, max_length: float = SEGMENT_SECONDS) -> list[float]:
    """Cut points (s, including 0 and the end) giving segments of ``min_length``..``max_length`` s.

    Greedy, like Magenta's ``find_split_points``: from the last cut, take the latest moment with
    no sounding note in ``[last + min_length, last + max_length]``; if there is none, the quietest
    moment of the audio in that range.  Cuts snap down to the frame grid (multiples of 512 samples),
    so a segment's frames line up with the piece's label frames.  The last segment may be shorter
    than ``min_length`` when the piece is.
    """
    total = len(samples) / sr
    gaps = silent_gaps(notes, total) if len(notes) else [(0.0, total)]
    points = [0.0]
    while total - points[-1] > max_length:
        lo, hi = points[-1] + min_length, points[-1] + max_length
        # prefer the middle of the latest silent gap inside the window, if any
        inside = [(max(g0, lo), min(g1, hi)) for g0, g1 in gaps if g1 > lo and g0 < hi]
        cut = (inside[-1][0] + inside[-1][1]) / 2 if inside else quietest_time(samples, sr, lo, hi)
        cut = min(max(snap_to_grid(cut), snap_to_grid(lo, up=True)), snap_to_grid(hi))
        points.append(cut)
    points.append(total)
    return points


def snap_to_grid(t: float, up: bool = False) -> float:
    """``t`` (s) rounded down (or ``up``) to the frame grid (multiples of 512 samples at 16 kHz)."""
    hop_s = HOP_LENGTH / SAMPLE_RATE
    return float((np.ceil(t / hop_s - 1e-9) if up else np.floor(t / hop_s + 1e-9)) * hop_s)


# ---------------------------------------------------------------------------------------- pieces
@dataclass
class Example:
    """One piece or segment: log-mel ``[frames, 229]`` and its label rolls on the same grid."""

    mel: np.ndarray
    rolls: "object"  # labels.Rolls
    length: int  # valid (unpadded) frames
    pedal: np.ndarray | None = None  # [frames, 3] sustain-pedal labels (labels.pedal_rolls); None: unknown
    keys: np.ndarray | None = None  # [frames, 88] key-down labels (labels.key_rolls); None: unknown


def piece_examples(audio_path, midi_path, split: str) -> list[Example]:
    """Load one piece and turn it into training examples (segments) or one whole test example."""
    from ..audio import load_audio, log_mel
    from ..midi import apply_sustain_pedal, last_event_time, pedal_intervals, read_performance
    from .labels import key_rolls, notes_to_rolls, pedal_rolls

    samples = load_audio(audio_path)
    keys, pedal_events = read_performance(midi_path)
    intervals = pedal_intervals(pedal_events, last_event_time(keys, pedal_events))
    notes = apply_sustain_pedal(keys, intervals)  # what read_midi gives, without reading the file again
    n_frames = frames_for_samples(len(samples))
    rolls = notes_to_rolls(notes, n_frames=n_frames)
    pedal = pedal_rolls(intervals, n_frames)
    held = key_rolls(keys, n_frames)
    if split == "test":
        return [Example(log_mel(samples), rolls, n_frames, pedal, held)]
    examples = []
    points = find_split_points(notes, samples)
    pad_to = int(SEGMENT_SECONDS * SAMPLE_RATE)
    for a, b in zip(points[:-1], points[1:]):
        s0, s1 = int(round(a * SAMPLE_RATE)), int(round(b * SAMPLE_RATE))
        seg = samples[s0:s1]
        if len(seg) < HOP_LENGTH:
            continue
        padded = np.zeros(pad_to, np.float32)
        padded[: min(len(seg), pad_to)] = seg[:pad_to]
        f0 = s0 // HOP_LENGTH
        length = min(frames_for_samples(len(seg)), SEGMENT_FRAMES)
        seg_rolls = rolls.slice(f0, f0 + length).padded(SEGMENT_FRAMES)
        seg_pedal = np.zeros((SEGMENT_FRAMES, 3), np.uint8)
        seg_pedal[:length] = pedal[f0: f0 + length][:SEGMENT_FRAMES]
        seg_keys = np.zeros((SEGMENT_FRAMES, N_KEYS), np.uint8)
        seg_keys[:length] = held[f0: f0 + length][:SEGMENT_FRAMES]
        examples.append(Example(log_mel(padded), seg_rolls, length, seg_pedal, seg_keys))
    return examples


SHARD_VERSION = 1  # the layout save_shard writes: a new layout makes the prepare job redo old shards


REGRESSION_ROLLS = ("onset_regression", "offset_regression")  # 0..1 targets, stored as uint8 codes
REGRESSION_LEVELS = 255


def regression_codes(roll: np.ndarray) -> np.ndarray:
    """A regression target roll (0..1) as uint8 codes (steps of 1/255)."""
    return np.round(np.clip(roll, 0.0, 1.0) * REGRESSION_LEVELS).astype(np.uint8)


def save_shard(path: str | os.PathLike, examples: list[Example]) -> None:
    """Write examples of equal frame count to a compressed ``.npz`` shard, atomically."""
    from ..io import atomic_path

    regression = {}
    if all(e.rolls.onset_regression is not None and e.rolls.offset_regression is not None for e in examples):
        regression = {k: np.stack([regression_codes(getattr(e.rolls, k)) for e in examples])
                      for k in REGRESSION_ROLLS}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(
                f,
                **regression,
                mel=np.stack([e.mel for e in examples]).astype(np.float16),
                onsets=np.stack([e.rolls.onsets for e in examples]).astype(np.uint8),
                offsets=np.stack([e.rolls.offsets for e in examples]).astype(np.uint8),
                frames=np.stack([e.rolls.frames for e in examples]).astype(np.uint8),
                velocities=np.stack([e.rolls.velocities for e in examples]).astype(np.float16),
                lengths=np.array([e.length for e in examples], np.int32),
                pedal=np.stack([np.zeros((len(e.mel), 3), np.uint8) if e.pedal is None else e.pedal
                                for e in examples]).astype(np.uint8),
                pedal_mask=np.array([e.pedal is not None for e in examples], np.uint8),
                keys=np.stack([np.zeros((len(e.mel), N_KEYS), np.uint8) if e.keys is None else e.keys
                               for e in examples]).astype(np.uint8),
                keys_mask=np.array([e.keys is not None for e in examples], np.uint8),
            )


def load_shard(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a shard written by :func:`save_shard` (mel as float32, rolls as float32).

    ``pedal`` ``[n, frames, 3]`` and ``pedal_mask`` ``[n]`` (1 where the pedal labels are known) are
    zeros for shards written before the pedal labels existed; so are ``keys`` ``[n, frames, 88]`` and
    ``keys_mask`` ``[n]`` for shards written before the key labels.  ``onset_regression`` and
    ``offset_regression`` ``[n, frames, 88]`` (0..1) are there only in shards written since they exist."""
    with np.load(path) as z:
        out = {k: z[k] for k in z.files}
    for k in ("mel", "onsets", "offsets", "frames", "velocities"):
        out[k] = out[k].astype(np.float32)
    n, frames = out["mel"].shape[:2]
    out["pedal"] = out["pedal"].astype(np.float32) if "pedal" in out else np.zeros((n, frames, 3), np.float32)
    out["pedal_mask"] = out["pedal_mask"].astype(np.float32) if "pedal_mask" in out else np.zeros(n, np.float32)
    out["keys"] = out["keys"].astype(np.float32) if "keys" in out else np.zeros((n, frames, N_KEYS), np.float32)
    out["keys_mask"] = out["keys_mask"].astype(np.float32) if "keys_mask" in out else np.zeros(n, np.float32)
    for k in REGRESSION_ROLLS:  # absent from shards written before them
        if k in out:
            out[k] = out[k].astype(np.float32) / REGRESSION_LEVELS
    return out


def _prepare_piece(audio_path: str, midi_path: str, split: str, shard: str) -> dict:
    examples = piece_examples(audio_path, midi_path, split)
    if not examples:
        raise DatasetError(f"{audio_path}: no usable audio")
    save_shard(shard, examples)
    frames = int(sum(e.length for e in examples))
    return {"segments": len(examples), "frames": frames}


def prepare_item(item) -> dict:
    """The ``prepare`` job's function (:mod:`piano_transcription.engine`): one piece into its shard; the
    result adds the piece's audio seconds (``seconds``) to the manifest entry."""
    p = item.params
    info = _prepare_piece(p["audio"], p["midi"], p["split"], item.outputs[0])
    return {**info, "seconds": info["frames"] * HOP_LENGTH / SAMPLE_RATE}


def prepare_job(maestro_dir: str | os.PathLike, out_dir: str | os.PathLike, splits=SPLITS, limit: int | None = None):
    """The ``prepare`` job's plan (one item per piece whose files exist) and the metadata behind it:
    ``(job, {item key: metadata row}, missing file names)``."""
    from ..engine import Item, Job

    maestro_dir, out_dir = Path(maestro_dir).absolute(), Path(out_dir).absolute()  # workers may run elsewhere
    df = read_metadata(maestro_dir)
    missing = set(missing_files(df, maestro_dir))
    items, rows = [], {}
    for split in splits:
        selected = df[df["split"] == split]
        for row in (selected.head(limit) if limit else selected).itertuples():
            if row.audio_filename in missing or row.midi_filename in missing:
                continue
            audio, midi = str(maestro_dir / row.audio_filename), str(maestro_dir / row.midi_filename)
            key = f"{split}/{row.id}"
            items.append(Item(key, (str(out_dir / split / f"{row.id}.npz"),), (audio, midi),
                              {"audio": audio, "midi": midi, "split": split}))
            rows[key] = row
    return Job("prepare", prepare_item, items, out_dir, version={"shard": SHARD_VERSION}), rows, missing


def prepare_dataset(maestro_dir: str | os.PathLike, out_dir: str | os.PathLike, workers: int = 2,
                    splits=SPLITS, limit: int | None = None, progress: bool = True, engine=None) -> dict:
    """Prepare a MAESTRO-layout folder into shards plus ``manifest.json``; return the manifest.

    The ``prepare`` job of :mod:`piano_transcription.engine`: pieces run on ``engine`` (default: ``workers``
    local processes; memory: one piece per worker) and a re-run skips the pieces whose shard is up to date
    (same audio and MIDI files); shards and the manifest are written atomically.  Pieces whose files are
    missing are reported (a warning) and skipped; pieces that fail are listed under ``failed`` in the manifest
    and in ``.prepare.failures.json``.  ``limit`` keeps the first N pieces per split.
    """
    from ..engine import LocalEngine, named, run_job
    from ..io import write_json

    maestro_dir, out_dir = Path(maestro_dir), Path(out_dir)
    job, rows, missing = prepare_job(maestro_dir, out_dir, splits, limit)
    if missing:
        warnings.warn(f"{len(missing)} referenced files are missing under {maestro_dir}, e.g. {sorted(missing)[:3]}",
                      stacklevel=2)
    manifest_path = out_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    manifest.setdefault("source", str(maestro_dir))
    manifest.setdefault("splits", {})
    for split in splits:
        manifest["splits"].setdefault(split, {})
    errors = []

    def adopt(item) -> dict | None:  # a shard that a version before the engine wrote and listed
        entry = manifest["splits"][item.params["split"]].get(rows[item.key].id)
        if entry is None or "segments" not in entry or "frames" not in entry:
            return None
        return {"segments": entry["segments"], "frames": entry["frames"],
                "seconds": entry["frames"] * HOP_LENGTH / SAMPLE_RATE}

    job.adopt = adopt

    def record(outcome) -> None:
        split, row = outcome.item.params["split"], rows[outcome.item.key]
        if outcome.status == "failed":
            errors.append(named(row.audio_filename, outcome.reason))
            return
        info = {k: v for k, v in outcome.result.items() if k != "seconds"}
        manifest["splits"][split][row.id] = dict(shard=str(Path(outcome.item.outputs[0]).relative_to(job.folder)),
                                                 **info, audio=row.audio_filename, midi=row.midi_filename)

    def save() -> None:
        manifest["failed"] = errors  # this run's failures (a re-run retries them)
        write_json(manifest_path, manifest)

    run_job(job, engine or LocalEngine(workers), progress=progress, on_outcome=record, checkpoint=save)
    if errors:
        warnings.warn("pieces that failed: " + "; ".join(errors), stacklevel=2)
    return manifest


def read_manifest(prepared_dir: str | os.PathLike) -> dict:
    """The manifest of a prepared data set."""
    path = Path(prepared_dir) / "manifest.json"
    if not path.exists():
        raise DatasetError(f"{prepared_dir}: not a prepared data set (no manifest.json); run prepare_dataset first")
    return json.loads(path.read_text())


def shard_paths(prepared_dir: str | os.PathLike, split: str) -> list[Path]:
    """Paths of a split's shards, in manifest order."""
    manifest = read_manifest(prepared_dir)
    return [Path(prepared_dir) / e["shard"] for e in manifest["splits"].get(split, {}).values()]


def iter_examples(prepared_dir: str | os.PathLike, split: str):
    """Yield ``(piece_id, shard dict)`` for each prepared piece of a split, one shard in memory at a time."""
    manifest = read_manifest(prepared_dir)
    for pid, e in manifest["splits"].get(split, {}).items():
        yield pid, load_shard(Path(prepared_dir) / e["shard"])


def download_maestro(dest_dir: str | os.PathLike, url: str = MAESTRO_V3_URL, extract: bool = True) -> Path:
    """Download (resumable) and unpack MAESTRO v3 (about 100 GB) into ``dest_dir``; return its folder.

    Raises :class:`piano_transcription.io.DownloadError` with a clear message when offline.
    """
    import zipfile

    from ..io import download

    dest_dir = Path(dest_dir)
    archive = download(url, dest_dir / url.rsplit("/", 1)[1])
    target = dest_dir / "maestro-v3.0.0"
    if extract and not (target / "maestro-v3.0.0.csv").exists():
        with zipfile.ZipFile(archive) as z:
            z.extractall(dest_dir)
    return target
