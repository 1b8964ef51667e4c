"""Piano audio to MIDI: the main job, one pipeline for every caller (CLI, demo, benchmarks, notebooks).

``transcribe(audio, model)`` streams the audio (a file path, or samples with their sample rate) through a
:class:`~piano_transcription.predictor.Predictor` (Keras or TFLite, default: the shipped model) and the
onset-gated decoder (:class:`~piano_transcription.decode.StreamingDecoder`), so that memory does not
grow with the recording, and returns a :class:`Transcription`: the notes, a ``pretty_midi.PrettyMIDI``
(one Acoustic Grand Piano track, notes in seconds, an estimated tempo and key signature, a text event
naming the source), the sustain-pedal intervals where the model has a pedal head, and on request the
whole probability rolls.

Note lengths (``durations``): ``"sounding"`` (default) ends each note where it stops sounding, the sustain
pedal applied, and writes no pedal events (the lengths already hold it; CC64 on top would sustain twice
on playback); ``"keys"`` ends each note at its key's release (the model's key head) and writes the
pedal as CC64 events, as MAESTRO's own MIDI files are written -- shorter, readable notes in a score or
piano roll, sustained again by any synthesizer that honours the pedal.  Load the predictor once
(:func:`~piano_transcription.predictor.load_predictor`) to transcribe many recordings.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio import AudioSource
from .cleanup import DEFAULT_PRESET, Cleanup, clean_notes
from .constants import DEFAULT_DURATIONS, DEFAULT_THRESHOLD, DURATIONS
from .decode import StreamingDecoder, decode_notes, decode_pedal
from .music import apply_tempo_map, estimate_key, estimate_tempo, track_beats
from .predictor import load_predictor

KEY_THRESHOLD = DEFAULT_THRESHOLD  # key-down probability under which a key counts as released


@dataclass
class Transcription:
    """The result: notes ``[n, 4]`` (start s, end s, MIDI pitch, velocity), the MIDI, tempo (BPM), key
    name, sustain-pedal intervals ``[k, 2]`` (s; empty without a pedal head), duration (s), and the
    probability rolls ``{name: [frames, ...]}`` when asked for (``keep_rolls``)."""

    notes: np.ndarray
    midi: object
    tempo: float
    key: str
    pedal: np.ndarray
    seconds: float
    rolls: dict | None = None
    beats: np.ndarray | None = None  # beat times (s) tracked in the notes; empty with too few notes
    source: str | None = None
    durations: str = DEFAULT_DURATIONS  # "sounding" or "keys" (see the module's docstring)

    def write_musicxml(self, path: str | os.PathLike) -> None:
        """Write the notes as a two-staff score (MusicXML; needs music21): see :mod:`piano_transcription.score`."""
        from .score import write_musicxml

        if importlib.util.find_spec("music21") is None:
            raise ImportError("a MusicXML score needs music21: pip install 'piano-transcription[full]'")
        if self.beats is None or len(self.beats) < 2:
            raise ValueError("a score needs at least two tracked beats (at least eight distinct note onsets)")
        write_musicxml(self.notes, self.beats, path, self.key, self.pedal, self.source or "")


def midi_text(text: str) -> str:
    """Text for a MIDI meta event: MIDI files store bytes and mido writes Latin-1, so any other character
    (a Japanese or emoji file name) is stored as its UTF-8 bytes, which DAWs display as UTF-8."""
    return text.encode("utf-8").decode("latin-1")


def notes_to_midi(notes: np.ndarray, source: str | None = None, tempo_map: bool = True,
                  beats: np.ndarray | None = None, tempo: float | None = None, key_number: int | None = None,
                  pedal: np.ndarray | None = None):
    """PrettyMIDI of decoded notes: one Acoustic Grand Piano (with ``pedal`` intervals ``[k, 2]`` s as CC64
    events), estimated key, source text event, and a tempo map
    from the beats tracked in the notes (so that bars line up in a DAW; note times in seconds are unchanged),
    or one constant estimated tempo when ``tempo_map`` is off or there are
    too few notes.  ``beats``, ``tempo`` and ``key_number`` are estimated from the notes unless given."""
    import pretty_midi

    from .midi import notes_to_pretty_midi, pedal_control_changes

    tempo = estimate_tempo(notes) if tempo is None else tempo
    key_number = estimate_key(notes)[0] if key_number is None else key_number
    pm = notes_to_pretty_midi(notes, program=0, name="Acoustic Grand Piano")
    if pedal is not None:
        pm.instruments[0].control_changes = pedal_control_changes(pedal)
    out = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    out.instruments = pm.instruments
    out.key_signature_changes.append(pretty_midi.KeySignature(key_number, 0.0))
    if source:
        out.text_events.append(pretty_midi.Text(midi_text(f"transcribed from {source}"), 0.0))
    if tempo_map:
        apply_tempo_map(out, track_beats(notes, start_bpm=tempo) if beats is None else beats)
    return out


def transcribe_rolls(rolls: dict, onset_threshold=DEFAULT_THRESHOLD, frame_threshold=DEFAULT_THRESHOLD, source: str | None = None):
    """Decode whole probability rolls to ``(notes, PrettyMIDI, tempo, key name)`` (for rolls already at hand)."""
    notes = decode_notes(rolls["frame"], rolls["onset"], rolls["velocity"], onset_threshold, frame_threshold)
    tempo = estimate_tempo(notes)
    key_number, key = estimate_key(notes)
    return notes, notes_to_midi(notes, source, tempo=tempo, key_number=key_number), tempo, key


def check_durations(predictor, durations: str) -> None:
    """ValueError unless ``durations`` is one of :data:`DURATIONS` that the predictor's heads can write
    (``keys`` needs a key head and a pedal head)."""
    if durations not in DURATIONS:
        raise ValueError(f"durations must be one of {', '.join(DURATIONS)}, got {durations!r}")
    if durations == "keys" and not (predictor.has_keys and predictor.has_pedal):
        raise ValueError(f"--durations keys needs a model with a key head and a pedal head; "
                         f"{predictor.path or 'this model'} has "
                         f"{'only a pedal head' if predictor.has_pedal else 'neither'} (use --durations sounding)")


def transcribe(audio, model=None, sample_rate: int | None = None, onset_threshold=None, frame_threshold=None,
               offset_threshold=None,
               progress: bool = False, source: str | None = None, keep_rolls: bool = False,
               cleanup: Cleanup | str = DEFAULT_PRESET, tempo_map: bool = True,
               durations: str = DEFAULT_DURATIONS) -> Transcription:
    """Transcribe ``audio``: a file path (str, bytes or os.PathLike), or an array ``[n]`` / ``[n, channels]`` / ``[channels, n]`` with its
    ``sample_rate`` (Hz).  ``model``: None (the shipped default), a ``.keras`` / ``.tflite`` path, a loaded
    Keras model, or a :class:`~piano_transcription.predictor.Predictor`.  Thresholds (0..1, one value or 88)
    default to the model's own; ``offset_threshold`` lets the offset head end notes too (the model's own, if
    it ships one; else off).  ``keep_rolls`` keeps the whole probability rolls in the result.
    ``cleanup``: a :class:`~piano_transcription.cleanup.Cleanup` or a preset name (short notes, doubled onsets).
    ``tempo_map``: tempo changes that follow the tracked beats, else one constant tempo.  ``durations``:
    ``"sounding"`` or ``"keys"`` (key-release note ends + CC64; needs a model with key and pedal heads)."""

    if isinstance(cleanup, str):
        clean_notes(np.zeros((0, 4)), cleanup)  # an unknown preset fails before the work
    predictor = load_predictor(model)
    check_durations(predictor, durations)
    onset_t, frame_t = predictor.resolve(onset_threshold, frame_threshold)
    if isinstance(audio, bytes):  # a path as bytes (os.fsencode)
        audio = os.fsdecode(audio)
    if isinstance(audio, AudioSource):
        src = audio
    elif isinstance(audio, (str, os.PathLike)):
        src = AudioSource(audio)
        source = source or Path(audio).name
    else:
        src = AudioSource(audio, sample_rate, source or "samples")
    decoder = StreamingDecoder(onset_t, frame_t, key_threshold=KEY_THRESHOLD if durations == "keys" else None,
                               offset_threshold=predictor.offset_threshold(offset_threshold), timing=predictor.timing)
    parts, pedal, kept = [], [], []
    for chunk in predictor.stream(src, progress):
        parts.append(decoder.feed(chunk["frame"], chunk["onset"], chunk["velocity"], chunk.get("keys"),
                                  chunk["offset"]))
        if "pedal" in chunk:
            pedal.append(chunk["pedal"])
        if keep_rolls:
            kept.append(chunk)
    parts.append(decoder.finish())
    notes = np.concatenate(parts)
    notes[:, 1] = np.minimum(notes[:, 1], src.seconds)  # a note sounding at the end ends with the audio
    notes[:, 0] = np.minimum(notes[:, 0], notes[:, 1])  # (a sub-frame start can lie half a frame past it)
    notes = clean_notes(notes[np.lexsort((notes[:, 2], notes[:, 0]))] if len(notes) else notes.reshape(0, 4), cleanup)
    pedal_intervals = decode_pedal(np.concatenate(pedal)) if pedal else np.zeros((0, 2))
    rolls = None
    if keep_rolls:
        from .inference import collect

        rolls = collect(kept)
    tempo = estimate_tempo(notes)
    key_number, key = estimate_key(notes)
    beats = track_beats(notes, start_bpm=tempo)
    midi = notes_to_midi(notes, source, tempo_map, beats, tempo, key_number,
                         pedal_intervals if durations == "keys" else None)
    return Transcription(notes, midi, tempo, key, pedal_intervals, src.n_samples / src.target_sr, rolls, beats, source,
                         durations)
