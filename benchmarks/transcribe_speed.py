"""Transcription speed and memory: real-time factor and peak memory for a 10-minute recording.

    .venv/bin/python benchmarks/transcribe_speed.py [--minutes 10] [--model piano_transcription/models/default.keras] [--tflite ...]

Renders a 10-minute synthetic piano recording (not timed), then times ``piano-transcribe`` on it in a
fresh process per model (loading included) and reads that process's peak resident memory.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--model", nargs="*", default=[str(ROOT / "piano_transcription" / "models" / "default.keras")])
    p.add_argument("--tflite", nargs="*", default=[str(ROOT / "piano_transcription" / "models" / "default.tflite")])
    a = p.parse_args()
    import soundfile as sf

    from piano_transcription.corpus.compose import performance_midi
    from piano_transcription.corpus.synth import render_fluidsynth

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "long.wav"
        sf.write(wav, render_fluidsynth(performance_midi(11, a.minutes * 60)), 16000)
        seconds = sf.info(str(wav)).duration
        runs = [("--model", m) for m in a.model] + [("--tflite", m) for m in a.tflite]
        for flag, model in runs:
            if not Path(model).exists():
                print(f"{model}: missing, skipped")
                continue
            args = [str(wav), flag, model, "-o", tmp, "-q", "--overwrite"]
            child = (f"import atexit, resource, sys; atexit.register(lambda: print('PEAK_KB', "
                     f"resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)); "
                     f"from piano_transcription.cli import main; sys.exit(main({args!r}))")
            t0 = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", child], check=True, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            peak_kb = int(out.stderr.split("PEAK_KB")[-1].split()[0])
            print(f"{Path(model).name}: {seconds:.0f} s of audio in {wall:.1f} s (start-up and model loading "
                  f"included) = real-time factor {wall / seconds:.3f}; peak RSS {peak_kb / 1024:.0f} MB")


if __name__ == "__main__":
    main()
