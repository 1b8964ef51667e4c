"""TFLite speed: milliseconds per 17920-sample window on one thread, and model file sizes.

    .venv/bin/python benchmarks/tflite_speed.py [MODEL.tflite ...]

A window advances 32 frames = 1024 ms of audio, so 1024 / (ms per window) is the real-time margin.
"""

import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    from piano_transcription.tflite import WINDOW_SAMPLES, TFLiteModel

    paths = sys.argv[1:] or [str(p) for p in sorted((ROOT / "piano_transcription" / "models").glob("*.tflite"))]
    x = np.random.default_rng(0).normal(0, 0.1, WINDOW_SAMPLES).astype(np.float32)
    for path in paths:
        lite = TFLiteModel(path, num_threads=1)
        lite.run_window(x)
        n = 50
        t0 = time.perf_counter()
        for _ in range(n):
            lite.run_window(x)
        ms = (time.perf_counter() - t0) / n * 1000
        print(f"{Path(path).name}: {os.path.getsize(path) / 1e6:.1f} MB, {ms:.1f} ms per window on one thread "
              f"({lite.provider}), real-time margin {1024 / ms:.0f}x")


if __name__ == "__main__":
    main()
