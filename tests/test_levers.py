"""The training-audio levers of issue 25 (corpus.augment) and the training pipeline's log-mel augmentation."""

import numpy as np
import pytest

from piano_transcription.constants import FRAMES_PER_SECOND, SAMPLE_RATE
from piano_transcription.corpus.augment import (augment, check_levers, detune_audio, detune_notes, pitch_ratio,
                                                quiet_recording, room, velocity_curve, weak_fundamentals)
from piano_transcription.corpus.builder import _excerpt_levers, recording_excerpt
from piano_transcription.training.dataset import segment_generator
from piano_transcription.training.packed import mel_augmenter

SR = SAMPLE_RATE


def peak_frequency(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)), n=8 * len(x)))
    return float(np.argmax(spectrum) * SR / (8 * len(x)))


def test_detune_shifts_pitch_and_time_together():
    t = np.arange(2 * SR) / SR
    x = np.sin(2 * np.pi * 440.0 * t).astype(np.float32)
    up = detune_audio(x, 30.0)
    assert len(up) == pytest.approx(len(x) / pitch_ratio(30.0), abs=2)
    assert peak_frequency(up) == pytest.approx(440.0 * 2 ** (30 / 1200), abs=0.5)
    assert peak_frequency(detune_audio(x, -30.0)) == pytest.approx(440.0 * 2 ** (-30 / 1200), abs=0.5)
    assert np.array_equal(detune_audio(x, 0.0), x)
    notes = np.array([[1.0, 2.0, 69, 80], [3.0, 4.5, 21, 30]])
    moved = detune_notes(notes, 30.0)
    assert np.allclose(moved[:, :2], notes[:, :2] / pitch_ratio(30.0)) and np.array_equal(moved[:, 2:], notes[:, 2:])
    assert np.array_equal(detune_notes(notes, 150.0)[:, 2], [71, 23])  # beyond half a semitone: the next keys
    with pytest.raises(ValueError, match="off the keyboard"):
        detune_notes(notes, -100.0)  # A0 would fall below the keyboard
    assert np.array_equal(notes[:, 0], [1.0, 3.0])  # the input is left as it was


