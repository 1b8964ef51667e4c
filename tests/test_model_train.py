import json

import numpy as np
import pytest

from piano_transcription.model import CONFIGS, build_model, load_model, save_model


def test_maestro_config_matches_checkpoint_table():
    from test_magenta import table

    model = build_model("maestro")
    assert model.count_params() == 22_602_104
    real = {n: s for n, s in table().items() if not n.startswith(("beta", "global")) and "Adam" not in n
            and not n.endswith("opaque_kernel")}
    assert model.count_params() == sum(int(np.prod(s)) for s in real.values())
    shapes = {
        "onsets_conv0": [(3, 3, 1, 48)], "onsets_conv2": [(3, 3, 48, 96)],
        "frame_conv1_bn": [(48,)] * 3, "velocity_fc_end": [(5472, 768), (768,)],
        "velocity": [(768, 88), (88,)], "frame_activation_probs": [(768, 88), (88,)],
        "frame_logits": [(512, 88), (88,)], "onsets_logits": [(512, 88), (88,)],
        # Keras splits the TF kernel [in + 256, 1024] into kernel [in, 1024] and recurrent [256, 1024]
        "frame_lstm": [(264, 1024), (256, 1024), (1024,)] * 2,
        "offsets_lstm": [(768, 1024), (256, 1024), (1024,)] * 2,
    }
    for layer, want in shapes.items():
        assert [tuple(w.shape) for w in model.get_layer(layer).get_weights()] == want, layer


def test_contract_any_length_and_save_load(tmp_path):
    model = build_model("tiny")
    for frames in (7, 40):
        y = model(np.zeros((2, frames, 229), np.float32))
        assert set(y) == {"onset", "offset", "frame", "velocity"}
        assert all(tuple(v.shape) == (2, frames, 88) for v in y.values())
    probs = np.asarray(y["onset"])
    assert probs.min() >= 0 and probs.max() <= 1
    save_model(model, tmp_path / "m.keras")
    again = load_model(tmp_path / "m.keras")
    x = np.random.default_rng(0).normal(size=(1, 30, 229)).astype(np.float32)
    for k in y:
        np.testing.assert_allclose(np.asarray(model(x)[k]), np.asarray(again(x)[k]), atol=1e-6)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.keras")


def test_lstm_arguments_allow_cudnn():
    model = build_model("tiny")
    for name in ("onsets_lstm", "offsets_lstm", "frame_lstm"):
        lstm = model.get_layer(name).forward_layer
        assert lstm.activation.__name__ == "tanh" and lstm.recurrent_activation.__name__ == "sigmoid"
        assert lstm.recurrent_dropout == 0 and not lstm.unroll and lstm.use_bias
        assert lstm.use_cudnn in ("auto", True)


def test_gradient_is_stopped_into_onset_and_offset_stacks():
    import tensorflow as tf

    model = build_model("tiny")
    x = tf.random.normal((1, 10, 229))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(x, training=True)["frame"])
    grads = tape.gradient(loss, model.trainable_variables)
    by_name = {v.path: g for v, g in zip(model.trainable_variables, grads)}
    assert all(g is None or not np.any(g) for p, g in by_name.items() if p.startswith(("onsets_", "offsets_")))
    assert any(g is not None and np.any(g) for p, g in by_name.items() if p.startswith("frame_"))


def test_losses_match_magenta_definitions():
    from piano_transcription.training.losses import log_loss, velocity_loss

    y = np.array([[[1.0, 0.0]]], np.float32)
    p = np.array([[[0.8, 0.3]]], np.float32)
    want = -(np.log(0.8 + 1e-7) + np.log(1 - 0.3 + 1e-7)) / 2
    assert float(np.asarray(log_loss(y, p))[0]) == pytest.approx(want, rel=1e-5)
    vel_true = np.array([[[0.5, 0.9, 1.0, 0.0]]], np.float32)  # velocities [0.5, 0.9], onsets [1, 0]
    vel_pred = np.array([[[0.2, 0.0]]], np.float32)
    assert float(np.asarray(velocity_loss(vel_true, vel_pred))[0]) == pytest.approx(0.09, rel=1e-5)


@pytest.mark.slow
def test_tiny_batch_is_overfit():
    import keras

    from piano_transcription.training.train import compile_model

    keras.utils.set_random_seed(0)
    model = compile_model(build_model("tiny"), learning_rate=1e-2)
    rng = np.random.default_rng(0)
    x = rng.normal(-40, 10, (2, 40, 229)).astype(np.float32)
    onsets = (rng.random((2, 40, 88)) < 0.05).astype(np.float32)
    frames = np.maximum(onsets, (rng.random((2, 40, 88)) < 0.1)).astype(np.float32)
    y = {"onset": onsets, "offset": onsets, "frame": frames,
         "velocity": np.concatenate([onsets * 0.7, onsets], axis=-1)}
    before = model.evaluate(x, y, verbose=0, return_dict=True)["loss"]
    losses = [model.train_on_batch(x, y, return_dict=True)["loss"] for _ in range(60)]
    assert losses[-1] < losses[0] / 5
    assert model.evaluate(x, y, verbose=0, return_dict=True)["loss"] < before / 5  # inference mode too


