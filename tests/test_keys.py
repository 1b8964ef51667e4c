"""Note lengths: key labels, the key head, key-release decoding, ``durations`` sounding / keys with CC64."""

import subprocess
import sys

import numpy as np
import pytest

from piano_transcription.constants import FRAMES_PER_SECOND, SAMPLE_RATE, SUSTAIN_CC
from piano_transcription.corpus.compose import compose
from piano_transcription.decode import StreamingDecoder, decode_notes, key_release_ends
from piano_transcription.midi import apply_sustain_pedal, last_event_time, pedal_intervals
from piano_transcription.predictor import Predictor
from piano_transcription.training.labels import key_rolls, notes_to_rolls, pedal_rolls
from piano_transcription.training.metrics import note_metrics
from piano_transcription.transcribe import transcribe


def performance(seed: int = 3, seconds: float = 20.0):
    """A composed performance with its keys (no pedal), the pedal intervals and the sounding notes."""
    keys, events = compose(seed, seconds)
    intervals = pedal_intervals(events, last_event_time(keys, events))
    return keys, intervals, apply_sustain_pedal(keys, intervals)


class LabelPredictor(Predictor):
    """A predictor whose "probabilities" are the label rolls of a known performance (an oracle), to test
    everything after the network: decoding, note ends, pedal, MIDI."""

    backend = "labels"

    def __init__(self, rolls: dict, with_keys: bool = True):
        self.rolls, self.with_keys = rolls, with_keys
        super().__init__(None)

    @property
    def has_pedal(self) -> bool:
        return True

    @property
    def has_keys(self) -> bool:
        return self.with_keys

    def stream(self, source, progress=False):
        n = len(self.rolls["frame"])
        for a in range(0, n, 100):
            yield {k: v[a:a + 100] for k, v in self.rolls.items() if k != "keys" or self.with_keys}


def oracle(keys, intervals, sounding, n_frames):
    rolls = notes_to_rolls(sounding, n_frames=n_frames)
    return {"onset": rolls.onsets.astype(np.float32), "frame": rolls.frames.astype(np.float32),
            "offset": rolls.offsets.astype(np.float32), "velocity": rolls.velocities,
            "pedal": pedal_rolls(intervals, n_frames).astype(np.float32),
            "keys": key_rolls(keys, n_frames).astype(np.float32)}


def test_key_labels_are_the_notes_without_the_pedal():
    keys, intervals, sounding = performance()
    n = 700
    held, sound = key_rolls(keys, n), notes_to_rolls(sounding, n_frames=n).frames
    assert held.shape == (n, 88) and held.sum() > 0
    assert np.all(held <= sound)  # a held key always sounds
    assert held.sum() < 0.8 * sound.sum()  # the composed performance pedals: notes sound longer than keys are held
    # outside the pedal the two agree
    up = pedal_rolls(intervals, n)[:, 0] == 0
    assert (held[up] != sound[up]).sum() < 0.05 * sound[up].sum()


def test_streaming_key_release_ends_equal_whole_roll_decoding():
    rng = np.random.default_rng(1)
    n = 400
    frame = (rng.random((n, 88)) < 0.3).astype(np.float32)
    frame = np.maximum(frame, np.roll(frame, 1, 0))  # longer runs
    onset = (rng.random((n, 88)) < 0.04).astype(np.float32)
    held = (rng.random((n, 88)) < 0.6).astype(np.float32)
    whole = key_release_ends(decode_notes(frame, onset), held)
    dec = StreamingDecoder(key_threshold=0.5)
    parts = [dec.feed(frame[a:a + 37], onset[a:a + 37], None, held[a:a + 37]) for a in range(0, n, 37)]
    got = np.concatenate(parts + [dec.finish()])
    got = got[np.lexsort((got[:, 2], got[:, 0]))]
    np.testing.assert_allclose(got, whole)
    sounding = decode_notes(frame, onset)
    assert np.all(whole[:, 1] <= sounding[:, 1]) and np.any(whole[:, 1] < sounding[:, 1])
    with pytest.raises(ValueError, match="key head"):
        StreamingDecoder(key_threshold=0.5).feed(frame, onset)


