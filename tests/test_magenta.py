import zipfile

import numpy as np
import pytest

from magenta_reference import reference_forward
from piano_transcription.training.magenta import (CheckpointError, checkpoint_to_keras, convert_checkpoint, expected_variables,
                                         keras_to_tf_gates, synthetic_checkpoint_variables, tf_to_keras_gates,
                                         write_checkpoint)
from piano_transcription.model import get_config, load_model

TSV = __import__("pathlib").Path(__file__).parent / "data" / "magenta_maestro_checkpoint_variables.tsv"


def table():
    rows = [line.split("\t") for line in TSV.read_text().splitlines()[1:] if line.strip()]
    return {name: tuple(int(d) for d in shape.strip("[]").split(",") if d.strip()) for name, shape in rows}


def test_expected_variables_equal_the_real_checkpoint_table():
    from piano_transcription.training.magenta import ignored

    real = {n: s for n, s in table().items() if not ignored(n)}
    assert expected_variables(get_config("maestro")) == real


def test_gate_reorder_round_trip():
    a = np.arange(4 * 3 * 2).reshape(2, 12)
    assert np.array_equal(keras_to_tf_gates(tf_to_keras_gates(a, 3), 3), a)
    assert tf_to_keras_gates(np.arange(8), 2).tolist() == [0, 1, 4, 5, 2, 3, 6, 7]


@pytest.fixture(scope="module")
def small_ckpt(tmp_path_factory):
    """A checkpoint with Magenta's names at the 'tiny' sizes (the same code path as 'maestro')."""
    v = synthetic_checkpoint_variables("tiny", seed=3)
    prefix = write_checkpoint(v, tmp_path_factory.mktemp("ckpt") / "model.ckpt-123456")
    return v, prefix


def keras_outputs(model, mel):
    return {k: np.asarray(x)[0] for k, x in model(mel[None].astype(np.float32), training=False).items()}


def test_converted_model_matches_numpy_reference(small_ckpt, tmp_path):
    variables, prefix = small_ckpt
    convert_checkpoint(prefix, tmp_path / "converted.keras", config="tiny")
    mel = np.random.default_rng(0).normal(-30, 20, (24, 229)).astype(np.float32)
    clean = {k: v for k, v in variables.items() if k in expected_variables(get_config("tiny"))}
    ref = reference_forward(clean, mel)
    ours = keras_outputs(load_model(tmp_path / "converted.keras"), mel)
    for head in ("onset", "offset", "frame", "velocity"):
        assert np.max(np.abs(ours[head] - ref[head])) < 1e-4, head


@pytest.mark.parametrize("corrupt", ["swap_gates", "transpose_conv"])
def test_a_conversion_mistake_is_detected_by_the_reference(small_ckpt, corrupt, monkeypatch):
    import piano_transcription.training.magenta as mg

    variables, _ = small_ckpt
    if corrupt == "swap_gates":  # pretend TF's order were already Keras's
        monkeypatch.setattr(mg, "tf_to_keras_gates", lambda a, units: a)
        model = checkpoint_to_keras({k: v for k, v in variables.items() if not mg.ignored(k)}, "tiny")
    else:  # conv kernels with time and frequency swapped
        model = checkpoint_to_keras({k: v for k, v in variables.items() if not mg.ignored(k)}, "tiny")
        for stack in ("onsets", "offsets", "frame"):
            layer = model.get_layer(f"{stack}_conv1")
            layer.set_weights([np.ascontiguousarray(layer.get_weights()[0].transpose(1, 0, 2, 3))])
    mel = np.random.default_rng(0).normal(-30, 20, (24, 229)).astype(np.float32)
    ref = reference_forward({k: v for k, v in variables.items() if not mg.ignored(k)}, mel)
    ours = keras_outputs(model, mel)
    assert max(np.max(np.abs(ours[h] - ref[h])) for h in ("onset", "offset", "frame")) > 1e-3


def test_zip_and_folder_inputs(small_ckpt, tmp_path):
    _, prefix = small_ckpt
    from pathlib import Path

    folder = Path(prefix).parent
    z = tmp_path / "maestro_checkpoint.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in folder.iterdir():
            zf.write(f, f"train/{f.name}")
    m1 = convert_checkpoint(z, config="tiny")
    m2 = convert_checkpoint(folder, config="tiny")
    mel = np.zeros((8, 229), np.float32)
    assert np.allclose(keras_outputs(m1, mel)["frame"], keras_outputs(m2, mel)["frame"])


def test_missing_unexpected_and_misshaped_variables_are_named(small_ckpt):
    variables, _ = small_ckpt
    v = {k: x for k, x in variables.items()}
    del v["onsets/conv0/weights"]
    v["onsets/extra/weights"] = np.zeros(3, np.float32)
    v["frame/fc_end/biases"] = np.zeros(5, np.float32)
    with pytest.raises(CheckpointError) as err:
        checkpoint_to_keras(v, "tiny")
    msg = str(err.value)
    assert "missing variable onsets/conv0/weights" in msg
    assert "unexpected variable onsets/extra/weights" in msg
    assert "wrong shape frame/fc_end/biases" in msg


def test_full_maestro_checkpoint_converts(tmp_path):
    """The real sizes: every variable of the table is consumed and the result has 22.6 M parameters."""
    v = synthetic_checkpoint_variables("maestro", seed=1)
    prefix = write_checkpoint(v, tmp_path / "model.ckpt")
    model = convert_checkpoint(prefix, tmp_path / "maestro.keras")
    assert model.count_params() == 22_602_104
    w = model.get_layer("onsets_lstm").get_weights()
    k = v["onsets/cudnn_lstm/stack_bidirectional_rnn/cell_0/bidirectional_rnn/fw/cudnn_compatible_lstm_cell/kernel"]
    assert np.array_equal(w[0], tf_to_keras_gates(k[:768], 256)) and np.array_equal(w[1], tf_to_keras_gates(k[768:], 256))


def test_download_checkpoint_offline_message(tmp_path, monkeypatch):
    from piano_transcription.io import DownloadError
    from piano_transcription.training.magenta import download_checkpoint

    with pytest.raises(DownloadError):
        download_checkpoint(tmp_path, url="http://127.0.0.1:9/maestro_checkpoint.zip")
