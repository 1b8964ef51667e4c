"""Audio loading and the log-mel front end.

``load_audio`` reads WAV, FLAC, OGG and MP3 (through libsndfile, bundled with the
``soundfile`` wheel), mixes down to mono, resamples to 16 kHz and peak-normalises
as Magenta does.  ``log_mel`` computes the network input ``[frames, 229]``.
"""

from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path

import numpy as np
import scipy.fft
import scipy.signal
import soundfile as sf

from .constants import AMIN, FMAX, FMIN, HOP_LENGTH, MEL_HTK, N_FFT, N_MELS, SAMPLE_RATE, TOP_DB

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif")


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


class AudioWarning(UserWarning):
    """The audio can be transcribed but something about it will likely hurt the result."""


BLOCK_SECONDS = 30.0  # audio is read, checked and resampled this much at a time
CLIP_LEVEL = 0.999  # |sample| at or above this (of full scale) counts as clipped
CLIPPED_SHARE = 1e-3  # warn when more than this share of samples is clipped
CANCEL_DB = 20.0  # warn when the mono mix is this much quieter than its channels


def _as_frames(samples: np.ndarray, source: str) -> np.ndarray:
    """``[n]``, ``[n, channels]`` or channels-first ``[channels, n]`` (up to 8 channels) as float32 ``[n, channels]``."""
    samples = np.asarray(samples)
    if samples.ndim == 1:
        samples = samples[:, None]
    elif samples.ndim == 2:
        if samples.shape[0] <= 8 < samples.shape[1]:
            samples = samples.T  # channels first
    else:
        raise AudioError(f"{source}: expected mono, [samples, channels] or [channels, samples] audio, "
                         f"got shape {samples.shape}")
    if samples.size == 0:
        raise AudioError(f"{source}: the audio is empty (0 samples)")
    if np.issubdtype(samples.dtype, np.integer):
        samples = samples.astype(np.float32) / float(np.iinfo(samples.dtype).max)
    elif not np.issubdtype(samples.dtype, np.floating):
        raise AudioError(f"{source}: audio samples must be numbers, got {samples.dtype}")
    return samples.astype(np.float32, copy=False)


def _wav_header_frames(path: Path) -> int:
    """The frame count a PCM WAV header announces (libsndfile reports what the file holds), else 0."""
    import wave

    if path.suffix.lower() != ".wav":
        return 0
    try:
        with wave.open(str(path)) as w:
            return int(w.getnframes())
    except (wave.Error, EOFError, OSError):
        return 0


