"""Clean-up of transcribed notes, with limits in seconds: very short notes and doubled onsets.

Two rules, applied after decoding: a note shorter than ``min_note`` seconds is dropped (ghost notes), and
a note that starts less than ``merge_within`` seconds after the previous onset of the same pitch is merged
into that note (a held note whose onset the model fired twice).  ``PRESETS`` names the values for clean
studio recordings and for noisy or reverberant rooms; the default is the one chosen on the real-recordings
validation set (``benchmarks/real_dev.py --cleanup``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .midi import END, PITCH, START, VELOCITY


@dataclass(frozen=True)
class Cleanup:
    """``min_note``: shortest note kept (s); ``merge_within``: re-onsets of a pitch closer than this (s) to its
    previous onset join the previous note.  Zero turns a rule off."""

    min_note: float = 0.0
    merge_within: float = 0.0

    def __post_init__(self):
        for name in ("min_note", "merge_within"):
            value = getattr(self, name)
            if not (np.isfinite(value) and 0.0 <= value <= 2.0):
                raise ValueError(f"{name} must be between 0 and 2 seconds, got {value!r}")


PRESETS = {
    "none": Cleanup(0.0, 0.0),
    "studio": Cleanup(min_note=0.0, merge_within=0.03),
    "room": Cleanup(min_note=0.05, merge_within=0.1),
}
DEFAULT_PRESET = "none"


def merge_reonsets(notes: np.ndarray, within: float) -> np.ndarray:
    """Merge a note into the previous note of its pitch when it starts less than ``within`` s after that
    note's onset (the merged note ends at the later end and keeps the louder velocity)."""
    if within <= 0 or len(notes) < 2:
        return notes
    out = []
    for pitch in np.unique(notes[:, PITCH]):
        rows = notes[notes[:, PITCH] == pitch]
        rows = rows[np.argsort(rows[:, START], kind="stable")]
        current = rows[0].copy()
        for row in rows[1:]:
            if row[START] - current[START] < within:
                current[END] = max(current[END], row[END])
                current[VELOCITY] = max(current[VELOCITY], row[VELOCITY])
            else:
                out.append(current)
                current = row.copy()
        out.append(current)
    out = np.asarray(out).reshape(-1, 4)
    return out[np.lexsort((out[:, PITCH], out[:, START]))]


def clean_notes(notes: np.ndarray, cleanup: Cleanup | str = DEFAULT_PRESET) -> np.ndarray:
    """Apply a :class:`Cleanup` (or the name of a preset) to notes ``[n, 4]``: merge first, then drop short notes."""
    if isinstance(cleanup, str):
        if cleanup not in PRESETS:
            raise ValueError(f"unknown clean-up preset {cleanup!r}; choose one of {', '.join(PRESETS)}")
        cleanup = PRESETS[cleanup]
    notes = merge_reonsets(notes, cleanup.merge_within)
    if cleanup.min_note > 0 and len(notes):
        notes = notes[notes[:, END] - notes[:, START] >= cleanup.min_note - 1e-9]
    return notes
