import numpy as np
import pytest
import soundfile as sf

from piano_transcription.audio import (AudioError, SilentAudioWarning, load_audio, log_mel, mel_filters, normalize,
                                       prepare_samples)
from piano_transcription.constants import FRAMES_PER_SECOND, HOP_LENGTH, N_MELS, SAMPLE_RATE, frames_for_samples


def tone(freq=440.0, seconds=1.0, sr=SAMPLE_RATE, amp=0.5):
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("fmt,ext", [("WAV", ".wav"), ("FLAC", ".flac"), ("OGG", ".ogg"), ("MP3", ".mp3")])
def test_load_formats_resample_and_normalise(tmp_path, fmt, ext):
    path = tmp_path / f"a{ext}"
    stereo = np.stack([tone(440, 1.0, 44100, 0.3), tone(440, 1.0, 44100, 0.1)], axis=1)
    sf.write(path, stereo, 44100, format=fmt)
    x = load_audio(path)
    assert x.dtype == np.float32 and x.ndim == 1
    assert abs(len(x) - SAMPLE_RATE) < 0.01 * SAMPLE_RATE  # 1 s at 16 kHz (codecs may pad a little)
    assert np.isclose(np.max(np.abs(x)), 1.0, atol=1e-6)
    spectrum = np.abs(np.fft.rfft(x[:8000]))
    assert abs(np.argmax(spectrum) * SAMPLE_RATE / 8000 - 440) < 5  # the tone survived resampling


def test_missing_empty_corrupt_files(tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        load_audio(tmp_path / "nope.wav")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioError, match="empty"):
        load_audio(empty)
    corrupt = tmp_path / "corrupt.mp3"
    corrupt.write_bytes(b"this is not audio" * 100)
    with pytest.raises(AudioError, match="cannot decode"):
        load_audio(corrupt)
    zero_frames = tmp_path / "zero.wav"
    sf.write(zero_frames, np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError, match="empty"):
        load_audio(zero_frames)


def test_non_finite_and_silent():
    bad = tone()
    bad[10] = np.nan
    with pytest.raises(AudioError, match="NaN"):
        prepare_samples(bad, SAMPLE_RATE)
    with pytest.warns(SilentAudioWarning):
        out = prepare_samples(np.zeros(1000, np.float32), SAMPLE_RATE)
    assert not np.any(out)


def test_int_input_and_odd_rate():
    x = (tone(440, 0.5, 22050) * 32767).astype(np.int16)
    y = prepare_samples(x, 22050)
    assert y.dtype == np.float32 and abs(len(y) - 8000) <= 1
    assert normalize(np.array([0.0, -0.25], np.float32)).tolist() == [0.0, -1.0]


def test_log_mel_shape_and_frame_convention():
    x = np.zeros(SAMPLE_RATE * 2, np.float32)
    click_time = 1.0
    x[int(click_time * SAMPLE_RATE)] = 1.0
    mel = log_mel(x)
    assert mel.shape == (frames_for_samples(len(x)), N_MELS) == (1 + len(x) // HOP_LENGTH, 229)
    assert mel.dtype == np.float32
    # Frame i is centred at i * 512 / 16000 s: the click's energy peaks at the frame of its time.
    assert int(np.argmax(mel.sum(axis=1))) == round(click_time * FRAMES_PER_SECOND)
    # power_to_db(ref=1) with top_db=80: the dynamic range is at most 80 dB.
    assert mel.max() - mel.min() <= 80.0 + 1e-3


def test_log_mel_matches_librosa_melspectrogram(librosa):

    x = tone(261.6, 1.0)
    ref = librosa.power_to_db(librosa.feature.melspectrogram(y=x, sr=16000, n_fft=2048, hop_length=512, n_mels=229,
                                                             fmin=30, htk=True), ref=1.0).T
    np.testing.assert_allclose(log_mel(x), ref, atol=1e-3)


def test_mel_filters_and_uncentred_frames_match_librosa(librosa):

    ref = librosa.filters.mel(sr=16000, n_fft=2048, n_mels=229, fmin=30, htk=True)
    assert mel_filters().shape == ref.shape == (229, 1025)
    np.testing.assert_allclose(mel_filters(), ref, rtol=1e-5, atol=1e-8)
    x = np.random.default_rng(3).normal(0, 0.1, 5 * SAMPLE_RATE + 77).astype(np.float32)
    spec = np.abs(librosa.stft(x, n_fft=2048, hop_length=512, center=False)) ** 2
    want = librosa.power_to_db(ref @ spec, ref=1.0, top_db=80.0).T
    got = log_mel(x, center=False)
    assert got.shape == want.shape == (1 + (len(x) - 2048) // 512, 229)
    np.testing.assert_allclose(got, want, atol=1e-3)
    with pytest.raises(ValueError, match="fewer than one"):
        log_mel(np.zeros(2000, np.float32), center=False)


def test_short_audio_is_decoded_once_and_gives_the_streamed_samples(monkeypatch, tmp_path):
    """Up to KEEP_SECONDS the first pass keeps the 16 kHz samples; they equal those of a second streamed pass."""
    import soundfile as sf

    from piano_transcription import audio

    x = np.random.default_rng(0).normal(0, 0.1, (44100 * 3, 2)).astype(np.float32)
    sf.write(tmp_path / "x.wav", x, 44100, subtype="FLOAT")
    reads = []
    original = audio.AudioSource._raw_blocks

    def counting(self):
        reads.append(1)
        return original(self)

    monkeypatch.setattr(audio.AudioSource, "_raw_blocks", counting)
    kept = audio.AudioSource(tmp_path / "x.wav").read()
    assert len(reads) == 1
    monkeypatch.setattr(audio, "KEEP_SECONDS", 0.0)
    streamed = audio.AudioSource(tmp_path / "x.wav").read()
    assert len(reads) == 3 and np.array_equal(kept, streamed)


def test_mix_down_is_numpys_mean_bit_for_bit():
    from piano_transcription.audio import mix_down

    rng = np.random.default_rng(0)
    for channels in range(1, 10):
        block = rng.normal(0, 0.3, (5000, channels)).astype(np.float32)
        assert np.array_equal(mix_down(block), block.mean(axis=1)), channels
