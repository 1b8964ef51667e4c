"""Transcribed notes to a readable score (MusicXML) with music21.

The notes' times in seconds become beat positions through the beats tracked in them
(:func:`piano_transcription.music.track_beats`); the time signature (4/4 or 3/4) and the downbeats come from the
accents of the beats (:func:`piano_transcription.music.estimate_meter`: long, loud, low chords start bars), and
notes before the first downbeat become a pickup bar, padded with rests in front. Onsets and durations are quantised
to the nearest sixteenth or eighth-note triplet, notes are split between two staves by a split point that follows the hands (it moves with the recent
pitches of each hand instead of staying at middle C), each staff's simultaneous notes of equal length become chords,
overlapping ones at most two voices (the upper line in voice 1), and music21 bars them in the time signature, tying
notes across bar lines.
"""

from __future__ import annotations

import os

import numpy as np

from .midi import END, PITCH, START
from .music import estimate_meter

SPLIT_START = 60  # MIDI pitch: the first split point between the hands (middle C)
SPLIT_RANGE = (48, 72)  # the split point stays between C3 and C5
GRID = (4, 3)  # subdivisions of a beat: sixteenths and eighth-note triplets


def seconds_to_beats(times: np.ndarray, beats: np.ndarray) -> np.ndarray:
    """Beat positions (0 = the first beat) of times in seconds, linear between beats and with the first / last
    beat period outside them."""
    beats = np.asarray(beats, np.float64)
    idx = np.arange(len(beats), dtype=np.float64)
    t = np.asarray(times, np.float64)
    out = np.interp(t, beats, idx)
    first, last = beats[1] - beats[0], beats[-1] - beats[-2]
    out = np.where(t < beats[0], (t - beats[0]) / first, out)
    return np.where(t > beats[-1], idx[-1] + (t - beats[-1]) / last, out)


def quantize(positions: np.ndarray, grid=GRID) -> np.ndarray:
    """Each position (beats) to the nearest point of the finest grid in ``grid`` that fits it best (1/4 or 1/3)."""
    x = np.asarray(positions, np.float64)
    candidates = np.stack([np.round(x * g) / g for g in grid])
    return candidates[np.argmin(np.abs(candidates - x), axis=0), np.arange(len(x))]


def split_hands(notes: np.ndarray, window: int = 8) -> np.ndarray:
    """Left hand (True) or right hand (False) for each note: chords (notes starting within 50 ms) are split at a
    point midway between the last ``window`` pitches of each hand, starting at middle C."""
    left = np.zeros(len(notes), bool)
    split = float(SPLIT_START)
    recent_l, recent_r = [], []
    order = np.argsort(notes[:, START], kind="stable")
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and notes[order[j], START] - notes[order[i], START] < 0.05:
            j += 1
        group = order[i:j]
        for k in group:
            left[k] = notes[k, PITCH] < split
            (recent_l if left[k] else recent_r).append(notes[k, PITCH])
        recent_l, recent_r = recent_l[-window:], recent_r[-window:]
        if recent_l and recent_r:
            split = float(np.clip((np.mean(recent_l) + np.mean(recent_r)) / 2, *SPLIT_RANGE))
        i = j
    return left


def downbeat_beats(notes: np.ndarray, beats: np.ndarray) -> np.ndarray:
    """The beats from the one nearest the first note on (that beat is bar 1, beat 1)."""
    beats = np.asarray(beats, np.float64)
    if len(notes) == 0 or len(beats) < 2:
        return beats
    first = int(np.argmin(np.abs(beats - notes[:, START].min())))
    return beats[first:] if len(beats) - first >= 2 else beats[-2:]


MAX_VOICES = 2  # voices per staff


def assign_voices(elements: list[tuple[float, float, list[int]]], max_voices: int = MAX_VOICES):
    """Voices for a staff's elements ``(offset, duration, pitches)`` (beats): returns ``(voice per element,
    durations, merged)``.  At each onset the element with the highest pitch goes to voice 1 (the upper line) if
    voice 1 is free, the others to the next free voice; where every voice still holds a note, the voice whose note
    is nearest in pitch takes the new element: an element that starts with the held one joins it as one chord
    (``merged[i]``: the element it joined, else -1), a later one shortens the held note to end where it starts.
    A score then shows at most ``max_voices`` voices per staff, as piano music is usually written."""
    order = sorted(range(len(elements)), key=lambda i: (elements[i][0], -max(elements[i][2])))
    voice = [0] * len(elements)
    durations = [e[1] for e in elements]
    merged = [-1] * len(elements)
    last: list[int] = []  # the last element of each voice
    for i in order:
        offset, _, pitches = elements[i]
        free = [v for v, j in enumerate(last) if elements[j][0] + durations[j] <= offset + 1e-9]
        if free:
            v = free[0]
            last[v] = i
        elif len(last) < max_voices:
            v = len(last)
            last.append(i)
        else:
            v = min(range(len(last)), key=lambda u: abs(max(elements[last[u]][2]) - max(pitches)))
            j = last[v]
            if elements[j][0] >= offset - 1e-9:
                merged[i] = j  # same onset: one chord, the held element's length
            else:
                durations[j] = offset - elements[j][0]
                last[v] = i
        voice[i] = v
    return voice, durations, merged


