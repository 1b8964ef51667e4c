"""``piano-transcribe live``: the default input device (or ``--input FILE``) to MIDI as it plays.

    piano-transcribe live [--device D] [--rate HZ] [--input FILE [--realtime]] [--mode lookahead|causal]
                          [--midi-port NAME | --virtual-port [NAME]] [-o take.mid] [--record take.wav]
                          [--overwrite] [--seconds S] [--list-devices] [--list-ports]

Each note goes to the MIDI port and to the terminal when it is decided; on stop (Ctrl-C, the end of ``--input``
or ``--seconds``) the whole take is written as a MIDI file with the offline path's tempo map and key, and the
captured audio as WAV.  Errors are one line ``piano-transcribe: ...`` with exit status 2.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from ..cli import positive_int
from .sinks import VIRTUAL_PORT_NAME
from .sources import BLOCK_FRAMES, LiveError
from .transcriber import HOP_FRAMES, LOOKAHEAD_FRAMES, MODES, WINDOW_FRAMES

PROG = "piano-transcribe live"


def _err(msg: str) -> None:
    print(f"piano-transcribe: {msg}", file=sys.stderr, flush=True)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit status 2, as the rest of the command line
        _err(f"live: {message}")
        raise SystemExit(2)


def live_parser() -> argparse.ArgumentParser:
    from ..cli import threshold_arg

    p = _Parser(prog=PROG, description="Transcribe live from the default audio input (or a recording played "
                                       "through the same path) to MIDI as you play: each note to a MIDI port and the "
                                       "terminal when it is decided, the whole take to a MIDI file on stop (Ctrl-C).")
    src = p.add_argument_group("input")
    src.add_argument("--device", default=None, help="input device: number or (part of its) name (default: the "
                                                    "system's default input; --list-devices lists them)")
    src.add_argument("--rate", type=positive_int, default=None, metavar="HZ",
                     help="capture rate (default: the device's own; any rate is resampled to 16 kHz)")
    src.add_argument("--channels", type=positive_int, default=1, help="channels to capture, mixed to mono "
                                                                      "(default 1)")
    src.add_argument("--block", type=positive_int, default=BLOCK_FRAMES, metavar="FRAMES",
                     help=f"frames per audio block asked of the device (default {BLOCK_FRAMES})")
    src.add_argument("--input", default=None, metavar="FILE",
                     help="a recording fed through the live path instead of a device (as fast as possible)")
    src.add_argument("--realtime", action="store_true", help="feed --input at real-time pace, as a device would")
    src.add_argument("--seconds", type=_seconds, default=None, metavar="S", help="stop after S seconds of audio")
    src.add_argument("--list-devices", action="store_true", help="list the audio input devices and exit")
    mod = p.add_argument_group("model")
    mod.add_argument("--model", default=None, help="model file, .keras or .tflite (default: the shipped model for "
                                                   "the mode)")
    mod.add_argument("--mode", choices=MODES, default="lookahead",
                     help="lookahead: the shipped model in overlapping windows (about 0.5-0.8 s behind the playing); "
                          "causal: the low-latency model (about 0.1-0.2 s); default %(default)s")
    mod.add_argument("--window", type=positive_int, default=None, metavar="FRAMES",
                     help=f"lookahead mode: frames of 32 ms per model window (default {WINDOW_FRAMES}; a TFLite "
                          "model's own)")
    mod.add_argument("--hop", type=positive_int, default=HOP_FRAMES, metavar="FRAMES",
                     help=f"lookahead mode: frames committed per window (default {HOP_FRAMES})")
    mod.add_argument("--lookahead", type=int, default=LOOKAHEAD_FRAMES, metavar="FRAMES",
                     help=f"lookahead mode: frames of right context before a frame is committed (default "
                          f"{LOOKAHEAD_FRAMES})")
    mod.add_argument("--onset-threshold", type=threshold_arg, default=None, help="0..1 (default: the model's own)")
    mod.add_argument("--frame-threshold", type=threshold_arg, default=None, help="0..1 (default: the model's own)")
    out = p.add_argument_group("output")
    out.add_argument("--midi-port", default=None, metavar="NAME",
                     help="send the notes to this MIDI output port (--list-ports lists them)")
    out.add_argument("--virtual-port", nargs="?", const=VIRTUAL_PORT_NAME, default=None, metavar="NAME",
                     help="create a virtual MIDI output port (default name %(const)s) where the system has them")
    out.add_argument("--list-ports", action="store_true", help="list the MIDI output ports and exit")
    out.add_argument("-o", "--output", default=None, metavar="TAKE.mid", help="write the whole take as MIDI on stop")
    out.add_argument("--record", default=None, metavar="TAKE.wav", help="write the captured audio as WAV")
    out.add_argument("--overwrite", action="store_true", help="replace existing output files")
    out.add_argument("-q", "--quiet", action="store_true", help="no note list on the terminal")
    return p


def list_devices(backend=None) -> int:
    from .sources import describe_devices, import_sounddevice, input_devices

    devices = input_devices(backend if backend is not None else import_sounddevice())
    print(describe_devices(devices).replace("; ", "\n") if devices else "no audio input devices")
    return 0


def list_ports() -> int:
    from .sinks import import_mido_rtmidi, output_port_names

    names = output_port_names(import_mido_rtmidi())
    print("\n".join(names) if names else "no MIDI output ports")
    return 0


def check_args(a) -> None:
    """Usage errors before anything is opened: :class:`LiveError`."""
    if a.midi_port and a.virtual_port:
        raise LiveError("give either --midi-port or --virtual-port, not both")
    if a.realtime and not a.input:
        raise LiveError("--realtime paces --input FILE; a device is real time already")
    if a.input and (a.device is not None or a.rate):
        raise LiveError("--device and --rate choose a device; --input FILE reads a recording instead")
    if a.mode == "causal" and (a.window is not None or a.hop != HOP_FRAMES or a.lookahead != LOOKAHEAD_FRAMES):
        raise LiveError("--window, --hop and --lookahead belong to --mode lookahead")
    if a.lookahead < 0:
        raise LiveError(f"--lookahead must be 0 or more frames, got {a.lookahead}")
    outputs = [Path(p) for p in (a.output, a.record) if p]
    if len(outputs) == 2 and outputs[0].resolve() == outputs[1].resolve():
        raise LiveError("-o and --record name the same file")
    for path in outputs:
        if path.exists() and not a.overwrite:
            raise LiveError(f"{path} exists (use --overwrite to replace it)")
        if path.is_dir():
            raise LiveError(f"{path} is a folder")
    if a.input and a.record and Path(a.input).resolve() == Path(a.record).resolve():
        raise LiveError("--record would overwrite the --input recording")


def run_live(argv=None, audio_backend=None, midi_port=None, stdout=None) -> int:
    """Run ``piano-transcribe live`` (``argv`` without the subcommand); returns the exit status.  ``audio_backend``
    replaces the sounddevice module (see :class:`~piano_transcription.live.sources.DeviceSource`) and ``midi_port``
    (anything with ``send``) the MIDI port opened by name: tests without a microphone or a MIDI subsystem."""
    try:
        a = live_parser().parse_args(argv)
    except SystemExit as exc:  # a usage error (already reported in one line) or --help
        return int(exc.code or 0)
    try:
        if a.list_devices:
            return list_devices(audio_backend)
        if a.list_ports:
            return list_ports()
        check_args(a)
        return _take(a, audio_backend, midi_port, stdout)
    except (LiveError, ValueError, OSError, ImportError) as exc:
        _err(str(exc) or type(exc).__name__)
        return 2


def _take(a, audio_backend, midi_port, stdout) -> int:
    from .session import run_take
    from .sinks import MidiPortSink, TerminalSink, WavRecorder, open_midi_port, write_take_midi
    from .sources import DeviceSource, FileSource
    from .transcriber import LiveTranscriber

    stop = threading.Event()
    sinks = []
    if midi_port is not None:
        sinks.append(MidiPortSink(midi_port, close_port=False))
    elif a.midi_port or a.virtual_port:  # opened first: a refused port costs no model loading
        sinks.append(MidiPortSink(open_midi_port(a.midi_port, a.virtual_port)))
    if a.input:
        source = FileSource(a.input, realtime=a.realtime, stop=stop)
    else:
        source = DeviceSource(a.device, a.rate, a.channels, a.block, backend=audio_backend, stop=stop)
    transcriber = LiveTranscriber(a.model, source.sample_rate, a.mode, a.window, a.hop, a.lookahead,
                                  onset_threshold=a.onset_threshold, frame_threshold=a.frame_threshold)
    if not a.input or a.realtime:  # trace the model once before the audio starts, so that the first notes are not late
        warm_up(transcriber)
    if not a.quiet:
        sinks.append(TerminalSink(stdout))
    recorder = WavRecorder(a.record, source.sample_rate, source.channels) if a.record else None
    print(f"{PROG}: {source.name} at {source.sample_rate} Hz, {a.mode} mode ({transcriber.predictor.path.name}); "
          f"{'Ctrl-C to stop' if not a.input or a.realtime else 'as fast as possible'}",
          file=sys.stderr, flush=True)
    previous = _on_interrupt(stop)
    try:
        result = run_take(source, transcriber, sinks, recorder, warn=lambda m: _err(f"warning: {m}"),
                          max_seconds=a.seconds)
    except BaseException:
        if recorder is not None:
            recorder.abort()
        raise
    finally:
        _restore(previous)
    if recorder is not None:
        recorder.close()
        print(f"wrote {a.record} ({result.seconds:.1f} s)", file=sys.stderr)
    if a.output:
        write_take_midi(a.output, result.notes, Path(a.input).name if a.input else source.name)
        print(f"wrote {a.output} ({len(result.notes)} notes)", file=sys.stderr)
    return 0


def warm_up(transcriber) -> None:
    """Run a second of silence through a transcriber that shares ``transcriber``'s model (its traced functions and
    interpreter), leaving ``transcriber`` itself untouched."""
    import numpy as np

    from .transcriber import LiveTranscriber

    frames = transcriber.frames
    twin = LiveTranscriber(transcriber.predictor, 16000, transcriber.mode, getattr(frames, "window", None),
                           getattr(frames, "hop", HOP_FRAMES), getattr(frames, "lookahead", LOOKAHEAD_FRAMES),
                           block=getattr(frames, "block", None))
    twin.push(np.zeros(16000, np.float32))
    twin.finish()


def _on_interrupt(stop: threading.Event):
    """Ctrl-C sets ``stop`` (the take ends after the current block and is written whole); a second one interrupts."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    return signal.signal(signal.SIGINT, handler)


def _restore(previous) -> None:
    if previous is not None:
        signal.signal(signal.SIGINT, previous)
