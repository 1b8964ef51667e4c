"""Live transcription: audio blocks in, note-on / note-off events out, stamped on the audio's own sample clock.

:class:`LiveTranscriber` takes blocks of any size, sample rate and channel count (mixed to mono, resampled to
16 kHz as a stream with soxr, scaled by the running peak as the offline path scales by the whole recording's
peak) and returns the :class:`NoteEvent` s that each block let it decide.  Every time is read off the audio's own
sample clock -- the note's start or end (frame / 31.25 s) and the moment it was decided (the audio time at which the
deciding block ended) -- never the wall clock, so that a file fed as fast as possible and a microphone give the
same events.  The same onset-gated decoder as the offline path
(:class:`~piano_transcription.decode.StreamingDecoder`) turns the committed probability frames into notes: a note-on
at each onset, a note-off where the frame / offset heads end the note, a re-struck key's note-off before its new
note-on, every sounding note closed by :meth:`LiveTranscriber.finish`.

Two ways of turning the stream into probability frames (``mode``):

* ``"lookahead"`` (:class:`LookaheadFrames`), with the shipped bidirectional model: overlapping windows of
  ``window`` frames, each ending ``lookahead`` frames after the ``hop`` frames it commits, the rest of the window
  left context.  A frame is committed once, from the window in which it has ``lookahead`` frames of right
  context; a note is decided ``lookahead`` to ``lookahead + hop`` frames after it begins, plus the 64 ms (1024
  samples) that the frame's own analysis window reaches ahead.
* ``"causal"`` (:class:`~piano_transcription.live.causal.CausalFrames`): a model whose recurrent layers look
  only backwards, run frame block by frame block with its recurrent state carried over.

Frames sit on the offline grid (frame ``i`` centred at sample ``512 i``, zeros before the start and after the end),
so the events of a whole take can be scored against the offline transcription of the same audio.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from ..constants import FRAMES_PER_SECOND, HOP_LENGTH, N_FFT, SAMPLE_RATE, frames_for_samples
from ..decode import StreamingDecoder

# Lookahead mode's defaults (frames of 32 ms), measured with benchmarks/live_latency.py: see the README.
WINDOW_FRAMES = 96  # 3.07 s per model window (the shipped live TFLite export's window)
HOP_FRAMES = 8  # 256 ms committed per window
LOOKAHEAD_FRAMES = 8  # 256 ms of right context for every committed frame
PEAK_FLOOR = 1e-3  # the running peak's lowest value (-60 dBFS): silence before the first note is not raised further
HALF_WINDOW = N_FFT // 2  # samples a frame's analysis window reaches beyond its centre (1024: 64 ms)
MODES = ("lookahead", "causal")


@dataclass(frozen=True)
class NoteEvent:
    """A note-on (``kind == "on"``) or note-off (``"off"``): ``time`` the note's start or end (s on the audio
    clock), ``pitch`` (MIDI), ``velocity`` (MIDI, the note's; also on its note-off), ``decided_at`` the audio time
    (s) at which the block that let it be decided ended."""

    kind: str
    time: float
    pitch: int
    velocity: int
    decided_at: float


def ready_frames(n_samples: int) -> int:
    """Frames whose analysis window lies inside the first ``n_samples`` samples of 16 kHz audio (frame ``f`` reads
    samples up to ``512 f + 1024``)."""
    return max(0, (n_samples - HALF_WINDOW) // HOP_LENGTH + 1)


def window_sample_range(end_frame: int, window: int) -> tuple[int, int]:
    """Samples ``[a, b)`` (absolute, may start below 0) of the window of ``window`` frames ending before frame
    ``end_frame``: its frame ``j`` is centred at sample ``512 (end_frame - window + j)``."""
    return (end_frame - window) * HOP_LENGTH - HALF_WINDOW, (end_frame - 1) * HOP_LENGTH + HALF_WINDOW


def notes_to_events(ended: np.ndarray, begun: np.ndarray, decided_at: float) -> list[NoteEvent]:
    """Events of the notes ``ended`` ``[n, 4]`` (start s, end s, pitch, velocity) and ``begun`` ``[k, 3]`` (start s,
    pitch, velocity) in one step of the decoder, in time order, a note-off before a note-on at the same time (a
    re-struck key ends its note first)."""
    events = [NoteEvent("off", float(e), int(p), int(v), decided_at) for _, e, p, v in ended]
    events += [NoteEvent("on", float(s), int(p), int(v), decided_at) for s, p, v in begun]
    return sorted(events, key=lambda ev: (ev.time, ev.kind != "off", ev.pitch))


def events_to_notes(events: Iterable[NoteEvent]) -> np.ndarray:
    """Notes ``[n, 4]`` (start s, end s, pitch, velocity) of a stream of events (each on closed by its off; notes
    still open are left out), sorted by start and pitch."""
    open_at: dict[int, NoteEvent] = {}
    rows = []
    for ev in events:
        if ev.kind == "on":
            open_at[ev.pitch] = ev
        elif ev.pitch in open_at:
            on = open_at.pop(ev.pitch)
            rows.append((on.time, ev.time, ev.pitch, on.velocity))
    out = np.asarray(rows, dtype=np.float64).reshape(-1, 4)
    return out[np.lexsort((out[:, 2], out[:, 0]))] if len(out) else out


def check_gain(gain):
    """``"peak"`` or a positive finite number, else ValueError."""
    if isinstance(gain, str) and gain == "peak":
        return gain
    if isinstance(gain, str) or not (np.isfinite(float(gain)) and float(gain) > 0):
        raise ValueError(f"gain must be 'peak' or a positive number, got {gain!r}")
    return float(gain)


class SampleBuffer:
    """The recent 16 kHz samples of a stream, addressed by absolute sample index; zeros before 0 and after the last
    sample received.  :meth:`scaled` reads them scaled by ``gain``: a fixed factor, or with ``"peak"`` by
    ``1 / peak`` of every sample up to the end of what is read (so the result depends on the audio alone, not on
    how it was cut into blocks)."""

    def __init__(self, gain="peak"):
        self.parts: list[np.ndarray] = []
        self.start = 0  # absolute index of the first sample kept
        self.n = 0  # samples received so far
        self.gain_mode = check_gain(gain)
        self.peak, self.peak_to = 0.0, 0  # the peak of the samples [0, peak_to)

    def append(self, samples: np.ndarray) -> None:
        if len(samples):
            self.parts.append(np.asarray(samples, np.float32))
            self.n += len(samples)

    def read(self, a: int, b: int) -> np.ndarray:
        """Samples ``[a, b)`` (zeros outside what was received; ``a`` not before what :meth:`drop_before` kept)."""
        if a < self.start and self.start > 0:
            raise ValueError(f"samples from {a} on were dropped (kept from {self.start})")
        if len(self.parts) > 1:
            self.parts = [np.concatenate(self.parts)]
        have = self.parts[0] if self.parts else np.zeros(0, np.float32)
        out = np.zeros(b - a, np.float32)
        lo, hi = max(a, self.start), min(b, self.start + len(have))
        if hi > lo:
            out[lo - a: hi - a] = have[lo - self.start: hi - self.start]
        return out

    def gain_to(self, b: int) -> float:
        """The factor for samples read up to index ``b``: ``1 / max(peak of [0, b), PEAK_FLOOR)`` or the fixed gain."""
        if self.gain_mode != "peak":
            return self.gain_mode
        b = min(b, self.n)
        if b > self.peak_to:
            self.peak = max(self.peak, float(np.max(np.abs(self.read(self.peak_to, b)))))
            self.peak_to = b
        return 1.0 / max(self.peak, PEAK_FLOOR)

    def scaled(self, a: int, b: int) -> np.ndarray:
        """Samples ``[a, b)`` (see :meth:`read`) times :meth:`gain_to` ``(b)``."""
        gain = self.gain_to(b)
        return self.read(a, b) * np.float32(gain)

    def drop_before(self, index: int) -> None:
        """Forget the samples before absolute index ``index`` (not beyond what the running peak has seen)."""
        index = min(index, self.peak_to) if self.gain_mode == "peak" else index
        if index <= self.start or not self.parts:
            return
        have = np.concatenate(self.parts)
        cut = min(index - self.start, len(have))
        self.parts, self.start = [have[cut:]], self.start + cut


class LookaheadFrames:
    """Probability frames of a bidirectional model from a 16 kHz stream, in overlapping windows (see the module
    docstring): :meth:`feed` returns the chunks ``{name: [frames, ...]}`` committed by the new samples, in order;
    :meth:`finish` the rest, the end padded with zeros as the offline path pads it.  ``predictor``: a
    :class:`~piano_transcription.predictor.Predictor`; a TFLite model's window is the file's own."""

    def __init__(self, predictor, window: int | None = None, hop: int = HOP_FRAMES, lookahead: int = LOOKAHEAD_FRAMES,
                 gain="peak"):
        fixed = predictor.fixed_window
        window = (fixed or WINDOW_FRAMES) if window is None else int(window)
        if fixed is not None and window != fixed:
            raise ValueError(f"{predictor.path}: this TFLite model reads windows of {fixed} frames, not {window} "
                             f"(export one with: piano-transcribe export-tflite MODEL.keras --frames {window})")
        if hop < 1 or lookahead < 0 or hop + lookahead > window:
            raise ValueError(f"window {window}, hop {hop} and lookahead {lookahead} frames: need hop >= 1, "
                             "lookahead >= 0 and hop + lookahead <= window")
        self.predictor, self.window, self.hop, self.lookahead = predictor, window, hop, lookahead
        self.buffer = SampleBuffer(gain)
        self.committed = 0  # frames committed so far
        self.windows = 0  # model windows run

    @property
    def n_samples(self) -> int:
        """16 kHz samples received so far."""
        return self.buffer.n

    @property
    def delay_frames(self) -> int:
        """Frames a note's decision waits at most after its onset frame (hop + lookahead, less the frame itself)."""
        return self.hop + self.lookahead - 1

    def _run(self, end: int, commit_to: int) -> dict[str, np.ndarray]:
        rolls = self.predictor.predict_window(self.buffer.scaled(*window_sample_range(end, self.window)))
        self.windows += 1
        first = self.committed - (end - self.window)
        chunk = {k: np.asarray(v[first: first + commit_to - self.committed], np.float32) for k, v in rolls.items()}
        self.committed = commit_to
        self.buffer.drop_before(window_sample_range(self.committed + 1, self.window)[0])  # the earliest next window
        return chunk

    def feed(self, samples: np.ndarray) -> list[dict[str, np.ndarray]]:
        """Take the next 16 kHz samples; return the chunks committed thanks to them."""
        self.buffer.append(samples)
        chunks = []
        while ready_frames(self.buffer.n) >= self.committed + self.hop + self.lookahead:
            end = self.committed + self.hop + self.lookahead
            chunks.append(self._run(end, self.committed + self.hop))
        return chunks

    def finish(self) -> list[dict[str, np.ndarray]]:
        """The chunks of every frame not yet committed (``frames_for_samples`` of the whole stream in all)."""
        total = frames_for_samples(self.buffer.n)
        chunks = []
        while self.committed < total:
            commit_to = min(self.committed + self.hop, total)
            chunks.append(self._run(min(commit_to + self.lookahead, total), commit_to))
        return chunks


def default_live_model():
    """The lookahead mode's shipped model: the Keras model on a full install, else its live-window TFLite export."""
    from ..assets import DEFAULT_LIVE_TFLITE, DEFAULT_MODEL
    from ..predictor import tensorflow_available

    return DEFAULT_MODEL if tensorflow_available() else DEFAULT_LIVE_TFLITE


class LiveTranscriber:
    """Audio blocks in, :class:`NoteEvent` s out (see the module docstring).

    ``predictor``: a :class:`~piano_transcription.predictor.Predictor` or what
    :func:`~piano_transcription.predictor.load_predictor` takes (None: :func:`default_live_model`; for
    ``mode="causal"`` a causal model, by default the shipped one: see :mod:`piano_transcription.live.causal`).  ``sample_rate`` (Hz) of the blocks given to :meth:`push`: ``[n]`` or
    ``[n, channels]`` arrays of floats in -1..1 (integers are scaled by their type's range).  ``gain``: ``"peak"``
    (default) scales the audio by its running peak (the peak up to the end of each model window), as the offline path scales a recording by its peak; a number
    scales it by that factor.  ``window``, ``hop``, ``lookahead``: frames (lookahead mode; ``block`` for the causal
    mode's frame blocks).  Thresholds default to the model's own."""

    def __init__(self, predictor=None, sample_rate: int = SAMPLE_RATE, mode: str = "lookahead",
                 window: int | None = None, hop: int = HOP_FRAMES, lookahead: int = LOOKAHEAD_FRAMES,
                 block: int | None = None, gain="peak", onset_threshold=None, frame_threshold=None,
                 offset_threshold=None):
        from ..predictor import load_predictor

        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if not (isinstance(sample_rate, (int, np.integer)) or float(sample_rate).is_integer()) or sample_rate <= 0:
            raise ValueError(f"sample rate must be a positive whole number of Hz, got {sample_rate!r}")
        gain = check_gain(gain)
        if mode == "causal":
            from .causal import CausalFrames, load_causal

            self.predictor = load_causal(predictor)
            self.frames = CausalFrames(self.predictor, block, gain)
        else:
            self.predictor = load_predictor(default_live_model() if predictor is None else predictor)
            self.frames = LookaheadFrames(self.predictor, window, hop, lookahead, gain)
        self.mode, self.sample_rate = mode, int(sample_rate)
        onset_t, frame_t = self.predictor.resolve(onset_threshold, frame_threshold)
        self.decoder = StreamingDecoder(onset_t, frame_t, offset_threshold=self.predictor.offset_threshold(
            offset_threshold), timing=getattr(self.predictor, "timing", "frames"))
        self._resampler = None
        if self.sample_rate != SAMPLE_RATE:
            import soxr

            self._resampler = soxr.ResampleStream(self.sample_rate, SAMPLE_RATE, 1, dtype="float32")
        self.samples_in = 0  # input samples (at sample_rate) received: the audio clock
        self.finished = False
        self._notes: list[np.ndarray] = []

    @property
    def time(self) -> float:
        """Seconds of audio received so far (the audio clock)."""
        return self.samples_in / self.sample_rate

    @property
    def gain(self) -> float:
        """The factor applied to the audio read last: ``1 / running peak`` (at least :data:`PEAK_FLOOR`) or the fixed
        gain."""
        buffer = self.frames.buffer
        return 1.0 / max(buffer.peak, PEAK_FLOOR) if buffer.gain_mode == "peak" else buffer.gain_mode

    @property
    def notes(self) -> np.ndarray:
        """The notes ended so far ``[n, 4]`` (start s, end s, MIDI pitch, MIDI velocity); all of them after
        :meth:`finish`."""
        out = np.concatenate(self._notes) if self._notes else np.zeros((0, 4))
        return out[np.lexsort((out[:, 2], out[:, 0]))] if len(out) else out

    @staticmethod
    def _mono(block) -> np.ndarray:
        x = np.asarray(block)
        if x.ndim not in (1, 2):
            raise ValueError(f"an audio block must be [samples] or [samples, channels], got shape {x.shape}")
        if np.issubdtype(x.dtype, np.integer):
            x = x.astype(np.float32) / float(np.iinfo(x.dtype).max)
        x = x.astype(np.float32, copy=False)
        return np.ascontiguousarray(x.mean(axis=1) if x.ndim == 2 else x)

    def _decode(self, chunks, decided_at: float) -> list[NoteEvent]:
        events = []
        for c in chunks:
            ended = self.decoder.feed(c["frame"], c["onset"], c["velocity"], offset_probs=c["offset"])
            self._notes.append(ended)
            events += notes_to_events(ended, self.decoder.begun, decided_at)
        return events

    def push(self, block) -> list[NoteEvent]:
        """Take the next audio block; return the events it let the transcriber decide, in time order."""
        if self.finished:
            raise RuntimeError("this live transcription has finished; start a new one")
        mono = self._mono(block)
        if not np.all(np.isfinite(mono)):
            raise ValueError("the audio block holds NaN or infinite samples")
        self.samples_in += len(mono)
        x = self._resampler.resample_chunk(mono) if self._resampler is not None else mono
        return self._decode(self.frames.feed(x), self.time)

    def finish(self) -> list[NoteEvent]:
        """End of the audio: the remaining frames decided (the end padded as the offline path pads it) and every
        sounding note closed.  Returns those events."""
        if self.finished:
            return []
        self.finished = True
        events = []
        if self._resampler is not None:  # the resampler's last samples, so that the stream holds as many samples
            # as AudioSource makes of a file: round(n * 16000 / rate)
            tail = self._resampler.resample_chunk(np.zeros(0, np.float32), last=True)
            want = max(0, int(round(self.samples_in * SAMPLE_RATE / self.sample_rate)) - self.frames.n_samples)
            tail = np.concatenate([np.asarray(tail, np.float32), np.zeros(want, np.float32)])[:want]
            if len(tail):
                events += self._decode(self.frames.feed(tail), self.time)
        events += self._decode(self.frames.finish(), self.time)
        ended = self.decoder.finish()
        self._notes.append(ended)
        return events + notes_to_events(ended, self.decoder.begun, self.time)  # begun: regression timing's last frames

    def run(self, blocks: Iterable) -> Iterator[NoteEvent]:
        """Events of a whole stream of blocks, each as soon as it is decided (then :meth:`finish`'s)."""
        for block in blocks:
            yield from self.push(block)
        yield from self.finish()
