"""TFLite speed: milliseconds per window on one thread, per second of audio, and model file sizes.

    .venv/bin/python benchmarks/tflite_speed.py [MODEL.tflite ...]

A window of ``frames`` frames advances ``frames - 2 * margin`` frames of 32 ms through a recording (all 32 of
Magenta's 1.12 s windows; 498 of our 626-frame windows, whose 2 x 64 edge frames overlap the neighbours), so
the real-time margin is the audio a window advances over the time it takes.
"""

import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    from piano_transcription.constants import FRAMES_PER_SECOND
    from piano_transcription.tflite import TFLiteModel, window_samples

    paths = sys.argv[1:] or [str(p) for p in sorted((ROOT / "piano_transcription" / "models").glob("*.tflite"))]
    for path in paths:
        lite = TFLiteModel(path, num_threads=1)
        x = np.random.default_rng(0).normal(0, 0.1, window_samples(lite.frames)).astype(np.float32)
        lite.run_window(x)
        n = max(3, int(1600 / lite.frames))
        t0 = time.perf_counter()
        for _ in range(n):
            lite.run_window(x)
        ms = (time.perf_counter() - t0) / n * 1000
        advance_ms = (lite.frames - 2 * lite.margin) / FRAMES_PER_SECOND * 1000
        print(f"{Path(path).name}: {os.path.getsize(path) / 1e6:.1f} MB, {lite.frames}-frame windows, {ms:.1f} ms per "
              f"window on one thread ({lite.provider}), {ms / advance_ms * 1000:.0f} ms per second of audio, "
              f"real-time margin {advance_ms / ms:.0f}x")


if __name__ == "__main__":
    main()
