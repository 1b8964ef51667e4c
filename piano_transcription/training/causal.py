"""The live low-latency model's starting point: a causal model (``small_causal``) initialised from a bidirectional
one (the shipped model).

Every layer of the same name and shape is copied (convolutions, batch norms, dense layers, velocity); each
bidirectional LSTM of ``u`` units per direction becomes a forward LSTM of ``2u`` units whose first ``u`` units are
the old forward direction (their weights from the new units zeroed, so they start computing exactly what the
forward direction computed) and whose other ``u`` units start fresh; the dense layer reading the LSTM keeps its
forward half and starts with zeros where the backward direction came in.  The starting model is therefore the
shipped model with its backward directions silenced, and fine-tuning (``training.train`` with ``--init-model``)
teaches it to do without them.

    python -m piano_transcription.training.causal SOURCE.keras OUT.keras [--config small_causal]
"""

from __future__ import annotations

import argparse

import numpy as np

RECURRENT = ("onsets_lstm", "offsets_lstm", "frame_lstm")
READERS = {"onsets_lstm": "onsets_logits", "offsets_lstm": "offsets_logits", "frame_lstm": "frame_logits"}
GATES = 4  # Keras LSTM gate order: input, forget, cell, output


def embed_forward_lstm(forward: list[np.ndarray], target: list[np.ndarray]) -> list[np.ndarray]:
    """Weights ``[kernel [in, 4n], recurrent [n, 4n], bias [4n]]`` of an ``n``-unit LSTM whose first ``u`` units are
    the ``u``-unit LSTM ``forward`` and the rest keep ``target``'s values, with no weight from a new unit into an
    old one (so the old units compute exactly what ``forward`` computed)."""
    kernel, rec, bias = (np.array(w, copy=True) for w in target)
    f_kernel, f_rec, f_bias = forward
    u, n = f_rec.shape[0], rec.shape[0]
    if kernel.shape[0] != f_kernel.shape[0] or u > n:
        raise ValueError(f"cannot embed an LSTM of {u} units reading {f_kernel.shape[0]} features into one of {n} "
                         f"units reading {kernel.shape[0]}")
    for g in range(GATES):
        old, new = slice(g * u, (g + 1) * u), slice(g * n, g * n + u)
        kernel[:, new] = f_kernel[:, old]
        rec[:u, new] = f_rec[:, old]
        rec[u:, new] = 0.0
        bias[new] = f_bias[old]
    return [kernel, rec, bias]


def causal_from_bidirectional(source, config="small_causal"):
    """A causal Keras model of ``config`` initialised from the bidirectional model ``source`` (object or path), as
    the module docstring says; the heads ``source`` has and ``config`` lacks (pedal, keys) are left out."""
    from ..model import build_model, get_config, load_model, transfer_weights

    if not hasattr(source, "layers"):
        source = load_model(source)
    cfg = get_config(config)
    if not cfg.causal:
        raise ValueError(f"{config!r} is not a causal config")
    model = build_model(cfg)
    transfer_weights(source, model)
    for name in RECURRENT:
        src, dst = source.get_layer(name), model.get_layer(name)
        weights = src.get_weights()
        forward = weights[:3] if len(weights) == 6 else weights  # Bidirectional: forward then backward
        dst.set_weights(embed_forward_lstm(forward, dst.get_weights()))
        u = forward[1].shape[0]
        reader = model.get_layer(READERS[name])
        kernel, bias = source.get_layer(READERS[name]).get_weights()
        kernel = np.array(kernel, copy=True)
        kernel[u:] = 0.0  # where the backward direction (now the new units) comes in
        reader.set_weights([kernel, bias])
    return model


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m piano_transcription.training.causal", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", help="bidirectional .keras model (the shipped default)")
    p.add_argument("output", help="the causal starting model (.keras)")
    p.add_argument("--config", default="small_causal")
    a = p.parse_args(argv)
    from ..model import save_model

    save_model(causal_from_bidirectional(a.source, a.config), a.output)
    print(f"wrote {a.output}")


if __name__ == "__main__":
    main()
