"""Magenta's pre-trained MAESTRO checkpoint (TF1, ``maestro_checkpoint.zip``) to a Keras model.

Variable layout of the checkpoint (Magenta's ``model.py``, slim layers)::

    {onsets,offsets,velocity,frame}/conv{0,1,2}/weights               [3, 3, in, out]
    .../conv{i}/BatchNorm/{beta,moving_mean,moving_variance}          [out]   (no gamma: scale off)
    .../fc_end/{weights,biases}                                       [5472, 768], [768]
    onsets/onset_probs, offsets/offset_probs, frame/frame_probs       [512, 88] (after the BiLSTM)
    frame/activation_probs, velocity/onset_velocities                 [768, 88]
    {onsets,offsets,frame}/cudnn_lstm/stack_bidirectional_rnn/cell_0/bidirectional_rnn/{fw,bw}/
        cudnn_compatible_lstm_cell/{kernel [in + 256, 1024], bias [1024]}

A TF1 LSTM cell's kernel stacks the input rows above the recurrent rows, and its four gate
blocks are ordered (input, cell candidate, forget, output) with forget bias 0; Keras keeps
``kernel`` and ``recurrent_kernel`` apart and orders the gates (input, forget, cell, output).
Adam slots, ``global_step``, ``beta*_power`` and the opaque cuDNN buffers are ignored.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

MAESTRO_CHECKPOINT_URL = "https://storage.googleapis.com/magentadata/models/onsets_frames_transcription/maestro_checkpoint.zip"
LSTM_PREFIX = "cudnn_lstm/stack_bidirectional_rnn/cell_0/bidirectional_rnn"
LSTM_CELL = "cudnn_compatible_lstm_cell"
HEADS = {  # checkpoint scope/name -> Keras layer
    "onsets/onset_probs": "onsets_logits",
    "offsets/offset_probs": "offsets_logits",
    "frame/frame_probs": "frame_logits",
    "frame/activation_probs": "frame_activation_probs",
    "velocity/onset_velocities": "velocity",
}
LSTMS = {"onsets": "onsets_lstm", "offsets": "offsets_lstm", "frame": "frame_lstm"}
STACKS = ("onsets", "offsets", "velocity", "frame")


class CheckpointError(ValueError):
    """A checkpoint variable is missing, unexpected or mis-shaped."""


def ignored(name: str) -> bool:
    """Variables that hold no model weights (optimizer state, step counters, cuDNN buffers)."""
    return ("Adam" in name or name in ("global_step", "beta1_power", "beta2_power")
            or name.endswith("opaque_kernel") or name.startswith("beta1_power") or name.startswith("beta2_power"))


def tf_to_keras_gates(a: np.ndarray, units: int) -> np.ndarray:
    """Reorder the last axis from TF1's gate blocks (i, c, f, o) to Keras's (i, f, c, o)."""
    i, c, f, o = (a[..., k * units:(k + 1) * units] for k in range(4))
    return np.concatenate([i, f, c, o], axis=-1)


def keras_to_tf_gates(a: np.ndarray, units: int) -> np.ndarray:
    """Inverse of :func:`tf_to_keras_gates`."""
    i, f, c, o = (a[..., k * units:(k + 1) * units] for k in range(4))
    return np.concatenate([i, c, f, o], axis=-1)


def expected_variables(cfg) -> dict[str, tuple[int, ...]]:
    """Checkpoint variable names and shapes that a model of config ``cfg`` corresponds to."""
    from ..constants import N_KEYS, N_MELS

    out: dict[str, tuple[int, ...]] = {}
    for stack in STACKS:
        cin = 1
        for i, f in enumerate(cfg.filters):
            out[f"{stack}/conv{i}/weights"] = (3, 3, cin, f)
            for v in ("beta", "moving_mean", "moving_variance"):
                out[f"{stack}/conv{i}/BatchNorm/{v}"] = (f,)
            cin = f
        out[f"{stack}/fc_end/weights"] = (N_MELS // 4 * cfg.filters[-1], cfg.fc)
        out[f"{stack}/fc_end/biases"] = (cfg.fc,)
    for stack in LSTMS:
        n_in = 3 * N_KEYS if stack == "frame" else cfg.fc
        for d in ("fw", "bw"):
            out[f"{stack}/{LSTM_PREFIX}/{d}/{LSTM_CELL}/kernel"] = (n_in + cfg.lstm, 4 * cfg.lstm)
            out[f"{stack}/{LSTM_PREFIX}/{d}/{LSTM_CELL}/bias"] = (4 * cfg.lstm,)
    for scope in HEADS:
        n_in = cfg.fc if scope in ("frame/activation_probs", "velocity/onset_velocities") else 2 * cfg.lstm
        out[f"{scope}/weights"] = (n_in, N_KEYS)
        out[f"{scope}/biases"] = (N_KEYS,)
    return out


def resolve_checkpoint(path: str | os.PathLike, workdir: str | os.PathLike | None = None) -> str:
    """The checkpoint prefix for a zip, a folder or a prefix (a zip is extracted into ``workdir``)."""
    import tensorflow as tf

    path = Path(path)
    if path.suffix == ".zip":
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file")
        workdir = Path(workdir or tempfile.mkdtemp(prefix="magenta_ckpt_"))
        try:
            with zipfile.ZipFile(path) as z:
                z.extractall(workdir)
        except zipfile.BadZipFile as exc:
            raise CheckpointError(f"{path}: not a readable zip ({exc})") from exc
        if not sorted(workdir.rglob("*.index")):
            raise FileNotFoundError(f"{path}: no TensorFlow checkpoint (*.index) inside the zip")
        path = workdir
    if path.is_dir():
        prefix = tf.train.latest_checkpoint(str(path))
        if prefix is None:
            indexes = sorted(path.rglob("*.index"))
            if not indexes:
                raise FileNotFoundError(f"{path}: no TensorFlow checkpoint (*.index) inside")
            prefix = str(indexes[-1])[: -len(".index")]
        return prefix
    if Path(str(path) + ".index").exists():
        return str(path)
    raise FileNotFoundError(f"{path}: not a checkpoint zip, folder or prefix")


def read_checkpoint(prefix: str) -> dict[str, np.ndarray]:
    """All non-ignored variables of a TF checkpoint as numpy arrays."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(prefix)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map() if not ignored(name)}


