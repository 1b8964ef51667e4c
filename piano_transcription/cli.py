"""The ``piano-transcribe`` command line.

Transcription (the default)::

    piano-transcribe INPUT... [-o OUTDIR] [--model M.keras | --tflite M.tflite] [--onset-threshold T]
                     [--frame-threshold T] [--offset-threshold T] [--durations sounding|keys] [--plot]
                     [--musicxml] [--overwrite]

Subcommands: ``demo``, ``prepare``, ``build-synthetic``, ``train``, ``tune-thresholds``,
``magenta-to-keras``, ``export-tflite`` (``piano-transcribe SUBCOMMAND --help`` for each).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .assets import DEMO_AUDIO, DEMO_MIDI
from .audio import AUDIO_EXTENSIONS
from .cleanup import DEFAULT_PRESET, PRESETS, Cleanup
from .constants import DEFAULT_DURATIONS, DURATIONS, SEGMENT_FRAMES
from .engine import add_engine_arguments, engine_from_args

SUBCOMMANDS = ("demo", "prepare", "build-synthetic", "corpus", "train", "tune-thresholds", "magenta-to-keras",
               "export-tflite", "live")


def _err(msg: str) -> None:
    """One line of ours on stderr (above a progress bar, never run into it)."""
    from tqdm.auto import tqdm

    tqdm.write(f"piano-transcribe: {msg}", file=sys.stderr)


def _about(path, exc: BaseException) -> str:
    """``path: reason`` without naming the path twice when the reason already starts with it."""
    text = str(exc) or type(exc).__name__
    return text if text.startswith(str(path)) else f"{path}: {text}"


def seconds_arg(text: str) -> float:
    """argparse type: a duration in seconds, 0 to 2."""
    try:
        return Cleanup(min_note=float(text)).min_note
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds from 0 to 2, got {text!r}") from None


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def threshold_arg(text: str) -> float:
    """argparse type: a probability threshold strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 < value < 1.0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {text}")
    return value


@dataclass
class Inputs:
    """The inputs of a transcription run: ``files`` to transcribe (each once, in order), ``failures``
    ``(input, reason)`` of inputs that cannot be transcribed, and ``notes``: one line per folder that held
    files other than audio (skipped)."""

    files: list[Path] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _identity(path: Path):
    """What makes two paths the same file (the resolved path), else OSError / RuntimeError (a symlink loop)."""
    return path.resolve(strict=True) if path.exists() else path.resolve()


def gather_inputs(items: list[str]) -> Inputs:
    """Files as given, folders expanded to the audio files inside them (recursively, sorted); each file once.
    A folder without audio files and a file that cannot be the same as any other (a symlink loop) are
    failures of their own; nothing here reads audio."""
    found = Inputs()
    seen: set = set()
    for item in items:
        p = Path(os.fsdecode(item))
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.suffix.lower() in AUDIO_EXTENSIONS and not f.is_dir())
            others = sorted(f.name for f in p.rglob("*") if f.is_file() and f.suffix.lower() not in AUDIO_EXTENSIONS)
            if not files:
                found.failures.append((item, f"{item}: no audio files in this folder (looked for "
                                             f"{', '.join(AUDIO_EXTENSIONS)})"))
                continue
            if others:
                shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
                found.notes.append(f"{item}: skipped {len(others)} file(s) that are not audio ({shown})")
        else:
            files = [p]
        for f in files:
            try:
                key = _identity(f)
            except (OSError, RuntimeError):  # Python 3.11: RuntimeError("Symlink loop ..."); later: OSError
                found.failures.append((str(f), f"{f}: a symbolic link loop (the link points back at itself)"))
                continue
            if key not in seen:
                seen.add(key)
                found.files.append(f)
    return found


def expand_inputs(inputs: list[str]) -> list[Path]:
    """The files that :func:`gather_inputs` finds (each once, in order)."""
    return gather_inputs(inputs).files


