"""Transcription speed against what the CPU can do: wall time, real-time factor, peak memory, where the time goes,
and the network's achieved GFLOP/s against this machine's own fp32 matrix-multiply peak, measured in the same run.

    .venv/bin/python benchmarks/transcribe_speed.py [--minutes 1 10 60] [--paths keras tflite]
        [--model piano_transcription/models/default.keras] [--tflite piano_transcription/models/default.tflite]
        [--audio REAL_PIANO_FILE] [--repeats 1]

The input is real piano audio (default: the bundled demo, a real performance in a measured room) repeated to each
length and written as a 44.1 kHz stereo 16-bit WAV, as users' files usually are (not timed).  Each run is a fresh
``piano-transcribe`` process (start-up and model loading included); its phases are timed inside it
(``benchmarks/phases.py``).  basic-pitch's CLI runs on the same files in the same run where it is installed.
The fp32 peak is TensorFlow's (oneDNN) matrix multiply of 2048 x 2048 matrices on every core of this process.
Targets (issue 21) live here, not in tests: 10 minutes in <= 4.5 s (light) / <= 6 s (full), 60 minutes in <= 30 s,
the network at >= 40 % of the fp32 peak, peak RSS <= 400 MB (light) / <= 800 MB (full).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PHASES = ("start-up", "decode", "resample", "log-mel", "network", "decoding", "music+MIDI")

PEAK_CODE = """
import time, tensorflow as tf
a = tf.random.normal((2048, 2048)); b = tf.random.normal((2048, 2048))
f = tf.function(lambda a, b: tf.reduce_sum(tf.matmul(a, b)))
f(a, b)
best = 0.0
for _ in range(7):
    t = time.perf_counter(); [f(a, b).numpy() for _ in range(10)]; best = max(best, 10 * 2 * 2048 ** 3 / (time.perf_counter() - t))
print(best / 1e9)
"""


PARALLEL_PRELUDE = "import piano_transcription.tflite as _lite; _lite.DEFAULT_INTERPRETERS = {}\n"


def child_code(args: list[str], prelude: str = "") -> str:
    """A ``piano-transcribe`` run with its phases timed and its peak RSS printed on stderr (``prelude``: code run
    first, such as :data:`PARALLEL_PRELUDE`)."""
    return (f"import time; _t = time.perf_counter()\n{prelude}"
            f"import atexit, resource, sys; sys.path.insert(0, {str(ROOT / 'benchmarks')!r})\n"
            f"atexit.register(lambda: print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "
            f"file=sys.stderr))\n"
            f"import phases; phases.install()\n"
            f"from piano_transcription.cli import main\n"
            f"code = main({args!r}); phases.report(_t); sys.exit(code)\n")


def network_flops_per_frame(model_path: Path) -> float:
    """Floating-point operations (2 per multiply-add) of the Keras model per output frame: convolutions, dense
    layers and LSTMs (4 gates, both directions), from the layers' configurations."""
    import keras

    from piano_transcription.model import load_model

    model = load_model(model_path)
    flops = 0.0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kh, kw = layer.kernel_size
            cin, cout = layer.kernel.shape[2], layer.filters
            flops += 2.0 * kh * kw * cin * cout * layer.output.shape[2]  # per frame: every frequency bin
        elif isinstance(layer, keras.layers.Dense):
            flops += 2.0 * layer.kernel.shape[0] * layer.kernel.shape[1]
        elif isinstance(layer, keras.layers.Bidirectional):
            cell = layer.forward_layer
            units, inputs = cell.units, layer.input.shape[-1]
            flops += 2 * 2.0 * 4 * units * (inputs + units)
    return flops


def make_wav(source: Path, minutes: float, out: Path) -> float:
    """Write ``minutes`` of ``source`` (repeated) as a 44.1 kHz stereo PCM_16 WAV; returns its length in seconds."""
    import soundfile as sf
    import soxr

    x, sr = sf.read(str(source), dtype="float32", always_2d=True)
    y = soxr.resample(x.mean(axis=1), sr, 44100)
    n = int(minutes * 60 * 44100)
    with sf.SoundFile(str(out), "w", 44100, 2, subtype="PCM_16") as f:
        left = n
        while left > 0:
            part = y[:left]
            f.write(np.stack([part, part], 1))
            left -= len(part)
    return n / 44100


