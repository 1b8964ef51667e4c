"""The Onsets-and-Frames network in Keras 3 (Hawthorne et al. 2018, Magenta's MAESTRO model).

Four stacks read the log-mel input ``mel`` ``[batch, frames, 229]``:

* acoustic stack (each stack has its own): conv 3x3 (no bias) + BatchNorm (no scale) + ReLU,
  conv + BN + ReLU, max-pool 1x2 over frequency, conv + BN + ReLU, max-pool 1x2, flatten per
  frame, dense + ReLU;
* onsets / offsets: acoustic stack, bidirectional LSTM, dense 88 + sigmoid;
* velocity: acoustic stack, dense 88 (linear), connected to nothing else;
* frame: acoustic stack, dense 88 + sigmoid (activation probabilities), concatenated as
  ``[onset probs, activation probs, offset probs]`` (gradients stopped into the onset and offset
  stacks, as in Magenta), bidirectional LSTM, dense 88 + sigmoid.

With ``ModelConfig.causal`` every bidirectional LSTM becomes a forward LSTM of twice the units (the live
low-latency model: a frame's output depends on the audio up to 3 frames after it, the convolutions' reach).

Outputs ``onset``, ``offset``, ``frame`` (probabilities) and ``velocity`` (raw), each
``[batch, frames, 88]``.  With ``ModelConfig.pedal`` a fifth output ``pedal`` ``[batch, frames, 3]``
gives the sustain pedal's probabilities (down, goes down, comes up; Kong et al. 2021 predict the same
three from their own network): a bidirectional LSTM and a dense 3 + sigmoid on the frame stack's
acoustic features, so that the pedal costs a few per cent of a step instead of a fifth stack.  With
``ModelConfig.keys`` an output ``keys`` ``[batch, frames, 88]`` gives the probability that each key is
held down (the note without the sustain pedal): the frame logits plus a correction learned by a bidirectional
LSTM from the frame stack's concatenated input and the pedal (:func:`key_head`), trained where the labels know
the keys (rendered MIDI), for note ends at key release with the pedal as CC64.  Models
without them (Magenta's, older ones of this project) keep working everywhere.  The three sigmoid heads are a ``*_logits`` dense layer followed by a
sigmoid layer, so that the logits stay reachable (TFLite export).

Layer names follow Magenta's variable scopes (``onsets_conv0`` <-> ``onsets/conv0/weights``...);
:mod:`piano_transcription.training.magenta` relies on them.  BatchNorm epsilon 0.001 and the conv/dense
initialiser (variance scaling, factor 2, fan_avg, uniform) are slim's, as Magenta used them.
The LSTMs keep Keras's cuDNN-compatible arguments, so on a GPU they run the cuDNN kernel.
"""

from __future__ import annotations

import dataclasses
import zipfile
from dataclasses import dataclass

from .constants import KEYS_OUTPUT, N_KEYS, N_MELS, NOTE_OUTPUTS, PEDAL_CHANNELS, PEDAL_OUTPUT