def output_names(inputs: list[Path]) -> dict[Path, str]:
    """A distinct output base name per input: its stem (``take``), else stem and extension (``take.mp3``),
    else folders in front until the names differ (``a-take.wav``), else a number (``take.WAV-2``: names that
    differ only in case, which a case-insensitive file system would make one), so that no result overwrites
    another."""
    names: dict[Path, str] = {}
    clashing: list[Path] = []
    for depth in range(0, 64):
        for p in inputs:
            if p in names:
                continue
            parts = p.absolute().parts[:-1]
            prefix = "-".join(parts[len(parts) - depth + 1:]) if depth > 1 else ""
            base = p.stem if depth == 0 else p.name
            names[p] = f"{prefix}-{base}" if prefix else base
        counts: dict[str, int] = {}
        for n in names.values():
            counts[n.lower()] = counts.get(n.lower(), 0) + 1
        clashing = [p for p, n in names.items() if counts[n.lower()] > 1]
        if not clashing or depth > len(max((p.absolute().parts for p in clashing), key=len)):
            break
        for p in clashing:
            del names[p]
    taken = {n.lower() for p, n in names.items() if p not in clashing}
    for p in clashing:  # folders did not help: number them in input order
        base, k = p.name, 1
        names[p] = base
        while names[p].lower() in taken:
            k += 1
            names[p] = f"{base}-{k}"
        taken.add(names[p].lower())
    return names


def transcription_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="piano-transcribe",
        description="Transcribe solo piano recordings (WAV, FLAC, OGG, OPUS, MP3) to MIDI with an Onsets-and-Frames "
                    "model. One MIDI file per input is written to OUTDIR. Other tasks: "
                    + ", ".join(SUBCOMMANDS) + " (piano-transcribe SUBCOMMAND --help).")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files or folders of audio files")
    p.add_argument("-o", "--outdir", default=".", help="output folder (default: the current folder)")
    p.add_argument("--model", default=None, help="model file, .keras or .tflite (default: the shipped model; "
                                                 "its TFLite form on the light install)")
    p.add_argument("--tflite", default=None, help="a TFLite raw-audio model (ours or Magenta's "
                                                  "onsets_frames_wavinput.tflite); needs no TensorFlow")
    p.add_argument("--onset-threshold", type=threshold_arg, default=None,
                   help="onset probability threshold, strictly between 0 and 1 (default: the model's own, else 0.5)")
    p.add_argument("--frame-threshold", type=threshold_arg, default=None,
                   help="frame probability threshold, strictly between 0 and 1 (default: the model's own, else 0.5)")
    p.add_argument("--offset-threshold", type=threshold_arg, default=None,
                   help="offset probability that also ends a note, strictly between 0 and 1 (default: the model's own, "
                        "if it ships one)")
    p.add_argument("--preset", choices=sorted(PRESETS), default=DEFAULT_PRESET,
                   help="note clean-up: none, studio (clean recordings) or room (noisy or reverberant); "
                        "default %(default)s")
    p.add_argument("--min-note", type=seconds_arg, default=None, metavar="S",
                   help="drop notes shorter than S seconds (overrides the preset)")
    p.add_argument("--merge-within", type=seconds_arg, default=None, metavar="S",
                   help="merge a re-onset of a pitch less than S seconds after its previous onset (overrides the preset)")
    p.add_argument("--durations", choices=DURATIONS, default=DEFAULT_DURATIONS,
                   help="note ends: 'sounding' (the note lasts while it sounds, pedal applied; no CC64) or 'keys' "
                        "(ends at key release, the sustain pedal written as CC64; needs a model with key and "
                        "pedal heads); default %(default)s")
    p.add_argument("--constant-tempo", action="store_true",
                   help="one estimated tempo instead of a tempo map that follows the beats")
    p.add_argument("--plot", action="store_true", help="also write a piano-roll picture NAME.png")
    p.add_argument("--musicxml", action="store_true",
                   help="also write a two-staff score NAME.musicxml (quantised to the tracked beats; needs music21)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files (and redo the inputs "
                                                            "whose outputs are up to date)")
    p.add_argument("--parallel-windows", type=positive_int, default=None, metavar="N",
                   help="TFLite models: run N 20 s windows at once, one single-threaded interpreter each (faster on "
                        "several cores: 10 minutes 4.3 -> 4.1 s, 60 minutes 28.6 -> 25.1 s on 2 cores; about 160 MB "
                        "more memory per window; in this process: cluster workers run one interpreter each); "
                        "default one")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    add_engine_arguments(p)
    return p


