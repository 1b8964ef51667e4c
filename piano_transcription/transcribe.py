"""Piano audio to MIDI: the main job.

``transcribe(path_or_samples)`` loads the audio, computes the log-mel spectrogram, runs the model
in overlapping 20 s windows (see :mod:`piano_transcription.inference`), decodes the notes with the
onset-gated decoder (per-key thresholds tuned on validation when the model ships them) and returns
a ``pretty_midi.PrettyMIDI``: one Acoustic Grand Piano track, notes in seconds, an estimated tempo,
an estimated key signature and a text event naming the source.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .constants import SAMPLE_RATE

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
DEFAULT_MODEL = MODELS_DIR / "default.keras"
DEFAULT_TFLITE = MODELS_DIR / "default.tflite"


def thresholds_path(model_path: str | os.PathLike) -> Path:
    """``X.thresholds.json`` beside a model file ``X.keras`` / ``X.tflite``."""
    p = Path(model_path)
    return p.with_name(p.name.rsplit(".", 1)[0] + ".thresholds.json")


def load_thresholds(model_path) -> dict:
    """Tuned ``{"onset": [88], "frame": [88]}`` thresholds stored beside a model, or ``{}``."""
    p = thresholds_path(model_path) if model_path is not None else None
    if p is not None and p.exists():
        data = json.loads(p.read_text())
        return {k: np.asarray(v, dtype=np.float64) for k, v in data.items() if k in ("onset", "frame")}
    return {}


@dataclass
class Transcription:
    """The result of a transcription: rolls ``[frames, 88]``, notes ``[n, 4]`` and the MIDI."""

    rolls: dict
    notes: np.ndarray
    midi: object
    tempo: float
    key: str
    mel: np.ndarray | None = None
    samples: np.ndarray | None = field(default=None, repr=False)


def notes_to_midi(notes: np.ndarray, source: str | None = None):
    """PrettyMIDI of decoded notes: one Acoustic Grand Piano, estimated tempo and key, source text event."""
    import pretty_midi

    from .midi import notes_to_pretty_midi
    from .music import estimate_key, estimate_tempo

    tempo = estimate_tempo(notes)
    key_number, _ = estimate_key(notes)
    pm = notes_to_pretty_midi(notes, program=0, name="Acoustic Grand Piano")
    out = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    out.instruments = pm.instruments
    out.key_signature_changes.append(pretty_midi.KeySignature(key_number, 0.0))
    if source:
        out.text_events.append(pretty_midi.Text(f"transcribed from {source}", 0.0))
    return out


def resolve_thresholds(model_path, onset_threshold, frame_threshold):
    """Explicit thresholds where given, else the model's tuned per-octave ones, else 0.5."""
    tuned = load_thresholds(model_path)
    onset = onset_threshold if onset_threshold is not None else tuned.get("onset", 0.5)
    frame = frame_threshold if frame_threshold is not None else tuned.get("frame", 0.5)
    return onset, frame


def transcribe_rolls(rolls: dict, onset_threshold=0.5, frame_threshold=0.5, source: str | None = None):
    """Decode probability rolls to ``(notes, PrettyMIDI, tempo, key name)``."""
    from .decode import decode_notes
    from .music import estimate_key, estimate_tempo

    notes = decode_notes(rolls["frame"], rolls["onset"], rolls["velocity"], onset_threshold, frame_threshold)
    return notes, notes_to_midi(notes, source), estimate_tempo(notes), estimate_key(notes)[1]


def transcribe(audio, model=None, onset_threshold=None, frame_threshold=None, progress: bool = False,
               source: str | None = None) -> Transcription:
    """Transcribe a file path or 16 kHz mono samples with a Keras model (object or ``.keras`` path;
    default: the shipped ``models/default.keras``).  Thresholds default to the model's tuned ones."""
    from .audio import load_audio, log_mel, prepare_samples
    from .inference import predict_mel
    from .model import load_model

    model_path = None
    if model is None or isinstance(model, (str, os.PathLike)):
        model_path = Path(model) if model is not None else DEFAULT_MODEL
        model = load_model(model_path)
    if isinstance(audio, (str, os.PathLike)):
        source = source or Path(audio).name
        samples = load_audio(audio)
    else:
        samples = prepare_samples(np.asarray(audio), SAMPLE_RATE, source=source or "samples")
    mel = log_mel(samples)
    rolls = predict_mel(model, mel, progress=progress)
    onset_t, frame_t = resolve_thresholds(model_path, onset_threshold, frame_threshold)
    notes, midi, tempo, key = transcribe_rolls(rolls, onset_t, frame_t, source)
    return Transcription(rolls, notes, midi, tempo, key, mel, samples)
