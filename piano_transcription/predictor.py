"""One transcription model behind one interface, whatever runs it: Keras or TFLite.

A :class:`Predictor` turns a stream of 16 kHz audio (:class:`~piano_transcription.audio.AudioSource`)
into a stream of probability rolls and carries the decoding thresholds that belong to its model (tuned
on validation data and stored beside the model file as ``X.thresholds.json``).  Load it once with
:func:`load_predictor` and transcribe many recordings with it.  The default model ships inside the
package (``piano_transcription/models``): its raw-audio TFLite export runs by default on both installs (LiteRT
is in both; on a 2-core CPU it transcribes 10 minutes in 4.5 s against Keras's 12.2 s, in a quarter of the
memory, and scores the same on real recordings within 0.001 note F1); ``--model default.keras`` runs the Keras
form on the full install.
"""

from __future__ import annotations

import importlib.util
import json
import os
import weakref
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .assets import DEFAULT_MODEL, DEFAULT_TFLITE
from .audio import AudioSource
from .constants import N_KEYS, SEGMENT_FRAMES
from .decode import DEFAULT_FRAME_THRESHOLD, DEFAULT_ONSET_THRESHOLD, check_timing, per_key
from .inference import collect

THRESHOLD_NAMES = ("onset", "frame", "offset")  # offset: optional (None: the offset head ends no note)

_MODEL_PATHS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # Keras model object -> its file


def thresholds_path(model_path: str | os.PathLike) -> Path:
    """``X.thresholds.json`` beside a model file ``X.keras`` / ``X.tflite``."""
    p = Path(model_path)
    return p.with_name(p.name.rsplit(".", 1)[0] + ".thresholds.json")