def cleanup_from_args(args) -> Cleanup:
    """The clean-up of the chosen preset, with ``--min-note`` / ``--merge-within`` overriding it."""
    base = PRESETS[args.preset]
    return Cleanup(base.min_note if args.min_note is None else args.min_note,
                   base.merge_within if args.merge_within is None else args.merge_within)


def check_outdir(outdir: Path) -> None:
    """OSError unless ``outdir`` is (or can be made) a folder this process can write into."""
    import tempfile

    if outdir.exists() and not outdir.is_dir():
        raise NotADirectoryError(f"{outdir}: the output folder is a file")
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=outdir):
            pass
    except OSError as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise type(exc)(f"cannot write into the output folder {outdir}: {reason}") from None


def check_transcription_options(args) -> None:
    """ValueError / OSError / ImportError for options that cannot work, before anything is loaded."""
    from .predictor import check_model_path

    if args.model and args.tflite:
        raise ValueError("give either --model or --tflite, not both")
    if args.tflite:
        check_model_path(args.tflite, ".tflite")
    elif args.model:
        check_model_path(args.model)
    needs = {"--plot": ("matplotlib", args.plot), "--musicxml": ("music21", args.musicxml)}
    for option, (module, wanted) in needs.items():
        if wanted and importlib.util.find_spec(module) is None:
            raise ImportError(f"{option} needs {module}: pip install 'piano-transcription[full]'")


def run_transcription(args) -> int:
    """Transcribe every input; a bad input is reported in one line and the others still run. Options, inputs
    and the output folder are checked before the model loads. Returns the exit status (0, 1: some inputs failed,
    2: the options or the output folder cannot work)."""
    from .audio import check_audio_file
    from .batch import model_digest, remember_predictor, transcription_job, transcription_options
    from .engine import EngineError, run_job, up_to_date
    from .outputs import requested_outputs
    from .predictor import default_model_path

    try:
        check_transcription_options(args)
        engine = engine_from_args(args)
    except (OSError, ValueError, ImportError, EngineError) as exc:
        _err(str(exc))
        return 2
    found = gather_inputs(args.inputs)
    for note in found.notes:
        _err(note)
    failed = [{"item": item, "input": item, "reason": reason} for item, reason in found.failures]
    for _, reason in found.failures:
        _err(reason)
    names = output_names(found.files)
    outdir = Path(args.outdir)
    model_path = Path(args.tflite or args.model or default_model_path())
    digest = model_digest(model_path)
    options = transcription_options(args.onset_threshold, args.frame_threshold, args.offset_threshold,
                                    cleanup_from_args(args), not args.constant_tempo, args.durations)
    plan = [(path, names[path], requested_outputs(outdir, names[path], args.plot, args.musicxml))
            for path in found.files]
    done = up_to_date(transcription_job(plan, outdir, model_path, digest, options, args.overwrite))
    todo = []
    for path, key, wanted in plan:
        try:
            if key not in done:  # outputs this model and these options already made are skipped, not refused
                check_audio_file(path)
                existing = [p for p in wanted.values() if p.exists()]
                if existing and not args.overwrite:
                    raise FileExistsError(f"{existing[0]} exists (use --overwrite to replace it)")
        except (OSError, ValueError) as exc:  # AudioError is a ValueError
            failed.append({"item": key, "input": str(path), "reason": _about(path, exc)})
            _err(_about(path, exc))
            continue
        todo.append((path, key, wanted))
    if not todo:
        if not found.files and not found.failures:
            _err("no audio files found in the given inputs")
        return 1
    try:
        check_outdir(outdir)
    except OSError as exc:
        _err(str(exc))
        return 2
    job = transcription_job(todo, outdir, model_path, digest, options, args.overwrite, progress=not args.quiet)
    if any(key not in done for _, key, _ in todo):  # something to transcribe: load the model here, once, to check it
        from .predictor import load_predictor
        from .transcribe import check_durations

        try:
            predictor = load_predictor(model_path, interpreters=args.parallel_windows)
            check_durations(predictor, args.durations)
        except (OSError, ValueError, ImportError) as exc:
            _err(f"cannot load the model: {exc}" if "durations" not in str(exc) else str(exc))
            return 2
        remember_predictor(predictor, digest)  # the local engine transcribes with this one
    sources = {key: (path, wanted["midi"]) for path, key, wanted in todo}

    def report(outcome) -> None:
        path, midi = sources[outcome.item.key]
        if outcome.status == "failed":
            _err(_about(path, outcome.reason))
            return
        for w in outcome.result.get("warnings", []) if outcome.status == "done" else ():
            _err(f"warning: {w}")
        if args.quiet:
            return
        if outcome.status == "skipped":
            print(f"{path} -> {midi}: up to date (same audio, model and options)")
        else:
            r = outcome.result
            print(f"{path} -> {midi}: {r['notes']} notes, {r['tempo']:.0f} BPM, {r['key']}")

    many = not args.quiet and len(todo) > 1
    result = run_job(job, engine, progress=many, on_outcome=report, failures=failed)
    return 1 if result.failed else 0


