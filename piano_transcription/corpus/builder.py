"""The training corpus of the default model: real performances rendered with several pianos.

MIDI performances (MAESTRO's, or any folder of MIDI) are cut into random 20 s excerpts, each
rendered with one of the *training* pianos -- the Salamander grand (sampler), FluidSynth with
FluidR3 GM, FluidSynth with pretty_midi's TimGM6mb -- then augmented (reverb, EQ, noise, gain,
codec) and written as prepared shards (the layout of :mod:`piano_transcription.training.maestro`), so that
:mod:`piano_transcription.training.train` reads them directly.  ``build_heldout_set`` renders whole excerpts
with a piano that training never hears (MuseScore General) into a MAESTRO-layout folder.

Command line::

    python -m piano_transcription.corpus.builder MIDI_ROOT OUT_DIR --train 3000 --validation 100
"""

from __future__ import annotations

import argparse
import json
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from ..constants import HOP_LENGTH, SAMPLE_RATE, SEGMENT_FRAMES

EXCERPT_SECONDS = (SEGMENT_FRAMES - 1) * HOP_LENGTH / SAMPLE_RATE  # 20.0 s
CONTEXT_FRAMES = 96  # 3.072 s rendered before the excerpt, so earlier notes ring into it
RENDERERS = {"salamander": 0.5, "fluidr3": 0.3, "timgm6mb": 0.2}
HELDOUT_SOUNDFONTS = ("/usr/share/sounds/sf3/MuseScore_General.sf3", "/usr/share/sounds/sf3/MuseScore_General_Lite.sf3")

_PIANO = None


def _sampler(cache):
    global _PIANO
    if _PIANO is None:
        from .sampler import SalamanderPiano

        _PIANO = SalamanderPiano(cache)
    return _PIANO


def render_notes(notes: np.ndarray, duration: float, renderer: str, rng, sampler_cache=None,
                 detune_cents: float = 0.0) -> np.ndarray:
    """Render notes (pedal applied) for ``duration`` s with a named renderer or a SoundFont path."""
    from ..midi import notes_to_pretty_midi
    from .synth import fluidr3_soundfont, pretty_midi_soundfont, render_fluidsynth

    n = int(round(duration * SAMPLE_RATE))
    if renderer == "salamander":
        audio = _sampler(sampler_cache).render(notes, duration, rng=rng, detune_cents=detune_cents)
    else:
        font = {"fluidr3": fluidr3_soundfont(), "timgm6mb": pretty_midi_soundfont()}.get(renderer, renderer)
        if font is None:
            raise FileNotFoundError(f"SoundFont for {renderer} is not installed")
        pm = notes_to_pretty_midi(notes)
        if detune_cents:
            import pretty_midi

            pm.instruments[0].pitch_bends.append(pretty_midi.PitchBend(int(detune_cents / 200 * 8191), 0.0))
        audio = render_fluidsynth(pm, font)
    return np.pad(audio, (0, max(0, n - len(audio))))[:n].astype(np.float32)


def excerpt(notes: np.ndarray, start: float, renderer: str, rng, sampler_cache=None, do_augment: bool = True):
    """One 20 s training example from ``notes`` at ``start`` s: ``(log-mel [626, 229], Rolls)``."""
    from ..audio import log_mel, normalize
    from .augment import augment
    from ..training.labels import notes_to_rolls

    context = CONTEXT_FRAMES * HOP_LENGTH / SAMPLE_RATE
    t0 = start - context
    sel = notes[(notes[:, 0] >= t0) & (notes[:, 0] < start + EXCERPT_SECONDS)].copy()
    sel[:, :2] -= t0
    total = context + EXCERPT_SECONDS
    audio = render_notes(sel, total + 0.5, renderer, rng, sampler_cache, rng.normal(0, 8) if do_augment else 0.0)
    audio = augment(audio, rng) if do_augment else normalize(audio)
    c0 = CONTEXT_FRAMES * HOP_LENGTH
    seg = audio[c0: c0 + int(EXCERPT_SECONDS * SAMPLE_RATE)]
    rolls = notes_to_rolls(sel, n_frames=CONTEXT_FRAMES + SEGMENT_FRAMES).slice(CONTEXT_FRAMES,
                                                                                 CONTEXT_FRAMES + SEGMENT_FRAMES)
    return log_mel(normalize(seg)), rolls


def _make_shard(midi_path: str, starts: list[float], renderers: list[str], seed: int, shard: str,
                sampler_cache: str | None, do_augment: bool) -> dict:
    from ..training.maestro import Example, save_shard
    from ..midi import read_midi

    notes = read_midi(midi_path)
    rng = np.random.default_rng(seed)
    examples = []
    for start, renderer in zip(starts, renderers):
        mel, rolls = excerpt(notes, start, renderer, rng, sampler_cache, do_augment)
        examples.append(Example(mel, rolls, SEGMENT_FRAMES))
    save_shard(shard, examples)
    return {"segments": len(examples), "frames": SEGMENT_FRAMES * len(examples), "renderers": renderers}


def midi_files(folder: str | os.PathLike) -> list[Path]:
    """MIDI files (``.mid``, ``.midi``) under ``folder``, sorted."""
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".mid", ".midi"))