def check_threshold(value, name: str):
    """A threshold (scalar or 88 per-key values) strictly between 0 and 1, else ValueError."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim not in (0, 1) or (arr.ndim == 1 and arr.shape != (N_KEYS,)):
        raise ValueError(f"{name} threshold must be one number or 88 per-key numbers, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0) or np.any(arr >= 1):
        raise ValueError(f"{name} threshold must lie strictly between 0 and 1, got {value!r}")
    return value


def read_sidecar(model_path) -> dict:
    """The JSON object stored beside a model (``X.thresholds.json``), or ``{}`` where there is none."""
    p = thresholds_path(model_path) if model_path is not None else None
    if p is None or not p.exists():
        return {}
    try:
        data = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{p}: not a readable thresholds file ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{p}: a thresholds file holds an object such as {{\"onset\": 0.5, \"frame\": 0.3}}, "
                         f"got {type(data).__name__}")
    return data


def load_timing(model_path) -> str:
    """How the model's note times are decoded (:data:`~piano_transcription.constants.TIMINGS`): the ``timing``
    stored beside it (``regression`` for a model trained on regression targets), else ``frames``."""
    timing = read_sidecar(model_path).get("timing", "frames")
    try:
        return check_timing(timing)
    except ValueError as exc:
        raise ValueError(f"{thresholds_path(model_path)}: {exc}") from None


def load_thresholds(model_path) -> dict:
    """Tuned ``{"onset": [88], "frame": [88][, "offset": ...]}`` thresholds stored beside a model, or ``{}``."""
    data = read_sidecar(model_path)
    p = thresholds_path(model_path) if data else None
    out = {}
    for k, v in data.items():
        if k not in THRESHOLD_NAMES:
            continue
        try:
            arr = np.asarray(v, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{p}: {k} threshold must be one number or 88 per-key numbers, got {v!r:.60}") from None
        out[k] = check_threshold(arr, f"{p}: {k}")
    return out


def remember_model_path(model, path) -> None:
    """Note which file a loaded Keras model came from (so that its thresholds follow the object)."""
    try:
        _MODEL_PATHS[model] = Path(path)
    except TypeError:  # not weak-referenceable
        pass


class Predictor:
    """A model that maps audio to probability rolls, with its own thresholds."""

    backend = "none"

    def __init__(self, path: Path | None, thresholds: dict | None = None):
        self.path = path
        stored = load_thresholds(path) if path is not None else {}
        self.timing = load_timing(path) if path is not None else "frames"  # note times: frames or regression
        self.thresholds = {"onset": DEFAULT_ONSET_THRESHOLD, "frame": DEFAULT_FRAME_THRESHOLD, "offset": None,
                           **stored, **{k: v for k, v in (thresholds or {}).items() if v is not None}}
        for k in THRESHOLD_NAMES:
            if self.thresholds[k] is not None:
                check_threshold(self.thresholds[k], k)

    @property
    def has_pedal(self) -> bool:
        raise NotImplementedError

    @property
    def has_keys(self) -> bool:
        """Whether the model has the key head (note ends at key release)."""
        raise NotImplementedError

    def stream(self, source: AudioSource, progress: bool = False) -> Iterator[dict[str, np.ndarray]]:
        """Consecutive chunks of probability rolls ``{onset, offset, frame, velocity[, pedal][, keys]}``."""
        raise NotImplementedError

    def predict(self, source: AudioSource, progress: bool = False) -> dict[str, np.ndarray]:
        """Whole probability rolls of a recording."""
        return collect(self.stream(source, progress))

    @property
    def fixed_window(self) -> int | None:
        """Frames of the only window :meth:`predict_window` accepts, or None where any number of frames goes."""
        return None

    def predict_window(self, samples: np.ndarray) -> dict[str, np.ndarray]:
        """Probability rolls ``{onset, offset, frame, velocity[, pedal][, keys]}`` ``[frames, ...]`` of one window
        of 16 kHz samples read uncentred (``(frames - 1) * 512 + 2048`` samples give ``frames`` frames, the dB
        floor set in the window), as :func:`~piano_transcription.inference.sample_windows` cuts them: the live
        path's windows."""
        raise NotImplementedError

    def resolve(self, onset_threshold=None, frame_threshold=None) -> tuple:
        """``(onset, frame)`` thresholds: the given ones where not None, else the model's own."""
        onset = check_threshold(onset_threshold, "onset") if onset_threshold is not None else self.thresholds["onset"]
        frame = check_threshold(frame_threshold, "frame") if frame_threshold is not None else self.thresholds["frame"]
        return per_key(onset), per_key(frame)

    def offset_threshold(self, offset_threshold=None):
        """The offset-head threshold that ends notes: the given one, else the model's own (None: off)."""
        if offset_threshold is not None:
            return check_threshold(offset_threshold, "offset")
        return self.thresholds["offset"]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path) if self.path else 'in memory'})"


class KerasPredictor(Predictor):
    """A Keras model (``.keras`` file or loaded object) over 20 s log-mel windows."""

    backend = "keras"
    window = SEGMENT_FRAMES  # frames per inference window (the training segment's length)

    def __init__(self, model, thresholds: dict | None = None, batch_size: int = 4):
        from .model import load_model

        if isinstance(model, (str, os.PathLike)):
            path = Path(model)
            model = load_model(path)
        else:
            path = _MODEL_PATHS.get(model)
        self.model, self.batch_size = model, batch_size
        super().__init__(path, thresholds)

    @property
    def has_pedal(self) -> bool:
        from .model import has_pedal

        return has_pedal(self.model)

    @property
    def has_keys(self) -> bool:
        from .model import has_keys

        return has_keys(self.model)

    def stream(self, source: AudioSource, progress: bool = False):
        from .constants import frames_for_samples
        from .inference import keras_predictor, mel_windows, stream_windows, window_starts, xla_pays

        xla = xla_pays(len(window_starts(frames_for_samples(source.n_samples), self.window)))
        return stream_windows(keras_predictor(self.model, xla), mel_windows(source.blocks(), source.n_samples, self.window),
                              frames_for_samples(source.n_samples), self.window, batch_size=self.batch_size,
                              progress=progress)

    def predict_window(self, samples: np.ndarray) -> dict[str, np.ndarray]:
        from .audio import log_mel
        from .inference import keras_predictor

        out = keras_predictor(self.model)(log_mel(samples, center=False)[None])  # traced once per window length
        return {k: v[0] for k, v in out.items()}