def run_demo(argv) -> int:
    p = argparse.ArgumentParser(prog="piano-transcribe demo",
                                description="Transcribe the bundled demo recording with the shipped model, write "
                                            "OUTDIR/demo.mid and OUTDIR/demo.png, print note F1 against the true MIDI.")
    p.add_argument("-o", "--outdir", default="output/demo")
    p.add_argument("--model", default=None, help="model file, .keras or .tflite (default: the shipped model)")
    p.add_argument("--tflite", default=None, help="TFLite model instead")
    p.add_argument("--overwrite", action="store_true", help="replace the outputs of an earlier demo run")
    a = p.parse_args(argv)
    from .midi import read_midi
    from .outputs import requested_outputs, write_outputs
    from .predictor import check_model_path

    missing = [m for m in ("matplotlib", "mir_eval") if importlib.util.find_spec(m) is None]
    out = Path(a.outdir)
    wanted = requested_outputs(out, DEMO_AUDIO.stem, plot=not missing)
    existing = [str(path) for path in wanted.values() if path.exists()]
    if existing and not a.overwrite:
        _err(f"{existing[0]} exists (use --overwrite to replace it)")
        return 1
    if a.tflite or a.model:
        check_model_path(a.tflite or a.model, ".tflite" if a.tflite else None)
    check_outdir(out)
    from .predictor import load_predictor
    from .transcribe import transcribe

    predictor = load_predictor(a.tflite or a.model)
    result = transcribe(DEMO_AUDIO, predictor, progress=True, keep_rolls=True)
    ref = read_midi(DEMO_MIDI)
    write_outputs(result, wanted, DEMO_AUDIO.name, ref_notes=ref)
    print(f"model: {predictor.path} ({predictor.backend})")
    print(f"wrote {wanted['midi']} ({len(result.notes)} notes, {result.tempo:.0f} BPM, {result.key})")
    if missing:  # the light install: no picture, no score
        print(f"(no picture and no score without {', '.join(missing)}: pip install 'piano-transcription[full]')")
        return 0
    from .training.metrics import note_metrics

    m = note_metrics(ref, result.notes)
    print(f"wrote {wanted['plot']}")
    print(f"note F1 (onset, 50 ms) against {DEMO_MIDI.name}: {m['note_f1']:.3f}  "
          f"(precision {m['note_precision']:.3f}, recall {m['note_recall']:.3f}); "
          f"with offsets: {m['note_with_offset_f1']:.3f}")
    return 0


