"""Probability rolls to notes: Magenta's onset-gated decoder (``pianoroll_to_note_sequence``).

A note may start only in a frame whose onset probability passes the onset threshold (onset
frames also count as active); it continues while the frame probability passes the frame
threshold; a new onset (an onset frame after a non-onset frame) on a sounding pitch ends the
previous note and starts a new one.  Times are ``frame / 31.25`` s.  The velocity is read at the
note's first frame: MIDI velocity ``= 80 * clip(v, 0, 1) + 10``.

Sub-frame times (``timing="regression"``, for models trained on Kong et al. 2021's regression targets: triangles
around the exact onset and offset times, :mod:`piano_transcription.training.labels`): a note starts at the apex of
the onset output's peak after the frame that passed the threshold, read from the peak frame and its two neighbours
(:func:`event_time`, :func:`apex_shift`); it ends, where the offset output passes its threshold within two frames of
the decoded end, at that offset's apex (:func:`regression_end`).  Kong et al.'s own decoder reads its thresholds
from the same outputs (0.3 for onsets and offsets in their release).

Note ends: by default where the note stops sounding (the frame head was trained on notes lengthened by
the sustain pedal).  With the key head's probabilities (``keys``) a note may instead end at its key's
release: the first frame after the onset where the key-down probability falls below the key threshold,
never later than where the note stops sounding (:func:`key_release_ends`).
"""

from __future__ import annotations

import numpy as np

from .constants import (DEFAULT_THRESHOLD, FRAMES_PER_SECOND, MIN_MIDI_PITCH, N_KEYS, PEDAL_CHANNELS, TIMINGS, VEL_BIAS,
                        VEL_SCALE)

DEFAULT_ONSET_THRESHOLD = DEFAULT_THRESHOLD
DEFAULT_FRAME_THRESHOLD = DEFAULT_THRESHOLD


def velocity_to_midi(v):
    """Model velocity (about 0..1) to MIDI velocity ``80 * clip(v, 0, 1) + 10`` (int)."""
    return (np.clip(v, 0.0, 1.0) * VEL_SCALE + VEL_BIAS).astype(int)


def key_release_ends(notes: np.ndarray, keys_probs: np.ndarray, threshold: float = DEFAULT_THRESHOLD,
                     fps: float = FRAMES_PER_SECOND) -> np.ndarray:
    """Notes ``[n, 4]`` whose ends move to their key's release: the first frame after the note's start where
    ``keys_probs`` ``[frames, 88]`` falls below ``threshold``, if that comes before the note's end.  (Equal to the
    streaming decoder's with frame timing; with regression timing a release in the frames between a decoded end and
    its refined end counts here only.)"""
    out = np.array(notes, dtype=np.float64).reshape(-1, 4)
    for row in out:
        s0 = int(np.floor(row[0] * fps + 1e-6))  # the last frame at or before the start
        e0 = int(np.ceil(row[1] * fps - 1e-6))  # the first frame at or after the end
        key = int(row[2]) - MIN_MIDI_PITCH
        up = np.flatnonzero(keys_probs[s0 + 1:e0, key] < threshold)
        if len(up):
            row[1] = (s0 + 1 + up[0]) / fps
    return out


PEAK_SEARCH = 2  # an event's peak: the highest of the first PEAK_SEARCH + 1 frames from its threshold crossing
END_SEARCH = (-2, 2)  # offset crossings searched in frames end-2 .. end+1 of a decoded end
REGRESSION_LOOKAHEAD = END_SEARCH[1] + PEAK_SEARCH  # frames a streaming decoder with regression timing waits for
REGRESSION_HISTORY = 1 - END_SEARCH[0]  # frames before the current one that it keeps


def check_timing(timing: str) -> str:
    """``timing`` if it is one of :data:`~piano_transcription.constants.TIMINGS`, else ValueError."""
    if timing not in TIMINGS:
        raise ValueError(f"unknown note timing {timing!r}; choose from {', '.join(TIMINGS)}")
    return timing


