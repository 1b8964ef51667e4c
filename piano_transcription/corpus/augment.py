"""Audio augmentation for synthetic training data: room reverb, microphone EQ, noise, gain, codec.

Every function takes mono float32 samples at 16 kHz and a ``numpy.random.Generator``.
"""

from __future__ import annotations

import io

import numpy as np

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
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.clip(x, -1, 1), sr, format="OGG", subtype="VORBIS")
    buf.seek(0)
    y, _ = sf.read(buf, dtype="float32")
    return y[: len(x)] if len(y) >= len(x) else np.pad(y, (0, len(x) - len(y)))


def augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The training chain: each step applied with some probability, then peak level 0.4..1."""
    peak = np.max(np.abs(x)) + 1e-9
    x = x / peak
    if rng.random() < 0.6:
        x = reverb(x, rng)
    if rng.random() < 0.6:
        x = random_eq(x, rng)
    if rng.random() < 0.5:
        x = add_noise(x, rng)
    x = x / (np.max(np.abs(x)) + 1e-9) * rng.uniform(0.4, 1.0)
    if rng.random() < 0.25:
        x = codec_round_trip(x)
    return x.astype(np.float32)
