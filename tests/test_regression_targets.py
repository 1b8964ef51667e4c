"""Regression onset and offset targets (Kong et al. 2021) and the decoder's sub-frame times."""

import json

import numpy as np
import pytest

from piano_transcription.constants import FRAMES_PER_SECOND, REGRESSION_HALF_WIDTH


def _notes(rng, n=40, seconds=18.0):
    """Well separated notes (one per key at most) at random sub-frame times: start s, end s, pitch, velocity."""
    pitches = rng.choice(np.arange(30, 100), size=n, replace=False)
    starts = rng.uniform(0.5, seconds - 3.0, n)
    return np.column_stack([starts, starts + rng.uniform(0.3, 2.0, n), pitches, rng.integers(20, 110, n)])


def test_triangles_peak_at_the_exact_times_and_fall_to_zero():
    from piano_transcription.training.labels import notes_to_rolls

    rolls = notes_to_rolls(np.array([[1.01, 2.0, 60, 80]]), n_frames=100)
    col = rolls.onset_regression[:, 60 - 21]
    centre = 1.01 * FRAMES_PER_SECOND
    i = np.flatnonzero(col)
    assert np.all(np.abs(i - centre) < REGRESSION_HALF_WIDTH)  # nothing beyond the half width
    np.testing.assert_allclose(col[i], 1.0 - np.abs(i - centre) / REGRESSION_HALF_WIDTH, rtol=1e-6)
    end = rolls.offset_regression[:, 60 - 21]
    assert end[int(2.0 * FRAMES_PER_SECOND)] > 0.7 and end.argmax() in (62, 63)
    # the last note's triangle is whole even where the natural roll ends with the note
    natural = notes_to_rolls(np.array([[1.01, 2.0, 60, 80]]))
    assert len(natural.offset_regression) == len(natural.frames) == 63
    assert rolls.onset_regression.shape == rolls.frames.shape == (100, 88)


def test_regression_targets_decode_back_to_the_exact_times(rng):
    """Labels -> decoder: with the triangles as the onset and offset outputs, regression timing recovers every
    start and end exactly, where frame timing is off by up to a frame."""
    from piano_transcription.decode import StreamingDecoder, decode_notes
    from piano_transcription.training.labels import notes_to_rolls

    notes = _notes(rng)
    rolls = notes_to_rolls(notes, n_frames=int(20 * FRAMES_PER_SECOND))
    frame = rolls.frames.astype(np.float32)
    args = (frame, rolls.onset_regression, None, 0.5, 0.5)
    timed = decode_notes(*args, offset_probs=rolls.offset_regression, offset_threshold=0.5, timing="regression")
    plain = decode_notes(*args, offset_probs=rolls.offset_regression, offset_threshold=0.5)
    truth = notes[np.lexsort((notes[:, 2], notes[:, 0]))]
    assert len(timed) == len(plain) == len(truth)
    np.testing.assert_allclose(timed[:, :3], truth[:, :3], atol=1e-6)
    err = np.abs(plain[:, :2] - truth[:, :2])
    assert err.max() > 0.02 and err.max() < 1.5 / FRAMES_PER_SECOND
    # the streaming decoder gives the same notes, fed in uneven chunks
    dec = StreamingDecoder(0.5, 0.5, offset_threshold=0.5, timing="regression")
    parts = [dec.feed(frame[a:b], rolls.onset_regression[a:b], offset_probs=rolls.offset_regression[a:b])
             for a, b in ((0, 1), (1, 200), (200, 201), (201, 202), (202, len(frame)))]
    streamed = np.concatenate(parts + [dec.finish()])
    np.testing.assert_allclose(streamed[np.lexsort((streamed[:, 2], streamed[:, 0]))], timed)


def test_apex_shift_is_exact_for_triangles_and_bounded_otherwise():
    from piano_transcription.decode import apex_shift

    for apex in (0.0, 0.2, 0.5, -0.3, -0.5):
        values = [max(0.0, 1 - abs(i - apex) / REGRESSION_HALF_WIDTH) for i in (-1, 0, 1)]
        assert float(apex_shift(*values)) == pytest.approx(apex)
    # flat tops and a lone frame: a bounded shift, no division by zero
    assert float(apex_shift(0.1, 0.9, 0.9)) == pytest.approx(0.5)
    assert float(apex_shift(0.0, 0.7, 0.0)) == 0.0
    assert -0.5 <= float(apex_shift(0.6, 0.6, 0.0)) <= 0.5


