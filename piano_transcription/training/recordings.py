"""Folders of labelled recordings: audio files, each with a TSV of its notes beside it.

The layout of MAPS as shipped in ``../shared/data/maps`` (``X.flac`` or ``X.ogg`` with ``X.tsv``): one
header line starting with ``#``, then one row per note: ``onset`` (s), ``offset`` (s, sustain pedal
already applied), ``note`` (MIDI pitch), ``velocity`` (1..127), tab-separated.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio import AUDIO_EXTENSIONS
from ..midi import END, START, keep_piano_range, make_notes


class LabelError(ValueError):
    """A label file that cannot be used: unreadable, wrong columns, or no notes."""


def read_tsv_notes(path: str | os.PathLike) -> np.ndarray:
    """Notes ``[n, 4]`` (start s, end s, MIDI pitch, velocity) from a TSV label file."""
    path = Path(path)
    try:
        rows = np.loadtxt(path, delimiter="\t", comments="#", ndmin=2, dtype=np.float64)
    except (OSError, ValueError) as exc:
        raise LabelError(f"{path}: cannot read the note table ({exc})") from exc
    if rows.size == 0:
        raise LabelError(f"{path}: the note table holds no notes")
    if rows.shape[1] != 4:
        raise LabelError(f"{path}: expected 4 columns (onset, offset, note, velocity), found {rows.shape[1]}")
    if np.any(rows[:, END] < rows[:, START]):
        raise LabelError(f"{path}: a note ends before it starts")
    return keep_piano_range(make_notes(rows), source=str(path))


@dataclass(frozen=True)
class LabelledRecording:
    """One recording and its note table."""

    audio: Path
    labels: Path

    @property
    def name(self) -> str:
        return self.audio.stem


def labelled_recordings(folder: str | os.PathLike) -> list[LabelledRecording]:
    """Audio files under ``folder`` that have a ``.tsv`` beside them, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    out = []
    for audio in sorted(folder.rglob("*")):
        if audio.suffix.lower() in AUDIO_EXTENSIONS and audio.with_suffix(".tsv").exists():
            out.append(LabelledRecording(audio, audio.with_suffix(".tsv")))
    return out
