"""Data preparation speed: seconds of audio prepared per second of wall time (2 worker processes).

    .venv/bin/python benchmarks/prepare.py [--pieces 16] [--workers 2]

Builds a synthetic MAESTRO-format corpus of 30 s pieces (not timed), then times ``prepare_dataset``
(decode, resample, log-mel, labels, cutting, compressed shards) on it.  Target: 200x real time.
"""

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pieces", type=int, default=16)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--workers", type=int, default=2)
    a = p.parse_args()
    import pandas as pd

    from piano_transcription.training.maestro import prepare_dataset
    from piano_transcription.corpus.synthetic import build_synthetic_maestro

    with tempfile.TemporaryDirectory() as tmp:
        src = build_synthetic_maestro(Path(tmp) / "src", {"train": a.pieces - 2, "validation": 1, "test": 1},
                                      duration=a.seconds, seed=1)
        audio_seconds = pd.read_csv(src / "maestro-v3.0.0.csv")["duration"].sum()
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prepare_dataset(src, Path(tmp) / "out", workers=a.workers, progress=False)
        wall = time.perf_counter() - t0
    print(f"{audio_seconds:.0f} s of audio in {wall:.1f} s wall with {a.workers} workers: "
          f"{audio_seconds / wall:.0f}x real time (includes worker start-up)")


if __name__ == "__main__":
    main()
