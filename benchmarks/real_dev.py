"""Accuracy on REAL piano recordings: the real-audio validation set (``../shared/data/maps/real_dev``).

18 recordings of a Yamaha Disklavier in a room (MAPS ENSTDkAm, ambient microphones, 50 minutes), with
their notes (pedal applied).  Every system transcribes the same audio; notes are scored per piece with
mir_eval as in the Onsets-and-Frames paper (onset within 50 ms; with offset: within 20 % of the note's
length or 50 ms; with velocity), frames on the 32 ms grid; the table shows the mean over pieces.
This set judges models and settings; it is never trained on.

    .venv/bin/python benchmarks/real_dev.py [--model A.keras B.tflite ...] [--basic-pitch] [--per-piece] [--limit N]
                                            [--diagnose]

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
                est = decode_notes(rolls[r.name]["frame"], rolls[r.name]["onset"], rolls[r.name]["velocity"], on, fr,
                                   offset_probs=rolls[r.name]["offset"], timing=predictor.timing)
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


def offset_analysis(model_path, recordings, refs, n_frames, grid=(None, 0.3, 0.5, 0.7)) -> None:
    """Where note ends go wrong: for the notes whose onset matches (mir_eval), the ratio of transcribed to true
    length (quantiles; shares too long / too short by more than the note-with-offset tolerance), and the
    note-with-offset F1 when the offset head also ends notes (``decode_notes``'s ``offset_threshold``), and, for a
    model with key and pedal heads, when notes end at key release and the decoded pedal lengthens them again."""
    import mir_eval

    from piano_transcription.decode import decode_notes, key_release_ends
    from piano_transcription.midi import apply_sustain_pedal
    from piano_transcription.predictor import load_predictor
    from piano_transcription.training.evaluate import score_notes
    from piano_transcription.transcribe import transcribe

    predictor = load_predictor(model_path)
    onset_t, frame_t = predictor.resolve()
    ratios, scores, others = [], {g: [] for g in grid}, {g: [] for g in grid}
    replay = []
    for r in recordings:
        result = transcribe(r.audio, predictor, keep_rolls=True)
        rolls = result.rolls
        ref = refs[r.name]
        if "keys" in rolls:  # notes ended at key release, lengthened again by the decoded pedal
            keyed = key_release_ends(decode_notes(rolls["frame"], rolls["onset"], rolls["velocity"], onset_t, frame_t,
                                                  offset_probs=rolls["offset"], timing=predictor.timing), rolls["keys"])
            replay.append(score_notes(ref, apply_sustain_pedal(keyed, result.pedal), n_frames[r.name]))
        for g in grid:
            est = decode_notes(rolls["frame"], rolls["onset"], rolls["velocity"], onset_t, frame_t,
                               offset_probs=rolls["offset"], offset_threshold=g, timing=predictor.timing)
            m = score_notes(ref, est, n_frames[r.name])
            scores[g].append(m["note_with_offset_f1"])
            others[g].append((m["note_f1"], m["frame_f1"]))
            if g is None:
                pairs = mir_eval.transcription.match_notes(ref[:, :2], 440 * 2 ** ((ref[:, 2] - 69) / 12), est[:, :2],
                                                           440 * 2 ** ((est[:, 2] - 69) / 12), offset_ratio=None)
                for i, j in pairs:
                    ratios.append((est[j, 1] - est[j, 0]) / max(ref[i, 1] - ref[i, 0], 1e-3))
    ratios = np.asarray(ratios)
    q = np.quantile(ratios, [0.1, 0.25, 0.5, 0.75, 0.9])
    print(f"{Path(model_path).name}: transcribed / true length of {len(ratios)} onset-matched notes: quantiles "
          f"10/25/50/75/90 % {np.round(q, 2).tolist()}; longer than 1.2x {np.mean(ratios > 1.2):.2f}, "
          f"shorter than 0.8x {np.mean(ratios < 0.8):.2f}")
    for g in grid:
        note, frame = np.mean(others[g], axis=0)
        print(f"  offset head threshold {g}: note-with-offset F1 {np.mean(scores[g]):.3f} (note F1 {note:.3f}, "
              f"frame F1 {frame:.3f})")
    folds = [np.arange(len(recordings)) % 2 == k for k in (0, 1)]
    cv = np.zeros(len(recordings))
    for choose, score in ((folds[0], folds[1]), (folds[1], folds[0])):
        best = max(grid, key=lambda g: np.mean(np.asarray(scores[g])[choose]))
        cv[score] = np.asarray(scores[best])[score]
        print(f"  2-fold cross-validation: threshold {best} chosen on {choose.sum()} recordings")
    print(f"  cross-validated note-with-offset F1 {cv.mean():.3f}")
    if replay:
        print(f"  key-release ends + decoded pedal: note-with-offset F1 "
              f"{np.mean([m['note_with_offset_f1'] for m in replay]):.3f}, note F1 "
              f"{np.mean([m['note_f1'] for m in replay]):.3f}, frame F1 {np.mean([m['frame_f1'] for m in replay]):.3f}")


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
        name = Path(path).name
        plain = any(np.any(v != 0.5) for k, v in predictor.thresholds.items() if k != "offset" and v is not None) \
            or predictor.thresholds.get("offset") is not None
        systems[name] = {}
        if plain:
            systems[f"{name} (0.5)"] = {}
        for r in recordings:
            result = transcribe(r.audio, predictor, keep_rolls=plain)
            systems[name][r.name] = result.notes
            if plain:
                systems[f"{name} (0.5)"][r.name] = decode_notes(
                    result.rolls["frame"], result.rolls["onset"], result.rolls["velocity"], 0.5, 0.5,
                    offset_probs=result.rolls["offset"], timing=predictor.timing)
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
    p.add_argument("--offsets", action="store_true",
                   help="where the first model's note ends go wrong, and ending notes with its offset head")
    p.add_argument("--diagnose", action="store_true",
                   help="where each system's errors come from: recall by velocity band and register, false notes "
                        "by kind, frame errors, length ratios (piano_transcription.training.diagnostics)")
    p.add_argument("--csv", default=None, metavar="FILE",
                   help="also append the table's rows (one per system, with the date) to FILE, for learning curves")
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
        threshold_sweep(a.model[0], recordings, refs, n_frames)
        return
    if a.offsets:
        offset_analysis(a.model[0], recordings, refs, n_frames)
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
    if a.diagnose:
        from piano_transcription.training.diagnostics import add_up, diagnose, format_diagnosis

        for name, est in systems.items():
            print(format_diagnosis(add_up([diagnose(refs[r.name], est[r.name]) for r in recordings]), name))
    if a.per_piece:
        print(df.pivot(index="piece", columns="system", values="note_f1").round(3).to_string())
    table = df.groupby("system", sort=False)[COLUMNS].mean().round(4)
    print(table.round(3).to_string())
    if a.csv:
        out = Path(a.csv)
        table.assign(date=time.strftime("%Y-%m-%d %H:%M")).to_csv(out, mode="a", header=not out.exists())


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
