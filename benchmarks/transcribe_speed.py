"""Transcription speed and memory: real-time factor and peak memory for 10- and 60-minute recordings.

    .venv/bin/python benchmarks/transcribe_speed.py [--minutes 10 60] [--model piano_transcription/models/default.keras]
                                                    [--tflite piano_transcription/models/default.tflite]

Renders a 10-minute synthetic piano recording (not timed; longer ones repeat it), then times
``piano-transcribe`` on each length in a fresh process per model (loading included) and reads that
process's peak resident memory; the last line per model is the ratio of the longest to the shortest
recording's peak (the streaming pipeline keeps it near 1).
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
    p.add_argument("--minutes", type=float, nargs="+", default=[10.0, 60.0])
    p.add_argument("--model", nargs="*", default=[str(ROOT / "piano_transcription" / "models" / "default.keras")])
    p.add_argument("--tflite", nargs="*", default=[str(ROOT / "piano_transcription" / "models" / "default.tflite")])
    a = p.parse_args()
    import soundfile as sf

    from piano_transcription.corpus.compose import performance_midi
    from piano_transcription.corpus.synth import render_fluidsynth

    with tempfile.TemporaryDirectory() as tmp:
        base = render_fluidsynth(performance_midi(11, 600.0))
        wavs = {}
        for minutes in a.minutes:
            wav = Path(tmp) / f"{minutes:g}min.wav"
            with sf.SoundFile(wav, "w", 16000, 1, subtype="PCM_16") as f:
                n = int(minutes * 60 * 16000)
                while n > 0:
                    f.write(base[:n])
                    n -= len(base[:n])
            wavs[minutes] = wav
        runs = [("--model", m) for m in a.model] + [("--tflite", m) for m in a.tflite]
        for flag, model in runs:
            if not Path(model).exists():
                print(f"{model}: missing, skipped")
                continue
            peaks = {}
            for minutes, wav in wavs.items():
                seconds = sf.info(str(wav)).duration
                args = [str(wav), flag, model, "-o", tmp, "-q", "--overwrite"]
                child = (f"import atexit, resource, sys; atexit.register(lambda: print('PEAK_KB', "
                         f"resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)); "
                         f"from piano_transcription.cli import main; sys.exit(main({args!r}))")
                t0 = time.perf_counter()
                out = subprocess.run([sys.executable, "-c", child], check=True, capture_output=True, text=True)
                wall = time.perf_counter() - t0
                peaks[minutes] = int(out.stderr.split("PEAK_KB")[-1].split()[0]) / 1024
                print(f"{Path(model).name}, {minutes:g} min: {seconds:.0f} s of audio in {wall:.1f} s (start-up and "
                      f"model loading included) = real-time factor {wall / seconds:.3f}; peak RSS "
                      f"{peaks[minutes]:.0f} MB", flush=True)
            if len(peaks) > 1:
                lo, hi = min(peaks), max(peaks)
                print(f"{Path(model).name}: peak RSS {hi:g} min / {lo:g} min = {peaks[hi] / peaks[lo]:.2f}")


if __name__ == "__main__":
    main()
