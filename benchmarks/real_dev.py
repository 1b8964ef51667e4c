"""Accuracy on REAL piano recordings: the real-audio validation set (``../shared/data/maps/real_dev``).

18 recordings of a Yamaha Disklavier in a room (MAPS ENSTDkAm, ambient microphones, 50 minutes), with
their notes (pedal applied).  Every system transcribes the same audio; notes are scored per piece with
mir_eval as in the Onsets-and-Frames paper (onset within 50 ms; with offset: within 20 % of the note's
length or 50 ms; with velocity), frames on the 32 ms grid; the table shows the mean over pieces.
This set judges models and settings; it is never trained on.

    .venv/bin/python benchmarks/real_dev.py [--model A.keras B.tflite ...] [--basic-pitch] [--per-piece] [--limit N]

Every model runs through ``piano_transcription.transcribe`` (the product's own pipeline), with the
thresholds shipped beside it and, where those are not all 0.5, also with 0.5 everywhere.
``--basic-pitch`` runs basic-pitch from its own environment ``.venv-basic-pitch`` (created on first use).
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
sys.path.insert(0, str(ROOT / "benchmarks"))

COLUMNS = ["note_f1", "note_with_offset_f1", "note_with_offset_velocity_f1", "frame_f1", "note_precision",
           "note_recall"]


def threshold_sweep(model_path, recordings, refs, n_frames, grid=(0.3, 0.4, 0.5, 0.6, 0.7)) -> None:
    """Note F1 per global (onset, frame) threshold pair, and a 2-fold cross-validated choice: the pair chosen
    on the odd-numbered recordings is scored on the even ones and vice versa, so the printed figure is not
    measured on the data that chose it."""
    import pandas as pd

    from piano_transcription.predictor import load_predictor
    from piano_transcription.training.evaluate import score_notes
    from piano_transcription.decode import decode_notes
    from piano_transcription.transcribe import transcribe

    predictor = load_predictor(model_path)
    rolls = {r.name: transcribe(r.audio, predictor, keep_rolls=True).rolls for r in recordings}
    rows = []
    for on in grid:
        for fr in grid:
            for r in recordings:
                est = decode_notes(rolls[r.name]["frame"], rolls[r.name]["onset"], rolls[r.name]["velocity"], on, fr)
                m = score_notes(refs[r.name], est, n_frames[r.name])
                rows.append(dict(onset=on, frame=fr, piece=r.name, note_f1=m["note_f1"],
                                 note_with_offset_f1=m["note_with_offset_f1"], frame_f1=m["frame_f1"]))
    df = pd.DataFrame(rows)
    table = df.groupby(["onset", "frame"])[["note_f1", "note_with_offset_f1", "frame_f1"]].mean()
    print(f"{Path(model_path).name}: global thresholds on real_dev (mean over pieces)")
    for col in ("note_f1", "note_with_offset_f1", "frame_f1"):
        print(f"{col} (rows: onset threshold, columns: frame threshold)")
        print(table[col].unstack("frame").round(3).to_string())
    names = [r.name for r in recordings]
    folds = [names[0::2], names[1::2]]
    cv = []
    for k in (0, 1):
        choose = df[df.piece.isin(folds[k])].groupby(["onset", "frame"]).note_f1.mean().idxmax()
        held = df[df.piece.isin(folds[1 - k]) & (df.onset == choose[0]) & (df.frame == choose[1])]
        cv.append(held)
        print(f"fold {k}: chosen on {len(folds[k])} pieces: onset {choose[0]}, frame {choose[1]}; on the other "
              f"{len(folds[1 - k])}: note F1 {held.note_f1.mean():.3f}")
    cv = pd.concat(cv)
    print(f"cross-validated: note F1 {cv.note_f1.mean():.3f}, note+offset F1 {cv.note_with_offset_f1.mean():.3f}, "
          f"frame F1 {cv.frame_f1.mean():.3f}; best on all pieces: {table.note_f1.idxmax()}")


def model_systems(model_paths, recordings) -> dict[str, dict[str, np.ndarray]]:
    """Notes per recording for each model (Keras or TFLite, through the one transcription pipeline), with
    its shipped thresholds and, where those differ, with 0.5 everywhere."""
    from piano_transcription.predictor import load_predictor
    from piano_transcription.decode import decode_notes
    from piano_transcription.transcribe import transcribe

    systems = {}
    for path in model_paths:
        t0 = time.time()
        predictor = load_predictor(path)
        shipped = {k: np.asarray(v) for k, v in predictor.thresholds.items()}
        name = Path(path).name
        plain = any(np.any(v != 0.5) for v in shipped.values())
        systems[name] = {}
        if plain:
            systems[f"{name} (0.5)"] = {}
        for r in recordings:
            result = transcribe(r.audio, predictor, keep_rolls=plain)
            systems[name][r.name] = result.notes
            if plain:
                systems[f"{name} (0.5)"][r.name] = decode_notes(result.rolls["frame"], result.rolls["onset"],
                                                                result.rolls["velocity"], 0.5, 0.5)
        print(f"{name} ({predictor.backend}): {time.time() - t0:.1f} s", flush=True)
    return systems


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "maps" / "real_dev"))
    p.add_argument("--model", nargs="*", default=[str(ROOT / "piano_transcription" / "models" / "default.keras")],
                   help=".keras or .tflite models (default: the shipped Keras model)")
    p.add_argument("--basic-pitch", action="store_true")
    p.add_argument("--limit", type=int, default=None, help="only the first N recordings")
    p.add_argument("--per-piece", action="store_true", help="also print the note F1 of every recording")
    p.add_argument("--sweep", action="store_true",
                   help="global threshold grid for the first model, with a 2-fold cross-validated choice")
    p.add_argument("--cleanup", action="store_true",
                   help="also score the first model's notes after each clean-up preset and a grid of settings")
    a = p.parse_args()

    import pandas as pd

    from piano_transcription.audio import AudioSource, load_audio, write_wav
    from piano_transcription.constants import FRAMES_PER_SECOND, frames_for_samples
    from piano_transcription.training.evaluate import score_notes
    from piano_transcription.training.recordings import labelled_recordings, read_tsv_notes
    recordings = labelled_recordings(a.data)[: a.limit]
    if not recordings:
        raise SystemExit(f"{a.data}: no recordings with labels")
    n_frames = {r.name: frames_for_samples(AudioSource(r.audio).n_samples) for r in recordings}  # no audio kept
    refs = {r.name: read_tsv_notes(r.labels) for r in recordings}
    minutes = sum(n_frames.values()) / FRAMES_PER_SECOND / 60
    print(f"{len(recordings)} recordings, {minutes:.1f} minutes, {sum(len(n) for n in refs.values())} notes")

    if a.sweep:
        threshold_sweep(a.model[0], recordings, refs,
                        n_frames)
        return
    systems = model_systems(a.model, recordings)
    if a.basic_pitch:
        from accuracy import basic_pitch_notes

        wav_dir = ROOT / "data" / "generated" / "real_dev_wav"
        wavs = []
        for r in recordings:
            wav = wav_dir / f"{r.name}.wav"
            if not wav.exists():
                write_wav(wav, load_audio(r.audio))
            wavs.append(wav)
        t0 = time.time()
        systems["basic-pitch"] = basic_pitch_notes(wavs, wav_dir / "basic_pitch")
        print(f"basic-pitch: {time.time() - t0:.1f} s")

    if a.cleanup:
        from piano_transcription.cleanup import PRESETS, Cleanup, clean_notes

        first = next(iter(systems))
        settings = {f"preset {k}": v for k, v in PRESETS.items()}
        settings.update({f"min {m:g} s, merge {g:g} s": Cleanup(m, g) for m in (0.0, 0.05, 0.08)
                         for g in (0.0, 0.03, 0.06, 0.1)})
        for label, c in settings.items():
            systems[f"{first} + {label}"] = {k: clean_notes(v, c) for k, v in systems[first].items()}
    rows = []
    for name, est in systems.items():
        for r in recordings:
            n = n_frames[r.name]
            rows.append({"system": name, "piece": r.name, **score_notes(refs[r.name], est[r.name], n)})
    df = pd.DataFrame(rows)
    if a.per_piece:
        print(df.pivot(index="piece", columns="system", values="note_f1").round(3).to_string())
    print(df.groupby("system", sort=False)[COLUMNS].mean().round(3).to_string())


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
