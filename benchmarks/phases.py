"""Where a transcription's time goes: exclusive wall time per phase, measured inside one CLI run.

Imported by ``benchmarks/transcribe_speed.py``'s child process before it runs ``piano-transcribe``: the package's
functions of each phase are wrapped with timers (generators: each ``next``), and a timer nested in another is
subtracted from it, so the phases add up to the run's time and none is counted twice.

    start-up        imports, model loading and everything not below (argument checks, tracing)
    decode          reading and decoding the file (libsndfile), both passes
    resample        mono mix-down, checks, soxr resampling, peak normalisation
    log-mel         the numpy log-mel of each window (the Keras path; TFLite computes it in its graph)
    network         the model (Keras forward pass, or TFLite invoke)
    decoding        onset-gated note decoding, pedal, clean-up
    music+MIDI      tempo, beats, key, the MIDI file and the other outputs
"""

from __future__ import annotations

import functools
import json
import sys
import time

TOTALS: dict[str, float] = {}
_STACK: list[list] = []  # [phase, started, time spent in nested phases]


def _enter(phase: str) -> None:
    _STACK.append([phase, time.perf_counter(), 0.0])


def _leave() -> None:
    phase, started, nested = _STACK.pop()
    spent = time.perf_counter() - started
    TOTALS[phase] = TOTALS.get(phase, 0.0) + spent - nested
    if _STACK:
        _STACK[-1][2] += spent


def timed(phase: str, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        _enter(phase)
        try:
            return fn(*args, **kwargs)
        finally:
            _leave()

    return wrapper


def timed_generator(phase: str, fn):
    """A generator function whose every ``next`` counts as ``phase``."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        it = fn(*args, **kwargs)
        while True:
            _enter(phase)
            try:
                item = next(it)
            except StopIteration:
                return
            finally:
                _leave()
            yield item

    return wrapper


def install() -> None:
    """Wrap the package's phase functions (call before the run)."""
    from piano_transcription import audio, decode, inference, music, outputs, transcribe

    audio.AudioSource._raw_blocks = timed_generator("decode", audio.AudioSource._raw_blocks)
    audio.AudioSource.blocks = timed_generator("resample", audio.AudioSource.blocks)
    audio.AudioSource._scan = timed("resample", audio.AudioSource._scan)
    audio.log_mel = timed("log-mel", audio.log_mel)
    original = inference.keras_predictor
    inference.keras_predictor = lambda *a, **k: timed("network", original(*a, **k))
    try:
        from piano_transcription import tflite

        # run_windows, not run_window: its windows run in threads of their own, and these timers are not shared
        tflite.TFLiteModel.run_windows = timed("network", tflite.TFLiteModel.run_windows)
    except ImportError:
        pass
    decode.StreamingDecoder.feed = timed("decoding", decode.StreamingDecoder.feed)
    decode.StreamingDecoder.finish = timed("decoding", decode.StreamingDecoder.finish)
    transcribe.clean_notes = timed("decoding", transcribe.clean_notes)
    transcribe.decode_pedal = timed("decoding", transcribe.decode_pedal)
    for name in ("estimate_tempo", "estimate_key", "track_beats", "notes_to_midi"):
        setattr(transcribe, name, timed("music+MIDI", getattr(transcribe, name)))
    outputs.write_outputs = timed("music+MIDI", outputs.write_outputs)
    music.apply_tempo_map = timed("music+MIDI", music.apply_tempo_map)


def report(started: float) -> None:
    """Print the phases as one JSON line on stderr (``PHASES {...}``), start-up being the rest of the run."""
    total = time.perf_counter() - started
    TOTALS["start-up"] = total - sum(TOTALS.values())
    print("PHASES " + json.dumps(TOTALS), file=sys.stderr)
