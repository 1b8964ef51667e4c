"""Running a Keras model over a log-mel spectrogram of any length, in overlapping windows.

The model was trained on 20 s (626-frame) windows.  A long input is cut into 626-frame windows
that overlap by ``2 * margin`` frames; of each window only the centre is kept (the first window
keeps its start, the last its end), so every frame is predicted with at least ``margin`` frames
(2 s by default) of context on both sides, and a note across a window boundary is predicted once.
Only a few windows are in memory at a time.
"""

from __future__ import annotations

import numpy as np

from .constants import N_KEYS, SEGMENT_FRAMES

OUTPUTS = ("onset", "offset", "frame", "velocity")


def window_starts(n_frames: int, window: int = SEGMENT_FRAMES, margin: int = 64) -> list[int]:
    """Start frames of the windows covering ``n_frames`` frames."""
    if n_frames <= window:
        return [0]
    hop = window - 2 * margin
    starts = list(range(0, n_frames - window, hop))
    starts.append(n_frames - window)
    return starts


def stitch_ranges(starts: list[int], n_frames: int, window: int = SEGMENT_FRAMES, margin: int = 64):
    """For each window, the ``(src_from, src_to, dst_from)`` frames to keep: its centre, and the edges at the ends."""
    ranges = []
    for i, s in enumerate(starts):
        keep_from = 0 if i == 0 else (ranges[-1][1] + starts[i - 1]) - s
        keep_to = min(window, n_frames - s) if i == len(starts) - 1 else window - margin
        ranges.append((keep_from, keep_to, s + keep_from))
    return ranges


def predict_windows(predict_batch, mel: np.ndarray, window: int = SEGMENT_FRAMES, margin: int = 64,
                    batch_size: int = 4, progress: bool = False) -> dict[str, np.ndarray]:
    """Stitch the outputs of ``predict_batch([B, window, 229]) -> {name: [B, window, 88]}`` over ``mel``.

    Returns ``{onset, offset, frame, velocity}``, each ``[frames, 88]`` float32.
    """
    from tqdm.auto import tqdm

    n = len(mel)
    starts = window_starts(n, window, margin)
    ranges = stitch_ranges(starts, n, window, margin)
    out = {k: np.zeros((n, N_KEYS), np.float32) for k in OUTPUTS}
    pad_value = float(mel.min()) if mel.size else 0.0
    with tqdm(total=len(starts), desc="transcribe", unit="window", disable=not progress) as bar:
        for b in range(0, len(starts), batch_size):
            chunk = starts[b: b + batch_size]
            x = np.full((len(chunk), window, mel.shape[1]), pad_value, np.float32)
            for j, s in enumerate(chunk):
                part = mel[s: s + window]
                x[j, : len(part)] = part
            y = predict_batch(x)
            for j, s in enumerate(chunk):
                src_from, src_to, dst = ranges[b + j]
                for k in OUTPUTS:
                    out[k][dst: dst + src_to - src_from] = np.asarray(y[k][j, src_from:src_to])
            bar.update(len(chunk))
    return out


def keras_predictor(model):
    """A ``predict_batch`` function for a Keras model (one compiled graph for the window shape)."""

    def predict(x):
        y = model.predict_on_batch(x)
        return {k: np.asarray(v) for k, v in y.items()}

    return predict


def predict_mel(model, mel: np.ndarray, margin: int = 64, batch_size: int = 4, progress: bool = False):
    """Probability rolls ``{onset, offset, frame, velocity}`` ``[frames, 88]`` of a Keras model on ``mel``."""
    return predict_windows(keras_predictor(model), mel, SEGMENT_FRAMES, margin, batch_size, progress)
