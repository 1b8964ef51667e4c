"""Packed data sets (compact copies for a lent accelerator) and the time-budgeted trainer."""

import json

import numpy as np
import pytest

from piano_transcription.training.maestro import load_shard, shard_paths
from piano_transcription.training.packed import (MEL_STEP_DB, augment_mel, crop_batch, dequantise_mel, load_packed,
                                                 pack, pack_shard, quantise_mel, unpack_shard)
from piano_transcription.training.timed import cosine_rate, load_weight_parts, save_weight_parts


@pytest.fixture(scope="module")
def packed(prepared, tmp_path_factory):
    """The whole tiny prepared set, packed."""
    out = tmp_path_factory.mktemp("packed") / "p"
    pack(prepared, out, megabytes=100, validation_megabytes=100)
    return out


def test_mel_codes_round_trip_within_half_a_step(rng):
    mel = rng.uniform(-100, 60, (3, 50, 229)).astype(np.float32)
    mel[:, 10:20] = mel[:, 9:10]  # steady frames: zero differences
    back = dequantise_mel(quantise_mel(mel))
    assert back.dtype == np.float32 and back.shape == mel.shape
    assert np.abs(back - mel).max() <= MEL_STEP_DB / 2 + 1e-4


def test_packed_shard_keeps_labels_and_is_smaller(prepared):
    path = shard_paths(prepared, "train")[0]
    shard = load_shard(path)
    data = pack_shard(shard)
    back = unpack_shard(data)
    assert len(data) < path.stat().st_size / 2
    for k in ("onsets", "offsets", "frames", "pedal", "keys", "pedal_mask", "keys_mask", "lengths"):
        np.testing.assert_array_equal(back[k], shard[k], err_msg=k)
    assert np.abs(back["velocities"] - shard["velocities"]).max() <= 0.5 / 255 + 1e-6
    assert np.abs(back["mel"] - shard["mel"]).max() <= MEL_STEP_DB / 2 + 1e-2


def test_pack_respects_the_size_and_never_overwrites(prepared, packed, tmp_path):
    assert len(load_packed(packed, "train")) == len(shard_paths(prepared, "train"))
    assert len(load_packed(packed, "validation")) == len(shard_paths(prepared, "validation"))
    small = pack(prepared, tmp_path / "q", megabytes=0.0, validation_megabytes=0.0)
    assert small["splits"]["train"] == {}
    with pytest.raises(ValueError, match="empty"):
        load_packed(tmp_path / "q", "train")
    with pytest.raises(FileExistsError):
        pack(prepared, packed, megabytes=1)


def test_crops_keep_input_and_labels_aligned(prepared, rng):
    shards = [load_shard(p) for p in shard_paths(prepared, "train")]
    picks = [(0, 0), (1, 0), (0, 0)]
    mel, targets = crop_batch(shards, picks, 100, rng, augment=False, pedal=True, keys=True)
    assert mel.shape == (3, 100, 229) and targets["velocity"].shape == (3, 100, 176)
    assert targets["pedal"].shape == (3, 100, 4) and targets["keys"].shape == (3, 100, 89)
    for i, (s, k) in enumerate(picks):  # find each crop's start in its segment: labels start there too
        full = shards[s]["mel"][k]
        a = next(a for a in range(len(full) - 99) if np.array_equal(full[a:a + 100], mel[i]))
        np.testing.assert_array_equal(targets["frame"][i], shards[s]["frames"][k][a:a + 100])


def test_augmentation_changes_level_and_keeps_the_top_db_range(rng):
    mel = rng.uniform(-60, 20, (80, 229)).astype(np.float32)
    out = augment_mel(mel, rng, noise_probability=1.0)
    assert out.shape == mel.shape and out.dtype == np.float32
    assert not np.allclose(out, mel)
    assert out.max() - out.min() <= 80.0 + 1e-3
    batch = augment_mel(np.stack([mel, mel]), rng, noise_probability=0.0)  # each example its own change
    assert batch.shape == (2, 80, 229) and not np.allclose(batch[0] - mel, batch[1] - mel)
    steady = augment_mel(np.full((10, 229), -20.0, np.float32), rng, eq_db=0.0, noise_probability=0.0)
    assert np.allclose(steady, steady[0, 0])  # a gain alone: one value everywhere


