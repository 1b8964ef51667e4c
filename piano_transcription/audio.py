"""Audio loading and the log-mel front end.

``load_audio`` reads WAV, FLAC, OGG and MP3 (through libsndfile, bundled with the
``soundfile`` wheel), mixes down to mono, resamples to 16 kHz and peak-normalises
as Magenta does.  ``log_mel`` computes the network input ``[frames, 229]``.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import struct
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf

from .constants import AMIN, FMAX, FMIN, HOP_LENGTH, MEL_HTK, N_FFT, N_MELS, SAMPLE_RATE, TOP_DB
from .native_logs import filtered_stderr

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


MAX_CHANNELS = 64  # an array axis longer than this is samples, never channels


def _as_frames(samples: np.ndarray, source: str) -> np.ndarray:
    """``[n]``, ``[n, channels]`` or channels-first ``[channels, n]`` as float32 ``[n, channels]``: of a 2-D array's
    two axes the shorter one holds the channels; a square array, or one whose shorter axis is longer than
    :data:`MAX_CHANNELS`, is refused (AudioError) because samples and channels cannot be told apart."""
    samples = np.asarray(samples)
    how = "pass mono audio as [samples] or several channels as [samples, channels]"
    if samples.ndim == 1:
        samples = samples[:, None]
    elif samples.ndim == 2:
        if samples.shape[0] == samples.shape[1] > 1 or min(samples.shape) > MAX_CHANNELS:
            raise AudioError(f"{source}: cannot tell samples from channels in an array of shape {samples.shape} "
                             f"(at most {MAX_CHANNELS} channels, on the shorter axis); {how}")
        if samples.shape[0] < samples.shape[1]:
            samples = samples.T  # channels first
    else:
        raise AudioError(f"{source}: expected mono, [samples, channels] or [channels, samples] audio, "
                         f"got shape {samples.shape}; {how}")
    if samples.size == 0:
        raise AudioError(f"{source}: the audio is empty (0 samples)")
    if np.issubdtype(samples.dtype, np.integer):
        samples = samples.astype(np.float32) / float(np.iinfo(samples.dtype).max)
    elif not np.issubdtype(samples.dtype, np.floating):
        raise AudioError(f"{source}: audio samples must be numbers, got {samples.dtype}")
    return samples.astype(np.float32, copy=False)


def sample_rate_hz(value, source: str = "audio") -> int:
    """A sample rate (Hz) as a whole positive number: 44100 or 44100.0, never a silently truncated 44100.5."""
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise AudioError(f"{source}: the sample rate must be a number of Hz, got {value!r}") from None
    if not (np.isfinite(rate) and rate > 0 and rate == int(rate)):
        raise AudioError(f"{source}: the sample rate must be a whole positive number of Hz, got {value!r}")
    return int(rate)


UNKNOWN_WAV_SIZES = (0, 0xFFFFFFFF)  # a data-chunk size a streaming recorder writes before it knows the length


def wav_data_chunk(path: Path) -> tuple[int, int] | None:
    """``(offset, size)`` in bytes of a RIFF WAV file's ``data`` chunk as its header announces it, else None
    (not a RIFF WAV, or no data chunk header)."""
    import struct

    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
                return None
            order = "<" if head[:4] == b"RIFF" else ">"
            while True:
                chunk = f.read(8)
                if len(chunk) < 8:
                    return None
                cid, size = chunk[:4], struct.unpack(order + "I", chunk[4:])[0]
                if cid == b"data":
                    return f.tell(), size
                f.seek(size + (size & 1), 1)
    except OSError:
        return None


def wav_unannounced_bytes(path: Path) -> int:
    """Bytes of audio after the end a WAV header announces (a recorder that stopped before it rewrote the
    header): the file's bytes past the data chunk, when they are not another chunk. 0 for an unknown (streamed)
    length, a file that ends where announced, or a non-WAV."""
    found = wav_data_chunk(path)
    if found is None or found[1] in UNKNOWN_WAV_SIZES:
        return 0
    offset, size = found
    end = offset + size + (size & 1)
    extra = path.stat().st_size - end
    if extra <= 8:
        return 0
    with open(path, "rb") as f:
        f.seek(end)
        cid = f.read(4)
    return 0 if cid.isascii() and cid.isalnum() or cid in (b"LIST", b"id3 ", b"ID3 ") else extra


def wav_announced_frames(path: Path, channels: int, subtype: str) -> int:
    """Frames a PCM WAV header announces (libsndfile reports what the file holds), else 0 (unknown or not WAV)."""
    found = wav_data_chunk(path)
    if found is None or found[1] in UNKNOWN_WAV_SIZES:
        return 0
    return found[1] // (channels * wav_sample_bytes(subtype))


def ogg_ends_cleanly(path: Path) -> bool:
    """Whether an Ogg file's last page is complete and carries the end-of-stream flag (a truncated Ogg
    Vorbis / Opus file decodes without error, just shorter); True for other formats."""
    with open(path, "rb") as f:
        if f.read(4) != b"OggS":
            return True
        size = path.stat().st_size
        f.seek(max(0, size - 65536))
        tail = f.read()
    last = tail.rfind(b"OggS")
    if last < 0 or len(tail) - last < 27:
        return False
    page = tail[last:]
    segments = page[26]
    if len(page) < 27 + segments:
        return False
    body = sum(page[27:27 + segments])
    return bool(page[5] & 0x04) and len(page) >= 27 + segments + body


def check_audio_file(path: str | os.PathLike) -> Path:
    """The path of a file that exists, can be read and holds audio libsndfile can open, else AudioError with
    the true reason (no such file, a symlink loop, a folder, permission denied, empty, not audio)."""
    return audio_file_info(path)[0]


def audio_file_info(path: str | os.PathLike, decoder_line=None):
    """``(path, soundfile info)`` of a file :func:`check_audio_file` accepts; ``decoder_line`` sees mpg123's
    lines while it opens (default: dropped)."""
    path = Path(os.fsdecode(path))
    try:
        with open(path, "rb") as f:
            f.read(1)
    except IsADirectoryError:
        raise AudioError(f"{path}: is a folder, not an audio file") from None
    except OSError as exc:
        reason = {errno.ENOENT: "no such file", errno.ELOOP: "a symbolic link loop (the link points back at "
                  "itself)"}.get(exc.errno, exc.strerror or str(exc))
        raise AudioError(f"{path}: {reason}") from None
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: the file is empty (0 bytes)")
    try:
        with filtered_stderr(decoder_line or _decoder_note):
            info = sf.info(str(path))
    except Exception as exc:  # noqa: BLE001 - libsndfile raises several types for bad files
        kind = "" if path.suffix.lower() in AUDIO_EXTENSIONS else \
            f"; not an audio file? (supported: {', '.join(AUDIO_EXTENSIONS)})"
        raise AudioError(f"{path}: cannot decode audio ({exc}){kind}") from exc
    return path, info


def _decoder_note(line: str) -> bool:
    """mpg123's lines inside libsndfile (``Warning: Xing stream size ...``, ``[src/libmpg123/...] error: ...``):
    dropped here; :class:`AudioSource` turns what they mean into one warning of its own."""
    return "libmpg123" in line or line.startswith(("Warning: Xing", "Note: Illegal Audio-MPEG-Header",
                                                  "Note: Trying to resync", "Note: Skipped"))


NOISE_FLATNESS = 0.3  # spectral flatness (50 Hz - 8 kHz) above which the audio is mostly broadband noise:
# piano recordings measured 0.0004 (the demo) to 0.013 (MAPS software pianos), the Disklavier room recordings of
# real_dev at most 0.002, the demo under white noise 0.13 at 10 dB SNR and 0.57 at 0 dB, white noise 1.0
FLATNESS_SEGMENT = 2048  # samples per spectrum of the flatness estimate
FLATNESS_STRIDE = 8  # one segment in this many is analysed (the estimate costs ~1 % of the decode)
KEEP_SECONDS = 600.0  # audio up to this long keeps its 16 kHz mono samples from the first pass (38 MB for 10
# minutes), so that it is decoded and resampled once, not twice; longer audio streams in both passes
DAMAGED_STEP_SECONDS = 0.5  # a block that fails to decode is read again in steps this long, up to the damage
MIN_SECONDS = HOP_LENGTH / SAMPLE_RATE  # shorter audio than one frame hop holds nothing to transcribe


def mix_down(block: np.ndarray) -> np.ndarray:
    """Mono mix ``[n]`` of a ``[n, channels]`` float32 block: bit for bit ``block.mean(axis=1)``, which numpy
    computes about 20x slower for a few channels (a strided reduction: a third of a second per 10 minutes of
    stereo)."""
    channels = block.shape[1]
    if channels == 1:
        return block[:, 0].copy()
    if channels >= 8:  # numpy sums 8 or more elements pairwise: keep its own order
        return block.mean(axis=1)
    total = block[:, 0] + block[:, 1]
    for c in range(2, channels):
        total += block[:, c]
    return total / np.float32(channels)


def spectral_flatness(power: np.ndarray) -> float:
    """Geometric over arithmetic mean of a power spectrum (1: white noise; piano: about 0.01 or less)."""
    power = np.asarray(power, np.float64) + 1e-30
    return float(np.exp(np.mean(np.log(power))) / np.mean(power))


def _block_power(mono: np.ndarray, sr: int) -> np.ndarray:
    """Summed power spectrum (50 Hz .. min(8 kHz, Nyquist)) of every ``FLATNESS_STRIDE``-th segment of a block."""
    n = len(mono) // FLATNESS_SEGMENT
    if n == 0:
        return np.zeros(0)
    segments = mono[: n * FLATNESS_SEGMENT].reshape(n, FLATNESS_SEGMENT)[::FLATNESS_STRIDE]
    hz = np.fft.rfftfreq(FLATNESS_SEGMENT, 1.0 / sr)
    band = (hz >= 50.0) & (hz <= min(8000.0, 0.45 * sr))
    spectrum = np.fft.rfft(segments * np.hanning(FLATNESS_SEGMENT).astype(np.float32), axis=1)[:, band]
    return (spectrum.real ** 2 + spectrum.imag ** 2).sum(axis=0)


class AudioSource:
    """Audio to transcribe, from a file (path) or an array with its sample rate, delivered as 16 kHz mono
    peak-normalised float32 blocks, so that a recording of any length is never in memory at once.

    A first pass reads the audio once to check it and find its peak: :class:`AudioError` for a missing,
    unreadable, empty, too short or non-finite input; :class:`SilentAudioWarning` for silence;
    :class:`AudioWarning` for clipped audio, for stereo whose channels cancel in the mono mix (then the first
    channel is used instead), for audio that is mostly broadband noise, and for a file that is shorter or longer
    than its header says (a truncated FLAC, MP3 or Ogg file: what decodes is transcribed; a WAV whose header
    announces less than the file holds).  Resampling streams through soxr.  ``n_samples`` is the length at
    ``target_sr``; :meth:`blocks` yields exactly that many samples.
    """

    def __init__(self, audio, sample_rate: int | None = None, source: str | None = None,
                 target_sr: int = SAMPLE_RATE):
        self.target_sr = int(target_sr)
        self.path: Path | None = None
        self.array: np.ndarray | None = None
        self.decode_stop: int | None = None  # frames after which the file stopped decoding (damaged / truncated)
        self._xing = False  # mpg123 said the MP3's stream size differs from its header's
        if isinstance(audio, bytes):
            audio = os.fsdecode(audio)
        if isinstance(audio, (str, os.PathLike)):
            self.path, info = audio_file_info(audio, self._decoder_line)
            self.source = source or str(self.path)
            self.sr, self.channels = int(info.samplerate), int(info.channels)
            self.subtype = str(info.subtype)
            declared = wav_announced_frames(self.path, self.channels, self.subtype) or int(info.frames)
        else:
            self.source = source or "samples"
            if sample_rate is None:
                raise AudioError(f"{self.source}: give the sample rate of an audio array (sample_rate=...)")
            self.array = _as_frames(audio, self.source)
            self.sr, self.channels, declared = sample_rate_hz(sample_rate, self.source), self.array.shape[1], \
                len(self.array)
        self.channel: int | None = None  # None: mix all channels; else use this one
        self._scan(declared)

    def _decoder_line(self, line: str) -> bool:
        if "Xing stream size" in line:
            self._xing = True
        return _decoder_note(line)

    def _raw_blocks(self):
        """``[n, channels]`` float32 blocks at the input's own rate; a file that stops decoding part-way (a
        damaged or truncated file) ends there (``decode_stop``), one that cannot be decoded at all is an AudioError."""
        size = int(BLOCK_SECONDS * self.sr)
        if self.array is not None:
            for i in range(0, len(self.array), size):
                yield self.array[i:i + size]
            return
        done = 0
        for step in (size, int(DAMAGED_STEP_SECONDS * self.sr)):  # the second pass: what decodes of a damaged block
            try:
                with filtered_stderr(self._decoder_line):
                    f = sf.SoundFile(str(self.path))
                with f:
                    f.seek(done)
                    while True:
                        with filtered_stderr(self._decoder_line):
                            block = f.read(step, dtype="float32", always_2d=True)
                        if len(block) == 0:
                            return
                        done += len(block)
                        yield block
            except Exception as exc:  # noqa: BLE001 - corrupt data may show only while decoding
                error = exc
        if done == 0:
            raise AudioError(f"{self.path}: cannot decode audio ({error})") from error
        self.decode_stop = done

    def _scan(self, declared: int) -> None:
        import soxr

        n, peak, clipped, mix_energy, channel_energy, power = 0, 0.0, 0, 0.0, 0.0, 0.0
        # the peak after resampling (Magenta normalises the 16 kHz samples), found in this pass, not in another
        stream = soxr.ResampleStream(self.sr, self.target_sr, 1, dtype="float32") if self.sr != self.target_sr else None
        resampled_peak = 0.0
        kept, limit = [], KEEP_SECONDS * self.target_sr  # the 16 kHz mono samples, while the audio is short
        for block in self._raw_blocks():
            if not np.all(np.isfinite(block)):
                raise AudioError(f"{self.source}: the audio holds NaN or infinite samples")
            n += len(block)
            mono = mix_down(block)
            peak = max(peak, float(np.max(np.abs(mono))) if len(mono) else 0.0)
            clipped += int(np.sum(np.abs(block) >= CLIP_LEVEL))
            mix_energy += float(np.vdot(mono, mono))
            channel_energy += float(np.vdot(block, block)) / block.shape[1]
            block_power = _block_power(mono, self.sr)
            power = power + block_power if len(block_power) else power
            out = stream.resample_chunk(np.ascontiguousarray(mono)) if stream is not None else mono
            if stream is not None:
                resampled_peak = max(resampled_peak, float(np.max(np.abs(out))) if len(out) else 0.0)
            if kept is not None and n * self.target_sr / self.sr > limit:
                kept = None  # too long to keep: the second pass streams
            if kept is not None:
                kept.append(out)
        if stream is not None:
            out = stream.resample_chunk(np.zeros(0, np.float32), last=True)
            resampled_peak = max(resampled_peak, float(np.max(np.abs(out))) if len(out) else 0.0)
            if kept is not None:
                kept.append(out)
        if n == 0:
            raise AudioError(f"{self.source}: the audio is empty (0 samples)")
        if n / self.sr < MIN_SECONDS:
            raise AudioError(f"{self.source}: too short to transcribe ({n} samples, {1000 * n / self.sr:.2f} ms; "
                             f"at least {1000 * MIN_SECONDS:.0f} ms)")
        self._warn_about_length(n, declared)
        if clipped > CLIPPED_SHARE * n * self.channels:
            warnings.warn(f"{self.source}: {100 * clipped / (n * self.channels):.1f} % of the samples are clipped "
                          "at full scale; expect extra notes", AudioWarning, stacklevel=3)
        if self.channels > 1 and channel_energy > 0 and mix_energy < channel_energy * 10 ** (-CANCEL_DB / 10):
            warnings.warn(f"{self.source}: the channels cancel in the mono mix (one has inverted polarity?); "
                          "transcribing the first channel alone", AudioWarning, stacklevel=3)
            self.channel = 0
            kept = None  # the mix is not what will be transcribed
            peak = max(float(np.max(np.abs(block[:, 0]))) for block in self._raw_blocks())
        if peak > 0 and np.ndim(power) and spectral_flatness(power) > NOISE_FLATNESS:
            warnings.warn(f"{self.source}: the audio is mostly broadband noise, not piano (spectral flatness "
                          f"{spectral_flatness(power):.2f}); expect false notes", AudioWarning, stacklevel=3)
        self.n_in = n
        self.n_samples = int(round(n * self.target_sr / self.sr))
        self._kept = kept
        self.peak = 1.0
        if peak > 0 and self.sr != self.target_sr:  # the peak after resampling, as Magenta normalises
            peak = resampled_peak if self.channel is None else max(float(np.max(np.abs(b))) for b in self.blocks())
        self.peak = peak
        if peak == 0.0:
            warnings.warn(f"{self.source}: the audio is completely silent", SilentAudioWarning, stacklevel=4)

    def _warn_about_length(self, n: int, declared: int) -> None:
        """One warning when the file holds other than what its header announces (see the class docstring)."""
        if self.path is None:
            return
        said = f"{self.source}: the header announces {declared / self.sr:.1f} s but"
        if self.decode_stop is not None:
            message = (f"{said} decoding stopped at {n / self.sr:.1f} s (a damaged or truncated file); "
                       "transcribing what decoded")
        elif n < declared:
            message = f"{said} the file holds {n / self.sr:.1f} s (truncated?); transcribing what is there"
        elif self._xing:
            message = (f"{self.source}: the MP3 holds less than its header announces (truncated?); the missing "
                       "end is transcribed as silence")
        elif not ogg_ends_cleanly(self.path):
            message = f"{self.source}: the Ogg stream has no proper end (truncated?); transcribing what is there"
        else:
            extra = wav_unannounced_bytes(self.path)
            if not extra:
                return
            block = self.channels * wav_sample_bytes(self.subtype)
            message = (f"{said} the file holds about {(declared + extra // block) / self.sr:.1f} s of audio "
                       f"(a header not updated when the recording ended?); only {n / self.sr:.1f} s transcribed")
        warnings.warn(message, AudioWarning, stacklevel=4)

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
        kept = getattr(self, "_kept", None)
        raw = iter([b[:, None] for b in kept]) if kept is not None else self._raw_blocks()
        stream = None if kept is not None else stream  # kept samples are mono at the target rate already
        while emitted < self.n_samples:
            block = next(raw, None)
            if block is None:
                out = stream.resample_chunk(np.zeros(0, np.float32), last=True) if stream is not None else None
                out = np.zeros(0, np.float32) if out is None else out
                if len(out) == 0:  # pad the few samples a resampler may leave short
                    out = np.zeros(self.n_samples - emitted, np.float32)
                stream = None
            else:
                mono = block[:, self.channel] if self.channel is not None else mix_down(block)
                out = stream.resample_chunk(np.ascontiguousarray(mono)) if stream is not None else mono
            out = (np.asarray(out, np.float32) * scale)[: self.n_samples - emitted]
            emitted += len(out)
            if len(out):
                yield out

    def read(self) -> np.ndarray:
        """All samples at once (for short audio, plots and tests)."""
        return np.concatenate(list(self.blocks())) if self.n_samples else np.zeros(0, np.float32)


def wav_sample_bytes(subtype: str) -> int:
    """Bytes per sample of a PCM WAV subtype (libsndfile's name), 2 when unknown."""
    return {"PCM_U8": 1, "PCM_S8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8,
            "ULAW": 1, "ALAW": 1}.get(subtype, 2)


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
    periodic_hann = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(N_FFT) / N_FFT)  # scipy's get_window("hann")
    return periodic_hann.astype(np.float32), mel_filters()


