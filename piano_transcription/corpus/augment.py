"""Audio augmentation for synthetic training data: rooms, microphones, noise, level, codec.

Every function takes mono float32 samples at 16 kHz and a ``numpy.random.Generator``.  Rooms are real
(convolution with measured impulse responses, ``../shared/data/impulse_responses`` from OpenAIR) or
simulated (an exponentially decaying noise tail); microphone colour and dynamics use Spotify's
pedalboard (shelving and peak filters, high-pass, compressor).

The *levers* (:data:`LEVERS`, issue 25: each switched on alone in a corpus and measured on real recordings by a
short fine-tune) change one property of the training audio at a time, each from its own random stream so that the
rest of the chain draws exactly what it draws without the lever:

* ``detune``: the whole excerpt (any source, MAPS's recordings included) shifted by up to +-30 cents by
  resampling with soxr, the label times scaled with it (:func:`detune_audio`, :func:`detune_notes`);
* ``rooms``: a measured room at full length on (nearly) every excerpt, a random wet/dry mix from dry to fully
  reverberant, the level kept (:func:`room`);
* ``dynamics``: soft playing played softer (a velocity curve that widens the dynamic range of the rendered
  sources, :func:`velocity_curve`) and quiet recordings (a level of -45..-10 dBFS over a steady noise floor,
  then 16-bit samples: :func:`quiet_recording`);
* ``bass``: weak fundamentals, as a distant microphone in a room hears a piano's low notes (a 12 dB/octave
  high-pass at 50-150 Hz on 80 % of excerpts: :func:`weak_fundamentals`), so that a low note's pitch must come
  from its harmonics.  Measured first: the real recordings' log-mel holds 13 dB less below 60 Hz (relative to
  each 20 s window's loudest bin) than the sampled grands' renders (``scripts/levers.sh``'s notes).
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf

from ..constants import MAX_MIDI_PITCH, MIN_MIDI_PITCH, SAMPLE_RATE

LEVERS = ("detune", "rooms", "dynamics", "bass")
DETUNE_CENTS = 30.0  # the detune lever's range: +-30 cents
VELOCITY_GAMMA = (1.0, 1.8)  # the dynamics lever's velocity curve exponents
QUIET_LEVEL_DB = (-45.0, -10.0)  # dBFS: the dynamics lever's recording levels
NOISE_FLOOR_DB = (-100.0, -85.0)  # dBFS: the steady noise floor under a quiet recording
BASS_CUTOFF_HZ = (50.0, 150.0)  # the bass lever's high-pass cut-offs


def synthetic_impulse_response(rng: np.random.Generator, rt60: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """An exponentially decaying noise tail reaching -60 dB after ``rt60`` seconds, with a direct path."""
    n = int(rt60 * sr)
    t = np.arange(n) / sr
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    ir[: int(0.005 * sr)] *= np.linspace(0, 1, int(0.005 * sr))  # short pre-delay ramp
    ir /= np.sqrt(np.sum(ir ** 2)) + 1e-12
    return ir.astype(np.float32)


def reverb(x: np.ndarray, rng: np.random.Generator, rt60=(0.2, 1.6), wet=(0.1, 0.5)) -> np.ndarray:
    """Mix in a convolution with a random synthetic room response."""
    from scipy.signal import fftconvolve

    ir = synthetic_impulse_response(rng, rng.uniform(*rt60))
    w = rng.uniform(*wet)
    tail = fftconvolve(x, ir)[: len(x)]
    return ((1 - w) * x + w * tail / (np.max(np.abs(tail)) + 1e-9) * np.max(np.abs(x))).astype(np.float32)


def random_eq(x: np.ndarray, rng: np.random.Generator, max_db: float = 8.0, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Colour the spectrum with a smooth random gain curve (±``max_db`` over log frequency)."""
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1 / sr)
    knots_f = np.geomspace(20, sr / 2, 6)
    knots_db = rng.uniform(-max_db, max_db, len(knots_f))
    gain_db = np.interp(np.log(np.maximum(f, 20)), np.log(knots_f), knots_db)
    return np.fft.irfft(spec * 10 ** (gain_db / 20), n=len(x)).astype(np.float32)


