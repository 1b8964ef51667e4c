"""Held-out accuracy of the shipped model, side by side with basic-pitch on the same audio.

The held-out set: 30 s excerpts of Mozart sonata performances (``performance_midi/batik_mozart``,
pieces that training never saw), rendered with the MuseScore General piano (a timbre that training
never heard).  Metrics per piece, averaged over pieces: mir_eval note F1 (onset 50 ms), note with
offset, note with offset and velocity, and frame F1 (notes drawn on the 32 ms frame grid, for both
systems alike).

    .venv/bin/python benchmarks/accuracy.py --midi-root ../shared/data/performance_midi [--basic-pitch]

``--basic-pitch`` installs basic-pitch into its own environment ``.venv-basic-pitch`` (first run only)
and transcribes the same audio with it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def basic_pitch_notes(wavs: list[Path], out: Path) -> dict[str, np.ndarray]:
    """Run basic-pitch (its own venv) on the wavs; return notes per file stem."""
    from piano_transcription.midi import read_midi

    venv = ROOT / ".venv-basic-pitch"
    if not (venv / "bin" / "basic-pitch").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "basic-pitch", "setuptools<81"], check=True)
    out.mkdir(parents=True, exist_ok=True)
    todo = [w for w in wavs if not (out / f"{w.stem}_basic_pitch.mid").exists()]
    if todo:
        subprocess.run([str(venv / "bin" / "basic-pitch"), str(out)] + [str(w) for w in todo], check=True,
                       stdout=subprocess.DEVNULL)
    result = {}
    for w in wavs:
        try:
            result[w.stem] = read_midi(out / f"{w.stem}_basic_pitch.mid")
        except Exception:
            result[w.stem] = np.zeros((0, 4))
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--midi-root", default=str(ROOT.parent / "shared" / "data" / "performance_midi"))
    p.add_argument("--model", default=str(ROOT / "piano_transcription" / "models" / "default.keras"))
    p.add_argument("--heldout-dir", default=str(ROOT / "data" / "generated" / "heldout"))
    p.add_argument("--pieces", type=int, default=12)
    p.add_argument("--tflite", nargs="*", default=[], help="also TFLite models (raw-audio windows)")
    p.add_argument("--basic-pitch", action="store_true")
    a = p.parse_args()

    import pandas as pd

    from piano_transcription.audio import load_audio
    from piano_transcription.constants import frames_for_samples
    from piano_transcription.corpus.builder import build_heldout_set, midi_files
    from piano_transcription.midi import read_midi
    from piano_transcription.training.evaluate import score_notes
    files = midi_files(Path(a.midi_root) / "batik_mozart")
    rng = np.random.default_rng(0)
    chosen = [files[i] for i in sorted(rng.choice(len(files), min(a.pieces, len(files)), replace=False))]
    heldout = build_heldout_set(chosen, a.heldout_dir)
    meta = pd.read_csv(heldout / "maestro-v3.0.0.csv")
    wavs = [heldout / f for f in meta["audio_filename"]]
    from real_dev import model_systems

    systems = model_systems([a.model] + a.tflite, [SimpleNamespace(audio=w, name=w.stem) for w in wavs])
    if a.basic_pitch:
        t0 = time.time()
        systems["basic-pitch"] = basic_pitch_notes(wavs, Path(a.heldout_dir) / "basic_pitch")
        print(f"basic-pitch: {time.time() - t0:.1f} s")
    refs = {w.stem: (read_midi(w.with_suffix(".midi")), frames_for_samples(len(load_audio(w)))) for w in wavs}
    rows = []
    for name, est in systems.items():
        for wav in wavs:
            ref, n = refs[wav.stem]
            rows.append({"system": name, "piece": wav.stem, **score_notes(ref, est[wav.stem], n)})
    df = pd.DataFrame(rows)
    cols = ["note_f1", "note_with_offset_f1", "note_with_offset_velocity_f1", "frame_f1"]
    print(df.groupby("system")[cols].mean().round(3).to_string())


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