class TFLitePredictor(Predictor):
    """A raw-audio TFLite model: ours (20 s windows, read as the Keras model reads them) or Magenta's
    ``onsets_frames_wavinput.tflite`` (1.12 s windows side by side)."""

    backend = "tflite"

    def __init__(self, path: str | os.PathLike, thresholds: dict | None = None, num_threads: int | None = None,
                 interpreters: int | None = None):
        from .tflite import TFLiteModel

        self.lite = TFLiteModel(path, num_threads, interpreters)
        super().__init__(Path(path), thresholds)

    @property
    def has_pedal(self) -> bool:
        return self.lite.has_pedal

    @property
    def has_keys(self) -> bool:
        return self.lite.has_keys

    def stream(self, source: AudioSource, progress: bool = False):
        return self.lite.stream(source.blocks(), source.n_samples, progress)

    @property
    def fixed_window(self) -> int:
        return self.lite.frames

    def predict_window(self, samples: np.ndarray) -> dict[str, np.ndarray]:
        from .tflite import window_samples

        if len(samples) != window_samples(self.lite.frames):
            raise ValueError(f"{self.path}: a window of this TFLite model is {window_samples(self.lite.frames)} "
                             f"samples ({self.lite.frames} frames), got {len(samples)}")
        return self.lite.rolls(self.lite.run_window(samples))


def tensorflow_available() -> bool:
    """Whether TensorFlow is installed (the full install); the light install runs TFLite only."""
    return importlib.util.find_spec("tensorflow") is not None


def litert_available() -> bool:
    """Whether LiteRT (``ai-edge-litert``, in both installs) is installed."""
    return importlib.util.find_spec("ai_edge_litert") is not None


def default_model_path() -> Path:
    """The shipped model this install runs: its TFLite export wherever LiteRT is installed (the light and the
    full install: faster at every length and a quarter of the memory, ``benchmarks/transcribe_speed.py``), else
    the Keras model."""
    return DEFAULT_TFLITE if litert_available() or not tensorflow_available() else DEFAULT_MODEL


def check_model_path(model: str | os.PathLike, kind: str | None = None) -> Path:
    """The path of a model file that exists and can be read, ``.keras`` or ``.tflite`` (``kind``: only that
    suffix), else OSError / ValueError with the true reason; cheap (no TensorFlow), so callers check first."""
    path = Path(model)
    suffix = path.suffix.lower()
    if suffix not in (".keras", ".tflite"):
        raise ValueError(f"{path}: a model must be a .keras or .tflite file")
    if kind is not None and suffix != kind:
        other = "a Keras model (use --model)" if suffix == ".keras" else "a TFLite model"
        raise ValueError(f"{path}: expected a {kind} file; this is {other}")
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, not a {suffix} model file")
    try:
        with open(path, "rb"):
            pass
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such model file") from None
    except OSError as exc:
        raise type(exc)(f"{path}: cannot read the model ({exc.strerror or exc})") from None
    return path


def load_predictor(model=None, thresholds: dict | None = None, interpreters: int | None = None) -> Predictor:
    """A :class:`Predictor` for ``model``: None (the shipped default, :func:`default_model_path`: its TFLite
    export), a ``.keras`` or ``.tflite`` path, a loaded Keras model, or a Predictor (returned as is,
    with ``thresholds`` applied).  ``interpreters``: TFLite windows run side by side
    (:func:`~piano_transcription.tflite.parallelism`; Keras models ignore it)."""
    if isinstance(model, Predictor):
        if thresholds:
            model.thresholds.update({k: check_threshold(v, k) for k, v in thresholds.items() if v is not None})
        return model
    if model is None:
        model = default_model_path()
    if isinstance(model, bytes):
        model = os.fsdecode(model)
    if isinstance(model, (str, os.PathLike)):
        path = check_model_path(model)
        if path.suffix.lower() == ".tflite":
            return TFLitePredictor(path, thresholds, interpreters=interpreters)
        if not tensorflow_available():
            raise ImportError(f"{path}: Keras models need the full install (pip install "
                              "'piano-transcription[full]'); the light install runs .tflite models")
        return KerasPredictor(path, thresholds)
    return KerasPredictor(model, thresholds)