def pink(white: np.ndarray) -> np.ndarray:
    """White noise made pink (power falling as 1/f), the same length."""
    spec = np.fft.rfft(white)
    spec /= np.sqrt(np.maximum(np.arange(len(spec)), 1))
    return np.fft.irfft(spec, n=len(white))


def add_noise(x: np.ndarray, rng: np.random.Generator, snr_db=(20.0, 50.0)) -> np.ndarray:
    """Add white or pink (1/f) noise at a random signal-to-noise ratio."""
    noise = rng.standard_normal(len(x))
    if rng.random() < 0.5:
        noise = pink(noise)
    p_sig = np.mean(x ** 2) + 1e-12
    noise *= np.sqrt(p_sig / (np.mean(noise ** 2) + 1e-12) / 10 ** (rng.uniform(*snr_db) / 10))
    return (x + noise).astype(np.float32)


def codec_round_trip(x: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Encode to Ogg Vorbis and decode again (lossy-codec artefacts), through libsndfile."""
    buf = io.BytesIO()
    sf.write(buf, np.clip(x, -1, 1), sr, format="OGG", subtype="VORBIS")
    buf.seek(0)
    y, _ = sf.read(buf, dtype="float32")
    return y[: len(x)] if len(y) >= len(x) else np.pad(y, (0, len(x) - len(y)))


def load_impulse_response(path: str | os.PathLike, sr: int = SAMPLE_RATE) -> np.ndarray:
    """One room impulse response at ``sr`` Hz, cut to start just before its direct sound (so that
    convolving does not delay the notes against their labels) and scaled to unit energy.
    Raises ValueError for a file that cannot be read or is silent."""
    from ..audio import resample

    try:
        ir, ir_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001 - libsndfile raises several types
        raise ValueError(f"{path}: cannot read the impulse response ({exc})") from exc
    ir = resample(ir.mean(axis=1), ir_sr, sr)
    if not np.any(ir):
        raise ValueError(f"{path}: the impulse response is silent")
    direct = int(np.argmax(np.abs(ir)))
    ir = ir[max(direct - int(0.001 * sr), 0):]
    return (ir / np.sqrt(np.sum(ir ** 2))).astype(np.float32)


def load_impulse_responses(folder: str | os.PathLike | None, sr: int = SAMPLE_RATE) -> list[np.ndarray]:
    """The room impulse responses (``.wav``/``.flac``) in ``folder`` (:func:`load_impulse_response`); a
    file that cannot be used is named in a warning and skipped."""
    out = []
    if folder is None:
        return out
    for path in sorted(Path(folder).glob("*")):
        if path.suffix.lower() not in (".wav", ".flac"):
            continue
        try:
            out.append(load_impulse_response(path, sr))
        except ValueError as exc:
            warnings.warn(f"{exc}; skipped", stacklevel=2)
    return out


def real_room(x: np.ndarray, rng: np.random.Generator, impulse_responses: list[np.ndarray], wet=(0.2, 0.8),
              sr: int = SAMPLE_RATE) -> np.ndarray:
    """Convolve with one of the measured rooms (pedalboard ``Convolution``), ``wet`` share of reverberant sound."""
    from pedalboard import Convolution

    ir = impulse_responses[rng.integers(len(impulse_responses))]
    room = Convolution(ir, mix=float(rng.uniform(*wet)), sample_rate=sr)
    return room(x[None, :].astype(np.float32), sr)[0][: len(x)]


def microphone(x: np.ndarray, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """A random microphone and preamp: high-pass, low and high shelves, a presence peak, sometimes a compressor."""
    from pedalboard import Compressor, HighpassFilter, HighShelfFilter, LowShelfFilter, Pedalboard, PeakFilter

    chain = [HighpassFilter(float(rng.uniform(20, 90))),
             LowShelfFilter(float(rng.uniform(80, 400)), float(rng.uniform(-6, 6))),
             PeakFilter(float(rng.uniform(250, 5000)), float(rng.uniform(-6, 6)), float(rng.uniform(0.5, 2.0))),
             HighShelfFilter(float(rng.uniform(2500, 7000)), float(rng.uniform(-12, 4)))]
    if rng.random() < 0.3:
        chain.append(Compressor(float(rng.uniform(-30, -10)), float(rng.uniform(1.5, 4.0))))
    return Pedalboard(chain)(x[None, :].astype(np.float32), sr)[0]


def pitch_ratio(cents: float) -> float:
    """The frequency ratio of a shift of ``cents`` (100 cents = one semitone)."""
    return float(2.0 ** (cents / 1200.0))


def detune_audio(x: np.ndarray, cents: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """``x`` played ``cents`` higher (lower when negative) and as much faster (slower), as a tape played at
    another speed: resampled with soxr to ``len(x) / ratio`` samples at the same rate.  Label times scale by
    ``1 / ratio`` (:func:`detune_notes`)."""
    import soxr

    if cents == 0:
        return np.asarray(x, np.float32)
    return soxr.resample(np.asarray(x, np.float32), sr, sr / pitch_ratio(cents), quality="HQ").astype(np.float32)


def detune_notes(notes: np.ndarray, cents: float) -> np.ndarray:
    """The note table ``[n, 4]`` (start s, end s, MIDI pitch, velocity) of audio detuned by ``cents``
    (:func:`detune_audio`): times divided by the pitch ratio, each pitch moved to the nearest key of its new
    frequency.  Raises ValueError when that would move a note off the keyboard (MIDI 21-108)."""
    out = np.array(notes, dtype=np.float64, copy=True).reshape(-1, 4)
    out[:, :2] /= pitch_ratio(cents)
    out[:, 2] += round(cents / 100.0)
    off = (out[:, 2] < MIN_MIDI_PITCH) | (out[:, 2] > MAX_MIDI_PITCH)
    if np.any(off):
        raise ValueError(f"a detune of {cents:+.0f} cents moves {int(off.sum())} notes off the keyboard "
                         f"(MIDI {MIN_MIDI_PITCH}-{MAX_MIDI_PITCH})")
    return out


def room(x: np.ndarray, ir: np.ndarray, wet: float) -> np.ndarray:
    """``x`` in a measured room: its convolution with the whole impulse response ``ir`` (which may be longer
    than ``x``; the output keeps ``len(x)`` samples), mixed ``wet`` (0: dry .. 1: only the room's sound) at equal
    energy, and scaled back to the RMS level of ``x``.  Raises ValueError for a silent or non-finite ``ir``."""
    from scipy.signal import oaconvolve

    ir = np.asarray(ir, np.float64)
    if ir.size == 0 or not np.all(np.isfinite(ir)) or not np.any(ir):
        raise ValueError("the impulse response is silent (or empty, or not finite)")
    if not 0.0 <= wet <= 1.0:
        raise ValueError(f"the wet share must be within 0..1, got {wet}")
    x = np.asarray(x, np.float64)
    level = np.sqrt(np.mean(x ** 2)) if x.size else 0.0
    if level == 0.0:
        return x.astype(np.float32)
    tail = oaconvolve(x, ir)[: len(x)]
    tail *= level / (np.sqrt(np.mean(tail ** 2)) + 1e-12)
    y = (1.0 - wet) * x + wet * tail
    return (y * level / (np.sqrt(np.mean(y ** 2)) + 1e-12)).astype(np.float32)


def velocity_curve(velocities: np.ndarray, gamma: float) -> np.ndarray:
    """MIDI velocities through ``127 (v / 127) ** gamma`` (``gamma`` > 1 plays soft notes softer, loud ones
    almost as loud: a wider dynamic range), rounded, within 1..127."""
    v = np.clip(np.asarray(velocities, np.float64), 1, 127)
    return np.clip(np.round(127.0 * (v / 127.0) ** gamma), 1, 127)


def quiet_recording(x: np.ndarray, rng: np.random.Generator, level_db=QUIET_LEVEL_DB,
                    floor_db=NOISE_FLOOR_DB) -> np.ndarray:
    """``x`` recorded quietly: its peak at a random ``level_db`` (dBFS), a steady pink noise floor at
    ``floor_db`` (RMS, dBFS) added, then rounded to 16-bit samples (so the quietest notes sink into the floor
    and the quantisation when the file is normalised again)."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak == 0.0:
        return np.asarray(x, np.float32)
    y = x / peak * 10.0 ** (rng.uniform(*level_db) / 20.0)
    noise = pink(rng.standard_normal(len(y)))
    noise *= 10.0 ** (rng.uniform(*floor_db) / 20.0) / (np.sqrt(np.mean(noise ** 2)) + 1e-12)
    return (np.round(np.clip(y + noise, -1.0, 1.0) * 32767.0) / 32767.0).astype(np.float32)


def weak_fundamentals(x: np.ndarray, rng: np.random.Generator, probability: float = 0.8,
                      cutoff_hz=BASS_CUTOFF_HZ, sr: int = SAMPLE_RATE) -> np.ndarray:
    """With ``probability``: ``x`` through a 12 dB/octave high-pass (two first-order pedalboard filters) at a random
    cut-off in ``cutoff_hz``, which weakens the fundamentals of the lowest two octaves and leaves their harmonics."""
    if rng.random() >= probability:
        return np.asarray(x, np.float32)
    from pedalboard import HighpassFilter, Pedalboard

    cutoff = float(rng.uniform(*cutoff_hz))
    return Pedalboard([HighpassFilter(cutoff), HighpassFilter(cutoff)])(x[None, :].astype(np.float32), sr)[0]


def check_levers(levers) -> frozenset[str]:
    """The lever names as a set; ValueError naming an unknown one."""
    levers = frozenset(levers or ())
    unknown = sorted(levers - set(LEVERS))
    if unknown:
        raise ValueError(f"unknown augmentation lever {', '.join(unknown)}; choose from {', '.join(LEVERS)}")
    return levers


def augment(x: np.ndarray, rng: np.random.Generator, impulse_responses: list[np.ndarray] | None = None,
            strength: float = 1.0, levers=frozenset()) -> np.ndarray:
    """The training chain, each step with some probability (times ``strength``, 0..1): a room (real
    when ``impulse_responses`` are given, else simulated), a microphone, noise, then peak level 0.4..1
    and sometimes a lossy codec.  Each step draws from its own stream spawned from ``rng``, so a lever
    that replaces one step leaves every other step's draws as they were: ``rooms`` (a measured room at full
    length on 90 % of excerpts, wet 0..1, the level kept: :func:`room`), ``bass`` (:func:`weak_fundamentals`
    after the microphone) and ``dynamics`` (then :func:`quiet_recording` on 70 %)."""
    room_rng, mic_rng, eq_rng, noise_rng, level_rng, codec_rng, lever_rng = rng.spawn(7)
    levers = check_levers(levers)
    peak = np.max(np.abs(x)) + 1e-9
    x = x / peak
    if "rooms" in levers and impulse_responses:
        if lever_rng.random() < 0.9 * strength:
            x = room(x, impulse_responses[lever_rng.integers(len(impulse_responses))], float(lever_rng.uniform()))
        elif lever_rng.random() < 0.5 * strength:
            x = reverb(x, lever_rng)
    elif impulse_responses and room_rng.random() < 0.6 * strength:
        x = real_room(x, room_rng, impulse_responses)
    elif room_rng.random() < 0.4 * strength:
        x = reverb(x, room_rng)
    if mic_rng.random() < 0.7 * strength:
        x = microphone(x, mic_rng)
    if "bass" in levers:  # a stream of its own: the other levers' draws stay as they are
        x = weak_fundamentals(x, lever_rng.spawn(1)[0], 0.8 * strength)
    if eq_rng.random() < 0.3 * strength:
        x = random_eq(x, eq_rng)
    if noise_rng.random() < 0.5 * strength:
        x = add_noise(x, noise_rng)
    x = x / (np.max(np.abs(x)) + 1e-9) * level_rng.uniform(0.4, 1.0)
    if "dynamics" in levers and lever_rng.random() < 0.7 * strength:
        x = quiet_recording(x, lever_rng)
    if codec_rng.random() < 0.25 * strength:
        x = codec_round_trip(x)
    return x.astype(np.float32)
