"""The ``piano-transcribe`` command line.

Transcription (the default)::

    piano-transcribe INPUT... [-o OUTDIR] [--model M.keras | --tflite M.tflite] [--onset-threshold T]
                     [--frame-threshold T] [--plot] [--overwrite]

Subcommands: ``demo``, ``prepare``, ``build-synthetic``, ``train``, ``tune-thresholds``,
``magenta-to-keras``, ``export-tflite`` (``piano-transcribe SUBCOMMAND --help`` for each).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

SUBCOMMANDS = ("demo", "prepare", "build-synthetic", "train", "tune-thresholds", "magenta-to-keras", "export-tflite")
DEMO_DIR = Path(__file__).resolve().parent.parent / "data" / "demo"


def _err(msg: str) -> None:
    print(f"piano-transcribe: {msg}", file=sys.stderr)


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Files as given, folders expanded to the audio files inside them (recursively, sorted)."""
    from .audio import AUDIO_EXTENSIONS

    out = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix.lower() in AUDIO_EXTENSIONS)
        else:
            out.append(p)
    return out


def make_predictor(model: str | None, tflite: str | None):
    """``(rolls_of_samples, model_path)``: a function from 16 kHz samples to probability rolls."""
    if tflite:
        from .tflite import TFLiteModel

        lite = TFLiteModel(tflite)
        return (lambda samples, progress=False: lite.predict(samples, progress=progress)), Path(tflite)
    from .audio import log_mel
    from .inference import predict_mel
    from .model import load_model
    from .transcribe import DEFAULT_MODEL

    path = Path(model) if model else DEFAULT_MODEL
    keras_model = load_model(path)
    return (lambda samples, progress=False: predict_mel(keras_model, log_mel(samples), progress=progress)), path


def transcription_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="piano-transcribe",
        description="Transcribe solo piano recordings (WAV, FLAC, OGG, MP3) to MIDI with an Onsets-and-Frames "
                    "model. One MIDI file per input is written to OUTDIR. Other tasks: "
                    + ", ".join(SUBCOMMANDS) + " (piano-transcribe SUBCOMMAND --help).")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files or folders of audio files")
    p.add_argument("-o", "--outdir", default=".", help="output folder (default: the current folder)")
    p.add_argument("--model", default=None, help="Keras model (.keras); default: the shipped models/default.keras")
    p.add_argument("--tflite", default=None, help="use a TFLite raw-audio model instead (ours or Magenta's "
                                                  "onsets_frames_wavinput.tflite); needs no TensorFlow")
    p.add_argument("--onset-threshold", type=float, default=None,
                   help="onset probability threshold (default: the model's tuned per-octave values, else 0.5)")
    p.add_argument("--frame-threshold", type=float, default=None,
                   help="frame probability threshold (default: tuned per-octave values, else 0.5)")
    p.add_argument("--plot", action="store_true", help="also write a piano-roll picture NAME.png")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    return p


def run_transcription(args) -> int:
    """Transcribe every input; a bad input is reported in one line and the others still run. Returns the exit status."""
    from tqdm.auto import tqdm

    from .audio import AudioError, load_audio
    from .midi import write_midi
    from .transcribe import resolve_thresholds, transcribe_rolls

    if args.model and args.tflite:
        _err("give either --model or --tflite, not both")
        return 2
    inputs = expand_inputs(args.inputs)
    if not inputs:
        _err("no audio files found in the given inputs")
        return 1
    outdir = Path(args.outdir)
    try:
        predict, model_path = make_predictor(args.model, args.tflite)
    except (OSError, ValueError) as exc:
        _err(f"cannot load the model: {exc}")
        return 2
    onset_t, frame_t = resolve_thresholds(model_path, args.onset_threshold, args.frame_threshold)
    failures = 0
    for path in tqdm(inputs, desc="files", unit="file", disable=args.quiet or len(inputs) == 1):
        out = outdir / (path.stem + ".mid")
        png = outdir / (path.stem + ".png")
        try:
            if not args.overwrite and (out.exists() or (args.plot and png.exists())):
                raise FileExistsError(f"{out if out.exists() else png} exists (use --overwrite to replace it)")
            samples = load_audio(path)
            rolls = predict(samples, progress=not args.quiet)
            notes, midi, tempo, key = transcribe_rolls(rolls, onset_t, frame_t, source=path.name)
            write_midi(midi, out)
            if args.plot:
                from .plots import save_figure, transcription_figure

                save_figure(transcription_figure(rolls, notes, path.name), png)
            if not args.quiet:
                print(f"{path} -> {out}: {len(notes)} notes, {tempo:.0f} BPM, {key}")
        except (AudioError, FileExistsError, OSError, ValueError, ImportError) as exc:
            failures += 1
            _err(f"{path}: {exc}")
    return 1 if failures else 0


