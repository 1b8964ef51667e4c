"""One live take: blocks from a source through the transcriber to the sinks, until the source ends or is stopped.

On stop (Ctrl-C sets the source's ``stop`` event; nothing is interrupted mid-block) the blocks the source captured
but had not handed over are transcribed too, the transcriber closes every sounding note, and the caller writes the
whole take: nothing that was played is lost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .transcriber import LiveTranscriber, NoteEvent

WARN_EVERY_SECONDS = 5.0  # a new loss of audio is reported at most this often (audio clock)


@dataclass
class TakeResult:
    """A finished take: its notes ``[n, 4]`` (start s, end s, MIDI pitch, MIDI velocity), every event, its length
    (s of audio), and the audio lost on the way (blocks and seconds dropped because the CPU fell behind; input
    overflows PortAudio reported)."""

    notes: np.ndarray
    events: list[NoteEvent] = field(default_factory=list)
    seconds: float = 0.0
    dropped_blocks: int = 0
    dropped_seconds: float = 0.0
    overflows: int = 0


def lost_audio_warning(blocks: int, seconds: float, overflows: int) -> str | None:
    """The warning for audio lost so far, or None when nothing was lost."""
    if not blocks and not overflows:
        return None
    parts = []
    if blocks:
        parts.append(f"{blocks} audio blocks ({seconds:.2f} s) dropped because the CPU cannot keep up "
                     "(replaced by silence; try --mode causal, a TFLite model or a larger --hop)")
    if overflows:
        parts.append(f"the audio device reported {overflows} input overflows")
    return "; ".join(parts)


def run_take(source, transcriber: LiveTranscriber, sinks=(), recorder=None,
             warn: Callable[[str], None] | None = None, max_seconds: float | None = None) -> TakeResult:
    """Run ``source`` (see :mod:`~piano_transcription.live.sources`) through ``transcriber`` into ``sinks`` (each
    with ``send(events)`` and ``close()``) and ``recorder`` (``write(block)``), until the source ends, its ``stop``
    event is set, or ``max_seconds`` of audio have passed; then the source's remaining blocks, the transcriber's
    :meth:`~LiveTranscriber.finish` and the sinks' ``close``.  ``warn`` gets a line whenever audio was lost."""
    events: list[NoteEvent] = []
    reported, last_warned = (0, 0), -WARN_EVERY_SECONDS

    def handle(block) -> None:
        nonlocal reported, last_warned
        if recorder is not None:
            recorder.write(block)
        out = transcriber.push(block)
        events.extend(out)
        for sink in sinks:
            sink.send(out)
        lost = (source.dropped_blocks, getattr(source, "overflows", 0))
        if warn is not None and lost != reported and transcriber.time - last_warned >= WARN_EVERY_SECONDS:
            warn(lost_audio_warning(lost[0], source.dropped_samples / source.sample_rate, lost[1]))
            reported, last_warned = lost, transcriber.time

    try:
        for block in source:
            handle(block)
            if max_seconds is not None and transcriber.time >= max_seconds:
                break
    finally:
        source.close()
        for block in source.drain():
            handle(block)
        out = transcriber.finish()
        events.extend(out)
        for sink in sinks:
            sink.send(out)
            sink.close()
    if warn is not None and getattr(source, "ended", None):
        warn(source.ended)
    lost = (source.dropped_blocks, getattr(source, "overflows", 0))
    if warn is not None and lost != reported:
        warn(lost_audio_warning(lost[0], source.dropped_samples / source.sample_rate, lost[1]))
    return TakeResult(transcriber.notes, events, transcriber.time, source.dropped_blocks,
                      source.dropped_samples / source.sample_rate, getattr(source, "overflows", 0))
