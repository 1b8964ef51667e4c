"""Live transcription, measured: latency of each note, real-time factor, dropped blocks, live-versus-offline F1.

    .venv/bin/python benchmarks/live_latency.py [--modes lookahead lookahead-tflite causal] [--limit N]
                                                [--minutes 10] [--block 512]

Each recording is played through the live path in simulated real time on its own audio clock
(``piano_transcription.live.timing``: a block arrives when its last sample has been played, is processed when it
has arrived and the previous one is done, and its events are emitted when its processing ends; processing is
timed on the wall clock).  Per mode:

* the latency of every live note whose onset matches a true one (emit time minus the true onset), median and p95,
  over the demo and the real recordings (``../shared/data/maps/real_dev``, validation only);
* the real-time factor (processing time over audio length) and, over a ``--minutes`` run (real_dev pieces end to
  end), the blocks a device would have dropped (a block waiting more than 10 s) and the longest wait;
* note F1 of the live notes and of the offline transcription of the same file (``transcribe``, the mode's model),
  on the demo and on real_dev (mean over pieces, as ``real_dev.py``).

Modes: ``lookahead`` (the shipped Keras model, default window / hop / lookahead), ``lookahead-tflite`` (its live
TFLite export, the light install's), ``causal`` (the shipped causal model) and ``causal-tflite`` (its TFLite step
model; offline F1 from ``causal.keras``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODES = {
    "lookahead": ("lookahead", "default.keras"),
    "lookahead-tflite": ("lookahead", "default.live.tflite"),
    "causal": ("causal", "causal.keras"),
    "causal-tflite": ("causal", "causal.tflite"),
}


def read_audio(path):
    """``(samples [n] or [n, ch], rate)`` of a file as it is stored."""
    import soundfile as sf

    return sf.read(str(path), dtype="float32")


def blocks_of(audio, size: int):
    return (audio[i:i + size] for i in range(0, len(audio), size))


def run_mode(name: str, files, refs, args) -> dict:
    from piano_transcription.assets import MODELS_DIR
    from piano_transcription.live.timing import note_latencies, play_in_simulated_real_time
    from piano_transcription.live.transcriber import LiveTranscriber
    from piano_transcription.predictor import load_predictor
    from piano_transcription.training.evaluate import score_notes
    from piano_transcription.constants import frames_for_samples
    from piano_transcription.transcribe import transcribe

    mode, model_file = MODES[name]
    path = Path(args.model_dir or MODELS_DIR) / model_file
    if not path.exists():
        print(f"{name}: {path} missing, skipped")
        return {}
    predictor = load_predictor(path) if mode == "lookahead" else None
    if mode == "causal":
        from piano_transcription.live.causal import load_causal

        predictor = load_causal(path)
    offline_file = path.with_suffix(".keras") if mode == "causal" else path.with_name("default.keras")
    offline_model = load_predictor(offline_file)
    list(LiveTranscriber(predictor, 16000, mode).run([np.zeros(16000, np.float32)]))  # warm-up: traces, allocations
    lat, rows, processing, seconds = [], [], 0.0, 0.0
    for f in files:
        audio, sr = read_audio(f)
        take = play_in_simulated_real_time(LiveTranscriber(predictor, sr, mode), blocks_of(audio, args.block))
        processing, seconds = processing + take.processing, seconds + take.seconds
        pairs = note_latencies(refs[f], take)
        lat.append(pairs[:, 1] - pairs[:, 0])
        n = frames_for_samples(int(round(len(audio) * 16000 / sr)))
        offline = transcribe(f, offline_model).notes
        rows.append((Path(f).name, score_notes(refs[f], take.notes, n)["note_f1"],
                     score_notes(refs[f], offline, n)["note_f1"], take.real_time_factor))
        print(f"  {name} {Path(f).name}: live F1 {rows[-1][1]:.3f}, offline {rows[-1][2]:.3f}, RTF {take.real_time_factor:.3f}, "
              f"latency median {np.median(lat[-1]):.3f} s", flush=True)
    lat = np.concatenate(lat)
    demo = [r for r in rows if r[0] == "demo.flac"]
    real = [r for r in rows if r[0] != "demo.flac"]
    out = {"mode": name, "notes": len(lat), "median": float(np.median(lat)), "p95": float(np.percentile(lat, 95)),
           "rtf": processing / seconds}
    if demo:
        out.update(demo_live=demo[0][1], demo_offline=demo[0][2])
    if real:
        out.update(real_live=float(np.mean([r[1] for r in real])), real_offline=float(np.mean([r[2] for r in real])))
    if args.minutes:
        long = long_run(files[1:] or files, args.minutes * 60)
        take = play_in_simulated_real_time(LiveTranscriber(predictor, 16000, mode), blocks_of(long, args.block))
        out.update(long_minutes=take.seconds / 60, long_rtf=take.real_time_factor, long_dropped=take.dropped_blocks,
                   long_max_wait=take.max_wait)
    return out


def long_run(files, seconds: float) -> np.ndarray:
    """``seconds`` of 16 kHz mono audio: the files end to end (repeated if needed)."""
    from piano_transcription.audio import load_audio

    parts, total = [], 0
    while total < seconds * 16000:
        for f in files:
            x = load_audio(f)
            parts.append(x)
            total += len(x)
            if total >= seconds * 16000:
                break
    return np.concatenate(parts)[: int(seconds * 16000)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "maps" / "real_dev"))
    p.add_argument("--limit", type=int, default=None, help="only the first N real recordings")
    p.add_argument("--minutes", type=float, default=10.0, help="length of the dropped-blocks run (0: none)")
    p.add_argument("--block", type=int, default=512, help="samples per block, as a device delivers them")
    p.add_argument("--model-dir", default=None, help="folder of the models (default: the shipped ones)")
    a = p.parse_args()

    from piano_transcription.assets import DEMO_AUDIO, DEMO_MIDI
    from piano_transcription.midi import read_midi
    from piano_transcription.training.recordings import labelled_recordings, read_tsv_notes

    files, refs = [str(DEMO_AUDIO)], {str(DEMO_AUDIO): read_midi(DEMO_MIDI)}
    if Path(a.data).is_dir():
        for r in labelled_recordings(a.data)[: a.limit]:
            files.append(str(r.audio))
            refs[str(r.audio)] = read_tsv_notes(r.labels)
    print(f"{len(files)} recordings (the demo and {len(files) - 1} of real_dev), blocks of {a.block} samples")
    results = []
    for name in a.modes:
        t0 = time.time()
        r = run_mode(name, files, refs, a)
        if r:
            results.append(r)
            print(f"{name}: {time.time() - t0:.0f} s", flush=True)
    import pandas as pd

    print(pd.DataFrame(results).round(3).to_string(index=False))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
