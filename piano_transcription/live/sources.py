"""Where live audio comes from: an input device (python-sounddevice / PortAudio) or a file played through the
same path, at real-time pace or as fast as possible.

A source is an iterable of audio blocks ``[frames, channels]`` float32 at its ``sample_rate``; iteration ends when
the source runs out or its ``stop`` event is set (Ctrl-C), after which :meth:`drain` gives the blocks captured but
not yet taken, so that nothing played is lost.  Audio that had to be dropped because the consumer fell behind (a
CPU that cannot keep up) is counted (``dropped_blocks``, ``dropped_samples``) and replaced by as many zeros, so that
the sample clock stays the device's.  sounddevice is imported only here, when a device is used.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Iterator

import numpy as np

BLOCK_FRAMES = 512  # frames per block asked of an input device (32 ms at 16 kHz, 11.6 ms at 44.1 kHz)
FILE_BLOCK_SECONDS = 0.032  # a file is delivered in blocks of this length
MAX_BACKLOG_SECONDS = 10.0  # audio captured but not yet processed beyond this is dropped (and counted)


class LiveError(RuntimeError):
    """A live set-up that cannot work (no device, an unknown device or port, no MIDI subsystem): one line."""


def import_sounddevice():
    """The sounddevice module, or :class:`LiveError` in one line (not installed, or no PortAudio library)."""
    try:
        import sounddevice
    except ImportError:
        raise LiveError("live input needs python-sounddevice: pip install 'piano-transcription[live]' "
                        "(or transcribe a recording with --input FILE)") from None
    except OSError as exc:  # sounddevice raises OSError when the PortAudio library is missing
        raise LiveError(f"no audio subsystem: {exc} (install PortAudio, e.g. apt-get install libportaudio2, "
                        "or transcribe a recording with --input FILE)") from None
    return sounddevice


def input_devices(sd) -> list[tuple[int, dict]]:
    """``(index, device info)`` of every device with an input channel."""
    try:
        devices = sd.query_devices()
    except Exception as exc:  # noqa: BLE001 - PortAudio errors
        raise LiveError(f"cannot list the audio devices: {exc}") from None
    return [(i, dict(d)) for i, d in enumerate(devices) if int(d.get("max_input_channels", 0)) > 0]


def describe_devices(devices: list[tuple[int, dict]]) -> str:
    """One line naming each input device: ``0 'USB Audio' (2 ch, 48000 Hz); ...``."""
    return "; ".join(f"{i} {d['name']!r} ({d['max_input_channels']} ch, {d['default_samplerate']:.0f} Hz)"
                     for i, d in devices)


def find_input_device(sd, device: str | int | None = None) -> tuple[int, dict]:
    """The input device ``device`` names: None (the default input), an index, or a (unique part of a) name,
    case-insensitive.  :class:`LiveError` in one line, listing the input devices, when none matches."""
    devices = input_devices(sd)
    if not devices:
        raise LiveError("no audio input device found (PortAudio lists none); connect one, or transcribe a "
                        "recording with --input FILE")
    by_index = dict(devices)
    if device is None or device == "":
        default = sd.default.device
        default = default[0] if isinstance(default, (list, tuple)) or hasattr(default, "__getitem__") else default
        default = int(default) if default is not None else -1
        return (default, by_index[default]) if default in by_index else devices[0]
    text = str(device).strip()
    if text.lstrip("-").isdigit():
        if int(text) in by_index:
            return int(text), by_index[int(text)]
        raise LiveError(f"no input device number {text}; input devices: {describe_devices(devices)}")
    exact = [(i, d) for i, d in devices if d["name"].lower() == text.lower()]
    partial = [(i, d) for i, d in devices if text.lower() in d["name"].lower()]
    match = exact or partial
    if len(match) == 1:
        return match[0]
    what = "several input devices match" if match else "unknown input device"
    raise LiveError(f"{what} {text!r}; input devices: {describe_devices(match or devices)}")


class _Source:
    """What both sources share: iterating starts :meth:`_blocks`; :meth:`close` stops it and the capture."""

    stop: threading.Event
    _iter: Iterator | None = None

    def _blocks(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[np.ndarray]:
        self._iter = self._blocks()
        return self._iter

    def close(self) -> None:
        """Stop capturing (what a device captured stays for ``drain``)."""
        self.stop.set()
        if self._iter is not None:
            self._iter.close()


class DeviceSource(_Source):
    """Blocks from an audio input device.  ``device``: see :func:`find_input_device`; ``sample_rate``: the
    device's default unless given (any rate: the transcriber resamples).  ``backend``: the sounddevice module
    unless given -- anything with its ``query_devices()``, ``default.device`` and ``InputStream`` (tests pass a
    stand-in whose stream plays a recording).  PortAudio's callback only queues a copy of each block; a queue
    longer than ``max_backlog`` seconds drops the new blocks (counted, replaced by zeros on the way out)."""

    def __init__(self, device: str | int | None = None, sample_rate: int | None = None, channels: int = 1,
                 block_frames: int = BLOCK_FRAMES, max_backlog: float = MAX_BACKLOG_SECONDS, backend=None,
                 stop: threading.Event | None = None):
        sd = backend if backend is not None else import_sounddevice()
        self.device, info = find_input_device(sd, device)
        self.name = str(info["name"])
        self.sample_rate = int(sample_rate or round(float(info["default_samplerate"])))
        self.channels = max(1, min(int(channels), int(info["max_input_channels"])))
        self.block_frames = int(block_frames)
        self.stream_class = sd.InputStream
        self.stop = stop or threading.Event()
        self.queue: queue.Queue = queue.Queue(maxsize=max(2, int(max_backlog * self.sample_rate / self.block_frames)))
        self.dropped_blocks = self.dropped_samples = self.overflows = 0
        self._gap = 0  # samples dropped since the last block that got into the queue
        self.ended: str | None = None  # why the device ended the take, if it did
        self._lock = threading.Lock()
        self._stream = None

    def _callback(self, indata, frames, time_info, status) -> None:
        """PortAudio's thread: queue a copy of the block (or count it dropped)."""
        if status and getattr(status, "input_overflow", False):
            self.overflows += 1  # PortAudio itself lost input before this block
        with self._lock:
            try:
                self.queue.put_nowait((self._gap, np.array(indata, dtype=np.float32, copy=True)))
                self._gap = 0
            except queue.Full:
                self._gap += int(frames)
                self.dropped_blocks += 1
                self.dropped_samples += int(frames)

    def _open(self):
        try:
            stream = self.stream_class(device=self.device, channels=self.channels, samplerate=self.sample_rate,
                                       blocksize=self.block_frames, dtype="float32", callback=self._callback)
        except Exception as exc:  # noqa: BLE001 - PortAudio refuses a rate or a channel count with its own types
            raise LiveError(f"cannot open input device {self.device} {self.name!r} at {self.sample_rate} Hz, "
                            f"{self.channels} ch: {exc}") from None
        return stream

    def _items(self) -> Iterator[tuple[int, np.ndarray]]:
        while True:
            try:
                yield self.queue.get_nowait()
            except queue.Empty:
                return

    @staticmethod
    def _out(gap: int, block: np.ndarray, channels: int) -> Iterator[np.ndarray]:
        if gap:
            yield np.zeros((gap, channels), np.float32)
        yield block

    def _blocks(self) -> Iterator[np.ndarray]:
        self._stream = self._open()
        with self._stream:
            while not self.stop.is_set():
                try:
                    gap, block = self.queue.get(timeout=0.05)
                except queue.Empty:
                    if not getattr(self._stream, "active", True):  # PortAudio stopped: the device went away
                        self.ended = "the input device stopped delivering audio (unplugged?); the take ends here"
                        return
                    continue
                yield from self._out(gap, block, self.channels)

    def drain(self) -> Iterator[np.ndarray]:
        """The blocks captured but not yet taken (after :meth:`close`), and the zeros of a trailing gap."""
        for gap, block in self._items():
            yield from self._out(gap, block, self.channels)
        with self._lock:
            gap, self._gap = self._gap, 0
        if gap:
            yield np.zeros((gap, self.channels), np.float32)


