"""When live notes come out: a recording played through the live path in simulated real time on its own audio
clock, and the latency of each note against the true onsets.

Block ``k`` arrives when its last sample has been played (``end_k / rate`` s); it is processed as soon as it has
arrived and the previous block is done (``start_k = max(arrival_k, done_{k-1})``); the events it decides are
emitted when its processing ends (``done_k = start_k + processing time``, the processing time measured on the wall
clock).  A note's latency is its note-on's emit time minus the true onset (both on the audio clock).  A block that
waits more than ``max_backlog`` s is one that a device would have dropped: counted.  The real-time factor is the
processing time over the audio's length.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .sources import MAX_BACKLOG_SECONDS
from .transcriber import LiveTranscriber, NoteEvent


@dataclass
class TimedTake:
    """A take played in simulated real time: its events, the emit time of each (s, audio clock), its notes, the
    audio's length (s), the processing time (s, wall clock), the blocks a device would have dropped and the longest
    wait of a block (s)."""

    events: list[NoteEvent]
    emitted: np.ndarray
    notes: np.ndarray
    seconds: float
    processing: float
    dropped_blocks: int
    max_wait: float

    @property
    def real_time_factor(self) -> float:
        return self.processing / self.seconds if self.seconds else 0.0


def play_in_simulated_real_time(transcriber: LiveTranscriber, blocks: Iterable[np.ndarray],
                                max_backlog: float = MAX_BACKLOG_SECONDS, clock=time.perf_counter) -> TimedTake:
    """Feed ``blocks`` (at the transcriber's sample rate) as a device would deliver them (see the module docstring)."""
    events, emitted = [], []
    done, played, processing, dropped, max_wait = 0.0, 0, 0.0, 0, 0.0
    rate = transcriber.sample_rate
    for block in blocks:
        played += len(block)
        arrival = played / rate
        start = max(arrival, done)
        wait = start - arrival
        max_wait = max(max_wait, wait)
        dropped += wait > max_backlog
        t0 = clock()
        out = transcriber.push(block)
        spent = clock() - t0
        processing += spent
        done = start + spent
        events += out
        emitted += [done] * len(out)
    t0 = clock()
    out = transcriber.finish()
    spent = clock() - t0
    processing += spent
    events += out
    emitted += [max(done, played / rate) + spent] * len(out)
    return TimedTake(events, np.asarray(emitted), transcriber.notes, played / rate, processing, dropped, max_wait)


def note_latencies(ref_notes: np.ndarray, take: TimedTake, onset_tolerance: float = 0.05) -> np.ndarray:
    """``[m, 3]``: true onset (s), emit time of the matching live note-on (s), MIDI pitch, for every live note whose
    onset matches a true one (mir_eval, onset within ``onset_tolerance``)."""
    import mir_eval

    ons = [(e, t) for e, t in zip(take.events, take.emitted) if e.kind == "on"]
    if not len(ref_notes) or not ons:
        return np.zeros((0, 3))
    est = np.array([(e.time, e.time + 0.1, e.pitch) for e, _ in ons])  # offsets play no part in the match
    hz = lambda p: 440.0 * 2.0 ** ((np.asarray(p, float) - 69) / 12)  # noqa: E731
    pairs = mir_eval.transcription.match_notes(ref_notes[:, :2], hz(ref_notes[:, 2]), est[:, :2], hz(est[:, 2]),
                                               onset_tolerance=onset_tolerance, offset_ratio=None)
    return np.array([(ref_notes[i, 0], ons[j][1], ref_notes[i, 2]) for i, j in pairs]).reshape(-1, 3)
