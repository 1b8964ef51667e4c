"""The sustain-pedal head: labels, shards, masked loss, model, weight transfer, decoding, metrics."""

import numpy as np
import pytest

from piano_transcription.constants import FRAMES_PER_SECOND, PEDAL_CHANNELS
from piano_transcription.decode import decode_pedal
from piano_transcription.training.labels import notes_to_rolls, pedal_rolls
from piano_transcription.training.maestro import Example, load_shard, save_shard
from piano_transcription.training.metrics import pedal_metrics


def test_pedal_rolls_frames_onsets_offsets():
    roll = pedal_rolls(np.array([[1.0, 2.0]]), 100)
    assert roll.shape == (100, len(PEDAL_CHANNELS))
    down = np.flatnonzero(roll[:, 0])
    assert down[0] == int(1.0 * FRAMES_PER_SECOND) and down[-1] == int(np.ceil(2.0 * FRAMES_PER_SECOND)) - 1
    assert list(np.flatnonzero(roll[:, 1])) == [31, 32]  # 1.000 .. 1.032 s touches frames 31 and 32
    assert list(np.flatnonzero(roll[:, 2])) == [62, 63]  # 2.000 .. 2.032 s
    # a pedal already down before the excerpt has no onset in it
    early = pedal_rolls(np.array([[-1.0, 0.5]]), 40)
    assert early[0, 0] == 1 and early[:, 1].sum() == 0 and early[:, 2].sum() > 0


def test_shards_keep_pedal_labels_and_their_mask(tmp_path):
    notes = np.array([[0.1, 0.5, 60, 80.0]])
    rolls = notes_to_rolls(notes, n_frames=20)
    mel = np.zeros((20, 229), np.float32)
    pedal = pedal_rolls(np.array([[0.1, 0.4]]), 20)
    save_shard(tmp_path / "s.npz", [Example(mel, rolls, 20, pedal), Example(mel, rolls, 20, None)])
    shard = load_shard(tmp_path / "s.npz")
    np.testing.assert_array_equal(shard["pedal"][0], pedal)
    assert shard["pedal"][1].sum() == 0
    np.testing.assert_array_equal(shard["pedal_mask"], [1, 0])
    # shards written before the pedal existed read as unknown pedal
    with open(tmp_path / "old.npz", "wb") as f:
        np.savez_compressed(f, mel=mel[None], onsets=rolls.onsets[None], offsets=rolls.offsets[None],
                            frames=rolls.frames[None], velocities=rolls.velocities[None], lengths=np.array([20]))
    old = load_shard(tmp_path / "old.npz")
    assert old["pedal"].shape == (1, 20, 3) and old["pedal_mask"].tolist() == [0]


def test_pedal_loss_is_masked():
    from piano_transcription.training.losses import log_loss, pedal_loss

    rng = np.random.default_rng(0)
    labels = (rng.random((2, 10, 3)) < 0.5).astype(np.float32)
    pred = rng.uniform(0.05, 0.95, (2, 10, 3)).astype(np.float32)
    mask = np.stack([np.ones((10, 1)), np.zeros((10, 1))]).astype(np.float32)
    loss = np.asarray(pedal_loss(np.concatenate([labels, mask], -1), pred))
    np.testing.assert_allclose(loss[0], np.asarray(log_loss(labels, pred))[0], rtol=1e-5)
    assert loss[1] == 0.0


def test_pedal_model_contract_and_weight_transfer(tmp_path):
    from piano_transcription.model import build_model, has_pedal, load_model, save_model, transfer_weights

    old = build_model("tiny")
    new = build_model("tiny_pedal")
    assert not has_pedal(old) and has_pedal(new)
    fresh = transfer_weights(old, new)
    assert set(fresh) == {"pedal_lstm", "pedal_logits"}
    x = np.random.default_rng(0).normal(-30, 10, (1, 50, 229)).astype(np.float32)
    a, b = old.predict_on_batch(x), new.predict_on_batch(x)
    for k in ("onset", "offset", "frame", "velocity"):
        np.testing.assert_allclose(a[k], b[k], atol=1e-6)
    assert b["pedal"].shape == (1, 50, 3) and np.all((b["pedal"] >= 0) & (b["pedal"] <= 1))
    save_model(new, tmp_path / "p.keras")
    assert has_pedal(load_model(tmp_path / "p.keras"))


def test_decode_pedal_presses_and_quick_repedal():
    fps = FRAMES_PER_SECOND
    probs = np.zeros((200, 3), np.float32)
    probs[10:50, 0] = 0.9  # one press
    probs[10:12, 1] = 0.9
    probs[80:150, 0] = 0.9  # a held pedal, re-pressed at frame 120 without a visible release
    probs[80:82, 1] = 0.9
    probs[120:122, 1] = 0.9
    probs[170, 0] = 0.9  # a one-frame blip, shorter than min_duration
    got = decode_pedal(probs, 0.5, min_duration=0.05)
    np.testing.assert_allclose(got, np.array([[10, 50], [80, 120], [120, 150]]) / fps)


def test_pedal_metrics():
    ref = np.array([[1.0, 2.0], [3.0, 4.0]])
    est = np.array([[1.03, 2.0], [3.2, 4.0], [5.0, 6.0]])
    m = pedal_metrics(ref, est, np.r_[np.ones(10), np.zeros(10)], np.r_[np.ones(5), np.zeros(15)])
    assert m["pedal_onset_precision"] == pytest.approx(1 / 3) and m["pedal_onset_recall"] == pytest.approx(0.5)
    assert m["pedal_frame_precision"] == 1.0 and m["pedal_frame_recall"] == 0.5
