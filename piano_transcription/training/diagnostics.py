"""Where a transcription's errors come from: recall by velocity and register, false notes by kind, frame errors.

Notes are ``[n, 4]`` arrays (start s, end s, MIDI pitch, velocity); a reference note and a transcribed one match
when their pitches agree and their onsets lie within 50 ms (mir_eval's onset-only matching, as the note F1).

- recall by MIDI velocity band (20 wide) and by register (a quarter of the keyboard each);
- false notes (transcribed, unmatched) by kind, the first that applies: ``repeated`` (its pitch is sounding in
  the reference at its onset: a re-onset of a held note), ``octave`` (a reference note 12 or 24 semitones
  away sounds then), ``semitone`` (one a semitone away sounds then), ``other``;
- frame errors on the 32 ms grid: frames by which matched notes run on too long or end too early, and the frames
  of missed and of false notes;
- the transcribed / true length ratio of matched notes (quartiles);
- missed notes (true, unmatched) by register and kind, the first that applies: ``timing`` (an unmatched
  transcribed note of its pitch begins 50-250 ms away: found, but too early or too late), ``held`` (a transcribed note of its pitch is
  already sounding: the re-strike was not heard), ``octave`` / ``semitone`` (a transcribed note 12 or 24 / 1
  semitones away begins within 50 ms), ``none``; and the median onset error (transcribed - true, ms) of matched
  notes per register (a slow attack heard late shows as a positive bias).
"""

from __future__ import annotations

import numpy as np

from ..constants import FRAMES_PER_SECOND
from ..midi import END, PITCH, START, VELOCITY

VELOCITY_BANDS = ((0, 19), (20, 39), (40, 59), (60, 79), (80, 99), (100, 127))  # MIDI velocity, inclusive
REGISTERS = ((21, 42), (43, 64), (65, 86), (87, 108))  # MIDI pitch, inclusive: quarters of the keyboard
FALSE_KINDS = ("repeated", "octave", "semitone", "other")
MISSED_KINDS = ("timing", "held", "octave", "semitone", "none")
ONSET_TOLERANCE = 0.05  # seconds
TIMING_WINDOW = 0.25  # seconds: a transcribed onset this near (beyond the tolerance) is a timing error


def match_onsets(ref: np.ndarray, est: np.ndarray) -> np.ndarray:
    """``[k, 2]`` pairs ``(ref index, est index)`` of notes matched by pitch and onset (mir_eval, 50 ms)."""
    import mir_eval

    if len(ref) == 0 or len(est) == 0:
        return np.zeros((0, 2), int)
    hz = lambda p: 440.0 * 2.0 ** ((np.asarray(p, np.float64) - 69.0) / 12.0)  # noqa: E731
    pairs = mir_eval.transcription.match_notes(
        np.asarray(ref[:, [START, END]], np.float64), hz(ref[:, PITCH]),
        np.asarray(est[:, [START, END]], np.float64), hz(est[:, PITCH]), onset_tolerance=ONSET_TOLERANCE,
        offset_ratio=None)
    return np.asarray(pairs, int).reshape(-1, 2)


def _sounding(ref: np.ndarray, time: float, pitches) -> bool:
    inside = (ref[:, START] <= time) & (time < ref[:, END])
    return bool(np.any(inside & np.isin(ref[:, PITCH].astype(int), list(pitches))))


def false_note_kind(ref: np.ndarray, note: np.ndarray) -> str:
    """The kind of a transcribed note that matched nothing (see the module docstring)."""
    t, p = float(note[START]), int(note[PITCH])
    if _sounding(ref, t, [p]):
        return "repeated"
    if _sounding(ref, t, [p - 24, p - 12, p + 12, p + 24]):
        return "octave"
    if _sounding(ref, t, [p - 1, p + 1]):
        return "semitone"
    return "other"


def missed_note_kind(est: np.ndarray, note: np.ndarray, unmatched: np.ndarray | None = None) -> str:
    """The kind of a true note that no transcribed note matched (see the module docstring); ``unmatched``: which
    transcribed notes matched no true note (only those count as ``timing``; default: all)."""
    t, p = float(note[START]), int(note[PITCH])
    gap = np.abs(est[:, START] - t)
    pitch = est[:, PITCH].astype(int)
    free = np.ones(len(est), bool) if unmatched is None else unmatched
    if np.any(free & (pitch == p) & (gap <= TIMING_WINDOW)):
        return "timing"
    if np.any((pitch == p) & (est[:, START] < t) & (t < est[:, END])):
        return "held"
    near = gap <= ONSET_TOLERANCE
    if np.any(near & np.isin(pitch, [p - 24, p - 12, p + 12, p + 24])):
        return "octave"
    if np.any(near & np.isin(pitch, [p - 1, p + 1])):
        return "semitone"
    return "none"


def _register(pitch: float) -> str:
    return next(f"{lo}-{hi}" for lo, hi in REGISTERS if lo <= pitch <= hi)


def _frames(seconds) -> np.ndarray:
    return np.round(np.asarray(seconds, np.float64) * FRAMES_PER_SECOND).astype(int)


