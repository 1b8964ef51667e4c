"""Notes to piano rolls on the frame grid (Magenta's ``sequence_to_pianoroll`` semantics).

With ``onset_mode='length_ms'``, 32 ms onsets and 32 ms offsets:

* frames: a note from ``t0`` to ``t1`` s is active in frames ``int(t0*fps)`` .. ``ceil(t1*fps) - 1``
  (any presence in a frame counts);
* onsets: the frames of ``[t0, min(t1, t0 + 32 ms)]`` by the same rule (two frames in general);
* offsets: the frames of ``[e, e + 32 ms]`` with ``e = min(t1, total_time - 32 ms)``, at least one;
* velocities: ``velocity / max_velocity`` on the onset frames, 0 elsewhere;
* regression onsets and offsets (Kong et al. 2021, "High-resolution piano transcription with pedals by
  regressing onset and offset times"): per key, a triangle around each exact event time ``t`` s,
  ``max(0, 1 - |i / fps - t| * fps / REGRESSION_HALF_WIDTH)`` at frame ``i`` (the largest where two overlap), so
  that a decoder can read sub-frame times from three neighbouring frames (:func:`~piano_transcription.decode.apex_shift`).
  The event times are the note's start and end (the binary offsets' 32 ms shift of the last note aside).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..constants import (FRAMES_PER_SECOND, MIN_MIDI_PITCH, N_KEYS, OFFSET_LENGTH_MS, ONSET_LENGTH_MS, PEDAL_CHANNELS,
                         REGRESSION_HALF_WIDTH)
from ..midi import END, START, VELOCITY


@dataclass
class Rolls:
    """The label rolls, each ``[frames, 88]``: onsets, offsets, frames (0/1), velocities (0..1), and the
    regression targets of onsets and offsets (0..1 triangles around the exact times; None where unknown)."""

    onsets: np.ndarray
    offsets: np.ndarray
    frames: np.ndarray
    velocities: np.ndarray
    onset_regression: np.ndarray | None = None
    offset_regression: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.frames)

    def _map(self, f) -> "Rolls":
        return Rolls(*(None if a is None else f(a) for a in (self.onsets, self.offsets, self.frames, self.velocities,
                                                              self.onset_regression, self.offset_regression)))

    def slice(self, start: int, stop: int) -> "Rolls":
        """Frames ``start`` .. ``stop - 1`` (views)."""
        return self._map(lambda a: a[start:stop])

    def padded(self, n_frames: int) -> "Rolls":
        """Zero-padded (or cut) to exactly ``n_frames`` frames."""
        return self._map(lambda a: fit_frames(a, n_frames))


def fit_frames(a: np.ndarray, n_frames: int) -> np.ndarray:
    """Cut or zero-pad the first axis of ``a`` to ``n_frames``."""
    if len(a) >= n_frames:
        return a[:n_frames]
    pad = np.zeros((n_frames - len(a),) + a.shape[1:], dtype=a.dtype)
    return np.concatenate([a, pad])


def time_to_frames(start: float, end: float, fps: float = FRAMES_PER_SECOND) -> tuple[int, int]:
    """First frame and one-past-last frame touched by the interval ``[start, end]`` seconds."""
    return int(start * fps), int(math.ceil(end * fps))


def add_triangle(roll: np.ndarray, key: int, t: float, half_width: float = REGRESSION_HALF_WIDTH,
                 fps: float = FRAMES_PER_SECOND) -> None:
    """Raise ``roll[:, key]`` (in place) to a triangle of height 1 at ``t`` s falling to 0 ``half_width``
    frames either side (frame ``i`` at ``i / fps`` s)."""
    centre = t * fps
    lo, hi = max(int(math.floor(centre - half_width)) + 1, 0), min(int(math.ceil(centre + half_width)), len(roll))
    if lo >= hi:
        return
    i = np.arange(lo, hi)
    np.maximum(roll[lo:hi, key], 1.0 - np.abs(i - centre) / half_width, out=roll[lo:hi, key])


def notes_to_rolls(notes: np.ndarray, n_frames: int | None = None, max_velocity: float | None = None,
                   onset_length_ms: float = ONSET_LENGTH_MS, offset_length_ms: float = OFFSET_LENGTH_MS,
                   fps: float = FRAMES_PER_SECOND) -> Rolls:
    """Label rolls of shape ``[n_frames, 88]`` for ``notes`` (seconds, MIDI pitch, velocity).

    ``n_frames`` defaults to ``int(total_time * fps) + 1`` (Magenta's length), where ``total_time``
    is the last note end; otherwise the rolls are cut or zero-padded to it.  ``max_velocity``
    defaults to the loudest note of ``notes`` (the piece's maximum).
    """
    total_time = float(notes[:, END].max()) if len(notes) else 0.0
    natural = int(total_time * fps + 1)
    shape = (natural, N_KEYS)
    onsets = np.zeros(shape, np.uint8)
    offsets = np.zeros(shape, np.uint8)
    frames = np.zeros(shape, np.uint8)
    velocities = np.zeros(shape, np.float32)
    room = (max(natural, n_frames or 0) + int(math.ceil(REGRESSION_HALF_WIDTH)) + 1, N_KEYS)  # the whole last triangle
    onset_regression = np.zeros(room, np.float32)
    offset_regression = np.zeros(room, np.float32)
    if max_velocity is None:
        max_velocity = float(notes[:, VELOCITY].max()) if len(notes) else 127.0
    for start, end, pitch, vel in notes[np.argsort(notes[:, START], kind="stable")]:
        key = int(pitch) - MIN_MIDI_PITCH
        if not 0 <= key < N_KEYS:
            continue
        f0, f1 = time_to_frames(start, end, fps)
        o0, o1 = time_to_frames(start, min(end, start + onset_length_ms / 1000.0), fps)
        off_start = min(end, total_time - offset_length_ms / 1000.0)
        e0, e1 = time_to_frames(off_start, off_start + offset_length_ms / 1000.0, fps)
        e1 = max(e1, e0 + 1)
        offsets[max(e0, 0):e1, key] = 1
        onsets[o0:o1, key] = 1
        frames[f0:f1, key] = 1
        velocities[o0:o1, key] = vel / max_velocity
        add_triangle(onset_regression, key, start, fps=fps)
        add_triangle(offset_regression, key, end, fps=fps)
    rolls = Rolls(onsets, offsets, frames, velocities, onset_regression[:natural], offset_regression[:natural])
    if n_frames is None:
        return rolls
    rolls = rolls.padded(n_frames)
    rolls.onset_regression, rolls.offset_regression = onset_regression[:n_frames], offset_regression[:n_frames]
    return rolls


def key_rolls(keys: np.ndarray, n_frames: int, fps: float = FRAMES_PER_SECOND) -> np.ndarray:
    """Key-down labels ``[n_frames, 88]`` (uint8): 1 from a key's press to its release, the sustain pedal
    NOT applied (``keys`` are the performance's notes before :func:`~piano_transcription.midi.apply_sustain_pedal`).
    The same frame rule as the ``frames`` roll."""
    return notes_to_rolls(keys, n_frames=n_frames, fps=fps).frames



def pedal_rolls(intervals: np.ndarray, n_frames: int, fps: float = FRAMES_PER_SECOND,
                onset_length_ms: float = ONSET_LENGTH_MS, offset_length_ms: float = OFFSET_LENGTH_MS) -> np.ndarray:
    """Sustain-pedal labels ``[n_frames, 3]`` (uint8) from down intervals ``[k, 2]`` (s): channel 0 the
    pedal is down (frames touched by the interval), 1 it goes down (the frames of the first 32 ms),
    2 it comes up (the frames of the 32 ms after release), the note-roll rules applied to the pedal
    as Kong et al. (2021, Sec. III-C) label pedal onsets, offsets and frames beside the notes'."""
    out = np.zeros((n_frames, len(PEDAL_CHANNELS)), np.uint8)
    for down, up in np.asarray(intervals, np.float64).reshape(-1, 2):
        f0, f1 = time_to_frames(max(down, 0.0), max(up, 0.0), fps)
        out[max(f0, 0):max(f1, 0), 0] = 1
        if down >= 0:
            o0, o1 = time_to_frames(down, min(up, down + onset_length_ms / 1000.0), fps)
            out[o0:max(o1, o0 + 1), 1] = 1
        e0, e1 = time_to_frames(up, up + offset_length_ms / 1000.0, fps)
        if e0 >= 0:
            out[e0:max(e1, e0 + 1), 2] = 1
    return out
