"""The embedded data set: a small MAESTRO-format corpus synthesized from generated MIDI.

It has MAESTRO's own layout (a metadata CSV with MAESTRO's columns, year folders, ``.wav``
and ``.midi`` pairs, official-style train / validation / test splits), so that everything
that reads MAESTRO reads it too.  Audio is rendered with FluidSynth and the SoundFont that
pretty_midi ships; MIDI comes from :mod:`piano_transcription.corpus.compose`.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..constants import SAMPLE_RATE

DEFAULT_DIR = Path("data") / "generated" / "maestro-synthetic"
SPLIT_SIZES = {"train": 8, "validation": 2, "test": 2}
CSV_NAME = "maestro-v3.0.0.csv"


def build_synthetic_maestro(out_dir: str | os.PathLike = DEFAULT_DIR, split_sizes: dict | None = None,
                            duration: float = 30.0, seed: int = 0, soundfont=None) -> Path:
    """Write the synthetic corpus to ``out_dir`` (skipped if its metadata CSV exists); return ``out_dir``.

    ``split_sizes`` maps split name to piece count; each piece lasts about ``duration`` seconds.
    """
    import pandas as pd
    import soundfile as sf

    from ..audio import write_wav
    from .compose import performance_midi
    from ..io import atomic_path
    from ..midi import write_midi
    from .synth import render_fluidsynth

    out_dir = Path(out_dir)
    csv_path = out_dir / CSV_NAME
    if csv_path.exists():
        return out_dir
    split_sizes = split_sizes or SPLIT_SIZES
    rows, k = [], 0
    for split, count in split_sizes.items():
        for _ in range(count):
            year = 2018 + k % 2
            stem = f"{year}/SYNTH_{split}_{k:03d}"
            pm = performance_midi(seed * 1000 + k, duration)
            write_midi(pm, out_dir / f"{stem}.midi")
            audio = render_fluidsynth(pm, soundfont, SAMPLE_RATE)
            write_wav(out_dir / f"{stem}.wav", audio, SAMPLE_RATE)
            rows.append(dict(canonical_composer=f"Generator {k % 4}", canonical_title=f"Study {k}", split=split,
                             year=year, midi_filename=f"{stem}.midi", audio_filename=f"{stem}.wav",
                             duration=sf.info(str(out_dir / f"{stem}.wav")).duration))
            k += 1
    with atomic_path(csv_path) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)
    return out_dir