def apex_shift(before, peak, after) -> np.ndarray:
    """Where the apex of a triangle through three neighbouring frames lies, in frames after the middle one
    (-0.5 .. 0.5), the middle frame ``peak`` being the highest of the three: Kong et al. 2021's three-point
    estimate, exact for a triangle whose half width is at least 1.5 frames.  Vectorised."""
    before, peak, after = (np.asarray(x, np.float64) for x in (before, peak, after))
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(after > before, (after - before) / (2.0 * (peak - before)),
                         (after - before) / (2.0 * (peak - after)))
    return np.clip(np.nan_to_num(shift, nan=0.0, posinf=0.5, neginf=-0.5), -0.5, 0.5)


def _value(col: np.ndarray, frame: int, base: int) -> float:
    """``col[frame - base]``, 0 outside the array (frames before the start or after the end of the audio)."""
    i = frame - base
    return float(col[i]) if 0 <= i < len(col) else 0.0


def event_time(col: np.ndarray, first: int, base: int = 0) -> float:
    """The sub-frame time (frames) of the event whose regression output ``col`` (frame ``base + i`` at ``col[i]``)
    first passes its threshold at frame ``first``: :func:`apex_shift` around its peak, the highest frame of
    ``first .. first + PEAK_SEARCH`` while the output rises."""
    peak = first
    while peak < first + PEAK_SEARCH and _value(col, peak + 1, base) > _value(col, peak, base):
        peak += 1
    return peak + float(apex_shift(_value(col, peak - 1, base), _value(col, peak, base), _value(col, peak + 1, base)))


def regression_end(col: np.ndarray, end: int, threshold: float, base: int = 0) -> float:
    """A note's end (frames) from the offset head's regression output ``col`` (as :func:`event_time`'s): the apex of
    the first offset that passes ``threshold`` in frames ``end - 2 .. end + 1`` of its decoded end ``end``, else
    ``end``."""
    for j in range(end + END_SEARCH[0], end + END_SEARCH[1]):
        if _value(col, j, base) >= threshold > _value(col, j - 1, base):
            return event_time(col, j, base)
    return float(end)


def per_key(threshold) -> np.ndarray:
    """A scalar or per-key threshold as an array ``[88]``."""
    t = np.asarray(threshold, dtype=np.float64)
    return np.full(N_KEYS, float(t)) if t.ndim == 0 else t.reshape(N_KEYS)


def decode_notes(frame_probs: np.ndarray, onset_probs: np.ndarray, velocity: np.ndarray | None = None,
                 onset_threshold=DEFAULT_ONSET_THRESHOLD, frame_threshold=DEFAULT_FRAME_THRESHOLD,
                 offset_probs: np.ndarray | None = None, offset_threshold=None,
                 min_duration: float = 0.0, fps: float = FRAMES_PER_SECOND, timing: str = "frames") -> np.ndarray:
    """Decode ``[frames, 88]`` probability rolls to a notes array ``[n, 4]`` (start s, end s, pitch, velocity).

    Thresholds may be scalars or per-key arrays ``[88]``.  ``offset_probs`` with an
    ``offset_threshold`` additionally ends notes where an offset is detected (off by default, as in
    Magenta's inference).  Notes shorter than ``min_duration`` seconds are dropped.  ``timing="regression"``
    reads sub-frame start times from ``onset_probs`` and end times from ``offset_probs`` (module docstring; the
    offset threshold for the end search is ``offset_threshold``, else 0.5).
    """
    regression = check_timing(timing) == "regression"
    end_t = per_key(DEFAULT_THRESHOLD if offset_threshold is None else offset_threshold)
    onset_t = per_key(onset_threshold)
    onsets = onset_probs >= onset_t
    active = (frame_probs >= per_key(frame_threshold)) | onsets
    if offset_probs is not None and offset_threshold is not None:
        active &= ~(offset_probs >= per_key(offset_threshold)) | onsets  # ends a note, never stops one starting
    velocity = np.zeros_like(frame_probs) if velocity is None else velocity
    new_onset = onsets & ~np.vstack([np.zeros((1, N_KEYS), bool), onsets[:-1]])
    padded = np.vstack([np.zeros((1, N_KEYS), bool), active, np.zeros((1, N_KEYS), bool)])
    rows = []
    for key in np.flatnonzero((onsets & active).any(axis=0)):
        a = padded[:, key]
        run_starts = np.flatnonzero(a[1:] & ~a[:-1])  # frame indices where active runs begin
        run_ends = np.flatnonzero(~a[1:] & a[:-1])  # one past their last frame
        candidates = np.flatnonzero(onsets[:, key] & active[:, key])
        run = np.searchsorted(run_starts, candidates, side="right") - 1
        first_in_run = np.r_[True, run[1:] != run[:-1]]
        keep = first_in_run | new_onset[candidates, key]
        starts, run = candidates[keep], run[keep]
        same_run_next = np.r_[run[1:] == run[:-1], False]
        ends = np.where(same_run_next, np.r_[starts[1:], 0], run_ends[run])
        for s0, e0, restruck in zip(starts, ends, same_run_next):
            if (e0 - s0) / fps >= min_duration:
                t0, t1 = float(s0), float(e0)
                if regression:
                    t0 = event_time(onset_probs[:, key], s0)
                    t1 = note_end(None if offset_probs is None else offset_probs[:, key], t0, e0, end_t[key],
                                  restruck=bool(restruck), onset_col=onset_probs[:, key],
                                  onset_threshold=onset_t[key])
                rows.append((t0 / fps, t1 / fps, key + MIN_MIDI_PITCH, velocity_to_midi(velocity[s0, key])))
    out = np.asarray(rows, dtype=np.float64).reshape(-1, 4)
    return out[np.lexsort((out[:, 2], out[:, 0]))] if len(out) else out