STACKS = ("onsets", "offsets", "velocity", "frame")


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of the network.  ``filters``: the three conv layers; ``fc``: the dense layer after the
    convs; ``lstm``: units per direction of each bidirectional LSTM."""

    filters: tuple[int, int, int] = (48, 48, 96)
    fc: int = 768
    lstm: int = 256
    bn_momentum: float = 0.99
    dropout: float = 0.0
    pedal: bool = False
    keys: bool = False
    causal: bool = False  # forward-only LSTMs of 2 x lstm units (the width of a bidirectional one): live, low latency


CONFIGS = {
    # Magenta's MAESTRO checkpoint (22.6 M parameters); slim's batch-norm decay 0.999.
    "maestro": ModelConfig((48, 48, 96), 768, 256, bn_momentum=0.999),
    # Trainable on a 2-core CPU: 2.5 M parameters, about 5x faster per step than "maestro".
    "small": ModelConfig((16, 16, 32), 256, 64),
    # The default model since the real-recordings work: small plus the sustain-pedal head.
    "small_pedal": ModelConfig((16, 16, 32), 256, 64, pedal=True),
    # small_pedal plus the key head (note ends at key release).
    "small_keys": ModelConfig((16, 16, 32), 256, 64, pedal=True, keys=True),
    # Wider (2.3x small's compute, 6.7 M parameters), for training on an accelerator: convs 24/24/48, dense 384,
    # LSTMs 128 per direction, dropout 0.2 after the pools and the dense layer (a few hours of packed data, many
    # passes over it).
    "medium_keys": ModelConfig((24, 24, 48), 384, 128, dropout=0.2, pedal=True, keys=True),
    # small's sizes, its recurrent layers looking only backwards (plus the convs' 3 frames ahead): the live
    # low-latency model (piano-transcribe live --mode causal), fine-tuned from the shipped model.
    "small_causal": ModelConfig((16, 16, 32), 256, 64, causal=True),
    # For tests only.
    "tiny": ModelConfig((4, 4, 8), 32, 8),
    "tiny_causal": ModelConfig((4, 4, 8), 32, 8, causal=True),
    "tiny_pedal": ModelConfig((4, 4, 8), 32, 8, pedal=True),
    "tiny_keys": ModelConfig((4, 4, 8), 32, 8, pedal=True, keys=True),
}


def get_config(name_or_config) -> ModelConfig:
    """A :class:`ModelConfig` from a name in :data:`CONFIGS`, a dict, or a config."""
    if isinstance(name_or_config, ModelConfig):
        return name_or_config
    if isinstance(name_or_config, dict):
        d = dict(name_or_config)
        d["filters"] = tuple(d["filters"])
        return ModelConfig(**d)
    if name_or_config not in CONFIGS:
        raise ValueError(f"unknown model config {name_or_config!r}; choose one of {sorted(CONFIGS)}")
    return CONFIGS[name_or_config]


def _keras():
    from .tf_env import quiet_tensorflow

    quiet_tensorflow()
    import keras

    return keras


def custom_objects() -> dict:
    """Custom layers needed to load a saved model."""
    return {"StopGradient": _stop_gradient_class()}


_STOP_GRADIENT = None


def _stop_gradient_class():
    global _STOP_GRADIENT
    if _STOP_GRADIENT is None:
        keras = _keras()

        @keras.saving.register_keras_serializable(package="piano_transcription")
        class StopGradient(keras.layers.Layer):
            """Identity whose gradient is zero (Magenta's ``stop_onset_gradient``)."""

            def call(self, x):
                return keras.ops.stop_gradient(x)

        _STOP_GRADIENT = StopGradient
    return _STOP_GRADIENT


def _initializer():
    keras = _keras()
    return keras.initializers.VarianceScaling(scale=2.0, mode="fan_avg", distribution="uniform")


def acoustic_stack(x, prefix: str, cfg: ModelConfig):
    """Convs + pools + dense of one stack: ``[B, T, 229, 1]`` -> ``[B, T, fc]``."""
    layers = _keras().layers
    for i, (filters, pool) in enumerate(zip(cfg.filters, (1, 2, 2))):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer=_initializer(),
                          name=f"{prefix}_conv{i}")(x)
        x = layers.BatchNormalization(scale=False, epsilon=1e-3, momentum=cfg.bn_momentum,
                                      name=f"{prefix}_conv{i}_bn")(x)
        x = layers.Activation("relu", name=f"{prefix}_conv{i}_relu")(x)
        if pool > 1:
            x = layers.MaxPooling2D((1, pool), strides=(1, pool), name=f"{prefix}_pool{i}")(x)
        if cfg.dropout > 0 and i > 0:
            x = layers.Dropout(cfg.dropout, name=f"{prefix}_dropout{i}")(x)
    freq = N_MELS // 2 // 2
    x = layers.Reshape((-1, freq * cfg.filters[-1]), name=f"{prefix}_flatten")(x)
    x = layers.Dense(cfg.fc, activation="relu", kernel_initializer=_initializer(), name=f"{prefix}_fc_end")(x)
    if cfg.dropout > 0:
        x = layers.Dropout(cfg.dropout, name=f"{prefix}_dropout_end")(x)
    return x