def run_prepare(argv) -> int:
    p = argparse.ArgumentParser(prog="piano-transcribe prepare",
                                description="Prepare a MAESTRO-layout folder into shards (resumable).")
    p.add_argument("maestro_dir")
    p.add_argument("out_dir")
    p.add_argument("--limit", type=int, default=None, help="first N pieces per split")
    add_engine_arguments(p, local_workers=2)
    a = p.parse_args(argv)
    from .training.maestro import prepare_dataset

    import warnings

    engine = engine_from_args(a, local_workers=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the failures are listed below
        manifest = prepare_dataset(a.maestro_dir, a.out_dir, limit=a.limit, engine=engine)
    for split, entries in manifest["splits"].items():
        print(f"{split}: {len(entries)} pieces, {sum(e['segments'] for e in entries.values())} segments")
    for failure in manifest.get("failed", []):
        _err(f"failed: {failure}")
    return 1 if manifest.get("failed") else 0


def run_build_synthetic(argv) -> int:
    p = argparse.ArgumentParser(prog="piano-transcribe build-synthetic",
                                description="Build the small synthetic MAESTRO-format data set.")
    p.add_argument("out_dir", nargs="?", default=None)
    a = p.parse_args(argv)
    from .corpus.synthetic import DEFAULT_DIR, build_synthetic_maestro

    print(build_synthetic_maestro(a.out_dir or DEFAULT_DIR))
    return 0


def run_tune(argv) -> int:
    p = argparse.ArgumentParser(prog="piano-transcribe tune-thresholds",
                                description="Tune per-octave onset/frame thresholds on a prepared split and write "
                                            "MODEL.thresholds.json beside the model (used by transcription).")
    p.add_argument("model")
    p.add_argument("prepared_dir")
    p.add_argument("--split", default="validation")
    a = p.parse_args(argv)
    from .training.evaluate import tune_and_save

    tuned = tune_and_save(a.model, a.prepared_dir, a.split)
    print({k: sorted(set(v.round(2).tolist())) for k, v in tuned.items()})
    return 0


def run_magenta(argv) -> int:
    p = argparse.ArgumentParser(prog="piano-transcribe magenta-to-keras",
                                description="Convert Magenta's MAESTRO checkpoint (zip, folder or prefix) to .keras.")
    p.add_argument("checkpoint")
    p.add_argument("-o", "--output", required=True, help="output .keras file")
    a = p.parse_args(argv)
    from .training.magenta import convert_checkpoint

    convert_checkpoint(a.checkpoint, a.output)
    print(f"wrote {a.output}")
    return 0


def run_export_tflite(argv) -> int:
    p = argparse.ArgumentParser(prog="piano-transcribe export-tflite",
                                description="Export a Keras model as a raw-audio TFLite model (a window of samples "
                                            "-> its frames of onset/offset/frame logits and velocities).")
    p.add_argument("model")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--quantize", action="store_true", help="dynamic-range int8 weights (about 4x smaller, less "
                                                          "accurate)")
    p.add_argument("--float16", action="store_true", help="float16 weights (about 2x smaller, as accurate)")
    p.add_argument("--frames", type=int, default=SEGMENT_FRAMES,
                   help=f"frames per window (default {SEGMENT_FRAMES}: 20 s, the training segment, read in overlapping "
                        "windows as the Keras model; 32: Magenta's 17920-sample contract, faster, less accurate)")
    a = p.parse_args(argv)
    if a.frames < 1:
        _err(f"--frames must be at least 1, got {a.frames}")
        return 2
    from .tflite import export_tflite

    export_tflite(a.model, a.output, quantize=a.quantize, float16=a.float16, frames=a.frames)
    print(f"wrote {a.output}")
    return 0


def run_corpus(argv) -> int:
    from .corpus.builder import main as corpus_main

    return corpus_main(argv, prog="piano-transcribe corpus")


def run_train(argv) -> int:
    from .training.train import main as train_main

    train_main(argv, prog="piano-transcribe train")
    return 0


def run_live(argv) -> int:
    from .live.cli import run_live as live_main

    return live_main(argv)


HANDLERS = {"demo": run_demo, "prepare": run_prepare, "build-synthetic": run_build_synthetic, "corpus": run_corpus,
            "train": run_train, "tune-thresholds": run_tune, "magenta-to-keras": run_magenta,
            "export-tflite": run_export_tflite, "live": run_live}


def main(argv=None) -> int:
    """Run the command line; returns the exit status (1: some inputs failed, 2: bad usage or set-up, 130: Ctrl-C)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in SUBCOMMANDS:
            return HANDLERS[argv[0]](argv[1:])
        return run_transcription(transcription_parser().parse_args(argv))
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except (ValueError, OSError, ImportError, RuntimeError) as exc:
        _err(str(exc) or type(exc).__name__)
        return 2


if __name__ == "__main__":
    sys.exit(main())