def checkpoint_to_keras(variables: dict[str, np.ndarray], config="maestro"):
    """Build the Keras model of ``config`` and fill every weight from checkpoint ``variables``.

    Raises :class:`CheckpointError` naming any missing, unexpected or mis-shaped variable.
    """
    from ..model import build_model, get_config

    cfg = get_config(config)
    expected = expected_variables(cfg)
    missing = sorted(set(expected) - set(variables))
    unexpected = sorted(set(variables) - set(expected))
    wrong = sorted(f"{n}: {tuple(variables[n].shape)} instead of {expected[n]}" for n in expected
                   if n in variables and tuple(variables[n].shape) != expected[n])
    problems = ([f"missing variable {n}" for n in missing] + [f"unexpected variable {n}" for n in unexpected]
                + [f"wrong shape {w}" for w in wrong])
    if problems:
        raise CheckpointError("checkpoint does not match the model: " + "; ".join(problems[:20])
                              + (f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""))
    model = build_model(cfg)
    v = variables
    for stack in STACKS:
        for i in range(3):
            model.get_layer(f"{stack}_conv{i}").set_weights([v[f"{stack}/conv{i}/weights"]])
            bn = f"{stack}/conv{i}/BatchNorm"
            model.get_layer(f"{stack}_conv{i}_bn").set_weights(
                [v[f"{bn}/beta"], v[f"{bn}/moving_mean"], v[f"{bn}/moving_variance"]])
        model.get_layer(f"{stack}_fc_end").set_weights([v[f"{stack}/fc_end/weights"], v[f"{stack}/fc_end/biases"]])
    for scope, layer in HEADS.items():
        model.get_layer(layer).set_weights([v[f"{scope}/weights"], v[f"{scope}/biases"]])
    for stack, layer in LSTMS.items():
        weights = []
        for d in ("fw", "bw"):
            kernel = v[f"{stack}/{LSTM_PREFIX}/{d}/{LSTM_CELL}/kernel"]
            bias = v[f"{stack}/{LSTM_PREFIX}/{d}/{LSTM_CELL}/bias"]
            n_in = kernel.shape[0] - cfg.lstm
            weights += [tf_to_keras_gates(kernel[:n_in], cfg.lstm), tf_to_keras_gates(kernel[n_in:], cfg.lstm),
                        tf_to_keras_gates(bias, cfg.lstm)]
        model.get_layer(layer).set_weights(weights)
    return model