def bilstm(x, units: int, name: str):
    """Bidirectional LSTM with cuDNN-compatible arguments (tanh / sigmoid, no recurrent dropout)."""
    layers = _keras().layers
    return layers.Bidirectional(layers.LSTM(units, return_sequences=True), name=name)(x)


def forward_lstm(x, units: int, name: str):
    """A forward-only LSTM (cuDNN-compatible arguments): each frame's output depends on the frames up to it."""
    return _keras().layers.LSTM(units, return_sequences=True, name=name)(x)


def recurrent(x, cfg: ModelConfig, name: str):
    """The recurrent layer of a stack: a bidirectional LSTM of ``cfg.lstm`` units per direction, or with
    ``cfg.causal`` a forward LSTM of ``2 * cfg.lstm`` units (the same output width)."""
    return forward_lstm(x, 2 * cfg.lstm, name) if cfg.causal else bilstm(x, cfg.lstm, name)


def is_causal(model) -> bool:
    """Whether a Keras model's recurrent layers look only backwards (a ``small_causal``-style model)."""
    try:
        layer = model.get_layer("onsets_lstm")
    except ValueError:
        return False
    return type(layer).__name__ == "LSTM"


def head_logits(x, prefix: str, units: int = N_KEYS):
    """The dense ``units`` logits layer ``{prefix}_logits`` (float32) of a sigmoid head."""
    layers = _keras().layers
    return layers.Dense(units, kernel_initializer=_initializer(), name=f"{prefix}_logits", dtype="float32")(x)


def sigmoid_head(x, prefix: str, name: str, units: int = N_KEYS):
    """Dense ``units`` logits (``{prefix}_logits``) and the sigmoid output layer ``name`` (float32)."""
    return _keras().layers.Activation("sigmoid", name=name, dtype="float32")(head_logits(x, prefix, units))


def key_head(combined, frame_logits, pedal, cfg: ModelConfig):
    """The key head: ``keys = sigmoid(frame logits + correction)``, the correction a dense layer (``keys_delta``,
    initialised at zero) on a bidirectional LSTM over the frame stack's concatenated input and the pedal
    probabilities (gradients stopped into both).  At the start the keys equal the frames -- right wherever the
    pedal is up -- and training only learns where a held pedal keeps a released key sounding (a head that learned
    the keys from scratch still predicted the label rate everywhere after 400 steps, measured)."""
    keras = _keras()
    layers = keras.layers
    stop = _stop_gradient_class()
    x = combined if pedal is None else layers.Concatenate(axis=-1, name="keys_concat")(
        [combined, stop(name="stop_keys_pedal_gradient")(pedal)])
    delta = layers.Dense(N_KEYS, kernel_initializer="zeros", name="keys_delta", dtype="float32")(
        recurrent(x, cfg, "keys_lstm"))
    logits = layers.Add(name="keys_logits", dtype="float32")([stop(name="stop_keys_frame_gradient")(frame_logits),
                                                              delta])
    return layers.Activation("sigmoid", name=KEYS_OUTPUT, dtype="float32")(logits)


