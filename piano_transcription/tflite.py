"""TFLite: a raw-audio model exported from a Keras model, and windowed inference with any such model.

The contract is that of Magenta's ``onsets_frames_wavinput.tflite``: one input of 17920 float32
samples at 16 kHz (1.12 s) and four outputs ``frame_logits``, ``onset_logits``, ``offset_logits`` and
``velocity_values``, each ``[1, 32, 88]``.  The log-mel front end runs inside the graph:
``tf.signal.stft`` (frames of 2048, hop 512, periodic Hann, no centre padding, so 17920 samples give
exactly 32 frames), the same HTK mel filterbank as librosa (embedded as a constant), power to dB
(``10 log10(max(x, 1e-10))``) and the 80 dB floor below the window's loudest bin (librosa's
``top_db``, here per 1.12 s window instead of per 20 s segment).

Inference walks a recording in steps of 32 frames (16384 samples): the recording is padded with
1024 zeros in front (so window frames fall on the centred frame grid of the rest of the project) and
zeros at the end, window ``k`` reads samples ``[16384 k, 16384 k + 17920)``, and the 32 frames of each
window are stacked.  This module imports neither TensorFlow nor librosa unless exporting: the
interpreter comes from ``ai-edge-litert`` (TensorFlow's ``tf.lite.Interpreter`` as a fallback).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .constants import HOP_LENGTH, N_FFT, N_KEYS, TOP_DB

WINDOW_SAMPLES = 17920
WINDOW_FRAMES = 32
STEP_SAMPLES = WINDOW_FRAMES * HOP_LENGTH  # 16384
OUTPUT_NAMES = ("frame_logits", "onset_logits", "offset_logits", "velocity_values")
MAGENTA_TFLITE_URL = ("https://storage.googleapis.com/magentadata/models/onsets_frames_transcription/tflite/"
                      "onsets_frames_wavinput.tflite")


class TFLiteModelError(ValueError):
    """A file that is not a TFLite model, or whose inputs/outputs do not have the expected signature."""


# ------------------------------------------------------------------------------------------ export
def mel_front_end(samples, mel_matrix):
    """In-graph log-mel: ``samples [..., n]`` -> ``[..., frames, 229]`` dB (see the module docstring)."""
    import tensorflow as tf

    stft = tf.signal.stft(samples, frame_length=N_FFT, frame_step=HOP_LENGTH, fft_length=N_FFT,
                          window_fn=tf.signal.hann_window, pad_end=False)
    power = tf.math.square(tf.math.abs(stft))
    mel = tf.linalg.matmul(power, mel_matrix)
    db = 10.0 * tf.math.log(tf.math.maximum(mel, 1e-10)) / tf.math.log(10.0)
    floor = tf.math.reduce_max(db, axis=[-2, -1], keepdims=True) - TOP_DB
    return tf.math.maximum(db, floor)


def raw_audio_model(model):
    """A Keras model: ``audio [1, 17920]`` -> the four TFLite outputs ``[1, 32, 88]`` (logits for sigmoid heads)."""
    from .audio import mel_filters
    from .tf_env import quiet_tensorflow

    quiet_tensorflow()
    import keras
    import tensorflow as tf

    heads = keras.Model(model.inputs, {
        "frame_logits": model.get_layer("frame_logits").output,
        "onset_logits": model.get_layer("onsets_logits").output,
        "offset_logits": model.get_layer("offsets_logits").output,
        "velocity_values": model.get_layer("velocity").output,
    })
    matrix = tf.constant(mel_filters().T.astype(np.float32))  # [1025, 229]

    class MelFrontEnd(keras.layers.Layer):
        def call(self, x):
            return mel_front_end(x, matrix)

    audio = keras.Input(shape=(WINDOW_SAMPLES,), batch_size=1, name="audio")
    outputs = heads(MelFrontEnd(name="log_mel")(audio))
    return keras.Model(audio, {k: keras.layers.Identity(name=k)(outputs[k]) for k in OUTPUT_NAMES})


def export_tflite(model, output: str | os.PathLike, quantize: bool = False, float16: bool = False) -> Path:
    """Convert a Keras model (object or ``.keras`` path) to a raw-audio ``.tflite`` file; return its path.

    ``from_keras_model`` with the default built-in ops suffices (the BiLSTMs become WHILE loops, the
    STFT becomes RFFT2D; no SELECT_TF_OPS).  ``quantize`` applies dynamic-range int8 weight
    quantization (``Optimize.DEFAULT``), about 4x smaller; ``float16`` stores the weights as float16
    (about 2x smaller, computed in float32).
    """
    from .io import atomic_path
    from .model import load_model
    from .tf_env import quiet_tensorflow

    quiet_tensorflow()
    import tensorflow as tf

    if isinstance(model, (str, os.PathLike)):
        model = load_model(model)
    converter = tf.lite.TFLiteConverter.from_keras_model(raw_audio_model(model))
    if quantize or float16:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if float16:
        converter.target_spec.supported_types = [tf.float16]
    data = converter.convert()
    with atomic_path(output) as tmp:
        Path(tmp).write_bytes(data)
    return Path(output)


# ---------------------------------------------------------------------------------------- inference
def make_interpreter(path: str | os.PathLike, num_threads: int | None = None):
    """A TFLite interpreter from ai-edge-litert (TensorFlow's as a fallback); ``(interpreter, provider)``."""
    path = str(path)
    try:
        from ai_edge_litert.interpreter import Interpreter

        provider = "ai-edge-litert"
    except ImportError:  # pragma: no cover - depends on the install
        try:
            import tensorflow as tf
        except ImportError as exc:
            raise ImportError("no TFLite interpreter: pip install ai-edge-litert") from exc
        Interpreter, provider = tf.lite.Interpreter, "tensorflow"
    try:
        interpreter = Interpreter(model_path=path, num_threads=num_threads)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise TFLiteModelError(f"{path}: not a usable TFLite model ({exc})") from exc
    return interpreter, provider


class TFLiteModel:
    """A raw-audio TFLite model with the contract above (ours, or Magenta's file)."""

    def __init__(self, path: str | os.PathLike, num_threads: int | None = None):
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such model file")
        self.path = path
        self.interpreter, self.provider = make_interpreter(path, num_threads)
        inputs = self.interpreter.get_input_details()
        if len(inputs) != 1 or int(np.prod(inputs[0]["shape"])) != WINDOW_SAMPLES:
            raise TFLiteModelError(f"{path}: expected one input of {WINDOW_SAMPLES} samples, "
                                   f"got {[tuple(d['shape']) for d in inputs]}")
        self.input = inputs[0]
        self.outputs = {}
        details = self.interpreter.get_output_details()
        signatures = self.interpreter.get_signature_list()
        if signatures:  # ours: outputs are named in the signature
            runner = self.interpreter.get_signature_runner(next(iter(signatures)))
            for name, d in runner.get_output_details().items():
                if name in OUTPUT_NAMES:
                    self.outputs[name] = d
        for d in details:  # Magenta's file: tensor names
            for name in OUTPUT_NAMES:
                if name not in self.outputs and name in d["name"]:
                    self.outputs[name] = d
        missing = [n for n in OUTPUT_NAMES if n not in self.outputs]
        bad = [n for n, d in self.outputs.items() if tuple(d["shape"])[-2:] != (WINDOW_FRAMES, N_KEYS)]
        if missing or bad:
            raise TFLiteModelError(f"{path}: outputs {missing or bad} missing or not [1, 32, 88]; "
                                   f"found {[(d['name'], tuple(d['shape'])) for d in details]}")

    def run_window(self, window: np.ndarray) -> dict[str, np.ndarray]:
        """Raw outputs ``{name: [32, 88]}`` of one 17920-sample window."""
        x = np.asarray(window, np.float32).reshape(self.input["shape"])
        self.interpreter.set_tensor(self.input["index"], x)
        self.interpreter.invoke()
        return {n: self.interpreter.get_tensor(d["index"]).reshape(WINDOW_FRAMES, N_KEYS)
                for n, d in self.outputs.items()}

    def predict(self, samples: np.ndarray, progress: bool = False) -> dict[str, np.ndarray]:
        """Probability rolls ``{onset, offset, frame, velocity}`` ``[frames, 88]`` of 16 kHz mono samples."""
        from tqdm.auto import tqdm

        n_frames = 1 + len(samples) // HOP_LENGTH
        n_windows = -(-n_frames // WINDOW_FRAMES)
        padded = np.zeros((n_windows - 1) * STEP_SAMPLES + WINDOW_SAMPLES, np.float32)
        padded[N_FFT // 2: N_FFT // 2 + len(samples)] = samples
        stacked = {n: np.zeros((n_windows * WINDOW_FRAMES, N_KEYS), np.float32) for n in OUTPUT_NAMES}
        for k in tqdm(range(n_windows), desc="transcribe", unit="window", disable=not progress):
            out = self.run_window(padded[k * STEP_SAMPLES: k * STEP_SAMPLES + WINDOW_SAMPLES])
            for n in OUTPUT_NAMES:
                stacked[n][k * WINDOW_FRAMES:(k + 1) * WINDOW_FRAMES] = out[n]
        sig = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
        return {"frame": sig(stacked["frame_logits"][:n_frames]), "onset": sig(stacked["onset_logits"][:n_frames]),
                "offset": sig(stacked["offset_logits"][:n_frames]), "velocity": stacked["velocity_values"][:n_frames]}


def download_magenta_tflite(dest_dir: str | os.PathLike, url: str = MAGENTA_TFLITE_URL) -> Path:
    """Download Magenta's ``onsets_frames_wavinput.tflite`` (clear error offline) and check its signature."""
    from .io import download

    path = download(url, Path(dest_dir) / "onsets_frames_wavinput.tflite")
    TFLiteModel(path)
    return path
