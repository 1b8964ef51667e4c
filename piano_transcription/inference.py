"""Running a Keras model over a recording of any length, in overlapping windows.

The model was trained on 20 s (626-frame) windows.  A long input is cut into 626-frame windows
that overlap by ``2 * margin`` frames; of each window only the centre is kept (the first window
keeps its start, the last its end), so every frame is predicted with at least ``margin`` frames
(1 s by default) of context on both sides, and a note across a window boundary is predicted once.

The windows stream: :func:`mel_windows` computes each window's log-mel from the audio read block by
block (the dB floor is set per 20 s window, as for the training segments), and :func:`stream_windows`
yields the kept frames window by window, so memory does not grow with the recording.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from .constants import HOP_LENGTH, N_FFT, SEGMENT_FRAMES, frames_for_samples

# 1.024 s of context dropped on each side of a window's centre: as accurate as 2.048 s (64 frames) on the real
# recordings (real_dev note / note+offset / frame F1, TFLite: 0.795 / 0.430 / 0.671 with 64, 0.796 / 0.430 / 0.671
# with 32 and with 16) and on the synthetic held-out set (0.969 / 0.778 / 0.825 with all three), in 11 % fewer
# windows (a hop of 562 frames instead of 498)
MARGIN_FRAMES = 32
PredictBatch = Callable[[np.ndarray], dict]
_TRACED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # Keras model -> {jit_compile: tf.function}
XLA_MIN_WINDOWS = 40  # recordings of at least this many windows (about 10 minutes) run XLA-compiled on a CPU


def window_starts(n_frames: int, window: int = SEGMENT_FRAMES, margin: int = MARGIN_FRAMES) -> list[int]:
    """Start frames of the windows covering ``n_frames`` frames."""
    if n_frames <= window:
        return [0]
    hop = window - 2 * margin
    starts = list(range(0, n_frames - window, hop))
    starts.append(n_frames - window)
    return starts


def stitch_ranges(starts: list[int], n_frames: int, window: int = SEGMENT_FRAMES, margin: int = MARGIN_FRAMES):
    """For each window, the ``(src_from, src_to, dst_from)`` frames to keep: its centre, and the edges at the ends."""
    ranges = []
    for i, s in enumerate(starts):
        keep_from = 0 if i == 0 else (ranges[-1][1] + starts[i - 1]) - s
        keep_to = min(window, n_frames - s) if i == len(starts) - 1 else window - margin
        ranges.append((keep_from, keep_to, s + keep_from))
    return ranges


def stream_windows(predict_batch: PredictBatch, windows: Iterable[np.ndarray], n_frames: int,
                   window: int = SEGMENT_FRAMES, margin: int = MARGIN_FRAMES, batch_size: int = 4,
                   progress: bool = False, pad_last: bool = True) -> Iterator[dict[str, np.ndarray]]:
    """Predict ``windows`` (mel ``[window, 229]`` each, in the order of :func:`window_starts`) in batches
    and yield, in order, the kept frames of each window: ``{output: [frames, ...]}`` (every output of
    ``predict_batch``: onset, offset, frame, velocity ``[.., 88]`` and pedal ``[.., 3]`` where present).  With
    ``pad_last`` a short last batch is padded to the batch size (one traced Keras graph per recording); without,
    it is passed as it is (TFLite, where a padding window would cost as much as a real one)."""
    from tqdm.auto import tqdm

    starts = window_starts(n_frames, window, margin)
    ranges = stitch_ranges(starts, n_frames, window, margin)
    size = min(batch_size, len(starts))  # every batch this size: one traced graph per recording
    it = iter(windows)
    with tqdm(total=len(starts), desc="transcribe", unit="window", disable=not progress) as bar:
        for b in range(0, len(starts), batch_size):
            chunk = [next(it) for _ in starts[b: b + batch_size]]
            x = np.stack(chunk).astype(np.float32)
            if pad_last and len(chunk) < size:  # a short last batch: padded with zero windows, whose output is unused
                x = np.concatenate([x, np.zeros((size - len(chunk),) + x.shape[1:], np.float32)])
            y = predict_batch(x)
            for j in range(len(chunk)):
                src_from, src_to, _ = ranges[b + j]
                yield {k: np.asarray(v[j, src_from:src_to], np.float32) for k, v in y.items()}
            bar.update(len(chunk))


def collect(chunks: Iterable[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate streamed chunks into whole rolls ``{output: [frames, ...]}``."""
    parts: dict[str, list] = {}
    for c in chunks:
        for k, v in c.items():
            parts.setdefault(k, []).append(v)
    return {k: np.concatenate(v) for k, v in parts.items()}


