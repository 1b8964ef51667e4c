"""TFLite: a raw-audio model exported from a Keras model, and windowed inference with any such model.

The contract is that of Magenta's ``onsets_frames_wavinput.tflite``: one input of float32 samples at
16 kHz and four outputs ``frame_logits``, ``onset_logits``, ``offset_logits`` and ``velocity_values``,
each ``[1, frames, 88]``.  Magenta's file reads 17920 samples (1.12 s) and writes 32 frames; ours read
the training segment's 626 frames (20 s, ``(626 - 1) * 512 + 2048`` samples), so that the LSTMs see as
much context as in training and as in the Keras path.  The log-mel front end runs inside the graph:
``tf.signal.stft`` (frames of 2048, hop 512, periodic Hann, no centre padding, so ``(W - 1) * 512 +
2048`` samples give exactly ``W`` frames), the same HTK mel filterbank as librosa (embedded as a
constant), power to dB (``10 log10(max(x, 1e-10))``) and the 80 dB floor below the window's loudest
bin (librosa's ``top_db``, per window, as per 20 s segment in training).

Inference: a 20 s model walks a recording in the overlapping windows of the Keras path
(:mod:`piano_transcription.inference`: 2 s of context kept on each side of each window's centre), so
that both give the same rolls.  A short-window model (Magenta's) tiles it in steps of its window: the
recording is padded with 1024 zeros in front (so window frames fall on the centred frame grid of the rest
of the project) and zeros at the end, window ``k`` reads samples ``[16384 k, 16384 k + 17920)``, and
the 32 frames of each window are stacked.  This module imports neither TensorFlow nor librosa unless
exporting: the interpreter comes from ``ai-edge-litert`` (TensorFlow's ``tf.lite.Interpreter`` as a
fallback).

Parallel windows (``interpreters``, the CLI's ``--parallel-windows``): the fused LSTMs (most of the model's time) run
on one thread whatever ``num_threads`` says, so several single-threaded interpreters running every n-th window side
by side keep more cores busy; the outputs are those of one interpreter, bit for bit (tested).  Each interpreter
costs about 160 MB (XNNPACK's buffers for 20 s windows), so the default stays one interpreter on every core: on the
2-core AMD EPYC, 10 minutes took 4.7 s and 292 MB with one, 3.8 s and 456 MB with two
(``benchmarks/transcribe_speed.py --paths tflite tflite-parallel``).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .constants import HOP_LENGTH, N_FFT, N_KEYS, PEDAL_CHANNELS, SEGMENT_FRAMES, TOP_DB, frames_for_samples
from .inference import MARGIN_FRAMES, collect, sample_windows, stream_windows

WINDOW_SAMPLES = 17920  # Magenta's contract: 1.12 s windows of 32 frames
WINDOW_FRAMES = 32
STEP_SAMPLES = WINDOW_FRAMES * HOP_LENGTH  # 16384
EXPORT_FRAMES = SEGMENT_FRAMES  # our exports: windows of the training segment's 626 frames (20 s)
OUTPUT_NAMES = ("frame_logits", "onset_logits", "offset_logits", "velocity_values")
PEDAL_NAME = "pedal_logits"  # optional fifth output [1, 32, 3] of models with the sustain-pedal head
KEYS_NAME = "keys_logits"  # optional output [1, 32, 88] of models with the key head
OPTIONAL_NAMES = (PEDAL_NAME, KEYS_NAME)
MAGENTA_TFLITE_URL = ("https://storage.googleapis.com/magentadata/models/onsets_frames_transcription/tflite/"
                      "onsets_frames_wavinput.tflite")


DEFAULT_INTERPRETERS = 1  # windows run side by side by default (more: faster, about 160 MB each)


def usable_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def parallelism(num_threads: int | None = None, interpreters: int | None = None) -> tuple[int, int]:
    """``(interpreters, threads each)``: ``interpreters`` (default :data:`DEFAULT_INTERPRETERS`; an explicit
    ``num_threads`` alone means one, a Dask worker's ``--model-threads``), each on ``num_threads`` threads or its
    share of the usable cores."""
    if interpreters is None:
        interpreters = 1 if num_threads is not None else DEFAULT_INTERPRETERS
    if int(interpreters) < 1:
        raise ValueError(f"interpreters must be at least 1, got {interpreters}")
    interpreters = int(interpreters)
    return interpreters, max(1, int(num_threads) if num_threads is not None else usable_cores() // interpreters)


class TFLiteModelError(ValueError):
    """A file that is not a TFLite model, or whose inputs/outputs do not have the expected signature."""


def window_samples(frames: int) -> int:
    """Samples a raw-audio window of ``frames`` uncentred frames reads: ``(frames - 1) * 512 + 2048``."""
    return (frames - 1) * HOP_LENGTH + N_FFT


def window_frames(samples: int) -> int | None:
    """Frames of a raw-audio window of ``samples`` samples, or None if no whole number of frames fits it."""
    if samples < N_FFT or (samples - N_FFT) % HOP_LENGTH:
        return None
    return 1 + (samples - N_FFT) // HOP_LENGTH


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


def fused_lstm(go_backwards: bool):
    """One direction of an LSTM as a ``tf.function`` that the TFLite converter replaces by its fused
    ``UNIDIRECTIONAL_SEQUENCE_LSTM`` kernel.

    Keras 3's LSTM converts to a WHILE loop whose body runs as a subgraph of small ops at every one of the 626
    steps, outside XNNPACK: most of the TFLite model's time.  The converter fuses a function that carries Keras
    2's ``api_implements: lstm_*`` attributes and its signature ``(inputs, init_h, init_c, kernel,
    recurrent_kernel, bias) -> (last output, outputs, h, c, runtime)`` (``time_major`` False; with
    ``go_backwards`` the outputs come in reversed time, as Keras 2's).  The body below computes the same LSTM
    (gates i, f, c, o; sigmoid / tanh: Keras's defaults) for TensorFlow itself; the fused kernel replaces it in
    the file.  Its state tensors are variables: :class:`TFLiteModel` resets them before every window.
    """
    import uuid

    import tensorflow as tf

    attributes = {"api_implements": f"lstm_{uuid.uuid4()}", "api_preferred_device": "CPU", "time_major": False,
                  "go_backwards": go_backwards}

    @tf.function(experimental_attributes=attributes, autograph=False)
    def lstm(inputs, init_h, init_c, kernel, recurrent_kernel, bias):
        steps = tf.transpose(tf.reverse(inputs, [1]) if go_backwards else inputs, [1, 0, 2])

        def step(carry, x):
            h, c = carry
            i, f, g, o = tf.split(tf.matmul(x, kernel) + tf.matmul(h, recurrent_kernel) + bias, 4, axis=1)
            c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
            return tf.sigmoid(o) * tf.tanh(c), c

        hs, cs = tf.scan(step, steps, initializer=(init_h, init_c))
        outputs = tf.transpose(hs, [1, 0, 2])
        return outputs[:, -1], outputs, hs[-1], cs[-1], tf.constant(0.0)

    return lstm


def _is_plain_bilstm(layer) -> bool:
    """A Bidirectional LSTM the fused kernel computes exactly: tanh / sigmoid, biases, whole sequences."""
    import keras

    if not isinstance(layer, keras.layers.Bidirectional) or not isinstance(layer.forward_layer, keras.layers.LSTM):
        return False
    cell = layer.forward_layer
    return (cell.return_sequences and cell.use_bias and layer.merge_mode == "concat"
            and cell.activation is keras.activations.tanh and cell.recurrent_activation is keras.activations.sigmoid)


def with_fused_lstms(model):
    """A copy of a Keras model for export whose plain Bidirectional LSTMs call :func:`fused_lstm` (same
    weights, as constants); every other layer is the model's own."""
    import keras
    import tensorflow as tf

    class FusedBidirectionalLSTM(keras.layers.Layer):
        def __init__(self, bidirectional, **kwargs):
            super().__init__(name=bidirectional.name, **kwargs)
            self.units = bidirectional.forward_layer.units
            weights = [tf.constant(w) for w in bidirectional.get_weights()]
            self.forward_weights, self.backward_weights = weights[:3], weights[3:]
            self.forward, self.backward = fused_lstm(False), fused_lstm(True)

        def call(self, x, mask=None):  # mask: what Keras hands a layer that replaces a recurrent one (unused)
            zeros = tf.zeros((tf.shape(x)[0], self.units))
            forward = self.forward(x, zeros, zeros, *self.forward_weights)[1]
            backward = self.backward(x, zeros, zeros, *self.backward_weights)[1]
            return tf.concat([forward, tf.reverse(backward, [1])], axis=-1)

    return keras.models.clone_model(
        model, clone_function=lambda layer: FusedBidirectionalLSTM(layer) if _is_plain_bilstm(layer) else layer)


def raw_audio_model(model, frames: int = EXPORT_FRAMES):
    """A Keras model: ``audio [window_samples(frames)]`` -> the TFLite outputs ``[1, frames, 88]`` (logits for
    sigmoid heads; the pedal's ``[1, frames, 3]``)."""
    from .audio import mel_filters
    from .model import has_keys, has_pedal
    from .tf_env import quiet_tensorflow

    quiet_tensorflow()
    import keras
    import tensorflow as tf

    named = {
        "frame_logits": model.get_layer("frame_logits").output,
        "onset_logits": model.get_layer("onsets_logits").output,
        "offset_logits": model.get_layer("offsets_logits").output,
        "velocity_values": model.get_layer("velocity").output,
    }
    if has_pedal(model):
        named[PEDAL_NAME] = model.get_layer("pedal_logits").output
    if has_keys(model):
        named[KEYS_NAME] = model.get_layer("keys_logits").output
    heads = with_fused_lstms(keras.Model(model.inputs, named))
    matrix = tf.constant(mel_filters().T.astype(np.float32))  # [1025, 229]

    class MelFrontEnd(keras.layers.Layer):
        def call(self, x):
            return mel_front_end(x, matrix)

    class AddBatch(keras.layers.Layer):
        def call(self, x):
            return keras.ops.expand_dims(x, 0)

    audio = keras.Input(batch_shape=(window_samples(frames),), name="audio")  # [17920] for 32 frames, as Magenta's
    outputs = heads(MelFrontEnd(name="log_mel")(AddBatch(name="add_batch")(audio)))
    return keras.Model(audio, {k: keras.layers.Identity(name=k)(outputs[k]) for k in named})


def export_tflite(model, output: str | os.PathLike, quantize: bool = False, float16: bool = False,
                  frames: int = EXPORT_FRAMES) -> Path:
    """Convert a Keras model (object or ``.keras`` path) to a raw-audio ``.tflite`` file of ``frames``-frame
    windows (default 626, the training segment; 32 is Magenta's 1.12 s contract); return its path.

    ``from_keras_model`` with the default built-in ops suffices (the BiLSTMs become WHILE loops, the
    STFT becomes RFFT2D; no SELECT_TF_OPS).  ``quantize`` applies dynamic-range int8 weight
    quantization (``Optimize.DEFAULT``), about 4x smaller; ``float16`` stores the weights as float16
    (about 2x smaller, computed in float32).  From a path, the model's ``X.thresholds.json`` goes with it
    (:func:`carry_sidecar`).
    """
    from .io import atomic_path
    from .model import load_model
    from .tf_env import quiet_tensorflow

    quiet_tensorflow()
    import tensorflow as tf

    source = model if isinstance(model, (str, os.PathLike)) else None
    if source is not None:
        model = load_model(model)
    if frames < 1:
        raise ValueError(f"a window needs at least one frame, got {frames}")
    converter = tf.lite.TFLiteConverter.from_keras_model(raw_audio_model(model, frames))
    if quantize or float16:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if float16:
        converter.target_spec.supported_types = [tf.float16]
    data = converter.convert()
    with atomic_path(output) as tmp:
        Path(tmp).write_bytes(data)
    if source is not None:
        carry_sidecar(source, output)
    return Path(output)


def carry_sidecar(source: str | os.PathLike, output: str | os.PathLike) -> None:
    """Give an export the decoding its model needs: the source's ``X.thresholds.json`` where the export has none, else
    the source's ``timing`` into the export's (its thresholds kept)."""
    from .io import write_json
    from .predictor import read_sidecar, thresholds_path

    src = read_sidecar(source)
    if not src:
        return
    out = read_sidecar(output)
    if not out:
        write_json(thresholds_path(output), src)
    elif "timing" in src and out.get("timing") != src["timing"]:
        write_json(thresholds_path(output), {**out, "timing": src["timing"]})


# ---------------------------------------------------------------------------------------- inference
def make_interpreter(path: str | os.PathLike, num_threads: int | None = None):
    """A TFLite interpreter from ai-edge-litert (TensorFlow's as a fallback); ``(interpreter, provider)``.
    ``num_threads``: None uses every core this process may run on (TFLite's own default is one thread; two
    threads transcribed 120 s in 2.19 s instead of 2.61 s on a 2-core CPU)."""
    path = str(path)
    if num_threads is None:
        num_threads = usable_cores()
    try:
        from ai_edge_litert.interpreter import Interpreter

        provider = "ai-edge-litert"
    except ImportError:  # pragma: no cover - depends on the install
        try:
            import tensorflow as tf
        except ImportError as exc:
            raise ImportError("no TFLite interpreter: pip install ai-edge-litert") from exc
        Interpreter, provider = tf.lite.Interpreter, "tensorflow"
    from .native_logs import filtered_stderr

    try:
        with filtered_stderr():  # LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
            interpreter = Interpreter(model_path=path, num_threads=num_threads)
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise TFLiteModelError(f"{path}: not a usable TFLite model ({exc})") from exc
    return interpreter, provider


class TFLiteModel:
    """A raw-audio TFLite model with the contract above (ours, or Magenta's file)."""

    frames = WINDOW_FRAMES  # frames per window (read from the file)
    margin = 0  # frames of context dropped on each side of a window's centre: MARGIN_FRAMES for windows of more
    # than 4 margins (ours: read as the Keras path reads them), 0 for shorter ones (Magenta's: windows tile the
    # recording; the live model's 96 frames)

    def __init__(self, path: str | os.PathLike, num_threads: int | None = None, interpreters: int | None = None):
        """``num_threads`` and ``interpreters``: see :func:`parallelism` (the extra interpreters are made at the
        first recording of more than one window)."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such model file")
        if path.is_dir():
            raise TFLiteModelError(f"{path}: is a folder, not a .tflite model file")
        self.path = path
        self.n_interpreters, self.num_threads = parallelism(num_threads, interpreters)
        self.interpreter, self.provider = make_interpreter(path, self.num_threads)
        self._interpreters = [self.interpreter]
        self._pool: ThreadPoolExecutor | None = None
        inputs = self.interpreter.get_input_details()
        frames = window_frames(int(np.prod(inputs[0]["shape"]))) if len(inputs) == 1 else None
        if frames is None:
            raise TFLiteModelError(f"{path}: expected one input of (frames - 1) * 512 + 2048 samples (17920 for "
                                   f"Magenta's 32 frames), got {[tuple(d['shape']) for d in inputs]}")
        self.input, self.frames = inputs[0], frames
        self.margin = MARGIN_FRAMES if frames > 4 * MARGIN_FRAMES else 0
        self.outputs = {}
        details = self.interpreter.get_output_details()
        signatures = self.interpreter.get_signature_list()
        if signatures:  # ours: outputs are named in the signature
            runner = self.interpreter.get_signature_runner(next(iter(signatures)))
            for name, d in runner.get_output_details().items():
                if name in OUTPUT_NAMES + OPTIONAL_NAMES:
                    self.outputs[name] = d
        for d in details:  # Magenta's file: tensor names
            for name in OUTPUT_NAMES:
                if name not in self.outputs and name in d["name"]:
                    self.outputs[name] = d
        missing = [n for n in OUTPUT_NAMES if n not in self.outputs]
        widths = {PEDAL_NAME: len(PEDAL_CHANNELS)}
        bad = [n for n, d in self.outputs.items() if tuple(d["shape"])[-2:] != (frames, widths.get(n, N_KEYS))]
        if missing or bad:
            raise TFLiteModelError(f"{path}: outputs {missing or bad} missing or not [1, {frames}, 88]; "
                                   f"found {[(d['name'], tuple(d['shape'])) for d in details]}")

    def run_window(self, window: np.ndarray, interpreter=None) -> dict[str, np.ndarray]:
        """Raw outputs ``{name: [frames, 88]}`` of one window of ``window_samples(frames)`` samples (on the first
        interpreter, or on ``interpreter``)."""
        interpreter = self.interpreter if interpreter is None else interpreter
        x = np.asarray(window, np.float32).reshape(self.input["shape"])
        interpreter.reset_all_variables()  # fused LSTMs keep their state in variables: each window starts anew
        interpreter.set_tensor(self.input["index"], x)
        interpreter.invoke()  # lets go of the GIL: the interpreters of run_windows run at once
        return {n: interpreter.get_tensor(d["index"]).reshape(self.frames, -1).copy()
                for n, d in self.outputs.items()}

    def run_windows(self, windows) -> list[dict[str, np.ndarray]]:
        """:meth:`run_window` of each window, up to ``n_interpreters`` of them side by side."""
        windows = list(windows)
        if len(windows) <= 1 or self.n_interpreters == 1:
            return [self.run_window(w) for w in windows]
        while len(self._interpreters) < min(self.n_interpreters, len(windows)):
            self._interpreters.append(make_interpreter(self.path, self.num_threads)[0])
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.n_interpreters, thread_name_prefix="tflite")
        n = len(self._interpreters)
        parts = list(self._pool.map(lambda i: [self.run_window(w, self._interpreters[i]) for w in windows[i::n]],
                                    range(n)))
        return [parts[i % n][i // n] for i in range(len(windows))]

    @staticmethod
    def rolls(out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Probability rolls ``{onset, offset, frame, velocity[, pedal][, keys]}`` of one window's raw outputs."""
        sig = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
        chunk = {"frame": sig(out["frame_logits"]), "onset": sig(out["onset_logits"]),
                 "offset": sig(out["offset_logits"]), "velocity": out["velocity_values"]}
        if PEDAL_NAME in out:
            chunk["pedal"] = sig(out[PEDAL_NAME])
        if KEYS_NAME in out:
            chunk["keys"] = sig(out[KEYS_NAME])
        return chunk

    @property
    def has_pedal(self) -> bool:
        """Whether the model has the sustain-pedal output."""
        return PEDAL_NAME in self.outputs

    @property
    def has_keys(self) -> bool:
        """Whether the model has the key output."""
        return KEYS_NAME in self.outputs

    def stream(self, blocks, n_samples: int, progress: bool = False):
        """Probability rolls of 16 kHz audio given as consecutive ``blocks`` (``n_samples`` in all), yielded
        window by window: ``{onset, offset, frame, velocity[, pedal][, keys]}`` ``[frames, ...]``."""
        if self.margin:  # long windows: overlapping, as the Keras path
            def predict(x):  # [B, samples] -> {name: [B, frames, ...]}
                outs = [self.rolls(o) for o in self.run_windows(x)]
                return {k: np.stack([o[k] for o in outs]) for k in outs[0]}

            return stream_windows(predict, sample_windows(blocks, n_samples, self.frames, self.margin),
                                  frames_for_samples(n_samples), self.frames, self.margin,
                                  batch_size=self.n_interpreters, progress=progress, pad_last=False)
        return self._tile(blocks, n_samples, progress)

    def _tile(self, blocks, n_samples: int, progress: bool = False):
        """Short windows (Magenta's 32 frames) side by side, without overlap (see the module docstring)."""
        from tqdm.auto import tqdm

        n_frames = frames_for_samples(n_samples)
        starts = list(range(0, n_frames, self.frames))
        windows = sample_windows(blocks, n_samples, self.frames, starts=starts)
        for s, samples in tqdm(zip(starts, windows), total=len(starts), desc="transcribe", unit="window",
                               disable=not progress):
            yield {name: roll[: n_frames - s] for name, roll in self.rolls(self.run_window(samples)).items()}

    def predict(self, samples: np.ndarray, progress: bool = False) -> dict[str, np.ndarray]:
        """Whole probability rolls ``{onset, offset, frame, velocity[, pedal][, keys]}`` of 16 kHz mono samples."""
        return collect(self.stream([np.asarray(samples, np.float32)], len(samples), progress))


def download_magenta_tflite(dest_dir: str | os.PathLike, url: str = MAGENTA_TFLITE_URL) -> Path:
    """Download Magenta's ``onsets_frames_wavinput.tflite`` (clear error offline) and check its signature."""
    from .io import download

    path = download(url, Path(dest_dir) / "onsets_frames_wavinput.tflite")
    TFLiteModel(path)
    return path