def diagnose(ref: np.ndarray, est: np.ndarray) -> dict:
    """Counts for one piece (sum them over pieces with :func:`add_up`): ``{"velocity": {band: [matched,
    total]}, "register": {...}, "false": {kind: count}, "frames": {too_long, too_short, missed, false},
    "ratios": [matched notes' length ratios]}``."""
    ref, est = np.asarray(ref, np.float64).reshape(-1, 4), np.asarray(est, np.float64).reshape(-1, 4)
    pairs = match_onsets(ref, est)
    hit = np.zeros(len(ref), bool)
    hit[pairs[:, 0]] = True
    used = np.zeros(len(est), bool)
    used[pairs[:, 1]] = True
    out = {"velocity": {}, "register": {}, "false": {k: 0 for k in FALSE_KINDS}}
    for name, column, bands in (("velocity", VELOCITY, VELOCITY_BANDS), ("register", PITCH, REGISTERS)):
        for lo, hi in bands:
            inside = (ref[:, column] >= lo) & (ref[:, column] <= hi)
            out[name][f"{lo}-{hi}"] = [int(np.sum(hit & inside)), int(np.sum(inside))]
    for j in np.flatnonzero(~used):
        out["false"][false_note_kind(ref, est[j])] += 1
    out["missed"] = {f"{lo}-{hi}": {k: 0 for k in MISSED_KINDS} for lo, hi in REGISTERS}
    for i in np.flatnonzero(~hit):
        out["missed"][_register(ref[i, PITCH])][missed_note_kind(est, ref[i], ~used)] += 1
    out["onset_errors"] = {f"{lo}-{hi}": [] for lo, hi in REGISTERS}
    for i, j in pairs:
        out["onset_errors"][_register(ref[i, PITCH])].append(float(est[j, START] - ref[i, START]))
    ref_len, est_len = _frames(ref[:, END]) - _frames(ref[:, START]), _frames(est[:, END]) - _frames(est[:, START])
    over = _frames(est[pairs[:, 1], END]) - _frames(ref[pairs[:, 0], END])
    out["frames"] = {"too_long": int(np.sum(np.maximum(over, 0))), "too_short": int(np.sum(np.maximum(-over, 0))),
                     "missed": int(np.sum(np.maximum(ref_len[~hit], 0))),
                     "false": int(np.sum(np.maximum(est_len[~used], 0)))}
    lengths = np.maximum(ref[pairs[:, 0], END] - ref[pairs[:, 0], START], 1e-3)
    out["ratios"] = ((est[pairs[:, 1], END] - est[pairs[:, 1], START]) / lengths).tolist()
    return out


def add_up(pieces: list[dict]) -> dict:
    """The sum of :func:`diagnose` over pieces."""
    total = {"velocity": {}, "register": {}, "false": {k: 0 for k in FALSE_KINDS},
             "frames": {"too_long": 0, "too_short": 0, "missed": 0, "false": 0}, "ratios": [],
             "missed": {f"{lo}-{hi}": {k: 0 for k in MISSED_KINDS} for lo, hi in REGISTERS},
             "onset_errors": {f"{lo}-{hi}": [] for lo, hi in REGISTERS}}
    for d in pieces:
        for band in total["missed"]:
            for k in MISSED_KINDS:
                total["missed"][band][k] += d["missed"][band][k]
            total["onset_errors"][band] += d["onset_errors"][band]
        for name in ("velocity", "register"):
            for band, (m, n) in d[name].items():
                acc = total[name].setdefault(band, [0, 0])
                acc[0] += m
                acc[1] += n
        for group in ("false", "frames"):
            for k, v in d[group].items():
                total[group][k] += v
        total["ratios"] += d["ratios"]
    return total


def format_diagnosis(d: dict, name: str = "") -> str:
    """The table the real-dev benchmark prints and the model card keeps."""
    def recall(group):
        return ", ".join(f"{band} {m / n:.2f} ({n})" if n else f"{band} -" for band, (m, n) in d[group].items())

    q = np.quantile(d["ratios"], [0.25, 0.5, 0.75]) if d["ratios"] else [np.nan] * 3
    f = d["frames"]
    missed = "; ".join(f"{band}: " + ", ".join(f"{k} {v}" for k, v in kinds.items())
                       for band, kinds in d["missed"].items())
    bias = ", ".join(f"{band} {1000 * np.median(e):+.0f}" if e else f"{band} -"
                     for band, e in d["onset_errors"].items())
    return "\n".join([
        f"{name}: recall by velocity (notes): {recall('velocity')}",
        f"{name}: recall by register (MIDI pitch, notes): {recall('register')}",
        f"{name}: false notes: " + ", ".join(f"{k} {v}" for k, v in d["false"].items()),
        f"{name}: frame errors: matched notes too long {f['too_long']}, too short {f['too_short']}; "
        f"missed notes {f['missed']}; false notes {f['false']}",
        f"{name}: transcribed / true length of matched notes: quartiles {np.round(q, 2).tolist()}",
        f"{name}: missed notes by register and kind: {missed}",
        f"{name}: median onset error of matched notes by register (ms): {bias}",
    ])