def note_end(offset_col: np.ndarray | None, start: float, end: int, threshold: float, base: int = 0,
             restruck: bool = False, onset_col: np.ndarray | None = None, onset_threshold: float = 1.0) -> float:
    """A note's end (frames) with regression timing: :func:`regression_end` of its decoded end ``end`` (frame
    ``base + i`` of ``offset_col`` at index ``i``), or ``end`` without ``offset_col``; never before its (sub-frame)
    ``start`` (then ``end``, at least half a frame after the start), and never after the key's next note begins:
    ``restruck`` (a new onset of the key at frame ``end`` ended it) ends it at the new note's start (:func:`event_time`
    of ``onset_col``); an onset that passes ``onset_threshold`` in the frames after ``end`` that the refined end can
    reach caps it half a frame before that onset's frame (the earliest the next note's start can be)."""
    if restruck:
        return max(event_time(onset_col, end, base), start + 0.5)
    t1 = float(end) if offset_col is None else regression_end(offset_col, end, threshold, base)
    if onset_col is not None:
        for j in range(end + 1, end + REGRESSION_LOOKAHEAD):
            if _value(onset_col, j, base) >= onset_threshold:
                t1 = min(t1, j - 0.5)
                break
    return t1 if t1 > start else max(float(end), start + 0.5)