def test_event_times_are_exact_from_any_threshold_crossing():
    """The peak is found from the first frame over the threshold, low thresholds included (Kong et al. decode at
    0.3), and the event time read around it."""
    from piano_transcription.decode import event_time

    i = np.arange(40)
    for apex in (10.0, 10.3, 10.5, 10.8):
        col = np.maximum(0.0, 1 - np.abs(i - apex) / REGRESSION_HALF_WIDTH)
        for threshold in (0.3, 0.5, 0.7):
            first = int(np.flatnonzero(col >= threshold)[0])
            assert event_time(col, first) == pytest.approx(apex)


def test_streaming_regression_decoder_equals_the_whole_roll_decoder_on_noisy_rolls():
    from piano_transcription.decode import StreamingDecoder, decode_notes

    rng = np.random.default_rng(5)
    n = 300
    frame = (rng.random((n, 88)) < 0.3).astype(np.float32) * rng.random((n, 88))
    onset = np.clip(rng.random((n, 88)) - 0.8, 0, None).astype(np.float32) * 5  # smooth-ish peaks
    offset = np.clip(rng.random((n, 88)) - 0.7, 0, None).astype(np.float32) * 3
    velocity = rng.random((n, 88)).astype(np.float32)
    for offset_t in (None, 0.5):
        whole = decode_notes(frame, onset, velocity, 0.5, 0.4, offset_probs=offset, offset_threshold=offset_t,
                             timing="regression")
        assert len(whole) > 100 and np.any(np.abs(whole[:, 0] * FRAMES_PER_SECOND % 1) > 1e-6)
        for cuts in (((0, 7), (7, 150), (150, 151), (151, n)), ((0, 1), (1, 2), (2, n - 1), (n - 1, n))):
            dec = StreamingDecoder(0.5, 0.4, offset_threshold=offset_t, timing="regression")
            parts = [dec.feed(frame[a:b], onset[a:b], velocity[a:b], offset_probs=offset[a:b]) for a, b in cuts]
            streamed = np.concatenate(parts + [dec.finish()])
            np.testing.assert_allclose(streamed[np.lexsort((streamed[:, 2], streamed[:, 0]))], whole)


def test_unknown_timing_and_targets_are_refused():
    from piano_transcription.decode import StreamingDecoder, decode_notes
    from piano_transcription.training.dataset import segment_targets

    with pytest.raises(ValueError, match="unknown note timing"):
        decode_notes(np.zeros((4, 88)), np.zeros((4, 88)), timing="exact")
    with pytest.raises(ValueError, match="unknown note timing"):
        StreamingDecoder(timing="exact")
    with pytest.raises(ValueError, match="unknown onset/offset targets"):
        segment_targets({"onsets": np.zeros((1, 4, 88)), "offsets": np.zeros((1, 4, 88))}, 0, 0, 4, targets="soft")


def test_shards_store_the_targets_and_old_shards_are_refused_for_regression(tmp_path, rng):
    from piano_transcription.training.dataset import segment_targets
    from piano_transcription.training.labels import notes_to_rolls
    from piano_transcription.training.maestro import DatasetError, Example, load_shard, save_shard
    from piano_transcription.training.packed import pack_shard, unpack_shard

    rolls = notes_to_rolls(_notes(rng, 10), n_frames=626)
    save_shard(tmp_path / "s.npz", [Example(np.zeros((626, 229), np.float32), rolls, 626)])
    shard = load_shard(tmp_path / "s.npz")
    np.testing.assert_allclose(shard["onset_regression"][0], rolls.onset_regression, atol=0.5 / 255)
    targets = segment_targets(shard, 0, 10, 300, targets="regression")
    np.testing.assert_allclose(targets["onset"], shard["onset_regression"][0][10:300])
    np.testing.assert_allclose(targets["offset"], shard["offset_regression"][0][10:300])
    np.testing.assert_array_equal(targets["velocity"][:, 88:], shard["onsets"][0][10:300])  # the binary mask
    np.testing.assert_array_equal(segment_targets(shard, 0, 10, 300)["onset"], shard["onsets"][0][10:300])
    packed = unpack_shard(pack_shard(shard))
    np.testing.assert_allclose(packed["offset_regression"], shard["offset_regression"], atol=1e-6)
    old = {k: v for k, v in shard.items() if "regression" not in k}  # a shard written before the targets
    with pytest.raises(DatasetError, match="no regression targets"):
        segment_targets(old, 0, 0, 10, targets="regression")