def convert_checkpoint(checkpoint: str | os.PathLike, output: str | os.PathLike | None = None, config="maestro"):
    """Convert a checkpoint (zip, folder or prefix) to a Keras model; save it to ``output`` if given."""
    from ..model import save_model
    from ..tf_env import quiet_tensorflow

    quiet_tensorflow()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            model = checkpoint_to_keras(read_checkpoint(resolve_checkpoint(checkpoint, tmp)), config)
        except CheckpointError as exc:  # name the user's file, not the temporary folder it was unpacked into
            raise CheckpointError(f"{checkpoint}: {str(exc).replace(tmp, '').lstrip('/: ')}") from exc
    if output is not None:
        save_model(model, output)
    return model


def write_checkpoint(variables: dict[str, np.ndarray], prefix: str | os.PathLike) -> str:
    """Write ``variables`` (name -> array) as a name-based TF checkpoint (as a TF1 Saver does)."""
    from ..tf_env import quiet_tensorflow

    quiet_tensorflow()
    import tensorflow as tf

    prefix = str(prefix)
    Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    names = sorted(variables)
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(variables[n]) for n in names])
    (Path(prefix).parent / "checkpoint").write_text(
        f'model_checkpoint_path: "{Path(prefix).name}"\nall_model_checkpoint_paths: "{Path(prefix).name}"\n')
    return prefix


def synthetic_checkpoint_variables(config="maestro", seed: int = 0, with_extras: bool = True) -> dict[str, np.ndarray]:
    """Random values under the checkpoint's exact names and shapes, plus (``with_extras``) the
    variables a real checkpoint also holds: Adam slots, ``global_step``, ``beta*_power``, cuDNN buffers."""
    from ..model import get_config

    cfg = get_config(config)
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in expected_variables(cfg).items():
        if name.endswith("moving_variance"):
            out[name] = rng.uniform(0.5, 2.0, shape).astype(np.float32)
        else:
            scale = 1.0 / np.sqrt(shape[0] * (np.prod(shape[:-1]) if len(shape) > 2 else 1)) if len(shape) > 1 else 0.1
            out[name] = (rng.standard_normal(shape) * scale).astype(np.float32)
    if with_extras:
        out["global_step"] = np.array(123456, np.int64)
        out["beta1_power"] = np.array(0.9, np.float32)
        out["beta2_power"] = np.array(0.999, np.float32)
        for stack in LSTMS:
            out[f"{stack}/cudnn_lstm/opaque_kernel"] = np.zeros(16, np.float32)
        first = next(iter(expected_variables(cfg)))
        out[f"{first}/Adam"] = np.zeros_like(out[first])
        out[f"{first}/Adam_1"] = np.zeros_like(out[first])
    return out


def download_checkpoint(dest_dir: str | os.PathLike, url: str = MAESTRO_CHECKPOINT_URL) -> Path:
    """Download ``maestro_checkpoint.zip`` (resumable) and check that it is a readable zip with a checkpoint.

    Raises :class:`piano_transcription.io.DownloadError` with a clear message when offline.
    """
    from ..io import DownloadError, download

    path = download(url, Path(dest_dir) / "maestro_checkpoint.zip")
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
            names = z.namelist()
    except zipfile.BadZipFile as exc:
        path.unlink()
        raise DownloadError(f"{path}: the download is not a valid zip archive (removed; try again)") from exc
    if bad is not None or not any(n.endswith(".index") for n in names):
        raise DownloadError(f"{path}: the archive is damaged or holds no checkpoint")
    return path