def run(cmd: list[str], cwd: str) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    return time.perf_counter() - t0, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, nargs="+", default=[1.0, 10.0, 60.0])
    p.add_argument("--paths", nargs="+", default=["keras", "tflite"], choices=["keras", "tflite", "tflite-parallel"],
                   help="tflite-parallel: one single-threaded TFLite interpreter per core, windows side by side "
                        "(--parallel-windows)")
    p.add_argument("--model", default=str(ROOT / "piano_transcription" / "models" / "default.keras"))
    p.add_argument("--tflite", default=str(ROOT / "piano_transcription" / "models" / "default.tflite"))
    p.add_argument("--audio", default=str(ROOT / "piano_transcription" / "demo" / "demo.flac"))
    p.add_argument("--repeats", type=int, default=1, help="runs per path and length (the median is printed)")
    p.add_argument("--no-basic-pitch", action="store_true")
    a = p.parse_args()
    from piano_transcription.constants import SEGMENT_FRAMES, frames_for_samples
    from piano_transcription.inference import window_starts

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    cores = len(os.sched_getaffinity(0))
    peak = float(subprocess.run([sys.executable, "-c", PEAK_CODE], capture_output=True, text=True, env=env,
                                check=True).stdout.split()[-1])
    per_frame = float(subprocess.run(  # in a child: a parent holding TensorFlow would inflate its children's peak RSS
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); import transcribe_speed; "
                               f"print(transcribe_speed.network_flops_per_frame({a.model!r}))"],
        capture_output=True, text=True, env=env, check=True).stdout.split()[-1])
    print(f"machine: {cores} cores; fp32 matrix-multiply peak {peak:.0f} GFLOP/s (TensorFlow, 2048^2, measured now); "
          f"network {per_frame * SEGMENT_FRAMES / 1e9:.2f} GFLOP per {SEGMENT_FRAMES}-frame window")
    basic_pitch = None if a.no_basic_pitch else shutil.which("basic-pitch")
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in a.minutes:
            wav = Path(tmp) / f"piano_{minutes:g}min.wav"
            seconds = make_wav(Path(a.audio), minutes, wav)
            windows = len(window_starts(frames_for_samples(int(seconds * 16000)), SEGMENT_FRAMES))
            flops = windows * SEGMENT_FRAMES * per_frame
            runs = {path: [] for path in a.paths}
            for _ in range(a.repeats):  # repeats alternate between the paths: a drift in speed touches them alike
                for path in a.paths:
                    flag, model = ("--model", a.model) if path == "keras" else ("--tflite", a.tflite)
                    prelude = PARALLEL_PRELUDE.format(cores) if path == "tflite-parallel" else ""
                    args = [str(wav), flag, model, "-o", tmp, "-q", "--overwrite"]
                    wall, out = run([sys.executable, "-c", child_code(args, prelude)], tmp)
                    if out.returncode != 0:
                        raise SystemExit(f"{path} {minutes:g} min failed: {out.stderr[-2000:]}")
                    phases = json.loads(out.stderr.split("PHASES ")[-1].splitlines()[0])
                    rss = int(out.stderr.split("PEAK_KB")[-1].split()[0]) / 1024
                    runs[path].append((wall, rss, phases))
            for path, results in runs.items():
                wall, rss, phases = sorted(results, key=lambda r: r[0])[len(results) // 2]
                split = ", ".join(f"{k} {phases.get(k, 0.0):.2f}" for k in PHASES)
                net = phases.get("network", 0.0)
                print(f"{path:13s} {minutes:4g} min: {wall:6.1f} s (real-time factor {wall / seconds:.4f}), peak RSS "
                      f"{rss:5.0f} MB | {split} s | network {flops / net / 1e9 if net else 0:.0f} GFLOP/s = "
                      f"{100 * flops / net / 1e9 / peak if net else 0:.0f} % of the fp32 peak", flush=True)
            if basic_pitch:
                out_dir = Path(tmp) / f"bp{minutes:g}"
                out_dir.mkdir()
                wall, out = run([basic_pitch, str(out_dir), str(wav)], tmp)
                print(f"basic-pitch {minutes:4g} min: {wall:6.1f} s (its CLI, same file"
                      f"{'' if out.returncode == 0 else ', FAILED'})", flush=True)


if __name__ == "__main__":
    main()