def slice_windows(mel: np.ndarray, window: int = SEGMENT_FRAMES, margin: int = MARGIN_FRAMES) -> Iterator[np.ndarray]:
    """The windows of a whole log-mel ``[frames, 229]`` (the end padded with its minimum)."""
    pad_value = float(mel.min()) if mel.size else 0.0
    for s in window_starts(len(mel), window, margin):
        x = np.full((window, mel.shape[1]), pad_value, np.float32)
        part = mel[s: s + window]
        x[: len(part)] = part
        yield x


def sample_windows(blocks: Iterable[np.ndarray], n_samples: int, window: int = SEGMENT_FRAMES,
                   margin: int = MARGIN_FRAMES, starts: list[int] | None = None) -> Iterator[np.ndarray]:
    """The samples of each window ``[(window - 1) * 512 + 2048]`` of 16 kHz audio given as consecutive
    ``blocks`` (``n_samples`` in all), at increasing ``starts`` (frames; default :func:`window_starts`); only
    the current window's samples are kept.  Frame ``i`` is centred at sample ``512 i`` with zeros beyond both
    ends, as :func:`~piano_transcription.audio.log_mel` frames a whole recording: a window's uncentred frames
    are exactly those of the whole recording."""
    half = N_FFT // 2
    buf, buf_start = np.zeros(half, np.float32), -half  # absolute index of buf[0]; zeros before the start
    source = iter(blocks)
    if starts is None:
        starts = window_starts(frames_for_samples(n_samples), window, margin)
    for s in starts:
        a, b = s * HOP_LENGTH - half, (s + window - 1) * HOP_LENGTH + half
        while buf_start + len(buf) < b:
            block = next(source, None)
            if block is None:
                block = np.zeros(b - buf_start - len(buf), np.float32)
            buf = np.concatenate([buf, block])
        yield buf[a - buf_start: b - buf_start]
        buf, buf_start = buf[a - buf_start:], a


def mel_windows(blocks: Iterable[np.ndarray], n_samples: int, window: int = SEGMENT_FRAMES,
                margin: int = MARGIN_FRAMES) -> Iterator[np.ndarray]:
    """Log-mel windows ``[window, 229]`` of :func:`sample_windows` (the dB floor set per window, as for the
    training segments)."""
    from .audio import log_mel

    for samples in sample_windows(blocks, n_samples, window, margin):
        yield log_mel(samples, center=False)


def keras_predictor(model, jit_compile: bool = False) -> PredictBatch:
    """A ``predict_batch`` function for a Keras model: one ``tf.function`` per model (kept while the model
    lives, so that every recording after the first reuses its trace) traced per batch shape, compiled with
    XLA if ``jit_compile`` (see :func:`xla_pays`)."""
    from .tf_env import quiet_tensorflow

    quiet_tensorflow()
    import keras

    if keras.backend.backend() != "tensorflow":  # Keras on JAX or PyTorch (training on an accelerator)
        return lambda x: {k: np.asarray(v) for k, v in model.predict_on_batch(x).items()}
    import tensorflow as tf

    traced = _TRACED.setdefault(model, {})
    if jit_compile not in traced:
        ref = weakref.ref(model)  # the cache must not keep the model alive
        traced[jit_compile] = tf.function(lambda x: ref()(x, training=False), jit_compile=jit_compile)
    forward = traced[jit_compile]

    def predict(x):
        return {k: np.asarray(v) for k, v in forward(tf.constant(x)).items()}

    return predict


def xla_pays(n_windows: int) -> bool:
    """Whether to compile the model with XLA for a recording of ``n_windows`` windows: on a CPU only (a GPU
    runs the LSTMs with cuDNN), and only for long recordings.  On the 2-core AMD EPYC without AVX-512, XLA
    runs a batch of 4 x 626 frames in 0.64 s instead of 0.88 s but its first batch takes 2.2 s longer
    (compilation), so it pays from about 9 batches (36 windows, 9 minutes of audio) on."""
    from .tf_env import quiet_tensorflow

    if n_windows < XLA_MIN_WINDOWS:
        return False
    quiet_tensorflow()
    import tensorflow as tf

    return not tf.config.list_physical_devices("GPU")


def predict_windows(predict_batch: PredictBatch, mel: np.ndarray, window: int = SEGMENT_FRAMES,
                    margin: int = MARGIN_FRAMES, batch_size: int = 4, progress: bool = False) -> dict[str, np.ndarray]:
    """Whole rolls of ``predict_batch`` over a whole log-mel ``mel`` (see :func:`stream_windows`)."""
    return collect(stream_windows(predict_batch, slice_windows(mel, window, margin), len(mel), window, margin,
                                  batch_size, progress))


def predict_mel(model, mel: np.ndarray, margin: int = MARGIN_FRAMES, batch_size: int = 4, progress: bool = False):
    """Probability rolls ``{onset, offset, frame, velocity[, pedal]}`` of a Keras model on a whole log-mel."""
    return predict_windows(keras_predictor(model), mel, SEGMENT_FRAMES, margin, batch_size, progress)
