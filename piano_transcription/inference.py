"""Running a Keras model over a recording of any length, in overlapping windows.

The model was trained on 20 s (626-frame) windows.  A long input is cut into 626-frame windows
that overlap by ``2 * margin`` frames; of each window only the centre is kept (the first window
keeps its start, the last its end), so every frame is predicted with at least ``margin`` frames
(2 s by default) of context on both sides, and a note across a window boundary is predicted once.

The windows stream: :func:`mel_windows` computes each window's log-mel from the audio read block by
block (the dB floor is set per 20 s window, as for the training segments), and :func:`stream_windows`
yields the kept frames window by window, so memory does not grow with the recording.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np

from .constants import HOP_LENGTH, N_FFT, SEGMENT_FRAMES, frames_for_samples

MARGIN_FRAMES = 64  # 2.048 s of context kept on each side of a window's centre
PredictBatch = Callable[[np.ndarray], dict]


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
                   progress: bool = False) -> Iterator[dict[str, np.ndarray]]:
    """Predict ``windows`` (mel ``[window, 229]`` each, in the order of :func:`window_starts`) in batches
    and yield, in order, the kept frames of each window: ``{output: [frames, ...]}`` (every output of
    ``predict_batch``: onset, offset, frame, velocity ``[.., 88]`` and pedal ``[.., 3]`` where present)."""
    from tqdm.auto import tqdm

    starts = window_starts(n_frames, window, margin)
    ranges = stitch_ranges(starts, n_frames, window, margin)
    it = iter(windows)
    with tqdm(total=len(starts), desc="transcribe", unit="window", disable=not progress) as bar:
        for b in range(0, len(starts), batch_size):
            chunk = [next(it) for _ in starts[b: b + batch_size]]
            y = predict_batch(np.stack(chunk).astype(np.float32))
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


def mel_windows(blocks: Iterable[np.ndarray], n_samples: int, window: int = SEGMENT_FRAMES,
                margin: int = MARGIN_FRAMES) -> Iterator[np.ndarray]:
    """Log-mel windows ``[window, 229]`` of 16 kHz audio given as consecutive ``blocks`` (``n_samples`` in
    all), in the order of :func:`window_starts`; only the current window's samples are kept.  Frame ``i``
    is centred at sample ``512 i`` with zeros beyond both ends, as :func:`~piano_transcription.audio.log_mel`
    frames a whole recording."""
    from .audio import log_mel

    half = N_FFT // 2
    buf, buf_start = np.zeros(half, np.float32), -half  # absolute index of buf[0]; zeros before the start
    source = iter(blocks)
    for s in window_starts(frames_for_samples(n_samples), window, margin):
        a, b = s * HOP_LENGTH - half, (s + window - 1) * HOP_LENGTH + half
        while buf_start + len(buf) < b:
            block = next(source, None)
            if block is None:
                block = np.zeros(b - buf_start - len(buf), np.float32)
            buf = np.concatenate([buf, block])
        seg = buf[a - buf_start: b - buf_start]
        yield log_mel(seg, center=False)
        buf, buf_start = buf[a - buf_start:], a


def keras_predictor(model) -> PredictBatch:
    """A ``predict_batch`` function for a Keras model (one compiled graph for the window shape)."""

    def predict(x):
        y = model.predict_on_batch(x)
        return {k: np.asarray(v) for k, v in y.items()}

    return predict


def predict_windows(predict_batch: PredictBatch, mel: np.ndarray, window: int = SEGMENT_FRAMES,
                    margin: int = MARGIN_FRAMES, batch_size: int = 4, progress: bool = False) -> dict[str, np.ndarray]:
    """Whole rolls of ``predict_batch`` over a whole log-mel ``mel`` (see :func:`stream_windows`)."""
    return collect(stream_windows(predict_batch, slice_windows(mel, window, margin), len(mel), window, margin,
                                  batch_size, progress))


def predict_mel(model, mel: np.ndarray, margin: int = MARGIN_FRAMES, batch_size: int = 4, progress: bool = False):
    """Probability rolls ``{onset, offset, frame, velocity[, pedal]}`` of a Keras model on a whole log-mel."""
    return predict_windows(keras_predictor(model), mel, SEGMENT_FRAMES, margin, batch_size, progress)
