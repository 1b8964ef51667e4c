"""Audio loading and the log-mel front end.

``load_audio`` reads WAV, FLAC, OGG and MP3 (through libsndfile, bundled with the
``soundfile`` wheel), mixes down to mono, resamples to 16 kHz and peak-normalises
as Magenta does.  ``log_mel`` computes the network input ``[frames, 229]``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from .constants import FMAX, FMIN, HOP_LENGTH, MEL_HTK, N_FFT, N_MELS, SAMPLE_RATE, TOP_DB

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".oga", ".aiff", ".aif")


class AudioError(ValueError):
    """An audio file or buffer that cannot be used: missing, unreadable, empty or non-finite."""


class SilentAudioWarning(UserWarning):
    """The audio holds only silence: there is nothing to transcribe."""


def resample(samples: np.ndarray, orig_sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Resample a mono float signal from ``orig_sr`` to ``target_sr`` Hz (polyphase filter)."""
    if orig_sr == target_sr:
        return samples.astype(np.float32, copy=False)
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(int(orig_sr), int(target_sr))
    return resample_poly(samples, target_sr // g, orig_sr // g).astype(np.float32)


def normalize(samples: np.ndarray) -> np.ndarray:
    """Peak-normalise to a maximum absolute value of 1 (Magenta's ``normalize_wav_data``).

    All-zero input is returned unchanged.
    """
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    if peak <= 0.0:
        return samples.astype(np.float32, copy=False)
    return (samples / peak).astype(np.float32)


def prepare_samples(samples: np.ndarray, sr: int, target_sr: int = SAMPLE_RATE,
                    source: str = "audio") -> np.ndarray:
    """Mono mix-down, checks, resampling and peak normalisation of a sample buffer.

    ``samples`` is ``[n]`` or ``[n, channels]`` at ``sr`` Hz.  Raises :class:`AudioError`
    for empty or non-finite audio; warns with :class:`SilentAudioWarning` for silence.
    """
    samples = np.asarray(samples)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    elif samples.ndim != 1:
        raise AudioError(f"{source}: expected mono or [samples, channels] audio, got shape {samples.shape}")
    if samples.size == 0:
        raise AudioError(f"{source}: the audio is empty (0 samples)")
    if np.issubdtype(samples.dtype, np.integer):
        samples = samples.astype(np.float32) / float(np.iinfo(samples.dtype).max)
    samples = samples.astype(np.float32, copy=False)
    if not np.all(np.isfinite(samples)):
        raise AudioError(f"{source}: the audio holds NaN or infinite samples")
    if sr <= 0:
        raise AudioError(f"{source}: invalid sample rate {sr}")
    samples = resample(samples, int(sr), target_sr)
    if not np.any(samples):
        warnings.warn(f"{source}: the audio is completely silent", SilentAudioWarning, stacklevel=2)
        return samples
    return normalize(samples)


def load_audio(path: str | os.PathLike, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Read an audio file as mono float32 samples at ``sr`` Hz, peak-normalised.

    Raises :class:`AudioError` for a missing, unreadable, corrupt, empty or non-finite file.
    """
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: the file is empty (0 bytes)")
    try:
        data, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile raises several types for bad files
        raise AudioError(f"{path}: cannot decode audio ({exc})") from exc
    return prepare_samples(data, file_sr, sr, source=str(path))


def mel_filters():
    """The ``[229, 1025]`` HTK mel filterbank (librosa's Slaney area normalisation)."""
    import librosa

    return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN, fmax=FMAX, htk=MEL_HTK)


def log_mel(samples: np.ndarray, center: bool = True) -> np.ndarray:
    """Log-mel spectrogram ``[frames, 229]`` float32 of 16 kHz samples.

    Power mel spectrogram (n_fft 2048, hop 512, Hann window, HTK mel bins from 30 Hz),
    then ``power_to_db`` with ``ref=1`` (so values are roughly -100..+40 dB) and librosa's
    default ``top_db=80`` clipping below the loudest bin.  With ``center=True`` (default)
    frame ``i`` is centred at ``i * 512 / 16000`` s and there are ``1 + n // 512`` frames.
    """
    import librosa

    samples = np.asarray(samples, dtype=np.float32)
    spec = np.abs(librosa.stft(samples, n_fft=N_FFT, hop_length=HOP_LENGTH, center=center)) ** 2
    mel = mel_filters() @ spec
    db = librosa.power_to_db(mel, ref=1.0, top_db=TOP_DB)
    return db.T.astype(np.float32)


def write_wav(path: str | os.PathLike, samples: np.ndarray, sr: int = SAMPLE_RATE) -> None:
    """Write float samples as 16-bit PCM WAV atomically (temporary file, then rename)."""
    import soundfile as sf

    from .io import atomic_path

    with atomic_path(path) as tmp:
        sf.write(str(tmp), np.clip(samples, -1.0, 1.0), sr, subtype="PCM_16", format="WAV")