class AudioSource:
    """Audio to transcribe, from a file (path) or an array with its sample rate, delivered as 16 kHz mono
    peak-normalised float32 blocks, so that a recording of any length is never in memory at once.

    A first pass reads the audio once to check it and find its peak: :class:`AudioError` for a missing,
    unreadable, empty or non-finite input; :class:`SilentAudioWarning` for silence; :class:`AudioWarning`
    for clipped audio, for stereo whose channels cancel in the mono mix (then the first channel is used
    instead), and for a file whose header promises more samples than it holds.  Resampling streams through
    soxr.  ``n_samples`` is the length at ``target_sr``; :meth:`blocks` yields exactly that many samples.
    """

    def __init__(self, audio, sample_rate: int | None = None, source: str | None = None,
                 target_sr: int = SAMPLE_RATE):
        self.target_sr = int(target_sr)
        self.path: Path | None = None
        self.array: np.ndarray | None = None
        if isinstance(audio, (str, os.PathLike)):
            self.path = Path(audio)
            self.source = source or str(self.path)
            self._check_file()
            info = sf.info(str(self.path))
            self.sr, self.channels = int(info.samplerate), int(info.channels)
            declared = max(int(info.frames), _wav_header_frames(self.path))
        else:
            self.source = source or "samples"
            if sample_rate is None:
                raise AudioError(f"{self.source}: give the sample rate of an audio array (sample_rate=...)")
            self.array = _as_frames(audio, self.source)
            self.sr, self.channels, declared = int(sample_rate), self.array.shape[1], len(self.array)
        if not self.sr > 0:
            raise AudioError(f"{self.source}: invalid sample rate {self.sr}")
        self.channel: int | None = None  # None: mix all channels; else use this one
        self._scan(declared)

    def _check_file(self) -> None:
        if not self.path.exists():
            raise AudioError(f"{self.path}: no such file")
        if self.path.is_dir():
            raise AudioError(f"{self.path}: is a folder, not an audio file")
        if self.path.stat().st_size == 0:
            raise AudioError(f"{self.path}: the file is empty (0 bytes)")
        try:
            sf.info(str(self.path))
        except Exception as exc:  # noqa: BLE001 - libsndfile raises several types for bad files
            raise AudioError(f"{self.path}: cannot decode audio ({exc})") from exc

    def _raw_blocks(self):
        """``[n, channels]`` float32 blocks at the input's own rate."""
        size = int(BLOCK_SECONDS * self.sr)
        if self.array is not None:
            for i in range(0, len(self.array), size):
                yield self.array[i:i + size]
            return
        try:
            with sf.SoundFile(str(self.path)) as f:
                for block in f.blocks(blocksize=size, dtype="float32", always_2d=True):
                    yield block
        except Exception as exc:  # noqa: BLE001 - corrupt data may show only while decoding
            raise AudioError(f"{self.path}: cannot decode audio ({exc})") from exc

    def _scan(self, declared: int) -> None:
        n, peak, clipped, mix_energy, channel_energy = 0, 0.0, 0, 0.0, 0.0
        for block in self._raw_blocks():
            if not np.all(np.isfinite(block)):
                raise AudioError(f"{self.source}: the audio holds NaN or infinite samples")
            n += len(block)
            mono = block.mean(axis=1)
            peak = max(peak, float(np.max(np.abs(mono))) if len(mono) else 0.0)
            clipped += int(np.sum(np.abs(block) >= CLIP_LEVEL))
            mix_energy += float(np.sum(mono.astype(np.float64) ** 2))
            channel_energy += float(np.sum(block.astype(np.float64) ** 2)) / block.shape[1]
        if n == 0:
            raise AudioError(f"{self.source}: the audio is empty (0 samples)")
        if self.path is not None and n < declared:
            warnings.warn(f"{self.source}: the header announces {declared / self.sr:.1f} s but the file holds "
                          f"{n / self.sr:.1f} s (truncated?); transcribing what is there", AudioWarning,
                          stacklevel=3)
        if clipped > CLIPPED_SHARE * n * self.channels:
            warnings.warn(f"{self.source}: {100 * clipped / (n * self.channels):.1f} % of the samples are clipped "
                          "at full scale; expect extra notes", AudioWarning, stacklevel=3)
        if self.channels > 1 and channel_energy > 0 and mix_energy < channel_energy * 10 ** (-CANCEL_DB / 10):
            warnings.warn(f"{self.source}: the channels cancel in the mono mix (one has inverted polarity?); "
                          "transcribing the first channel alone", AudioWarning, stacklevel=3)
            self.channel = 0
            peak = max(float(np.max(np.abs(block[:, 0]))) for block in self._raw_blocks())
        self.n_in = n
        self.n_samples = int(round(n * self.target_sr / self.sr))
        self.peak = 1.0
        if peak > 0 and self.sr != self.target_sr:  # the peak after resampling, as Magenta normalises
            peak = max(float(np.max(np.abs(b))) for b in self.blocks())
        self.peak = peak
        if peak == 0.0:
            warnings.warn(f"{self.source}: the audio is completely silent", SilentAudioWarning, stacklevel=3)

    @property
    def seconds(self) -> float:
        """Duration in seconds."""
        return self.n_samples / self.target_sr

    def blocks(self):
        """Yield mono, resampled, peak-normalised float32 blocks; ``n_samples`` samples in all."""
        import soxr

        stream = soxr.ResampleStream(self.sr, self.target_sr, 1, dtype="float32") if self.sr != self.target_sr else None
        scale = 1.0 / self.peak if self.peak > 0 else 1.0
        emitted = 0
        raw = self._raw_blocks()
        while emitted < self.n_samples:
            block = next(raw, None)
            if block is None:
                out = stream.resample_chunk(np.zeros(0, np.float32), last=True) if stream is not None else None
                out = np.zeros(0, np.float32) if out is None else out
                if len(out) == 0:  # pad the few samples a resampler may leave short
                    out = np.zeros(self.n_samples - emitted, np.float32)
                stream = None
            else:
                mono = block[:, self.channel] if self.channel is not None else block.mean(axis=1)
                out = stream.resample_chunk(np.ascontiguousarray(mono)) if stream is not None else mono
            out = (np.asarray(out, np.float32) * scale)[: self.n_samples - emitted]
            emitted += len(out)
            if len(out):
                yield out

    def read(self) -> np.ndarray:
        """All samples at once (for short audio, plots and tests)."""
        return np.concatenate(list(self.blocks())) if self.n_samples else np.zeros(0, np.float32)