def build_corpus(splits: dict[str, list[Path]], out_dir: str | os.PathLike, counts: dict[str, int],
                 per_shard: int = 8, workers: int = 2, seed: int = 0, sampler_cache=None,
                 renderers: dict[str, float] = RENDERERS, progress: bool = True) -> dict:
    """Render ``counts[split]`` excerpts from each split's MIDI files into shards + ``manifest.json``.

    Resumable: existing shards are kept.  Returns the manifest.
    """
    from tqdm.auto import tqdm

    from ..io import atomic_path
    from ..midi import read_midi

    out_dir = Path(out_dir)
    manifest_path = out_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"splits": {}}
    rng = np.random.default_rng(seed)
    names, probs = list(renderers), np.array(list(renderers.values()), float)
    jobs = []
    for split, files in splits.items():
        entries = manifest["splits"].setdefault(split, {})
        lengths = {}
        for f in files:
            notes = read_midi(f)
            lengths[f] = float(notes[:, 1].max())
        usable = [f for f in files if lengths[f] > EXCERPT_SECONDS + 1]
        n_shards = -(-counts.get(split, 0) // per_shard)
        for k in range(n_shards):
            f = usable[k % len(usable)]
            starts = sorted(rng.uniform(0, lengths[f] - EXCERPT_SECONDS, per_shard).tolist())
            rends = [str(r) for r in rng.choice(names, per_shard, p=probs / probs.sum())]
            sid = f"{split}_{k:05d}"
            shard = out_dir / split / f"{sid}.npz"
            if shard.exists() and sid in entries:
                continue
            jobs.append((split, sid, (str(f), starts, rends, int(rng.integers(1 << 31)), str(shard),
                                      str(sampler_cache) if sampler_cache else None, True)))

    def record(split, sid, info, source):
        manifest["splits"][split][sid] = dict(shard=f"{split}/{sid}.npz", midi=source, **info)
        with atomic_path(manifest_path) as tmp:
            tmp.write_text(json.dumps(manifest, indent=1))

    with ProcessPoolExecutor(workers) as pool:
        futures = {pool.submit(_make_shard, *args): (split, sid, args[0]) for split, sid, args in jobs}
        for fut in tqdm(as_completed(futures), total=len(futures), desc="render corpus", disable=not progress):
            split, sid, source = futures[fut]
            record(split, sid, fut.result(), source)
    if not manifest_path.exists():
        with atomic_path(manifest_path) as tmp:
            tmp.write_text(json.dumps(manifest, indent=1))
    return manifest


def heldout_soundfont() -> Path | None:
    """The held-out piano (MuseScore General, Debian ``musescore-general-soundfont-small``), if installed."""
    for p in HELDOUT_SOUNDFONTS:
        if os.path.exists(p):
            return Path(p)
    return None


def build_heldout_set(midi_paths: list[Path], out_dir: str | os.PathLike, soundfont=None, seconds: float = 30.0,
                      seed: int = 0) -> Path:
    """Render a ``seconds``-long excerpt of each MIDI file with the held-out piano into a MAESTRO-layout
    folder (``test`` split: ``.wav`` + ``.midi`` + ``maestro-v3.0.0.csv``); return the folder."""
    import pandas as pd

    from ..audio import write_wav
    from ..io import atomic_path
    from ..midi import notes_to_pretty_midi, read_midi, write_midi

    out_dir = Path(out_dir)
    csv = out_dir / "maestro-v3.0.0.csv"
    if csv.exists():
        return out_dir
    soundfont = soundfont or heldout_soundfont()
    if soundfont is None:
        raise FileNotFoundError("held-out SoundFont missing: apt-get install musescore-general-soundfont-small")
    rng = np.random.default_rng(seed)
    rows = []
    for path in midi_paths:
        notes = read_midi(path)
        total = float(notes[:, 1].max())
        start = float(rng.uniform(0, max(total - seconds, 0)))
        sel = notes[(notes[:, 0] >= start) & (notes[:, 0] < start + seconds)].copy()
        sel[:, :2] -= start
        sel[:, 1] = np.minimum(sel[:, 1], seconds + 2.0)
        stem = f"2026/{Path(path).stem}"
        audio = render_notes(sel, seconds + 2.0, str(soundfont), rng)
        write_wav(out_dir / f"{stem}.wav", audio)
        write_midi(notes_to_pretty_midi(sel), out_dir / f"{stem}.midi")
        rows.append(dict(canonical_composer="held-out", canonical_title=Path(path).stem, split="test", year=2026,
                         midi_filename=f"{stem}.midi", audio_filename=f"{stem}.wav", duration=seconds + 2.0))
    with atomic_path(csv) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)
    return out_dir


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m piano_transcription.corpus.builder", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("midi_root", help="folder with maestro/{train,validation}/ MIDI (e.g. ../shared/data/performance_midi)")
    p.add_argument("out_dir")
    p.add_argument("--train", type=int, default=3000, help="training excerpts (20 s)")
    p.add_argument("--validation", type=int, default=96, help="validation excerpts")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    from .sampler import build_cache, fetch_salamander

    cache = build_cache(fetch_salamander())
    root = Path(a.midi_root)
    splits = {"train": midi_files(root / "maestro" / "train"), "validation": midi_files(root / "maestro" / "validation")}
    build_corpus(splits, a.out_dir, {"train": a.train, "validation": a.validation}, workers=a.workers, seed=a.seed,
                 sampler_cache=cache)


if __name__ == "__main__":
    main()
