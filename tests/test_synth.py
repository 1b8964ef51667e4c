import numpy as np
import pretty_midi
import pytest

from piano_transcription.corpus.augment import add_noise, augment, codec_round_trip, random_eq, reverb
from piano_transcription.corpus.compose import compose, performance_midi
from piano_transcription.midi import make_notes
from piano_transcription.corpus.sampler import SalamanderPiano, note_number
from piano_transcription.corpus.synth import render_fluidsynth


def test_composed_performances_are_varied_and_reproducible():
    notes, pedal = compose(3, 40.0)
    again, _ = compose(3, 40.0)
    np.testing.assert_array_equal(notes, again)
    assert notes[:, 2].max() - notes[:, 2].min() > 36  # several octaves
    assert len(np.unique(notes[:, 3])) > 10  # dynamics
    assert pedal and all(0 <= v <= 127 for _, v in pedal)
    assert notes[:, 1].max() <= 41.0


def test_fluidsynth_render_and_empty_midi():
    pm = performance_midi(1, 5.0)
    audio = render_fluidsynth(pm)
    assert audio.dtype == np.float32 and abs(len(audio) / 16000 - pm.get_end_time()) < 1.5
    assert 0.5 < np.max(np.abs(audio)) <= 1.0
    silent = render_fluidsynth(pretty_midi.PrettyMIDI())
    assert len(silent) == 16000 and not silent.any()


def test_note_names():
    assert note_number("C4") == 60 and note_number("A0") == 21 and note_number("D#4") == 63
    with pytest.raises(ValueError):
        note_number("H2")


@pytest.fixture
def fake_salamander(tmp_path):
    """A sample cache like the Salamander one: sine 'recordings' of A/C/D#/F# in two velocity layers."""
    sr = 16000
    t = np.arange(sr) / sr
    data = {}
    for octave in range(1, 8):
        for name in ("A", "C", "D#", "F#"):
            pitch = note_number(f"{name}{octave}")
            for layer, amp in ((4, 0.2), (12, 0.8)):
                data[f"{name}{octave}v{layer}"] = (amp * np.sin(2 * np.pi * 440 * 2 ** ((pitch - 69) / 12) * t)
                                                    * np.exp(-t)).astype(np.float32)
    for k in range(1, 89):
        data[f"rel{k}"] = np.zeros(100, np.float32)
    np.savez(tmp_path / "cache.npz", **data)
    return SalamanderPiano(tmp_path / "cache.npz")


def test_sampler_pitch_shift_velocity_and_damping(fake_salamander):
    sr = 16000
    out = fake_salamander.render(make_notes([(0.1, 0.6, 62, 100)]), duration=1.5)  # D4: shifted from C4 or D#4
    seg = out[int(0.15 * sr): int(0.55 * sr)]
    f = np.fft.rfftfreq(len(seg), 1 / sr)[np.argmax(np.abs(np.fft.rfft(seg)))]
    assert abs(f - 293.66) < 4
    assert np.abs(out[int(1.2 * sr):]).max() < 0.05 * np.abs(seg).max()  # damped after the key-up
    soft = fake_salamander.render(make_notes([(0.1, 0.6, 62, 20)]), duration=1.0)
    assert np.abs(soft).max() < 0.6 * np.abs(out).max()  # the soft layer


def test_augmentations_keep_length_and_finite(rng):
    x = np.sin(np.arange(16000) / 5).astype(np.float32) * 0.5
    for y in (reverb(x, rng), random_eq(x, rng), add_noise(x, rng), codec_round_trip(x), augment(x, rng)):
        assert y.shape == x.shape and np.all(np.isfinite(y))
    assert np.max(np.abs(augment(x, rng))) <= 1.0
