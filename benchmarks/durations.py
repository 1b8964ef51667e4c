"""Note lengths: ``--durations sounding`` against ``--durations keys`` (+ CC64), on rendered validation audio whose
keys and pedal are known (MAESTRO's validation performances rendered by the corpus builder; sampled grands
through sfizz in rooms).

    .venv/bin/python benchmarks/durations.py [--corpus data/generated/corpus_keys] [--model M.keras ...]

Per model with a key head, the mean over 20 s excerpts of note-with-offset F1 (mir_eval, offsets within 20 %
or 50 ms) for:

* ``sounding``: the notes as decoded (pedal applied) against the sounding notes;
* ``keys``: the notes ended at key release against the keys as played (pedal not applied);
* ``keys + pedal``: the keys notes lengthened by the decoded pedal (what a synthesizer that honours CC64 plays)
  against the sounding notes, the test of whether a keys MIDI plays back like the recording;
* ``keys, frame ends``: the sounding notes scored against the keys, what a user gets without a key head.

The model's own thresholds (onset, frame, offset) as the product uses them; key-release threshold:
``--key-threshold`` (default the product's).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default=str(ROOT / "data" / "generated" / "corpus_keys"))
    p.add_argument("--split", default="validation")
    p.add_argument("--model", nargs="*", default=[str(ROOT / "piano_transcription" / "models" / "default.keras")])
    p.add_argument("--key-threshold", type=float, nargs="*", default=None)
    p.add_argument("--limit", type=int, default=None, help="shards to read (default all)")
    a = p.parse_args()
    from piano_transcription.decode import decode_notes, decode_pedal, key_release_ends
    from piano_transcription.midi import apply_sustain_pedal
    from piano_transcription.model import has_keys, load_model
    from piano_transcription.predictor import load_thresholds
    from piano_transcription.training.evaluate import label_notes, predict_split
    from piano_transcription.training.metrics import note_metrics
    from piano_transcription.transcribe import KEY_THRESHOLD

    key_thresholds = a.key_threshold or [KEY_THRESHOLD]
    for path in a.model:
        model = load_model(path)
        if not has_keys(model):
            print(f"{Path(path).name}: no key head")
            continue
        t = load_thresholds(path)
        onset_t, frame_t, offset_t = t.get("onset", 0.5), t.get("frame", 0.5), t.get("offset")
        rows = {k: [] for k in key_thresholds}
        frame_ends = []
        n = 0
        for ex in predict_split(model, a.corpus, a.split, progress=False, limit=a.limit):
            if not (ex["keys_known"] and ex["pedal_known"]):
                continue
            n += 1
            r = ex["rolls"]
            ref_sound = ex["ref_notes"]
            ref_keys = label_notes(ex["ref_onsets"], ex["ref_keys"], np.zeros_like(ex["ref_keys"]))
            sounding = decode_notes(r["frame"], r["onset"], r["velocity"], onset_t, frame_t, r["offset"], offset_t)
            pedal = decode_pedal(r["pedal"])
            f1 = lambda ref, est: note_metrics(ref, est)["note_with_offset_f1"]  # noqa: E731
            frame_ends.append((f1(ref_sound, sounding), f1(ref_keys, sounding)))
            for kt in key_thresholds:
                keyed = key_release_ends(sounding, r["keys"], kt)
                rows[kt].append((f1(ref_keys, keyed), f1(ref_sound, apply_sustain_pedal(keyed, pedal))))
        fe = np.mean(frame_ends, axis=0)
        print(f"{Path(path).name} ({n} excerpts of {a.split}, its thresholds (onset {np.mean(onset_t):.2f}, frame "
              f"{np.mean(frame_t):.2f}, offset {offset_t})): note-with-offset F1")
        print(f"  sounding vs sounding notes      {fe[0]:.3f}")
        print(f"  sounding vs keys (no key head)  {fe[1]:.3f}")
        for kt in key_thresholds:
            m = np.mean(rows[kt], axis=0)
            print(f"  keys (threshold {kt:.2f}) vs keys    {m[0]:.3f}   keys + pedal vs sounding {m[1]:.3f}")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
