"""Sustain-pedal accuracy on rendered validation audio (MAESTRO's validation performances, whose MIDI
carries the pedal, rendered by the corpus builder: sampled grands through sfizz and FluidSynth, in rooms).

    .venv/bin/python benchmarks/pedal.py [--corpus data/generated/corpus_real] [--model M.keras ...]

Prints per model the mean over 20 s excerpts of pedal-onset precision / recall / F1 (a press found
within 50 ms) and pedal-frame precision / recall / F1 (the pedal-down roll on the 32 ms grid).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default=str(ROOT / "data" / "generated" / "corpus_real"))
    p.add_argument("--split", default="validation")
    p.add_argument("--model", nargs="*", default=[str(ROOT / "piano_transcription" / "models" / "default.keras")])
    p.add_argument("--threshold", type=float, default=0.5)
    a = p.parse_args()
    from piano_transcription.model import has_pedal, load_model
    from piano_transcription.training.evaluate import evaluate_pedal, predict_split

    for path in a.model:
        model = load_model(path)
        if not has_pedal(model):
            print(f"{Path(path).name}: no pedal head")
            continue
        examples = list(predict_split(model, a.corpus, a.split, progress=False))
        m = evaluate_pedal(examples, a.threshold)
        n = sum(ex["pedal_known"] for ex in examples)
        print(f"{Path(path).name} ({n} excerpts of {a.split}): pedal onset P/R/F1 {m['pedal_onset_precision']:.3f} / "
              f"{m['pedal_onset_recall']:.3f} / {m['pedal_onset_f1']:.3f}; pedal frame P/R/F1 "
              f"{m['pedal_frame_precision']:.3f} / {m['pedal_frame_recall']:.3f} / {m['pedal_frame_f1']:.3f}")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