def bar_origin(notes: np.ndarray, beats: np.ndarray) -> tuple[int, float]:
    """``(beats per bar, shift in beats)``: the estimated meter and how many beats of rest go before the first
    beat so that the first estimated downbeat starts a bar (0: the first beat starts bar 1)."""
    m, first = estimate_meter(notes, beats)
    return m, float((m - first) % m)


def notes_to_score(notes: np.ndarray, beats: np.ndarray, key: str = "C major", time_signature: str | None = None,
                   pedal: np.ndarray | None = None, title: str = ""):
    """A ``music21.stream.Score`` of two staves (treble, bass) from notes (s) and beat times (s); ``pedal``
    intervals (s) become pedal marks ("Ped." ... "*") under the bass staff.  ``time_signature`` (``"3/4"``...)
    is estimated with the downbeats unless given (then bar 1 starts at the first beat)."""
    from music21 import chord, clef, expressions, key as m21key, layout, metadata, meter, note, stream

    beats = downbeat_beats(notes, beats)
    given = int(time_signature.split("/")[0]) if time_signature else None
    per_bar, shift = bar_origin(notes, beats) if given is None else (given, 0.0)
    time_signature = time_signature or f"{per_bar}/4"
    onsets = quantize(seconds_to_beats(notes[:, START], beats)) + shift
    ends = quantize(seconds_to_beats(notes[:, END], beats)) + shift
    durations = np.maximum(ends - onsets, 0.25)
    left = split_hands(notes)
    score = stream.Score()
    score.metadata = metadata.Metadata(title=title, composer="transcribed by piano-transcription")
    staves = []
    for is_left, c in ((False, clef.TrebleClef()), (True, clef.BassClef())):
        part = stream.PartStaff()
        part.insert(0, c)
        tonic, mode = key.split()
        part.insert(0, m21key.Key(tonic.replace("b", "-"), mode))
        part.insert(0, meter.TimeSignature(time_signature))
        groups: dict[tuple[float, float], list[int]] = {}
        for k in np.flatnonzero(left == is_left):
            if onsets[k] < 0:
                continue  # before bar 1
            groups.setdefault((float(onsets[k]), float(durations[k])), []).append(int(notes[k, PITCH]))
        elements = [(offset, dur, pitches) for (offset, dur), pitches in sorted(groups.items())]
        voice, lengths, merged = assign_voices(elements)
        chords = [list(e[2]) for e in elements]
        for i, j in enumerate(merged):
            if j >= 0:
                chords[j] += chords[i]
        voices = [stream.Voice() for _ in range(max(voice, default=0) + 1)]
        for i, (offset, v, dur) in enumerate(zip((e[0] for e in elements), voice, lengths)):
            if merged[i] >= 0:
                continue
            pitches = sorted(set(chords[i]))
            element = note.Note(pitches[0]) if len(pitches) == 1 else chord.Chord(pitches)
            element.quarterLength = dur
            (voices[v] if len(voices) > 1 else part).insert(offset, element)
        for v in voices if len(voices) > 1 else []:
            part.insert(0, v)
        staves.append(part)
    for down, up in np.asarray(pedal if pedal is not None else np.zeros((0, 2)), np.float64).reshape(-1, 2):
        a, b = quantize(seconds_to_beats(np.array([down, up]), beats)) + shift
        for part in staves[::-1]:  # the marks go under the bass staff; on the treble one where the bass rests
            held = sorted((e for e in part.recurse().notes if a <= float(e.getOffsetInHierarchy(part)) < b),
                          key=lambda e: float(e.getOffsetInHierarchy(part)))  # voices included
            if held:
                part.insert(0, expressions.PedalMark(*held))
                break
    for part in staves:
        score.insert(0, part)
    score.insert(0, layout.StaffGroup(staves, symbol="brace"))
    return score


def write_musicxml(notes: np.ndarray, beats: np.ndarray, path: str | os.PathLike, key: str = "C major",
                   pedal: np.ndarray | None = None, title: str = "") -> None:
    """Write the score of :func:`notes_to_score` as MusicXML (atomically)."""
    from .io import atomic_path

    score = notes_to_score(notes, beats, key, pedal=pedal, title=title)
    with atomic_path(path) as tmp:
        score.write("musicxml", fp=str(tmp), makeNotation=True)


def musicxml_svg(path: str | os.PathLike, page_width: int = 2100, scale: int = 40) -> str:
    """The first page of a MusicXML file engraved as SVG by verovio (for notebooks and documentation)."""
    import verovio

    toolkit = verovio.toolkit()
    toolkit.setOptions({"pageWidth": page_width, "scale": scale, "adjustPageHeight": True, "footer": "none"})
    if not toolkit.loadFile(str(path)):
        raise ValueError(f"{path}: verovio cannot read this MusicXML")
    return toolkit.renderToSVG(1)
