"""Audio augmentation for synthetic training data: rooms, microphones, noise, level, codec.

Every function takes mono float32 samples at 16 kHz and a ``numpy.random.Generator``.  Rooms are real
(convolution with measured impulse responses, ``../shared/data/impulse_responses`` from OpenAIR) or
simulated (an exponentially decaying noise tail); microphone colour and dynamics use Spotify's
pedalboard (shelving and peak filters, high-pass, compressor).
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf

from ..constants import SAMPLE_RATE


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


def add_noise(x: np.ndarray, rng: np.random.Generator, snr_db=(20.0, 50.0)) -> np.ndarray:
    """Add white or pink (1/f) noise at a random signal-to-noise ratio."""
    noise = rng.standard_normal(len(x))
    if rng.random() < 0.5:  # pink
        spec = np.fft.rfft(noise)
        spec /= np.sqrt(np.maximum(np.arange(len(spec)), 1))
        noise = np.fft.irfft(spec, n=len(x))
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


def augment(x: np.ndarray, rng: np.random.Generator, impulse_responses: list[np.ndarray] | None = None,
            strength: float = 1.0) -> np.ndarray:
    """The training chain, each step with some probability (times ``strength``, 0..1): a room (real
    when ``impulse_responses`` are given, else simulated), a microphone, noise, then peak level 0.4..1
    and sometimes a lossy codec."""
    peak = np.max(np.abs(x)) + 1e-9
    x = x / peak
    if impulse_responses and rng.random() < 0.6 * strength:
        x = real_room(x, rng, impulse_responses)
    elif rng.random() < 0.4 * strength:
        x = reverb(x, rng)
    if rng.random() < 0.7 * strength:
        x = microphone(x, rng)
    if rng.random() < 0.3 * strength:
        x = random_eq(x, rng)
    if rng.random() < 0.5 * strength:
        x = add_noise(x, rng)
    x = x / (np.max(np.abs(x)) + 1e-9) * rng.uniform(0.4, 1.0)
    if rng.random() < 0.25 * strength:
        x = codec_round_trip(x)
    return x.astype(np.float32)