class FileSource(_Source):
    """A recording as a device would deliver it: blocks of ``block_seconds`` at the file's own rate and channels,
    as fast as possible, or at real-time pace (``realtime``: each block when its last sample has been "played",
    on the wall clock; blocks more than ``max_backlog`` seconds late are dropped and counted, as a device drops
    them)."""

    def __init__(self, path: str | os.PathLike, realtime: bool = False, block_seconds: float = FILE_BLOCK_SECONDS,
                 max_backlog: float = MAX_BACKLOG_SECONDS, stop: threading.Event | None = None,
                 clock=time.monotonic, sleep=time.sleep):
        from ..audio import AudioError, audio_file_info

        path = os.fspath(path)
        try:
            info = audio_file_info(path)[1]  # the offline path's checks and reasons
        except AudioError as exc:
            raise LiveError(str(exc)) from None
        if info.frames == 0:
            raise LiveError(f"{path}: the audio is empty (0 samples)")
        self.path = self.name = path
        self.sample_rate, self.channels = int(info.samplerate), int(info.channels)
        self.block_frames = max(1, int(round(block_seconds * self.sample_rate)))
        self.realtime, self.max_backlog = realtime, max_backlog
        self.stop = stop or threading.Event()
        self.clock, self.sleep = clock, sleep
        self.dropped_blocks = self.dropped_samples = self.overflows = 0

    def _blocks(self) -> Iterator[np.ndarray]:
        import soundfile as sf

        start, played = self.clock(), 0
        with sf.SoundFile(str(self.path)) as f:
            for block in f.blocks(blocksize=self.block_frames, dtype="float32", always_2d=True):
                if self.stop.is_set():
                    return
                played += len(block)
                if self.realtime:
                    due = start + played / self.sample_rate
                    wait = due - self.clock()
                    if wait > 0:
                        self.sleep(wait)
                    elif -wait > self.max_backlog:  # the consumer is this far behind: the block is lost
                        self.dropped_blocks += 1
                        self.dropped_samples += len(block)
                        block = np.zeros_like(block)
                yield block

    def drain(self) -> Iterator[np.ndarray]:
        """Nothing: a file's blocks are read when taken."""
        return iter(())
