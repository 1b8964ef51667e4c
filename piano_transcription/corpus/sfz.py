"""Rendering performances through SFZ sampled pianos with sfizz (PyPI ``pysfizz``).

The instruments are real pianos recorded key by key at several velocities (``../shared/data/pianos``:
Headroom, a Yamaha C3 with close and Decca-tree microphones; Splendid, a Steinway).  sfizz plays the
keys and the sustain pedal (CC64) itself, so sympathetic ringing and release noises come from the
instrument's own samples: pass the keys' own release times (:func:`piano_transcription.midi.read_performance`),
not notes with the pedal already applied.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..constants import SAMPLE_RATE, SUSTAIN_CC

BLOCK = 512  # samples per sfizz block; events are placed at their exact sample inside a block


class SfzError(RuntimeError):
    """An SFZ instrument that cannot be used: missing, unreadable, or without samples."""


def find_instruments(folder: str | os.PathLike) -> list[Path]:
    """The ``.sfz`` files under ``folder`` (sorted); an empty list for a missing folder."""
    folder = Path(folder)
    return sorted(folder.rglob("*.sfz")) if folder.is_dir() else []


class SfzPiano:
    """One SFZ instrument loaded into sfizz at 16 kHz; :meth:`render` plays a performance."""

    def __init__(self, path: str | os.PathLike, sr: int = SAMPLE_RATE):
        import pysfizz

        self.path = Path(path)
        self.sr = sr
        if not self.path.is_file():
            raise SfzError(f"{self.path}: no such SFZ file")
        self._synth = pysfizz.Synth(sr, BLOCK)
        try:
            loaded = self._synth.load_sfz_file(self.path)  # quiet: sfizz's parser warnings go to /dev/null
        except (AttributeError, OSError, ValueError):  # no real stderr to silence (a captured one)
            loaded = self._synth.load_sfz_file(self.path, quiet=False)
        if not loaded:
            raise SfzError(f"{self.path}: sfizz could not load it, or it has no regions (missing samples?)")
        self.keys = set(self._synth.playable_keys)
        self._warm_up()

    def _warm_up(self, velocities=(16, 40, 64, 88, 112, 127), chunk: int = 16, seconds: float = 0.75) -> None:
        """Play every key at every velocity layer once, silently, so that sfizz has streamed every sample
        in full: the first play of a sample right after loading otherwise stops after sfizz's preloaded
        head (about 0.5 s at 16 kHz, measured here), even in freewheeling mode."""
        import time

        synth = self._synth._synth
        keys = sorted(self.keys)
        for vel in velocities:
            for i in range(0, len(keys), chunk):
                for k in keys[i:i + chunk]:
                    synth.note_on(0, k, vel)
                for _ in range(int(seconds * self.sr / BLOCK)):
                    synth.render_block()
                time.sleep(0.02)
                for k in keys[i:i + chunk]:
                    synth.note_off(0, k, 0)
                synth.all_sound_off()
        time.sleep(0.2)

    def render(self, keys: np.ndarray, pedal_events, duration: float) -> np.ndarray:
        """Mono float32 samples of ``duration`` s: ``keys`` ``[n, 4]`` (start s, key-up s, pitch, velocity)
        and CC64 ``(time s, value)`` events, played from silence (the synth is reset first)."""
        synth = self._synth._synth
        synth.all_sound_off()
        events = [(s, 1, int(p), int(np.clip(v, 1, 127))) for s, _, p, v in keys]
        events += [(e, 0, int(p), 0) for _, e, p, _ in keys]
        events += [(float(t), 2, SUSTAIN_CC, int(v)) for t, v in pedal_events]
        events.sort(key=lambda e: (e[0], e[1]))
        n = int(round(duration * self.sr))
        n_blocks = -(-n // BLOCK)
        out = np.zeros(n_blocks * BLOCK, np.float32)
        i = 0
        for b in range(n_blocks):
            end = (b + 1) * BLOCK
            while i < len(events) and int(events[i][0] * self.sr) < end:
                t, kind, number, value = events[i]
                delay = max(int(t * self.sr) - b * BLOCK, 0)
                if kind == 1:
                    synth.note_on(delay, number, value)
                elif kind == 0:
                    synth.note_off(delay, number, 0)
                else:
                    synth.cc(delay, number, value)
                i += 1
            left, right = synth.render_block()
            out[b * BLOCK:end] = 0.5 * (np.asarray(left) + np.asarray(right))
        synth.all_sound_off()
        return out[:n]
