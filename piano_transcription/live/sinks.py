"""Where live note events go: a MIDI output port (mido + python-rtmidi), the terminal, and at the end of a take
its MIDI file (the offline path's tempo map and key: :func:`~piano_transcription.transcribe.notes_to_midi`) and the
captured audio as WAV.  Files are written atomically (:func:`~piano_transcription.io.atomic_path`); mido is
imported only when a port is opened.

A sink has ``send(events)`` (called with each batch of :class:`~piano_transcription.live.transcriber.NoteEvent` s
as soon as they are decided) and ``close()``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import numpy as np

from .sources import LiveError
from .transcriber import NoteEvent

MIDI_CHANNEL = 0
VIRTUAL_PORT_NAME = "piano-transcribe"
RTMIDI_BACKEND = "mido.backends.rtmidi"
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def note_name(pitch: int) -> str:
    """``60`` -> ``"C4"`` (scientific pitch notation)."""
    return f"{NOTE_NAMES[int(pitch) % 12]}{int(pitch) // 12 - 1}"


def event_message(event: NoteEvent):
    """The mido message of an event: ``note_on`` with the note's velocity, or ``note_off`` (velocity 0)."""
    import mido

    if event.kind == "on":
        return mido.Message("note_on", note=event.pitch, velocity=max(1, min(127, event.velocity)), channel=MIDI_CHANNEL)
    return mido.Message("note_off", note=event.pitch, velocity=0, channel=MIDI_CHANNEL)


def import_mido_rtmidi():
    """mido with its rtmidi backend, or :class:`LiveError` in one line (not installed, or no MIDI subsystem)."""
    try:
        import mido
        import rtmidi  # noqa: F401 - python-rtmidi, mido's port backend
    except ImportError:
        raise LiveError("MIDI ports need mido and python-rtmidi: pip install 'piano-transcription[live]' "
                        "(the take's MIDI file (-o) and the terminal work without them)") from None
    if mido.backend.name != RTMIDI_BACKEND:  # mido's default; MIDO_BACKEND may name another
        mido.set_backend(RTMIDI_BACKEND)
    return mido


@contextlib.contextmanager
def alsa_quiet():
    """File descriptor 2 sent to /dev/null for the duration: ALSA's C library prints its own lines (``ALSA lib
    seq_hw.c:...``) when it has no sequencer, which would break the one-line error."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            sys.stderr.flush()
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def output_port_names(mido) -> list[str]:
    """The MIDI output ports, or :class:`LiveError` when the system has no MIDI subsystem (e.g. no ALSA sequencer)."""
    try:
        with alsa_quiet():
            return list(mido.get_output_names())
    except Exception as exc:  # noqa: BLE001 - rtmidi raises its own SystemError types
        raise LiveError(f"no MIDI subsystem ({exc}); --midi-port and --virtual-port need one (-o take.mid and the "
                        "terminal still work)") from None


def open_midi_port(name: str | None = None, virtual: str | None = None):
    """An open mido output port: the existing port named ``name`` (exact, else a unique part of the name), or a
    new virtual port called ``virtual`` (ALSA / CoreMIDI; not on Windows).  :class:`LiveError` in one line otherwise,
    naming the ports there are."""
    mido = import_mido_rtmidi()
    names = output_port_names(mido)
    if virtual is not None:
        try:
            with alsa_quiet():
                return mido.open_output(virtual, virtual=True)
        except Exception as exc:  # noqa: BLE001
            raise LiveError(f"cannot create the virtual MIDI port {virtual!r} ({exc}); this system may have no "
                            "virtual ports: use --midi-port NAME") from None
    match = [n for n in names if n == name] or [n for n in names if name.lower() in n.lower()]
    if len(match) != 1:
        what = "several MIDI output ports match" if match else "unknown MIDI output port"
        listed = "; ".join(repr(n) for n in (match or names)) or "none"
        raise LiveError(f"{what} {name!r}; MIDI output ports: {listed}")
    try:
        with alsa_quiet():
            return mido.open_output(match[0])
    except Exception as exc:  # noqa: BLE001
        raise LiveError(f"cannot open the MIDI output port {match[0]!r}: {exc}") from None


class MidiPortSink:
    """Sends every event to a MIDI output port as it is decided: anything with ``send(message)`` (a mido port, or
    an in-memory stand-in).  ``close`` silences what is still sounding and closes the port if it has ``close``."""

    def __init__(self, port, close_port: bool = True):
        self.port, self.close_port = port, close_port
        self.sounding: set[int] = set()
        self.sent = 0

    def send(self, events: list[NoteEvent]) -> None:
        for ev in events:
            self.port.send(event_message(ev))
            self.sent += 1
            (self.sounding.add if ev.kind == "on" else self.sounding.discard)(ev.pitch)

    def close(self) -> None:
        for pitch in sorted(self.sounding):  # the transcriber closes every note; this covers an aborted take
            self.send([NoteEvent("off", 0.0, pitch, 0, 0.0)])
        if self.close_port and hasattr(self.port, "close"):
            self.port.close()


class TerminalSink:
    """A scrolling note list: one line per note-on (audio time, note, velocity, and how long after the onset it
    was decided), and the note count at the end."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.notes = 0

    def send(self, events: list[NoteEvent]) -> None:
        for ev in events:
            if ev.kind == "on":
                self.notes += 1
                print(f"{ev.time:9.2f} s  {note_name(ev.pitch):>4} ({ev.pitch:3d})  vel {ev.velocity:3d}  "
                      f"decided {ev.decided_at - ev.time:+.2f} s", file=self.stream, flush=True)

    def close(self) -> None:
        print(f"{self.notes} notes", file=self.stream, flush=True)


def write_take_midi(path: str | os.PathLike, notes: np.ndarray, source: str | None = None) -> Path:
    """The whole take's notes ``[n, 4]`` as a MIDI file, with the offline path's tempo map and key, atomically."""
    from ..midi import write_midi
    from ..transcribe import notes_to_midi

    write_midi(notes_to_midi(notes, source), path)
    return Path(path)


class WavRecorder:
    """The captured audio, as it arrives, into ``path`` (WAV, 24-bit, the input's rate and channels): written to
    a temporary file beside it and renamed by :meth:`close`, so that the file appears whole or not at all."""

    def __init__(self, path: str | os.PathLike, sample_rate: int, channels: int):
        import soundfile as sf

        from ..io import atomic_path

        self.path = Path(path)
        self._stack = contextlib.ExitStack()
        tmp = self._stack.enter_context(atomic_path(self.path))
        self._file = self._stack.enter_context(sf.SoundFile(str(tmp), "w", samplerate=int(sample_rate),
                                                            channels=int(channels), subtype="PCM_24", format="WAV"))
        self.frames = 0

    def write(self, block: np.ndarray) -> None:
        self._file.write(np.clip(np.asarray(block, np.float32), -1.0, 1.0))
        self.frames += len(block)

    def close(self) -> None:
        """Finish the file (renamed into place)."""
        self._stack.close()

    def abort(self) -> None:
        """Drop the file (nothing is renamed into place)."""
        self._stack.__exit__(RuntimeError, RuntimeError("aborted"), None)