def test_cosine_rate_warms_up_and_decays_over_time():
    assert cosine_rate(1e-3, 0, 0.0, 60.0, 10) == pytest.approx(1e-4)
    assert cosine_rate(1e-3, 50, 0.0, 60.0, 10) == pytest.approx(1e-3)
    assert cosine_rate(1e-3, 50, 30.0, 60.0, 10) == pytest.approx(5e-4)
    assert cosine_rate(1e-3, 50, 90.0, 60.0, 10) == pytest.approx(0.0)


def test_weight_parts_round_trip_in_order(tmp_path, rng):
    weights = [rng.normal(size=s).astype(np.float32) for s in ((300, 400), (7,), (1000, 300), (2, 3, 4))]
    paths = save_weight_parts(weights, tmp_path, "last", part_megabytes=1.0)
    assert len(paths) == 3  # 480 kB + 1.2 MB alone + the rest
    back = load_weight_parts(tmp_path, "last")
    assert len(back) == 4 and all(np.array_equal(a, b) for a, b in zip(weights, back))
    save_weight_parts(weights[:1], tmp_path, "last", part_megabytes=1.0)  # fewer parts: stale ones go
    assert len(load_weight_parts(tmp_path, "last")) == 1


@pytest.mark.slow
def test_timed_training_exports_a_model_with_its_weights(packed, tmp_path):
    from piano_transcription.model import load_model
    from piano_transcription.training.timed import export, train_timed

    summary = train_timed(packed, tmp_path / "run", "tiny_pedal", minutes=0.02, batch_size=2,
                          crop_seconds=1, steps_per_epoch=3, validation_batches=1, workers=1, eager=True)
    assert summary["steps"] >= 1 and np.isfinite(summary["best_val_loss"])
    log = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert log[0].split(",")[0] == "epoch" and len(log) >= 2
    export(tmp_path / "run", tmp_path / "m.keras")
    model = load_model(tmp_path / "m.keras")
    assert set(model.output_names) >= {"onset", "frame", "pedal"}
    for w, v in zip(model.get_weights(), load_weight_parts(tmp_path / "run", "last")):
        np.testing.assert_array_equal(w, v)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["config"]["pedal"] is True


def test_a_second_pack_can_leave_out_the_pieces_of_the_first(prepared, tmp_path):
    first = pack(prepared, tmp_path / "a", megabytes=0.2)
    second = pack(prepared, tmp_path / "b", megabytes=100, exclude=[tmp_path / "a" / "packed.json"])
    assert first["splits"]["train"] and second["splits"]["train"]
    assert not set(first["splits"]["train"]) & set(second["splits"]["train"])
    assert set(first["splits"]["train"]) | set(second["splits"]["train"]) == set(
        json.loads((prepared / "manifest.json").read_text())["splits"]["train"])


def test_half_precision_parts_travel_in_half_the_bytes(tmp_path, rng):
    weights = [rng.normal(size=(500, 100)).astype(np.float32), rng.normal(size=(100,)).astype(np.float32)]
    full = save_weight_parts(weights, tmp_path / "f", "last")
    half = save_weight_parts(weights, tmp_path / "h", "last", dtype=np.float16)
    assert half[0].stat().st_size < 0.6 * full[0].stat().st_size
    back = load_weight_parts(tmp_path / "h", "last")
    assert back[0].dtype == np.float16 and np.allclose(back[0], weights[0], rtol=1e-3, atol=1e-3)


def test_a_used_folder_and_the_weights_of_another_model_are_refused(packed, tmp_path):
    from piano_transcription.model import build_model
    from piano_transcription.training.timed import train_timed

    save_weight_parts(build_model("tiny").get_weights(), tmp_path / "init", "last")
    with pytest.raises(FileExistsError, match="holds the weights"):
        train_timed(packed, tmp_path / "init", "tiny")
    with pytest.raises(ValueError, match="do not fit"):
        train_timed(packed, tmp_path / "run", "tiny_pedal", minutes=0.01, init_dir=tmp_path / "init")