def prepare_samples(samples: np.ndarray, sr: int, target_sr: int = SAMPLE_RATE,
                    source: str = "audio") -> np.ndarray:
    """Mono mix-down, checks, resampling and peak normalisation of a sample buffer (see :class:`AudioSource`).

    ``samples`` is ``[n]``, ``[n, channels]`` or ``[channels, n]`` at ``sr`` Hz.
    """
    return AudioSource(samples, sr, source, target_sr).read()


def load_audio(path: str | os.PathLike, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Read an audio file as mono float32 samples at ``sr`` Hz, peak-normalised (see :class:`AudioSource`)."""
    return AudioSource(path, target_sr=sr).read()


def _hz_to_htk_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def _htk_mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filters() -> np.ndarray:
    """The ``[229, 1025]`` float32 HTK mel filterbank with Slaney area normalisation.

    The same matrix as ``librosa.filters.mel(sr=16000, n_fft=2048, n_mels=229, fmin=30, htk=True)`` (a test holds
    them equal): triangles between ``N_MELS + 2`` points evenly spaced on the HTK mel scale, each scaled to unit
    area. Computed here because importing librosa's filters loads all of librosa's numba kernels (seconds at every
    transcription, more than the whole log-mel of a minute of audio).
    """
    assert MEL_HTK, "only the HTK mel scale is implemented"
    fft_hz = np.linspace(0.0, SAMPLE_RATE / 2.0, 1 + N_FFT // 2)
    edges = _htk_mel_to_hz(np.linspace(_hz_to_htk_mel(FMIN), _hz_to_htk_mel(FMAX), N_MELS + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


@functools.lru_cache(maxsize=1)
def _analysis() -> tuple[np.ndarray, np.ndarray]:
    """The periodic Hann window ``[N_FFT]`` and the mel filterbank, computed once per process."""
    return scipy.signal.get_window("hann", N_FFT, fftbins=True).astype(np.float32), mel_filters()


def log_mel(samples: np.ndarray, center: bool = True) -> np.ndarray:
    """Log-mel spectrogram ``[frames, 229]`` float32 of 16 kHz samples.

    Power mel spectrogram (n_fft 2048, hop 512, periodic Hann window, HTK mel bins from 30 Hz),
    then ``power_to_db`` with ``ref=1`` (so values are roughly -100..+40 dB) and librosa's
    default ``top_db=80`` clipping below the loudest bin: librosa's ``melspectrogram`` and
    ``power_to_db`` (a test holds them equal), in numpy. With ``center=True`` (default)
    frame ``i`` is centred at ``i * 512 / 16000`` s (zeros beyond both ends) and there are
    ``1 + n // 512`` frames; with ``center=False`` frame ``i`` starts at sample ``512 i``.
    """
    window, filters = _analysis()
    samples = np.asarray(samples, dtype=np.float32)
    if center:
        samples = np.pad(samples, N_FFT // 2)
    if len(samples) < N_FFT:
        raise ValueError(f"log_mel: {len(samples)} samples, fewer than one {N_FFT}-sample frame")
    frames = np.lib.stride_tricks.sliding_window_view(samples, N_FFT)[::HOP_LENGTH]
    spectrum = scipy.fft.rfft(frames * window, axis=1)  # [frames, 1025] complex64
    power = spectrum.real ** 2 + spectrum.imag ** 2
    db = 10.0 * np.log10(np.maximum(AMIN, (filters @ power.T).T))
    return np.maximum(db, db.max() - TOP_DB).astype(np.float32)


def write_wav(path: str | os.PathLike, samples: np.ndarray, sr: int = SAMPLE_RATE) -> None:
    """Write float samples as 16-bit PCM WAV atomically (temporary file, then rename)."""
    from .io import atomic_path

    with atomic_path(path) as tmp:
        sf.write(str(tmp), np.clip(samples, -1.0, 1.0), sr, subtype="PCM_16", format="WAV")