class StreamingDecoder:
    """:func:`decode_notes` over rolls that arrive in consecutive chunks, with memory that does not grow
    with the recording: per key it carries only whether a note is sounding, where it began and the
    previous frame's onset.  ``feed`` returns the notes finished so far; ``finish`` the rest.  The
    notes equal ``decode_notes`` on the whole rolls (tested), with or without ``offset_threshold`` (the offset
    head also ends notes) and with either ``timing`` (``regression`` holds back the last
    :data:`REGRESSION_LOOKAHEAD` frames of each feed until the next, for the sub-frame times).  With
    ``key_threshold`` the notes end at their key's release instead (``feed`` then needs ``keys_probs``; equal to
    :func:`key_release_ends`).  After each ``feed``, ``begun`` holds the notes that began in the frames it
    decoded, ``[k, 3]`` (start s, MIDI pitch, MIDI velocity), for callers that announce a note at its onset (live
    transcription)."""

    def __init__(self, onset_threshold=DEFAULT_ONSET_THRESHOLD, frame_threshold=DEFAULT_FRAME_THRESHOLD,
                 fps: float = FRAMES_PER_SECOND, key_threshold: float | None = None, offset_threshold=None,
                 timing: str = "frames"):
        self.onset_t, self.frame_t, self.fps = per_key(onset_threshold), per_key(frame_threshold), fps
        self.offset_t = None if offset_threshold is None else per_key(offset_threshold)
        self.end_t = per_key(DEFAULT_THRESHOLD) if self.offset_t is None else self.offset_t
        self.key_t = key_threshold
        self.regression = check_timing(timing) == "regression"
        self.released = np.full(N_KEYS, -1)  # frame of the key's release inside a sounding note, -1: held
        self.sounding = np.zeros(N_KEYS, bool)
        self.start_time = np.zeros(N_KEYS)  # the sounding note's start in (sub-frame) frames
        self.velocity = np.zeros(N_KEYS)
        self.prev_onset = np.zeros(N_KEYS, bool)
        self.frame = 0  # index of the next frame decoded
        self.begun = np.zeros((0, 3))  # notes begun in the last feed: start s, MIDI pitch, MIDI velocity
        self.pending: dict[str, np.ndarray] = {}  # regression timing: fed frames not decoded yet
        self.history: dict[str, np.ndarray] = {}  # regression timing: the last decoded frames' onset / offset

    def _emit(self, keys: np.ndarray, end: int, rows: list, context: dict | None = None, base: int = 0,
              restruck: np.ndarray | None = None) -> None:
        for k in keys:
            stop = float(self.released[k] if self.released[k] >= 0 else end)
            if context is not None and self.released[k] < 0:
                stop = note_end(context["offset"][:, k] if "offset" in context else None, self.start_time[k], end,
                                self.end_t[k], base, restruck is not None and bool(restruck[k]),
                                context["onset"][:, k], self.onset_t[k])
            rows.append((self.start_time[k] / self.fps, stop / self.fps, k + MIN_MIDI_PITCH,
                         velocity_to_midi(self.velocity[k])))

    def feed(self, frame_probs: np.ndarray, onset_probs: np.ndarray, velocity: np.ndarray | None = None,
             keys_probs: np.ndarray | None = None, offset_probs: np.ndarray | None = None) -> np.ndarray:
        """Consume the next frames ``[n, 88]``; return the notes ``[m, 4]`` that ended in the frames decoded."""
        if self.key_t is not None and keys_probs is None:
            raise ValueError("a decoder that ends notes at key release needs the key head's probabilities")
        if self.offset_t is not None and offset_probs is None:
            raise ValueError("a decoder that ends notes at detected offsets needs the offset head's probabilities")
        velocity = np.zeros_like(frame_probs) if velocity is None else velocity
        chunk = {k: v for k, v in (("frame", frame_probs), ("onset", onset_probs), ("velocity", velocity),
                                   ("keys", keys_probs), ("offset", offset_probs)) if v is not None}
        if not self.regression:
            return self._decode(chunk, len(frame_probs))
        if self.pending and set(chunk) != set(self.pending):
            raise ValueError(f"a regression-timing decoder needs the same rolls in every feed: got {sorted(chunk)} "
                             f"after {sorted(self.pending)}")
        self.pending = {k: np.concatenate([self.pending[k], v]) if k in self.pending else np.array(v)
                        for k, v in chunk.items()}
        return self._decode(self.pending, len(self.pending["frame"]) - REGRESSION_LOOKAHEAD)

    def _decode(self, rolls: dict, n: int) -> np.ndarray:
        """Decode the first ``n`` frames of ``rolls``; with regression timing keep the rest pending."""
        n = max(n, 0)
        context, base = None, self.frame
        if self.regression:
            context = {k: np.concatenate([self.history[k], rolls[k]]) if k in self.history else rolls[k]
                       for k in ("onset", "offset") if k in rolls}
            base = self.frame - len(self.history.get("onset", ()))
        up = (rolls["keys"][:n] < self.key_t) if self.key_t is not None else np.zeros((n, N_KEYS), bool)
        onsets = rolls["onset"][:n] >= self.onset_t
        active = (rolls["frame"][:n] >= self.frame_t) | onsets
        if self.offset_t is not None:
            active &= ~(rolls["offset"][:n] >= self.offset_t) | onsets
        velocity = rolls["velocity"]
        rows: list = []
        begun: list = []
        for i in range(n):
            t = self.frame + i
            on, act = onsets[i], active[i]
            new_onset = on & ~self.prev_onset
            ended = self.sounding & (~act | new_onset)
            self._emit(np.flatnonzero(ended), t, rows, context, base, ended & new_onset)
            self.sounding &= ~ended
            self.released[ended] = -1
            first_up = self.sounding & (self.released < 0) & up[i] & (self.start_time < t)
            self.released[first_up] = t
            begin = on & act & ~self.sounding
            self.start_time[begin] = t
            if context is not None:
                for k in np.flatnonzero(begin):
                    self.start_time[k] = event_time(context["onset"][:, k], t, base)
            self.velocity[begin] = velocity[i][begin]
            self.sounding |= begin
            self.prev_onset = on
            begun.extend((self.start_time[k] / self.fps, k + MIN_MIDI_PITCH, velocity_to_midi(self.velocity[k]))
                         for k in np.flatnonzero(begin))
        self.frame += n
        if self.regression:
            keep = len(context["onset"]) - (len(rolls["frame"]) - n)  # context frames decoded so far
            self.history = {k: v[max(keep - REGRESSION_HISTORY, 0):keep] for k, v in context.items()}
            self.pending = {k: v[n:] for k, v in rolls.items()}
        self.begun = np.asarray(begun, dtype=np.float64).reshape(-1, 3)
        return _sorted_notes(rows)

    def finish(self) -> np.ndarray:
        """The notes still sounding at the end, ended at the last frame (with regression timing, the frames
        held back decoded first)."""
        rows: list = []
        self.begun = np.zeros((0, 3))  # only the notes begun in the frames decoded here
        context, base = None, self.frame
        if self.regression and self.pending:
            rows.extend(self._decode(self.pending, len(self.pending["frame"])))
            context = self.history
            base = self.frame - len(self.history.get("onset", ()))
        self._emit(np.flatnonzero(self.sounding), self.frame, rows, context, base)
        self.sounding[:] = False
        self.released[:] = -1
        return _sorted_notes(rows)