@pytest.mark.slow
def test_training_resumes_from_the_saved_step(prepared, tmp_path):
    from piano_transcription.training.train import train

    run = tmp_path / "run"  # with a cosine decay (the key head's training: the next test), on 2 s crops (quick)
    model, _ = train(prepared, run, "tiny", steps=6, batch_size=2, steps_per_epoch=3, save_every=2, stop_after=4,
                     verbose=0, cosine_decay=True, crop_seconds=2)
    assert int(model.optimizer.iterations.numpy()) == 4
    assert (run / "checkpoint.keras").exists() and (run / "log.csv").exists()
    model2, hist = train(prepared, run, "tiny", steps=6, batch_size=2, steps_per_epoch=3, save_every=2, verbose=0,
                         cosine_decay=True, crop_seconds=2)
    assert int(model2.optimizer.iterations.numpy()) == 6
    assert np.isfinite(hist["loss"]).all()
    # the Adam moments were restored, not re-initialised, and so was the cosine schedule (zero at the last step)
    assert any(np.any(np.asarray(v)) for v in model2.optimizer.variables if "momentum" in v.path)
    assert float(model2.optimizer.learning_rate) == pytest.approx(0.0, abs=1e-9)
    assert json.loads((run / "config.json").read_text())["config"]["lstm"] == CONFIGS["tiny"].lstm
    assert (run / "model.keras").exists()


def test_dataset_batches(prepared):
    from piano_transcription.training.dataset import make_dataset

    ds = make_dataset(prepared, "train", batch_size=2, shuffle=True, repeat=True)
    x, y = next(iter(ds))
    assert tuple(x.shape) == (2, 626, 229) and tuple(y["velocity"].shape) == (2, 626, 176)
    assert set(y) == {"onset", "offset", "frame", "velocity"}


def test_plain_keras_loads_project_models_once_the_package_is_imported(tmp_path):
    import subprocess
    import sys

    from piano_transcription.model import build_model, save_model

    path = tmp_path / "m.keras"
    save_model(build_model("tiny"), path)
    for order in ("import piano_transcription, keras", "import keras, piano_transcription"):
        code = f"{order}; m = keras.saving.load_model({str(path)!r}); print(sorted(m.output_names))"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-2000:]
        assert "onset" in out.stdout
    light = subprocess.run([sys.executable, "-c", "import sys, piano_transcription.audio; "
                            "print('keras' in sys.modules, 'tensorflow' in sys.modules)"], capture_output=True, text=True)
    assert light.stdout.split() == ["False", "False"]  # importing the package does not import Keras


def test_dataset_crops_keep_inputs_and_labels_aligned(prepared):
    from piano_transcription.training.dataset import segment_generator
    from piano_transcription.training.maestro import load_shard, shard_paths

    paths = [str(p) for p in shard_paths(prepared, "train")]
    shard = load_shard(paths[0])
    crops = list(segment_generator(paths[:1], shuffle=True, seed=3, repeat=False, pedal=True, frames=313))
    assert len(crops) == len(shard["mel"])
    for k, (mel, y) in enumerate(crops):
        assert mel.shape == (313, 229) and y["frame"].shape == (313, 88) and y["pedal"].shape == (313, 4)
        starts = [a for a in range(626 - 312) if np.array_equal(mel, shard["mel"][k][a:a + 313])]
        assert starts  # a crop of the stored segment ...
        np.testing.assert_array_equal(y["frame"], shard["frames"][k][starts[0]:starts[0] + 313])  # ... and its labels


@pytest.mark.slow
def test_training_only_the_key_head_leaves_the_other_heads_as_they_were(prepared, tmp_path):
    from piano_transcription.model import transfer_weights
    from piano_transcription.training.train import train

    base = build_model("tiny_pedal")
    save_model(base, tmp_path / "base.keras")
    model, hist = train(prepared, tmp_path / "run", "tiny_keys", steps=2, batch_size=2, steps_per_epoch=2,
                        save_every=2, verbose=0, init_model=tmp_path / "base.keras", trainable=["keys"],
                        learning_rate=1e-2, crop_seconds=2)
    assert np.isfinite(hist["keys_loss"]).all()  # the masked key loss of shards with key labels
    fresh = build_model("tiny_keys")
    assert set(transfer_weights(base, fresh)) == {"keys_lstm", "keys_delta"}
    for layer in model.layers:
        before, after = fresh.get_layer(layer.name).get_weights(), layer.get_weights()
        same = all(np.array_equal(a, b) for a, b in zip(before, after))
        if layer.name.startswith("keys"):
            continue  # started from random weights of another draw; trained
        assert same, f"{layer.name} changed"  # frozen, batch-norm statistics included
    assert any(layer.trainable_weights for layer in model.layers if layer.name.startswith("keys"))
    with pytest.raises(ValueError, match="no layer of the model starts with"):
        train(prepared, tmp_path / "run2", "tiny_keys", steps=1, batch_size=2, verbose=0, trainable=["nothing"])


@pytest.mark.slow
def test_a_run_carried_on_from_weights_counts_on_from_its_step(prepared, tmp_path):
    """``initial_step``: a new run from saved weights (no optimizer) goes on from that step to ``steps``."""
    from piano_transcription.model import build_model, save_model
    from piano_transcription.training.train import train

    save_model(build_model("tiny"), tmp_path / "w.keras")
    model, hist = train(prepared, tmp_path / "run", "tiny", steps=12, batch_size=2, steps_per_epoch=2, verbose=0,
                        crop_seconds=2, init_model=tmp_path / "w.keras", initial_step=10)
    assert int(model.optimizer.iterations.numpy()) == 12 and len(hist["loss"]) == 1  # two steps: one epoch of 2
    assert json.loads((tmp_path / "run" / "config.json").read_text())["initial_step"] == 10
