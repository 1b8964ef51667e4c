"""Procedurally generated piano performances (MIDI) for the embedded data set.

Each piece strings together bars of different textures (block chords, scale runs,
arpeggios, melody over an accompaniment, repeated notes, leaps across the keyboard)
in a random key and tempo, with a dynamics curve, timing jitter, staccato and legato,
and sustain pedal changes.  Everything is seeded and reproducible.
"""

from __future__ import annotations

import numpy as np

from ..constants import MAX_MIDI_PITCH, MIN_MIDI_PITCH
from ..midi import make_notes

MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])
MINOR = np.array([0, 2, 3, 5, 7, 8, 10])


def _scale_pitches(tonic: int, mode: np.ndarray) -> np.ndarray:
    """All piano pitches of the scale with pitch class ``tonic``."""
    pcs = (tonic + mode) % 12
    return np.array([p for p in range(MIN_MIDI_PITCH, MAX_MIDI_PITCH + 1) if p % 12 in pcs])


def _nearest_index(scale: np.ndarray, pitch: float) -> int:
    return int(np.argmin(np.abs(scale - pitch)))


def compose(seed: int, duration: float = 30.0) -> tuple[np.ndarray, list[tuple[float, int]]]:
    """A random performance of about ``duration`` seconds.

    Returns ``(notes [n, 4], pedal_events)``: notes in seconds / MIDI pitch / velocity
    *before* the pedal is applied (key-up times), and CC64 ``(time s, value)`` events.
    """
    rng = np.random.default_rng(seed)
    tonic = int(rng.integers(12))
    scale = _scale_pitches(tonic, MAJOR if rng.random() < 0.6 else MINOR)
    beat = 60.0 / rng.uniform(60, 150)
    bar = 4 * beat
    notes: list[tuple[float, float, int, int]] = []
    pedal: list[tuple[float, int]] = []
    t = 0.3
    centre = rng.uniform(55, 72)
    while t + bar <= duration:
        loud = np.clip(64 + 40 * np.sin(t / duration * np.pi * rng.uniform(1, 3)) + rng.normal(0, 8), 15, 120)
        centre = float(np.clip(centre + rng.normal(0, 7), 36, 90))
        texture = rng.choice(["chords", "run", "arpeggio", "melody", "repeat", "leaps"])
        use_pedal = rng.random() < 0.55

        def add(start, length, pitch, vel=None):
            pitch = int(np.clip(pitch, MIN_MIDI_PITCH, MAX_MIDI_PITCH))
            v = int(np.clip((loud if vel is None else vel) + rng.normal(0, 6), 8, 127))
            s = start + rng.normal(0, 0.008)
            notes.append((max(s, 0.0), max(s, 0.0) + max(length, 0.04), pitch, v))

        root = _nearest_index(scale, centre)
        staccato = rng.random() < 0.25
        if texture == "chords":
            n = int(rng.choice([1, 2, 4]))
            for k in range(n):
                start, step = t + k * bar / n, bar / n
                idx = root + int(rng.integers(-2, 3))
                chord = [scale[np.clip(idx + d, 0, len(scale) - 1)] for d in (0, 2, 4, 7)[: int(rng.integers(2, 5))]]
                bass = scale[max(idx - 7 - int(rng.integers(0, 5)), 0)]
                length = step * (0.3 if staccato else 0.95)
                for p in chord:
                    add(start, length, p)
                add(start, length, bass, loud + 5)
        elif texture == "run":
            n = int(rng.choice([8, 12, 16]))
            direction = rng.choice([-1, 1])
            for k in range(n):
                idx = int(np.clip(root + direction * k, 0, len(scale) - 1))
                add(t + k * bar / n, bar / n * (0.5 if staccato else 1.05), scale[idx], loud - 5 + 2 * k * direction)
            add(t, bar * 0.9, scale[max(root - 10, 0)])
        elif texture == "arpeggio":
            n = int(rng.choice([6, 8, 12]))
            base = max(root - 7, 0)
            pattern = [0, 2, 4, 7, 9, 11, 14]
            for k in range(n):
                idx = min(base + pattern[k % len(pattern)] + 7 * (k // len(pattern)), len(scale) - 1)
                add(t + k * bar / n, bar / n * 1.5, scale[idx])
        elif texture == "melody":
            n = int(rng.choice([4, 6, 8]))
            idx = root + 4
            for k in range(n):
                idx = int(np.clip(idx + rng.integers(-2, 3), 0, len(scale) - 1))
                add(t + k * bar / n, bar / n * (0.6 if staccato else 0.98), scale[idx], loud + 8)
            for k in range(4):
                add(t + k * beat, beat * 0.9, scale[max(root - 9 + (k % 2) * 2, 0)], loud - 15)
        elif texture == "repeat":
            p = scale[root]
            n = int(rng.choice([4, 6, 8]))
            for k in range(n):
                add(t + k * bar / n, bar / n * 0.5, p)
            add(t, bar * 0.95, scale[max(root - 7, 0)])
        else:  # leaps across the whole keyboard
            n = int(rng.choice([4, 6, 8]))
            for k in range(n):
                add(t + k * bar / n, bar / n * 0.8, rng.integers(MIN_MIDI_PITCH, MAX_MIDI_PITCH + 1))
        if use_pedal:
            pedal.append((t + rng.uniform(0.02, 0.12), int(rng.integers(90, 128))))
            pedal.append((t + bar - rng.uniform(0.03, 0.1), int(rng.integers(0, 30))))
        t += bar
    notes = make_notes(notes)
    # A pitch struck twice at (almost) the same time is one key press.
    keep = np.ones(len(notes), bool)
    for i in range(1, len(notes)):
        same = (notes[:i, 2] == notes[i, 2]) & (np.abs(notes[:i, 0] - notes[i, 0]) < 0.03) & keep[:i]
        keep[i] = not same.any()
    return notes[keep], pedal


def performance_midi(seed: int, duration: float = 30.0, program: int = 0):
    """A ``pretty_midi.PrettyMIDI`` of :func:`compose` (notes plus CC64 pedal events)."""
    import pretty_midi

    notes, pedal = compose(seed, duration)
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    inst = pretty_midi.Instrument(program=program, name="Piano")
    for start, end, pitch, vel in notes:
        inst.notes.append(pretty_midi.Note(velocity=int(vel), pitch=int(pitch), start=float(start), end=float(end)))
    for time, value in pedal:
        inst.control_changes.append(pretty_midi.ControlChange(number=64, value=int(value), time=float(time)))
    pm.instruments.append(inst)
    return pm