def run_demo(argv) -> int:
    p = argparse.ArgumentParser(prog="piano-transcribe demo",
                                description="Transcribe the bundled demo recording with the shipped model, write "
                                            "OUTDIR/demo.mid and OUTDIR/demo.png, print note F1 against the true MIDI.")
    p.add_argument("-o", "--outdir", default="output/demo")
    p.add_argument("--model", default=None, help="Keras model (default: models/default.keras)")
    p.add_argument("--tflite", default=None, help="TFLite model instead")
    a = p.parse_args(argv)
    from .training.metrics import note_metrics
    from .midi import read_midi, write_midi
    from .plots import save_figure, transcription_figure
    from .audio import load_audio
    from .transcribe import resolve_thresholds, transcribe_rolls

    audio, truth = DEMO_DIR / "demo.flac", DEMO_DIR / "demo.mid"
    predict, model_path = make_predictor(a.model, a.tflite)
    rolls = predict(load_audio(audio), progress=True)
    notes, midi, tempo, key = transcribe_rolls(rolls, *resolve_thresholds(model_path, None, None), source=audio.name)
    out = Path(a.outdir)
    write_midi(midi, out / "demo.mid")
    ref = read_midi(truth)
    save_figure(transcription_figure(rolls, notes, audio.name, ref_notes=ref), out / "demo.png")
    m = note_metrics(ref, notes)
    print(f"model: {model_path}")
    print(f"wrote {out / 'demo.mid'} ({len(notes)} notes, {tempo:.0f} BPM, {key}) and {out / 'demo.png'}")
    print(f"note F1 (onset, 50 ms) against {truth.name}: {m['note_f1']:.3f}  "
          f"(precision {m['note_precision']:.3f}, recall {m['note_recall']:.3f}); "
          f"with offsets: {m['note_with_offset_f1']:.3f}")
    return 0


def run_prepare(argv) -> int:
    p = argparse.ArgumentParser(prog="piano-transcribe prepare",
                                description="Prepare a MAESTRO-layout folder into shards (resumable).")
    p.add_argument("maestro_dir")
    p.add_argument("out_dir")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--limit", type=int, default=None, help="first N pieces per split")
    a = p.parse_args(argv)
    from .training.maestro import prepare_dataset

    manifest = prepare_dataset(a.maestro_dir, a.out_dir, workers=a.workers, limit=a.limit)
    for split, entries in manifest["splits"].items():
        print(f"{split}: {len(entries)} pieces, {sum(e['segments'] for e in entries.values())} segments")
    return 0


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
                                description="Export a Keras model as a raw-audio TFLite model (17920 samples -> "
                                            "32 frames of onset/offset/frame logits and velocities).")
    p.add_argument("model")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--quantize", action="store_true", help="dynamic-range int8 weights (about 4x smaller, less "
                                                          "accurate)")
    p.add_argument("--float16", action="store_true", help="float16 weights (about 2x smaller, as accurate)")
    a = p.parse_args(argv)
    from .tflite import export_tflite

    export_tflite(a.model, a.output, quantize=a.quantize, float16=a.float16)
    print(f"wrote {a.output}")
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        cmd, rest = argv[0], argv[1:]
        if cmd == "train":
            from .training.train import main as train_main

            train_main(rest)
            return 0
        handler = {"demo": run_demo, "prepare": run_prepare, "build-synthetic": run_build_synthetic,
                   "tune-thresholds": run_tune,
                   "magenta-to-keras": run_magenta, "export-tflite": run_export_tflite}[cmd]
        return handler(rest)
    return run_transcription(transcription_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