@pytest.mark.parametrize("seed", [3, 8])
def test_durations_keys_and_sounding_on_a_performance_with_known_pedal(seed):
    keys, intervals, sounding = performance(seed)
    n = int(20.0 * FRAMES_PER_SECOND) + 1
    rolls = oracle(keys, intervals, sounding, n)
    audio = np.zeros((n - 1) * 512, np.float32)
    kw = dict(sample_rate=SAMPLE_RATE, cleanup="none", tempo_map=False)
    keys_in = keys[keys[:, 0] < 19.5]
    sound_in = sounding[sounding[:, 0] < 19.5]

    by_keys = transcribe(audio, LabelPredictor(rolls), durations="keys", **kw)
    assert by_keys.durations == "keys"
    assert note_metrics(keys_in, by_keys.notes)["note_with_offset_f1"] > 0.9  # ends at key release
    assert note_metrics(sound_in, by_keys.notes)["note_with_offset_f1"] < 0.8  # ...not where the pedal lets go
    cc = [c for c in by_keys.midi.instruments[0].control_changes if c.number == SUSTAIN_CC]
    downs = np.array([c.time for c in cc if c.value >= 64])
    ups = np.array([c.time for c in cc if c.value < 64])
    want = intervals[intervals[:, 0] < 19.9]
    assert len(downs) == len(ups) == len(want)
    np.testing.assert_allclose(downs, want[:, 0], atol=1.5 / FRAMES_PER_SECOND)
    # played back with its pedal, the keys MIDI sounds like the performance
    replay = apply_sustain_pedal(by_keys.notes, by_keys.pedal)
    assert note_metrics(sound_in, replay)["note_with_offset_f1"] > 0.9

    by_sound = transcribe(audio, LabelPredictor(rolls), durations="sounding", **kw)
    assert note_metrics(sound_in, by_sound.notes)["note_with_offset_f1"] > 0.95
    assert not by_sound.midi.instruments[0].control_changes  # the lengths already hold the pedal
    np.testing.assert_allclose(by_sound.notes[:, 0], by_keys.notes[:, 0])  # the same notes, other ends


def test_keys_are_refused_without_a_key_head(tmp_path):
    keys, intervals, sounding = performance()
    n = 200
    rolls = oracle(keys, intervals, sounding, n)
    with pytest.raises(ValueError, match="key head and a pedal head.*only a pedal head"):
        transcribe(np.zeros((n - 1) * 512, np.float32), LabelPredictor(rolls, with_keys=False),
                   sample_rate=SAMPLE_RATE, durations="keys")
    with pytest.raises(ValueError, match="durations must be one of"):
        transcribe(np.zeros(512, np.float32), LabelPredictor(rolls), sample_rate=SAMPLE_RATE, durations="long")


def test_cli_refuses_keys_for_a_model_without_key_head(tmp_path):
    from piano_transcription.assets import DEMO_AUDIO
    from piano_transcription.model import build_model, save_model

    save_model(build_model("tiny_pedal"), tmp_path / "p.keras")
    out = subprocess.run([sys.executable, "-m", "piano_transcription.cli", str(DEMO_AUDIO), "--model",
                          str(tmp_path / "p.keras"), "--durations", "keys", "-o", str(tmp_path), "-q"],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert "--durations keys needs a model with a key head" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.glob("*.mid"))


def test_the_key_head_starts_as_the_frame_head_and_only_corrects_it():
    from piano_transcription.model import build_model, has_keys

    model = build_model("tiny_keys")
    assert has_keys(model)
    x = np.random.default_rng(0).normal(-30, 15, (1, 80, 229)).astype(np.float32)
    y = model.predict_on_batch(x)
    np.testing.assert_allclose(y["keys"], y["frame"], atol=1e-6)  # zero correction at the start
    delta = model.get_layer("keys_delta")
    kernel, bias = delta.get_weights()
    delta.set_weights([np.zeros_like(kernel), np.ones_like(bias)])  # a correction of +1 logit everywhere
    y2 = model.predict_on_batch(x)
    np.testing.assert_allclose(y2["frame"], y["frame"])  # the correction never changes the frames
    logit = lambda p: np.log(p) - np.log1p(-p)  # noqa: E731
    open_ = (y["frame"] > 1e-3) & (y["frame"] < 1 - 1e-3)  # away from float32 saturation
    assert open_.mean() > 0.5
    np.testing.assert_allclose(logit(y2["keys"][open_]), logit(y2["frame"][open_]) + 1.0, atol=1e-2)