def build_model(config="small", name: str = "onsets_and_frames"):
    """Build the (uncompiled) Keras model for a config name or :class:`ModelConfig`."""
    keras = _keras()
    layers = keras.layers
    cfg = get_config(config)
    mel = keras.Input(shape=(None, N_MELS), name="mel")
    x = layers.Reshape((-1, N_MELS, 1), name="add_channel")(mel)

    onset = sigmoid_head(recurrent(acoustic_stack(x, "onsets", cfg), cfg, "onsets_lstm"), "onsets", "onset")
    offset = sigmoid_head(recurrent(acoustic_stack(x, "offsets", cfg), cfg, "offsets_lstm"), "offsets", "offset")
    velocity = layers.Dense(N_KEYS, kernel_initializer=_initializer(), name="velocity",
                            dtype="float32")(acoustic_stack(x, "velocity", cfg))
    frame_features = acoustic_stack(x, "frame", cfg)
    activation = layers.Dense(N_KEYS, activation="sigmoid", kernel_initializer=_initializer(),
                              name="frame_activation_probs")(frame_features)
    stop = _stop_gradient_class()
    combined = layers.Concatenate(axis=-1, name="frame_concat")(
        [stop(name="stop_onset_gradient")(onset), activation, stop(name="stop_offset_gradient")(offset)])
    frame_logits = head_logits(recurrent(combined, cfg, "frame_lstm"), "frame")
    frame = layers.Activation("sigmoid", name="frame", dtype="float32")(frame_logits)
    outputs = {"onset": onset, "offset": offset, "frame": frame, "velocity": velocity}
    if cfg.pedal:
        outputs[PEDAL_OUTPUT] = sigmoid_head(recurrent(frame_features, cfg, "pedal_lstm"), "pedal", PEDAL_OUTPUT,
                                             len(PEDAL_CHANNELS))
    if cfg.keys:
        outputs[KEYS_OUTPUT] = key_head(combined, frame_logits, outputs.get(PEDAL_OUTPUT), cfg)
    model = keras.Model(mel, outputs, name=name)
    model.config = cfg
    return model


def has_pedal(model) -> bool:
    """Whether a Keras model has the sustain-pedal output."""
    return PEDAL_OUTPUT in set(getattr(model, "output_names", None) or [])


def has_keys(model) -> bool:
    """Whether a Keras model has the key (key held down) output."""
    return KEYS_OUTPUT in set(getattr(model, "output_names", None) or [])


def with_heads(config, pedal: bool = False, keys: bool = False) -> ModelConfig:
    """The same sizes with the sustain-pedal head (``pedal``) and the key head (``keys``, which needs the
    pedal's CC64 to be of use) added; heads the config already has stay."""
    cfg = get_config(config)
    return dataclasses.replace(cfg, pedal=cfg.pedal or pedal or keys, keys=cfg.keys or keys)


def transfer_weights(source, target) -> list[str]:
    """Copy the weights of every layer of ``source`` into the layer of the same name and shapes in
    ``target`` (fine-tuning a model that gains a head); return the names of the target's layers
    that kept their initial weights."""
    by_name = {layer.name: layer for layer in source.layers}
    fresh = []
    for layer in target.layers:
        src = by_name.get(layer.name)
        weights = src.get_weights() if src is not None else None
        if weights is not None and [w.shape for w in weights] == [w.shape for w in layer.get_weights()]:
            layer.set_weights(weights)
        elif layer.weights:
            fresh.append(layer.name)
    return fresh


def save_model(model, path) -> None:
    """Save as a ``.keras`` file, atomically."""
    from .io import atomic_path

    with atomic_path(path) as tmp:
        model.save(tmp)


def load_model(path):
    """Load a ``.keras`` model written by this project (or any with the same contract)."""
    from pathlib import Path

    keras = _keras()
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such model file")
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, not a .keras model file")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not a readable Keras model (a .keras file is a zip archive; this is not one)")
    try:
        model = keras.saving.load_model(str(path), custom_objects=custom_objects(), compile=False)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for a damaged or foreign file
        raise ValueError(f"{path}: not a readable Keras model ({type(exc).__name__}: {exc})") from exc
    check_contract(model)
    from .predictor import remember_model_path

    remember_model_path(model, path)
    return model


def check_contract(model) -> None:
    """Raise ValueError unless the model maps ``mel [B, T, 229]`` to onset/offset/frame/velocity ``[B, T, 88]``
    (and optionally ``pedal`` ``[B, T, 3]`` and ``keys`` ``[B, T, 88]``)."""
    names = set(model.output_names) if hasattr(model, "output_names") else set()
    want = set(NOTE_OUTPUTS)
    if not want <= names:
        raise ValueError(f"model outputs {sorted(names)} do not include {sorted(want)}")
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 3 or shape[-1] != N_MELS:
        raise ValueError(f"model input shape {shape} is not [batch, frames, {N_MELS}]")

