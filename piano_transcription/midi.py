"""Reading and writing MIDI, and the sustain pedal.

Notes travel between modules as a float64 array ``[n, 4]`` with the columns
``start`` (s), ``end`` (s), ``pitch`` (MIDI number) and ``velocity`` (1..127),
sorted by start time.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from .constants import MAX_MIDI_PITCH, MIN_MIDI_PITCH, SUSTAIN_CC, SUSTAIN_THRESHOLD

START, END, PITCH, VELOCITY = 0, 1, 2, 3


class MidiError(ValueError):
    """A MIDI file that cannot be used: missing, unreadable, or without notes."""


def make_notes(rows) -> np.ndarray:
    """Build a notes array ``[n, 4]`` (start s, end s, pitch, velocity) sorted by start, then pitch."""
    notes = np.asarray(rows, dtype=np.float64).reshape(-1, 4)
    if len(notes):
        notes = notes[np.lexsort((notes[:, PITCH], notes[:, START]))]
    return notes


def read_performance(path: str | os.PathLike) -> tuple[np.ndarray, list[tuple[float, int]]]:
    """The keys and the sustain pedal of a MIDI file: notes ``[n, 4]`` with the keys' own release
    times (no pedal applied) and the CC64 events ``(time s, value 0..127)``, all non-drum tracks merged.

    Notes outside the piano range A0..C8 are dropped with a warning.
    Raises :class:`MidiError` for a missing or unreadable file, or one without notes.
    """
    import pretty_midi

    path = Path(path)
    if not path.exists():
        raise MidiError(f"{path}: no such file")
    try:
        pm = pretty_midi.PrettyMIDI(str(path))
    except Exception as exc:
        raise MidiError(f"{path}: cannot read MIDI ({exc or type(exc).__name__})") from exc
    notes, pedal = [], []
    for inst in pm.instruments:
        if inst.is_drum:
            continue
        notes += [(n.start, n.end, n.pitch, n.velocity) for n in inst.notes]
        pedal += [(float(c.time), int(c.value)) for c in inst.control_changes if c.number == SUSTAIN_CC]
    notes = make_notes(notes)
    if len(notes) == 0:
        raise MidiError(f"{path}: the MIDI file holds no notes")
    return keep_piano_range(notes, source=str(path)), sorted(pedal)


def read_midi(path: str | os.PathLike, apply_sustain: bool = True) -> np.ndarray:
    """Read a MIDI file into a notes array, all non-drum tracks merged.

    Notes outside the piano range A0..C8 are dropped with a warning.  With ``apply_sustain``
    the sustain pedal (CC64) lengthens the notes (see :func:`apply_sustain_pedal`).
    Raises :class:`MidiError` for a missing or unreadable file, or one without notes.
    """
    notes, pedal = read_performance(path)
    if apply_sustain:
        notes = apply_sustain_pedal(notes, pedal_intervals(pedal, end_time=last_event_time(notes, pedal)))
    return notes


def last_event_time(notes: np.ndarray, pedal_events) -> float:
    """Time (s) of the last note-off or pedal event."""
    t = float(notes[:, END].max()) if len(notes) else 0.0
    return max([t] + [float(time) for time, _ in pedal_events])


def keep_piano_range(notes: np.ndarray, source: str = "MIDI") -> np.ndarray:
    """Drop (with a warning) notes whose pitch lies outside A0 (21) .. C8 (108)."""
    inside = (notes[:, PITCH] >= MIN_MIDI_PITCH) & (notes[:, PITCH] <= MAX_MIDI_PITCH)
    if not np.all(inside):
        warnings.warn(f"{source}: dropped {int((~inside).sum())} notes outside the piano range A0..C8", stacklevel=2)
    return notes[inside]


def pedal_intervals(events, end_time: float) -> np.ndarray:
    """Sustain-down intervals ``[k, 2]`` (down s, up s) from CC64 ``(time s, value)`` events.

    A value >= 64 is down.  A pedal still down at the end is released at ``end_time``.
    """
    intervals, down_at = [], None
    for time, value in sorted(events, key=lambda e: e[0]):
        if value >= SUSTAIN_THRESHOLD and down_at is None:
            down_at = float(time)
        elif value < SUSTAIN_THRESHOLD and down_at is not None:
            intervals.append((down_at, float(time)))
            down_at = None
    if down_at is not None:
        intervals.append((down_at, max(down_at, float(end_time))))
    return np.asarray(intervals, dtype=np.float64).reshape(-1, 2)


def apply_sustain_pedal(notes: np.ndarray, intervals: np.ndarray) -> np.ndarray:
    """Lengthen notes by the sustain pedal (the MAESTRO / Onsets-and-Frames convention).

    A note whose key is released while the pedal is down (``down <= key-up < up``; this also covers
    a pedal already down at note-on) lasts until the pedal goes up.  A key struck while the pedal is
    down ends every earlier note of the same pitch that is still sounding then (re-strike); a note
    cut to zero length that way is dropped.  Same-time events are ordered as in Magenta's
    ``apply_sustain_control_changes``: pedal down, pedal up, note on, note off.  Returns a new array.
    """
    out = notes.copy()
    if len(out) == 0 or len(intervals) == 0:
        return out

    def pedal_down_at(t: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(intervals[:, 0], t, side="right") - 1
        return idx, (idx >= 0) & (t < intervals[np.maximum(idx, 0), 1])

    idx, held = pedal_down_at(out[:, END])
    ends = np.where(held, intervals[np.maximum(idx, 0), 1], out[:, END])
    _, restrike = pedal_down_at(out[:, START])
    keep = np.ones(len(out), bool)
    for pitch in np.unique(out[:, PITCH]):
        rows = np.flatnonzero(out[:, PITCH] == pitch)
        rows = rows[np.argsort(out[rows, START], kind="stable")]
        sounding: list[int] = []
        for b in rows:
            start = out[b, START]
            sounding = [a for a in sounding if ends[a] > start or (ends[a] == start and out[a, START] == start)]
            if restrike[b]:
                for a in sounding:
                    ends[a] = start
                    keep[a] = out[a, START] < start
                sounding = []
            sounding.append(b)
    out[:, END] = ends
    return out[keep]


def notes_to_pretty_midi(notes: np.ndarray, program: int = 0, name: str = "Piano"):
    """A ``pretty_midi.PrettyMIDI`` with one instrument holding ``notes`` (seconds, MIDI pitch, velocity)."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=program, name=name)
    for start, end, pitch, vel in notes:
        inst.notes.append(pretty_midi.Note(velocity=int(np.clip(round(vel), 1, 127)), pitch=int(pitch),
                                           start=float(start), end=float(max(end, start + 1e-3))))
    pm.instruments.append(inst)
    return pm


def pedal_control_changes(intervals: np.ndarray) -> list:
    """Sustain-pedal intervals ``[k, 2]`` (down s, up s) as CC64 events: 127 when the pedal goes down, 0 when
    it comes up (``pretty_midi.ControlChange`` list, time-ordered)."""
    import pretty_midi

    events = []
    for down, up in np.asarray(intervals, np.float64).reshape(-1, 2):
        events += [pretty_midi.ControlChange(SUSTAIN_CC, 127, float(down)),
                   pretty_midi.ControlChange(SUSTAIN_CC, 0, float(max(up, down)))]
    return events


def write_midi(pm, path: str | os.PathLike) -> None:
    """Write a PrettyMIDI atomically."""
    from .io import atomic_path

    with atomic_path(path) as tmp:
        pm.write(str(tmp))
