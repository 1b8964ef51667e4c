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
from .transcriber import SampleBuffer, ready_frames, window_sample_range

BLOCK_FRAMES = 2  # frames computed per step (64 ms)
CONV_REACH = 3  # frames each side that a frame's convolutional features read (three 3x3 convolutions)
RECURRENT = ("onsets_lstm", "offsets_lstm", "frame_lstm")


def load_causal(model=None):
    """A :class:`~piano_transcription.predictor.KerasPredictor` of a causal model: None (the shipped
    ``models/causal.keras``), a ``.keras`` path, or a Predictor / Keras model; ValueError for a bidirectional one."""
    from ..assets import DEFAULT_CAUSAL
    from ..model import is_causal
    from ..predictor import KerasPredictor, Predictor, load_predictor, tensorflow_available

    if model is None:
        model = DEFAULT_CAUSAL
        if not Path(model).exists():
            raise FileNotFoundError(f"{model}: the causal model is not installed")
    if isinstance(model, (str, os.PathLike)) and Path(model).suffix.lower() == ".tflite":
        raise ValueError(f"{model}: the causal mode runs Keras models (.keras); TFLite models run --mode lookahead")
    if isinstance(model, (str, os.PathLike)) and not tensorflow_available():
        raise ImportError("--mode causal needs the full install (pip install 'piano-transcription[full]'); the "
                          "light install runs --mode lookahead")
    predictor = model if isinstance(model, Predictor) else load_predictor(model)
    if not isinstance(predictor, KerasPredictor) or not is_causal(predictor.model):
        raise ValueError(f"{predictor.path or 'this model'}: not a causal model (its LSTMs look both ways); "
                         "use --mode lookahead, or a model trained with --config small_causal")
    return predictor


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

        def recurrent(onset_x, offset_x, activation, states):
            out = {}
            new_states = []
            on_h, *on_s = self.lstms["onsets_lstm"](onset_x, initial_state=states[0:2])
            off_h, *off_s = self.lstms["offsets_lstm"](offset_x, initial_state=states[2:4])
            onset = tf.sigmoid(self.dense["onsets_logits"](on_h))
            offset = tf.sigmoid(self.dense["offsets_logits"](off_h))
            combined = tf.concat([onset, activation, offset], axis=-1)
            fr_h, *fr_s = self.lstms["frame_lstm"](combined, initial_state=states[4:6])
            out["onset"], out["offset"] = onset, offset
            out["frame"] = tf.sigmoid(self.dense["frame_logits"](fr_h))
            new_states = on_s + off_s + fr_s
            return out, new_states

        self._acoustic = tf.function(lambda x: self.acoustic(x, training=False), reduce_retracing=True)
        self._recurrent = tf.function(recurrent, reduce_retracing=True)
        self._tf = tf

    def initial_states(self) -> list:
        """Zero states (h, c) of each LSTM, in the order onsets, offsets, frame."""
        return [np.zeros((1, self.units[n]), np.float32) for n in RECURRENT for _ in range(2)]

    def features(self, mel: np.ndarray) -> list[np.ndarray]:
        """``[onset features, offset features, velocity, activation]`` ``[frames, ...]`` of a log-mel ``[frames, 229]``."""
        return [np.asarray(v)[0] for v in self._acoustic(self._tf.constant(mel[None], self._tf.float32))]

    def step(self, onset_x, offset_x, activation, states) -> tuple[dict[str, np.ndarray], list]:
        """Probabilities ``{onset, offset, frame}`` ``[frames, 88]`` of the next frames' features, and the new states."""
        c = self._tf.constant
        out, new = self._recurrent(c(onset_x[None]), c(offset_x[None]), c(activation[None]), [c(s) for s in states])
        return {k: np.asarray(v)[0] for k, v in out.items()}, [np.asarray(s) for s in new]


class CausalFrames:
    """Probability frames of a causal model from a 16 kHz stream, ``block`` frames at a time (see the module
    docstring): :meth:`feed` returns the chunks the new samples complete, :meth:`finish` the rest."""

    def __init__(self, predictor, block: int | None = None, gain="peak"):
        self.predictor = predictor
        self.block = BLOCK_FRAMES if block is None else int(block)
        if self.block < 1:
            raise ValueError(f"a causal block is at least 1 frame, got {self.block}")
        self.stepper = CausalStepper(predictor.model)
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
        onset_x, offset_x, velocity, activation = self.stepper.features(self.mel[lo - self.mel_from: hi - self.mel_from])
        keep = slice(self.committed - lo, commit_to - lo)
        probs, self.states = self.stepper.step(onset_x[keep], offset_x[keep], activation[keep], self.states)
        probs["velocity"] = velocity[keep]
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
        self.buffer.close()
        total = frames_for_samples(self.buffer.n)
        self._mel_to(total)
        chunks = []
        while self.committed < total:
            chunks.append(self._step(min(self.committed + self.block, total), total))
        return chunks
