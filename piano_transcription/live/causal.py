"""The live low-latency mode: a causal model (forward-only LSTMs, ``ModelConfig.causal``) run block by block.

:class:`CausalFrames` turns a 16 kHz stream into probability frames with the same interface as
:class:`~piano_transcription.live.transcriber.LookaheadFrames`: each ``block`` of frames is computed once, as soon
as the audio it needs has arrived -- frame ``f`` reads the log-mel up to frame ``f + 3`` (the three 3x3
convolutions' reach), which reads the samples up to ``512 (f + 3) + 1024`` -- and the LSTMs' states are carried
from block to block, so a note is decided 3 frames plus 64 ms after its onset frame, plus up to one block.  The
outputs equal the whole-sequence model's on the same log-mel (tested).  The log-mel's 80 dB floor is set below the
loudest bin heard so far (offline: below each 20 s window's loudest).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..audio import log_mel
from ..constants import TOP_DB, frames_for_samples
from ..predictor import Predictor
from .transcriber import SampleBuffer, ready_frames, window_sample_range

BLOCK_FRAMES = 2  # frames computed per step (64 ms)
CONV_REACH = 3  # frames each side that a frame's convolutional features read (three 3x3 convolutions)
RECURRENT = ("onsets_lstm", "offsets_lstm", "frame_lstm")


def load_causal(model=None):
    """A :class:`CausalPredictor`: None (the shipped causal model: ``models/causal.keras`` on a full install, its
    TFLite step model ``models/causal.tflite`` on the light one), a ``.keras`` or ``.tflite`` path, a Keras model or
    a Predictor of one.  ValueError for a model whose LSTMs look both ways."""
    from ..assets import DEFAULT_CAUSAL, DEFAULT_CAUSAL_TFLITE
    from ..predictor import tensorflow_available

    if isinstance(model, CausalPredictor):
        return model
    if model is None:
        model = DEFAULT_CAUSAL if tensorflow_available() else DEFAULT_CAUSAL_TFLITE
        if not Path(model).exists():
            raise FileNotFoundError(f"{model}: the causal model is not installed")
    if isinstance(model, Predictor):
        if not hasattr(model, "model"):
            raise ValueError(f"{model.path}: not a causal model (a bidirectional TFLite export); use --mode lookahead")
        return CausalPredictor(model.model, model.thresholds, model.path)
    return CausalPredictor(model)


class CausalPredictor(Predictor):
    """A causal model for the live low-latency mode: a Keras model (``.keras``, or a loaded one; run with exact ends)
    or its TFLite step model (``.tflite``, :func:`export_causal_tflite`), with the thresholds stored beside it
    (``X.thresholds.json``) as every :class:`~piano_transcription.predictor.Predictor`.  :meth:`stepper` runs it block
    by block; :meth:`stream` transcribes a whole recording offline (Keras only)."""

    def __init__(self, model, thresholds: dict | None = None, path=None):
        from ..model import is_causal
        from ..predictor import _MODEL_PATHS, tensorflow_available

        self._stepper = None
        if isinstance(model, (str, os.PathLike)):
            path = Path(model)
            if not path.exists():
                raise FileNotFoundError(f"{path}: no such model file")
            if path.suffix.lower() == ".tflite":
                self.backend, self.model, self._stepper = "tflite", None, TFLiteCausalStepper(path)
                super().__init__(path, thresholds)
                return
            if not tensorflow_available():
                raise ImportError(f"{path}: Keras models need the full install (pip install "
                                  "'piano-transcription[full]'); the light install runs the causal .tflite step model")
            from ..model import load_model

            model = load_model(path)
        else:
            path = path or _MODEL_PATHS.get(model)
        if not is_causal(model):
            raise ValueError(f"{path or 'this model'}: not a causal model (its LSTMs look both ways); use --mode "
                             "lookahead, or a model trained with --config small_causal")
        self.backend, self.model = "keras", model
        super().__init__(path, thresholds)

    @property
    def has_pedal(self) -> bool:
        return False

    @property
    def has_keys(self) -> bool:
        return False

    def stepper(self):
        """The block-by-block runner (built once per predictor: the Keras one traces its functions)."""
        if self._stepper is None:
            self._stepper = CausalStepper(self.model)
        return self._stepper

    def stream(self, source, progress: bool = False):
        if self.model is None:
            raise ValueError(f"{self.path}: a causal step model runs live only (transcribe files with the .keras model)")
        from ..predictor import KerasPredictor

        return KerasPredictor(self.model).stream(source, progress)


class CausalStepper:
    """A causal Keras model split for streaming: the acoustic stacks (convolutions to the features each LSTM reads,
    the velocity head, the frame stack's activation probabilities) on a stretch of log-mel, then the recurrent part
    one block at a time from carried states."""

    def __init__(self, model):
        from ..tf_env import quiet_tensorflow

        quiet_tensorflow()
        import keras
        import tensorflow as tf

        get = model.get_layer
        self.acoustic = keras.Model(model.inputs, [get("onsets_lstm").input, get("offsets_lstm").input,
                                                   get("velocity").output, get("frame_activation_probs").output])
        self.lstms = {}
        for name in RECURRENT:
            src = get(name)
            layer = keras.layers.LSTM(src.units, return_sequences=True, return_state=True, name=f"{name}_step")
            layer.build(src.input.shape)
            layer.set_weights(src.get_weights())
            self.lstms[name] = layer
        self.units = {name: layer.units for name, layer in self.lstms.items()}
        self.dense = {k: get(k) for k in ("onsets_logits", "offsets_logits", "frame_logits")}

        def run(mel, start, stop, states):
            on_x, off_x, velocity, activation = (x[:, start:stop] for x in self.acoustic(mel, training=False))
            on_h, *on_s = self.lstms["onsets_lstm"](on_x, initial_state=states[0:2])
            off_h, *off_s = self.lstms["offsets_lstm"](off_x, initial_state=states[2:4])
            onset = tf.sigmoid(self.dense["onsets_logits"](on_h))
            offset = tf.sigmoid(self.dense["offsets_logits"](off_h))
            fr_h, *fr_s = self.lstms["frame_lstm"](tf.concat([onset, activation, offset], axis=-1),
                                                   initial_state=states[4:6])
            out = {"onset": onset, "offset": offset, "frame": tf.sigmoid(self.dense["frame_logits"](fr_h)),
                   "velocity": velocity}
            return out, on_s + off_s + fr_s

        self._run = tf.function(run, reduce_retracing=True)  # one trace mid-stream, one or two at the ends
        self._tf = tf

    def initial_states(self) -> list:
        """Zero states (h, c) of each LSTM, in the order onsets, offsets, frame."""
        return [np.zeros((1, self.units[n]), np.float32) for n in RECURRENT for _ in range(2)]

    def run(self, mel: np.ndarray, keep: slice, states: list, floor: float) -> tuple[dict[str, np.ndarray], list]:
        """Probabilities ``{onset, offset, frame, velocity}`` of the frames ``keep`` of a log-mel stretch ``mel``
        (at most 3 frames of context each side; fewer only at the stream's ends, where the convolutions pad as on the
        whole sequence), and the LSTMs' states after them.  ``floor``: unused (the TFLite stepper pads with it)."""
        c = self._tf.constant
        out, new = self._run(c(mel[None], self._tf.float32), c(keep.start), c(keep.stop), [c(s) for s in states])
        return {k: np.asarray(v)[0] for k, v in out.items()}, [np.asarray(s) for s in new]


def state_names() -> list[str]:
    """The TFLite step model's state inputs / outputs, in :meth:`CausalStepper.initial_states`'s order."""
    return [f"{n}_{part}" for n in RECURRENT for part in ("h", "c")]


def causal_step_model(model, block: int = BLOCK_FRAMES):
    """A Keras model for one fixed-size step of a causal model: ``mel`` ``[1, block + 6, 229]`` (3 frames of context
    each side) and the LSTMs' states in, the ``block`` middle frames' ``onset``, ``offset``, ``frame`` (probabilities),
    ``velocity`` ``[1, block, 88]`` and the new states out (the LSTMs unrolled over the block): what
    :func:`export_causal_tflite` converts."""
    from ..tf_env import quiet_tensorflow

    quiet_tensorflow()
    import keras

    get = model.get_layer
    acoustic = keras.Model(model.inputs, [get("onsets_lstm").input, get("offsets_lstm").input, get("velocity").output,
                                          get("frame_activation_probs").output])
    mel = keras.Input(batch_shape=(1, block + 2 * CONV_REACH, get("onsets_conv0").input.shape[2]), name="mel")
    names = state_names()
    states = {n: keras.Input(batch_shape=(1, get(n.rsplit("_", 1)[0]).units), name=n) for n in names}
    crop = lambda x, name: keras.layers.Cropping1D((CONV_REACH, CONV_REACH), name=name)(x)  # noqa: E731
    on_x, off_x, velocity, activation = (crop(x, f"crop_{i}") for i, x in enumerate(acoustic(mel)))
    outs, new_states = {}, {}

    def lstm(name, x):
        src = get(name)
        layer = keras.layers.LSTM(src.units, return_sequences=True, return_state=True, unroll=True, name=f"{name}_step")
        h, sh, sc = layer(x, initial_state=[states[f"{name}_h"], states[f"{name}_c"]])
        layer.set_weights(src.get_weights())
        new_states[f"{name}_h"], new_states[f"{name}_c"] = sh, sc
        return h

    sig = lambda x, name: keras.layers.Activation("sigmoid", name=name)(x)  # noqa: E731
    outs["onset"] = sig(get("onsets_logits")(lstm("onsets_lstm", on_x)), "onset")
    outs["offset"] = sig(get("offsets_logits")(lstm("offsets_lstm", off_x)), "offset")
    combined = keras.layers.Concatenate(axis=-1)([outs["onset"], activation, outs["offset"]])
    outs["frame"] = sig(get("frame_logits")(lstm("frame_lstm", combined)), "frame")
    outs["velocity"] = keras.layers.Identity(name="velocity_out")(velocity)
    outputs = {**outs, **{f"new_{k}": keras.layers.Identity(name=f"new_{k}")(v) for k, v in new_states.items()}}
    return keras.Model({"mel": mel, **states}, outputs)


def export_causal_tflite(model, output: str | os.PathLike, block: int = BLOCK_FRAMES, float16: bool = True) -> Path:
    """Convert a causal Keras model (object or path) to a TFLite step model of ``block`` frames (see
    :func:`causal_step_model`), float16 weights unless ``float16`` is off; written atomically."""
    from ..io import atomic_path
    from ..model import is_causal, load_model
    from ..tf_env import quiet_tensorflow

    quiet_tensorflow()
    import tensorflow as tf

    if isinstance(model, (str, os.PathLike)):
        model = load_model(model)
    if not is_causal(model):
        raise ValueError("only a causal model (forward-only LSTMs) can be exported as a step model")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:  # through a SavedModel: named inputs / outputs, weights frozen
        causal_step_model(model, block).export(tmp, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        if float16:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        data = converter.convert()
    with atomic_path(output) as tmp:
        Path(tmp).write_bytes(data)
    return Path(output)


class TFLiteCausalStepper:
    """The TFLite step model of :func:`export_causal_tflite`: fixed blocks, the stream's ends padded with the
    log-mel floor (silence) instead of the convolutions' zeros."""

    def __init__(self, path: str | os.PathLike, num_threads: int | None = None):
        from ..tflite import TFLiteModelError, make_interpreter

        self.path = Path(path)
        self.interpreter, self.provider = make_interpreter(self.path, num_threads)
        signatures = self.interpreter.get_signature_list()
        if not signatures:
            raise TFLiteModelError(f"{path}: not a causal model's TFLite step model (no signature); use --mode lookahead")
        self.runner = self.interpreter.get_signature_runner(next(iter(signatures)))
        inputs = self.runner.get_input_details()
        if "mel" not in inputs or any(n not in inputs for n in state_names()):
            raise TFLiteModelError(f"{path}: not a causal model's TFLite step model (its inputs: {', '.join(sorted(inputs))}; "
                                   "a step model reads mel and the LSTM states); use --mode lookahead")
        self.frames = int(inputs["mel"]["shape"][1])
        self.block = self.frames - 2 * CONV_REACH
        self.state_shapes = [tuple(inputs[n]["shape"]) for n in state_names()]

    def initial_states(self) -> list:
        return [np.zeros(shape, np.float32) for shape in self.state_shapes]

    def run(self, mel: np.ndarray, keep: slice, states: list, floor: float) -> tuple[dict[str, np.ndarray], list]:
        """As :meth:`CausalStepper.run`, in blocks of the file's size (a shorter last one padded)."""
        n = keep.stop - keep.start
        if n > self.block:
            raise ValueError(f"{self.path}: steps of at most {self.block} frames, got {n}")
        x = np.full((self.frames, mel.shape[1]), floor, np.float32)
        lo = CONV_REACH - keep.start
        x[lo: lo + len(mel)] = mel[: self.frames - lo]
        out = self.runner(mel=x[None], **dict(zip(state_names(), states)))
        probs = {k: np.asarray(out[k])[0, :n] for k in ("onset", "offset", "frame", "velocity")}
        return probs, [np.asarray(out[f"new_{k}"]) for k in state_names()]


class CausalFrames:
    """Probability frames of a causal model from a 16 kHz stream, ``block`` frames at a time (see the module
    docstring): :meth:`feed` returns the chunks the new samples complete, :meth:`finish` the rest."""

    def __init__(self, predictor, block: int | None = None, gain="peak"):
        self.predictor = predictor
        self.block = BLOCK_FRAMES if block is None else int(block)
        if self.block < 1:
            raise ValueError(f"a causal block is at least 1 frame, got {self.block}")
        self.stepper = predictor.stepper()
        self.states = self.stepper.initial_states()
        self.buffer = SampleBuffer(gain)
        self.mel = np.zeros((0, 0), np.float32)  # log-mel frames [mel_from, mel_from + len) kept for the convs
        self.mel_from = 0
        self.mel_done = 0  # log-mel frames computed
        self.peak_db = -np.inf  # loudest log-mel bin so far (dB)
        self.committed = 0
        self.windows = 0  # steps run

    @property
    def n_samples(self) -> int:
        return self.buffer.n

    @property
    def delay_frames(self) -> int:
        """Frames a note's decision waits at most after its onset frame."""
        return CONV_REACH + self.block - 1

    def _mel_to(self, frames: int) -> None:
        """Compute the log-mel frames up to ``frames`` (exclusive)."""
        if frames <= self.mel_done:
            return
        a, b = window_sample_range(frames, frames - self.mel_done)
        new = log_mel(self.buffer.scaled(a, b), center=False)
        self.peak_db = max(self.peak_db, float(new.max()))
        new = np.maximum(new, self.peak_db - TOP_DB)
        self.mel = new if self.mel.size == 0 else np.concatenate([self.mel, new])
        self.mel_done = frames
        self.buffer.drop_before(window_sample_range(self.mel_done + 1, 1)[0])

    def _step(self, commit_to: int, total: int | None) -> dict[str, np.ndarray]:
        """Commit frames ``[committed, commit_to)``; ``total``: the stream's frame count once it has ended."""
        lo = max(0, self.committed - CONV_REACH)
        hi = commit_to + CONV_REACH if total is None else min(commit_to + CONV_REACH, total)
        keep = slice(self.committed - lo, commit_to - lo)
        probs, self.states = self.stepper.run(self.mel[lo - self.mel_from: hi - self.mel_from], keep, self.states,
                                              self.peak_db - TOP_DB)
        self.windows += 1
        self.committed = commit_to
        drop = max(0, self.committed - CONV_REACH) - self.mel_from
        if drop > 0:
            self.mel, self.mel_from = self.mel[drop:], self.mel_from + drop
        return {k: np.asarray(v, np.float32) for k, v in probs.items()}

    def feed(self, samples: np.ndarray) -> list[dict[str, np.ndarray]]:
        self.buffer.append(samples)
        chunks = []
        while ready_frames(self.buffer.n) >= self.committed + self.block + CONV_REACH:
            self._mel_to(self.committed + self.block + CONV_REACH)
            chunks.append(self._step(self.committed + self.block, None))
        return chunks

    def finish(self) -> list[dict[str, np.ndarray]]:
        total = frames_for_samples(self.buffer.n)
        self._mel_to(total)
        chunks = []
        while self.committed < total:
            chunks.append(self._step(min(self.committed + self.block, total), total))
        return chunks