def _sorted_notes(rows) -> np.ndarray:
    out = np.asarray(rows, dtype=np.float64).reshape(-1, 4)
    return out[np.lexsort((out[:, 2], out[:, 0]))] if len(out) else out


PEDAL_ONSET_THRESHOLD = 0.2  # pedal-press probability that splits a held run (chosen on rendered validation audio)


def decode_pedal(pedal_probs: np.ndarray, threshold: float = DEFAULT_THRESHOLD, min_duration: float = 0.05,
                 fps: float = FRAMES_PER_SECOND, onset_threshold: float = PEDAL_ONSET_THRESHOLD) -> np.ndarray:
    """Sustain-pedal intervals ``[k, 2]`` (down s, up s) from the pedal head's ``[frames, 3]`` probabilities.

    The pedal is down while its frame probability passes ``threshold``; where the pedal-press probability
    rises above ``onset_threshold`` inside a down run (a quick re-pedal, where the frame probability never
    falls) the run is split.  The press head is rarely confident about the brief lift of a re-pedal, hence
    its lower threshold.  Runs shorter than ``min_duration`` s are dropped.
    """
    down = np.asarray(pedal_probs)[:, PEDAL_CHANNELS.index("frame")] >= threshold
    onset = np.asarray(pedal_probs)[:, PEDAL_CHANNELS.index("onset")] >= onset_threshold
    padded = np.r_[False, down, False]
    starts = np.flatnonzero(padded[1:] & ~padded[:-1])
    ends = np.flatnonzero(~padded[1:] & padded[:-1])
    rows = []
    for s, e in zip(starts, ends):
        rising = np.flatnonzero(onset[s + 1:e] & ~onset[s:e - 1]) + s + 1  # new onsets inside the run
        bounds = [s] + [int(r) for r in rising if r - s >= 2] + [e]
        for a, b in zip(bounds[:-1], bounds[1:]):
            if (b - a) / fps >= min_duration:
                rows.append((a / fps, b / fps))
    return np.asarray(rows, dtype=np.float64).reshape(-1, 2)
