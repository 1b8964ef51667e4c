"""Rendering MIDI to audio with FluidSynth (through pretty_midi and pyfluidsynth).

FluidSynth needs the system library (Debian ``fluidsynth`` / ``libfluidsynth3``), which the
project's set-up scripts install.  SoundFonts: the small ``TimGM6mb.sf2`` that pretty_midi
ships (always present) and Debian's ``FluidR3_GM.sf2`` (package ``fluid-soundfont-gm``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..constants import SAMPLE_RATE

FLUIDR3_PATHS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/soundfonts/FluidR3_GM.sf2")


class SynthError(RuntimeError):
    """FluidSynth or a SoundFont is not available."""


def pretty_midi_soundfont() -> Path:
    """Path of the small General MIDI SoundFont bundled with pretty_midi."""
    import pretty_midi

    return Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"


def fluidr3_soundfont() -> Path | None:
    """Path of Debian's FluidR3 GM SoundFont, or None when it is not installed."""
    for p in FLUIDR3_PATHS:
        if os.path.exists(p):
            return Path(p)
    return None


def render_fluidsynth(pm, soundfont: str | os.PathLike | None = None, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Render a ``pretty_midi.PrettyMIDI`` to mono float32 samples at ``sr`` Hz, peak-normalised.

    Raises :class:`SynthError` if pyfluidsynth or the FluidSynth library is missing.
    """
    try:
        import fluidsynth  # noqa: F401  (pyfluidsynth)
    except (ImportError, OSError) as exc:
        raise SynthError(
            "FluidSynth is not available: install the Debian package 'fluidsynth' and the Python package "
            "'pyfluidsynth' (the project's scripts/setup.sh does both)"
        ) from exc
    sf2 = Path(soundfont) if soundfont is not None else pretty_midi_soundfont()
    if not sf2.exists():
        raise SynthError(f"SoundFont not found: {sf2}")
    if not any(inst.notes for inst in pm.instruments):  # FluidSynth cannot render nothing
        return np.zeros(int(sr * max(pm.get_end_time(), 1.0)), np.float32)
    audio = pm.fluidsynth(fs=sr, synthesizer=str(sf2))
    audio = np.asarray(audio, dtype=np.float32)
    peak = np.max(np.abs(audio)) if audio.size else 0.0
    return audio / peak * 0.9 if peak > 0 else audio