@pytest.mark.slow
def test_a_regression_run_trains_and_decodes_with_sub_frame_times(prepared, tmp_path):
    from piano_transcription.predictor import load_predictor, thresholds_path
    from piano_transcription.training.train import train

    run = tmp_path / "run"
    _, hist = train(prepared, run, "tiny", steps=2, batch_size=2, steps_per_epoch=2, verbose=0, crop_seconds=2,
                    targets="regression")
    assert np.isfinite(hist["loss"]).all()
    assert json.loads((run / "config.json").read_text())["targets"] == "regression"
    assert json.loads(thresholds_path(run / "model.keras").read_text()) == {"timing": "regression"}
    assert load_predictor(run / "model.keras").timing == "regression"
    thresholds_path(run / "model.keras").write_text(json.dumps({"onset": 0.4, "timing": "exact"}))
    with pytest.raises(ValueError, match="unknown note timing"):
        load_predictor(run / "model.keras")


def test_regression_streaming_announces_every_onset_and_restruck_notes_never_overlap():
    """Every note's onset is announced once in ``begun`` (the held-back last frames by ``finish``), a re-struck key's
    note ends where the next one starts, and key-release ends never come before a note's start."""
    from piano_transcription.decode import StreamingDecoder, decode_notes

    rng = np.random.default_rng(11)
    n = 200
    frame = np.clip(rng.random((n, 88)) * 1.6, 0, 1).astype(np.float32)  # mostly on: many re-onsets in a run
    onset = np.clip(rng.random((n, 88)) - 0.75, 0, None).astype(np.float32) * 4
    offset = np.clip(rng.random((n, 88)) - 0.7, 0, None).astype(np.float32) * 3
    onset[-2:, :5] = [[0.2], [0.9]]  # onsets in the very last frames
    whole = decode_notes(frame, onset, None, 0.5, 0.5, offset_probs=offset, timing="regression")
    dec, begun, parts = StreamingDecoder(0.5, 0.5, timing="regression"), [], []
    for a in range(0, n, 30):
        parts.append(dec.feed(frame[a:a + 30], onset[a:a + 30], offset_probs=offset[a:a + 30]))
        begun.append(dec.begun)
    parts.append(dec.finish())
    begun.append(dec.begun)
    begun = np.concatenate(begun)
    assert len(whole) > 200 and np.any(whole[:, 0] * FRAMES_PER_SECOND > n - 2.5)
    order = np.lexsort((begun[:, 1], begun[:, 0]))
    np.testing.assert_allclose(begun[order], whole[:, [0, 2, 3]])
    for pitch in np.unique(whole[:, 2]):
        notes = whole[whole[:, 2] == pitch]
        assert np.all(notes[1:, 0] >= notes[:-1, 1] - 1e-9)  # one note of a key at a time
    assert np.all(whole[:, 1] > whole[:, 0])
    keys = (rng.random((n, 88)) < 0.5).astype(np.float32)  # key-down probabilities that often fall
    dec = StreamingDecoder(0.5, 0.5, timing="regression", key_threshold=0.5)
    parts = [dec.feed(frame[a:a + 30], onset[a:a + 30], keys_probs=keys[a:a + 30], offset_probs=offset[a:a + 30])
             for a in range(0, n, 30)]
    keyed = np.concatenate(parts + [dec.finish()])
    assert len(keyed) == len(whole) and np.all(keyed[:, 1] > keyed[:, 0])
    dec = StreamingDecoder(timing="regression")
    dec.feed(frame[:10], onset[:10], offset_probs=offset[:10])
    with pytest.raises(ValueError, match="same rolls in every feed"):
        dec.feed(frame[10:20], onset[10:20])  # the offsets missing: the held-back frames would no longer line up


def test_an_export_carries_its_models_decoding(tmp_path):
    """The timing (and, where the export has none, the thresholds) beside a model go beside its TFLite export."""
    from piano_transcription.predictor import load_timing, read_sidecar, thresholds_path
    from piano_transcription.tflite import carry_sidecar

    src, out = tmp_path / "m.keras", tmp_path / "export.tflite"
    carry_sidecar(src, out)  # nothing beside the model: nothing written
    assert not thresholds_path(out).exists()
    thresholds_path(src).write_text(json.dumps({"onset": 0.4, "timing": "regression"}))
    carry_sidecar(src, out)
    assert read_sidecar(out) == {"onset": 0.4, "timing": "regression"} and load_timing(out) == "regression"
    thresholds_path(out).write_text(json.dumps({"onset": 0.6}))  # the export's own thresholds stay
    carry_sidecar(src, out)
    assert read_sidecar(out) == {"onset": 0.6, "timing": "regression"}
