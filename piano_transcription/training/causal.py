"""The live low-latency model's starting point: a causal model (``small_causal``) initialised from a bidirectional
one (the shipped model).

Every layer of the same name and shape is copied (convolutions, batch norms, dense layers, velocity); each
bidirectional LSTM of ``u`` units per direction becomes a forward LSTM of ``2u`` units whose first ``u`` units are
the old forward direction (their weights from the new units zeroed, so they start computing exactly what the
forward direction computed) and whose other ``u`` units start fresh; the dense layer reading the LSTM keeps its
forward half and starts with zeros where the backward direction came in.  The starting model is therefore the
shipped model with its backward directions silenced, and fine-tuning (``training.train`` with ``--init-model``)
teaches it to do without them.

    python -m piano_transcription.training.causal init SOURCE.keras OUT.keras [--config small_causal]
    python -m piano_transcription.training.causal thresholds MODEL.keras PREPARED_DIR   # onset threshold, rendered split
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


def choose_onset_threshold(model, prepared_dir, split: str = "validation", frame_threshold: float = 0.3,
                           grid=(0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)) -> tuple[float, dict[float, float]]:
    """The global onset threshold of ``grid`` with the best mean note F1 on a prepared (rendered) split, and the F1
    of each: a causal model is less sure of its onsets than the bidirectional one it came from."""
    from .evaluate import piece_metrics, predict_split

    examples = list(predict_split(model, prepared_dir, split, progress=False))
    scores = {t: float(np.mean([piece_metrics(ex["rolls"], ex["ref_notes"], ex["ref_frames"], t,
                                              frame_threshold)["note_f1"] for ex in examples])) for t in grid}
    return max(scores, key=scores.get), scores


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m piano_transcription.training.causal", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", help="the causal starting model from a bidirectional one")
    init.add_argument("source", help="bidirectional .keras model (the shipped default)")
    init.add_argument("output", help="the causal starting model (.keras)")
    init.add_argument("--config", default="small_causal")
    th = sub.add_parser("thresholds", help="choose the global onset threshold on a prepared split and write "
                                           "MODEL.thresholds.json (frame 0.3, offset 0.5: the shipped model's)")
    th.add_argument("model")
    th.add_argument("prepared_dir")
    th.add_argument("--split", default="validation")
    a = p.parse_args(argv)
    from ..model import load_model, save_model

    if a.command == "init":
        save_model(causal_from_bidirectional(a.source, a.config), a.output)
        print(f"wrote {a.output}")
        return
    from ..io import write_json
    from ..predictor import thresholds_path

    best, scores = choose_onset_threshold(load_model(a.model), a.prepared_dir, a.split)
    print("note F1 by onset threshold: " + ", ".join(f"{t}: {f:.3f}" for t, f in scores.items()))
    write_json(thresholds_path(a.model), {"onset": [best] * 88, "frame": [0.3] * 88, "offset": 0.5})
    print(f"onset threshold {best} -> {thresholds_path(a.model)}")


if __name__ == "__main__":
    main()