def log_mel(samples: np.ndarray, center: bool = True) -> np.ndarray:
    """Log-mel spectrogram ``[frames, 229]`` float32 of 16 kHz samples.

    Power mel spectrogram (n_fft 2048, hop 512, periodic Hann window, HTK mel bins from 30 Hz),
    then ``power_to_db`` with ``ref=1`` (so values are roughly -100..+40 dB) and librosa's
    default ``top_db=80`` clipping below the loudest bin: librosa's ``melspectrogram`` and
    ``power_to_db`` (a test holds them equal), in numpy. With ``center=True`` (default)
    frame ``i`` is centred at ``i * 512 / 16000`` s (zeros beyond both ends) and there are
    ``1 + n // 512`` frames; with ``center=False`` frame ``i`` starts at sample ``512 i``.
    """
    import scipy.fft  # here, not at the top: its import is a tenth of a second of every command's start

    window, filters = _analysis()
    samples = np.asarray(samples, dtype=np.float32)
    if center:
        samples = np.pad(samples, N_FFT // 2)
    if len(samples) < N_FFT:
        raise ValueError(f"log_mel: {len(samples)} samples, fewer than one {N_FFT}-sample frame")
    frames = np.lib.stride_tricks.sliding_window_view(samples, N_FFT)[::HOP_LENGTH]
    spectrum = scipy.fft.rfft(frames * window, axis=1)  # [frames, 1025] complex64
    power = spectrum.real ** 2 + spectrum.imag ** 2
    with _one_blas_thread():
        mel = filters @ power.T
    db = 10.0 * np.log10(np.maximum(AMIN, mel.T))
    return np.maximum(db, db.max() - TOP_DB).astype(np.float32)


@functools.lru_cache(maxsize=1)
def _blas_controller():
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        return None
    return ThreadpoolController()


def _one_blas_thread():
    """The filterbank product on one BLAS thread.  OpenBLAS's other threads, once woken, spin for a while after
    the product and take a core from the FFT that follows: on the 2-core CPU, preparing 8 pieces of 240 s took
    5.4 s with two BLAS threads and 2.8 s with one (the product itself: 42 against 31 ms per 240 s)."""
    controller = _blas_controller()
    return controller.limit(limits=1, user_api="blas") if controller is not None else contextlib.nullcontext()


def write_wav(path: str | os.PathLike, samples: np.ndarray, sr: int = SAMPLE_RATE) -> None:
    """Write float samples as 16-bit PCM WAV atomically (temporary file, then rename)."""
    from .io import atomic_path

    with atomic_path(path) as tmp:
        sf.write(str(tmp), np.clip(samples, -1.0, 1.0), sr, subtype="PCM_16", format="WAV")