def test_room_keeps_length_and_level_and_rejects_silent_responses():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(SR) * np.exp(-np.arange(SR) / 4000)).astype(np.float32)
    long_ir = (rng.standard_normal(3 * SR) * np.exp(-np.arange(3 * SR) / SR)).astype(np.float32)  # 3 s > 1 s excerpt
    long_ir[0] = 5.0
    for wet in (0.0, 0.5, 1.0):
        y = room(x, long_ir, wet)
        assert y.shape == x.shape and np.all(np.isfinite(y))
        assert np.sqrt(np.mean(y ** 2)) == pytest.approx(np.sqrt(np.mean(x ** 2)), rel=1e-4)
    assert np.allclose(room(x, long_ir, 0.0), x, atol=1e-6)
    wet = room(x, long_ir, 1.0)
    assert np.sqrt(np.mean(wet[SR // 2:] ** 2)) > 3 * np.sqrt(np.mean(x[SR // 2:] ** 2))  # the room rings on
    for silent in (np.zeros(4000, np.float32), np.array([], np.float32), np.full(10, np.nan, np.float32)):
        with pytest.raises(ValueError, match="silent"):
            room(x, silent, 0.5)
    with pytest.raises(ValueError, match="wet"):
        room(x, long_ir, 1.5)
    assert np.array_equal(room(np.zeros(100, np.float32), long_ir, 0.5), np.zeros(100, np.float32))


def test_dynamics_lever_parts():
    v = np.array([1, 20, 40, 64, 100, 127])
    assert np.array_equal(velocity_curve(v, 1.0), v)
    soft = velocity_curve(v, 1.6)
    assert soft[1] / v[1] < soft[4] / v[4] < 1.0 and soft[-1] == 127 and soft.min() >= 1
    rng = np.random.default_rng(1)
    x = np.sin(np.arange(SR) / 7).astype(np.float32)
    y = quiet_recording(x, rng, level_db=(-40.0, -40.0), floor_db=(-90.0, -90.0))
    assert y.shape == x.shape
    assert 20 * np.log10(np.max(np.abs(y))) == pytest.approx(-40.0, abs=0.1)
    assert np.allclose(y * 32767, np.round(y * 32767), atol=1e-3)  # 16-bit samples
    assert np.array_equal(quiet_recording(np.zeros(50, np.float32), rng), np.zeros(50, np.float32))


def test_bass_lever_weakens_fundamentals_not_harmonics():
    t = np.arange(2 * SR) / SR
    rms = lambda y: float(np.sqrt(np.mean(y[SR // 2:] ** 2)))  # noqa: E731 - after the filter has settled
    for hz, low, high in ((40.0, 0.0, 0.25), (1000.0, 0.95, 1.01)):
        x = np.sin(2 * np.pi * hz * t).astype(np.float32)
        y = weak_fundamentals(x, np.random.default_rng(0), probability=1.0, cutoff_hz=(100.0, 100.0))
        assert y.shape == x.shape and low <= rms(y) / rms(x) <= high
    x = np.sin(2 * np.pi * 40.0 * t).astype(np.float32)
    assert np.array_equal(weak_fundamentals(x, np.random.default_rng(0), probability=0.0), x)


def test_levers_are_checked_and_leave_the_other_steps_alone():
    with pytest.raises(ValueError, match="unknown augmentation lever stretch"):
        check_levers(["detune", "stretch"])
    x = (np.sin(np.arange(2 * SR) / 9) * np.exp(-np.arange(2 * SR) / SR)).astype(np.float32)
    base = augment(x, np.random.default_rng(3))
    assert np.array_equal(base, augment(x, np.random.default_rng(3)))  # reproducible
    # without measured rooms the rooms lever has nothing to change: the chain draws exactly what it drew
    assert np.array_equal(base, augment(x, np.random.default_rng(3), levers={"rooms"}))
    ir = np.exp(-np.arange(8000) / 2000.0).astype(np.float32) * np.random.default_rng(0).standard_normal(8000)
    assert np.all(np.isfinite(augment(x, np.random.default_rng(3), [ir], levers={"rooms", "dynamics"})))


def test_detuned_recording_excerpt_labels_follow_the_audio():
    """A recording of clicks at known times: with the detune lever, every onset label lands where the audio's
    click is, 13 s into the excerpt included (where +-20 cents moves a label by 5 frames)."""
    times = [3.0, 8.0, 12.0, 15.0, 16.0]
    samples = np.zeros(40 * SR, np.float32)
    burst = np.sin(2 * np.pi * 440.0 * np.arange(1600) / SR) * np.exp(-np.arange(1600) / 400)
    for t in times:
        samples[int(t * SR): int(t * SR) + 1600] += burst
    notes = np.array([[t, t + 0.1, 69, 80] for t in times])
    seed = next(s for s in range(100) if abs(_excerpt_levers(frozenset({"detune"}), np.random.default_rng(s))[0]) > 20)
    cents = _excerpt_levers(frozenset({"detune"}), np.random.default_rng(seed))[0]
    ex = recording_excerpt(samples, notes, 2.5, np.random.default_rng(0), None, {"detune"},
                           np.random.default_rng(seed))
    label_frames = np.flatnonzero(np.diff(ex.rolls.onsets[:, 69 - 21], prepend=0) > 0)
    energy = ex.mel.max(axis=1)
    audio_frames = np.flatnonzero((energy[1:] - energy[:-1] > 20))
    audio_frames = audio_frames[np.diff(audio_frames, prepend=-10) > 3] + 1
    assert len(label_frames) == len(audio_frames) == len(times)
    assert np.all(np.abs(label_frames - audio_frames) <= 1), (cents, label_frames, audio_frames)
    undetuned = (np.array(times) - 2.5) * FRAMES_PER_SECOND
    assert np.abs(label_frames[-1] - undetuned[-1]) >= 4  # the test would see unscaled labels


def test_log_mel_augmentation_in_the_training_input(tmp_path):
    from piano_transcription.training.labels import notes_to_rolls
    from piano_transcription.training.maestro import Example, save_shard

    rng = np.random.default_rng(0)
    mel = rng.uniform(-60, 20, (626, 229)).astype(np.float32)
    rolls = notes_to_rolls(np.array([[1.0, 2.0, 60, 64]]), n_frames=626)
    save_shard(tmp_path / "a.npz", [Example(mel, rolls, 626, None)] * 2)
    paths = [str(tmp_path / "a.npz")]
    plain = [m for m, _ in segment_generator(paths, True, 0, False, frames=100)]
    gain = mel_augmenter("gain")
    quieter = [m for m, _ in segment_generator(paths, True, 0, False, frames=100, mel_augment=gain)]
    shifts = [float(np.median(q - p)) for p, q in zip(plain, quieter)]
    assert all(-12.0 <= s <= 0.0 for s in shifts) and shifts[0] != shifts[1]  # same crops, a new gain each
    assert all(np.allclose(q - p, s, atol=1e-4) for p, q, s in zip(plain, quieter, shifts))
    assert mel_augmenter(None) is None
    with pytest.raises(ValueError, match="unknown log-mel augmentation"):
        mel_augmenter("reverb")
