"""A training run of fixed wall-clock length on any Keras backend: for an accelerator lent for minutes.

The lent machines have PyTorch and JAX but no TensorFlow, and no copy of ``../shared``.  The model and its
losses are plain Keras 3, so with ``KERAS_BACKEND=torch`` (or ``jax``) and a packed data set
(:mod:`.packed`) the same network trains there::

    KERAS_BACKEND=torch python -m piano_transcription.training.timed train PACKED_DIR OUT_DIR \\
        --config medium_keys --minutes 6

The learning rate follows a cosine over the *time* budget (after a linear warm-up of ``--warmup-steps``), so
the run ends with a decayed rate whatever the machine's speed.  Weights are written as plain ``.npz`` parts
of at most ``--part-megabytes`` (the tool brings back files of at most 16 MiB), every ``--save-minutes`` and at
the end (``last``), plus the weights of the lowest validation loss (``best``); ``log.csv`` holds the curve.
Back on the CPU machine ``python -m piano_transcription.training.timed export OUT_DIR model.keras [--best]``
builds the same model with the TensorFlow backend, loads the weights and saves a ``.keras`` file.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from ..constants import FRAMES_PER_SECOND
from ..io import atomic_path, write_json
from .train import CLIP_NORM

PART_MEGABYTES = 16.0  # largest weights file (MB; the device tool brings back files of up to 16 MiB)


def cosine_rate(base: float, step: int, elapsed: float, budget: float, warmup_steps: int) -> float:
    """Learning rate: linear warm-up over ``warmup_steps`` steps, then a cosine from ``base`` to zero over the
    time budget (``elapsed`` and ``budget`` in seconds)."""
    warm = min(1.0, (step + 1) / max(warmup_steps, 1))
    return base * warm * 0.5 * (1.0 + math.cos(math.pi * min(elapsed / budget, 1.0)))


def save_weight_parts(weights: list[np.ndarray], out_dir: Path, tag: str, part_megabytes: float = PART_MEGABYTES,
                      dtype=np.float32) -> list[Path]:
    """Write a model's weight list as ``{tag}_weights_NN.npz`` parts of at most ``part_megabytes`` each
    (``dtype``: float32, or float16 for a starting point that has to travel; in ``model.get_weights()`` order,
    array ``wI`` is weight I); return the paths."""
    out_dir = Path(out_dir)
    weights = [np.asarray(w, dtype) for w in weights]
    parts, current, size = [], {}, 0
    for i, w in enumerate(weights):
        if current and size + w.nbytes > part_megabytes * 1e6:
            parts.append(current)
            current, size = {}, 0
        current[f"w{i:04d}"] = w
        size += w.nbytes
    parts.append(current)
    paths = []
    for n, arrays in enumerate(parts):
        path = out_dir / f"{tag}_weights_{n:02d}.npz"
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
        paths.append(path)
    for stale in sorted(out_dir.glob(f"{tag}_weights_*.npz"))[len(parts):]:
        stale.unlink()
    return paths


def load_weight_parts(out_dir: Path, tag: str) -> list[np.ndarray]:
    """The weight list written by :func:`save_weight_parts`."""
    arrays = {}
    for path in sorted(Path(out_dir).glob(f"{tag}_weights_*.npz")):
        with np.load(path) as z:
            arrays.update({k: z[k] for k in z.files})
    if not arrays:
        raise FileNotFoundError(f"{out_dir}: no {tag}_weights_*.npz files")
    return [arrays[k] for k in sorted(arrays)]


def set_weight_parts(model, weights: list[np.ndarray], source: str) -> None:
    """Load a weight list of :func:`load_weight_parts` into ``model``; ValueError (naming ``source``) if the shapes
    are another model's."""
    if [w.shape for w in weights] != [tuple(w.shape) for w in model.get_weights()]:
        raise ValueError(f"{source}: the weights do not fit the model")
    model.set_weights(weights)


def _sync(model) -> None:
    """Under JAX, ``fit`` keeps the variables' values outside the model between steps: bring them back before a
    callback reads or assigns a variable (a no-op on the other backends)."""
    if hasattr(model, "jax_state_sync"):
        model.jax_state_sync()


def _backend_setup(keras) -> str:
    """Fast float32 matrix products on a GPU (TF32) and cuDNN autotuning under PyTorch (JAX uses TF32 by
    default); the device's name."""
    if keras.backend.backend() == "jax":
        import jax

        return str(jax.devices()[0])
    if keras.backend.backend() == "torch":
        import torch

        if torch.cuda.is_available():
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            torch.backends.cudnn.benchmark = True
            return torch.cuda.get_device_name(0)
        return "cpu (torch)"
    return keras.backend.backend()


def train_timed(packed_dir, out_dir, config="small_keys", minutes: float = 5.0, batch_size: int = 16,
                crop_seconds: float = 10.0, learning_rate: float = 6e-4, warmup_steps: int = 200,
                steps_per_epoch: int = 200, validation_batches: int = 4, save_minutes: float = 1.0,
                seed: int = 0, workers: int = 4, init_dir=None, init_tag: str = "last", eager: bool = False) -> dict:
    """Train a model of ``config`` on a packed data set for ``minutes`` of wall-clock time (see the module
    docstring); return a summary (steps, seconds, final and best validation loss).  ``init_dir``: start from the
    ``init_tag`` weights of an earlier run (:func:`save_weight_parts`; a fresh optimizer, hence the warm-up).
    ``eager``: no compiled train step (for a few steps of a tiny model, where tracing would cost more)."""
    from ..tf_env import quiet_tensorflow

    quiet_tensorflow()
    import keras

    from ..model import build_model, get_config, has_keys, has_pedal
    from .losses import losses
    from .packed import load_packed, packed_sequence

    out_dir = Path(out_dir)
    if any(out_dir.glob("*_weights_*.npz")):
        raise FileExistsError(f"{out_dir}: holds the weights of a run already; choose a new folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    device = _backend_setup(keras)
    cfg = get_config(config)
    model = build_model(cfg)
    if init_dir is not None:
        set_weight_parts(model, load_weight_parts(init_dir, init_tag), f"{init_dir} ({init_tag}, config {config})")
    pedal, keys = has_pedal(model), has_keys(model)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, global_clipnorm=CLIP_NORM), loss=losses(pedal, keys),
                  run_eagerly=eager)
    frames = int(crop_seconds * FRAMES_PER_SECOND) + 1
    t_load = time.time()
    train_shards = load_packed(packed_dir, "train")
    val_shards = load_packed(packed_dir, "validation")
    train_seq = packed_sequence(train_shards, batch_size, frames, steps_per_epoch, pedal, keys, seed=seed,
                                workers=workers, use_multiprocessing=False, max_queue_size=16)
    val_segments = sum(len(s["mel"]) for s in val_shards)
    val_batch = max(1, min(batch_size, val_segments // max(validation_batches, 1)))
    val_seq = packed_sequence(val_shards, val_batch, frames, validation_batches, pedal, keys, shuffle=False)
    segments = sum(len(s["mel"]) for s in train_shards)
    print(f"{device}: {cfg}, {model.count_params()} parameters; {segments} training segments "
          f"(loaded in {time.time() - t_load:.1f} s); {minutes} min", flush=True)
    write_json(out_dir / "config.json", dict(
        config=cfg.__dict__, minutes=minutes, batch_size=batch_size, crop_seconds=crop_seconds,
        learning_rate=learning_rate, warmup_steps=warmup_steps, seed=seed, device=device,
        backend=keras.backend.backend(), packed_dir=str(packed_dir), train_segments=segments,
        init=f"{init_dir}:{init_tag}" if init_dir else None))
    budget = minutes * 60.0

    class Budget(keras.callbacks.Callback):
        """Cosine learning rate over the time budget; stops at its end; saves the weights on the way."""

        def on_train_begin(self, logs=None):
            self.t0 = self.saved = time.time()
            self.step, self.best, self.best_step = 0, float("inf"), 0

        def on_train_batch_begin(self, batch, logs=None):
            _sync(self.model)
            self.model.optimizer.learning_rate.assign(
                cosine_rate(learning_rate, self.step, time.time() - self.t0, budget, warmup_steps))

        def on_train_batch_end(self, batch, logs=None):
            self.step += 1
            elapsed = time.time() - self.t0
            if self.step % 50 == 0:
                rate = cosine_rate(learning_rate, self.step, elapsed, budget, warmup_steps)
                print(f"step {self.step}: loss {float(logs.get('loss', float('nan'))):.4f}, learning rate {rate:.2e}, "
                      f"{elapsed / self.step:.3f} s/step, {elapsed:.0f} s", flush=True)
            if time.time() - self.saved > save_minutes * 60.0:
                _sync(self.model)
                save_weight_parts(self.model.get_weights(), out_dir, "last")
                self.saved = time.time()
            if elapsed > budget:
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            val = float((logs or {}).get("val_loss", float("inf")))
            if val < self.best:
                self.best = val
                _sync(self.model)
                save_weight_parts(self.model.get_weights(), out_dir, "best")
                self.best_step = self.step

    budget_cb = Budget()
    history = model.fit(train_seq, epochs=10 ** 6, validation_data=val_seq, verbose=0,
                        callbacks=[budget_cb, keras.callbacks.CSVLogger(str(out_dir / "log.csv"))]).history
    save_weight_parts(model.get_weights(), out_dir, "last")
    _sync(model)
    summary = {"steps": budget_cb.step, "seconds": round(time.time() - budget_cb.t0, 1),
               "final_learning_rate": float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)),
               "val_loss": history.get("val_loss", [None])[-1], "best_val_loss": budget_cb.best,
               "best_step": budget_cb.best_step}
    write_json(out_dir / "summary.json", summary)
    print(json.dumps(summary), flush=True)
    return summary


def export(out_dir, model_path, tag: str = "last") -> None:
    """Build the run's model (on the current backend), load its ``tag`` weights and save it as ``.keras``."""
    from ..model import build_model, save_model

    out_dir = Path(out_dir)
    cfg = json.loads((out_dir / "config.json").read_text())["config"]
    model = build_model(cfg)
    set_weight_parts(model, load_weight_parts(out_dir, tag), f"{out_dir} ({tag}, its config.json)")
    save_model(model, model_path)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m piano_transcription.training.timed", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a new model for a fixed time on a packed data set")
    t.add_argument("packed_dir")
    t.add_argument("out_dir")
    t.add_argument("--config", default="small_keys")
    t.add_argument("--minutes", type=float, default=5.0, help="wall-clock training time")
    t.add_argument("--batch-size", type=int, default=16)
    t.add_argument("--crop-seconds", type=float, default=10.0)
    t.add_argument("--learning-rate", type=float, default=6e-4)
    t.add_argument("--warmup-steps", type=int, default=200)
    t.add_argument("--steps-per-epoch", type=int, default=200, help="steps between validation runs")
    t.add_argument("--validation-batches", type=int, default=4)
    t.add_argument("--save-minutes", type=float, default=1.0)
    t.add_argument("--workers", type=int, default=4, help="threads making batches")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--init-dir", default=None, help="start from the weights of an earlier run (folder of parts)")
    t.add_argument("--init-tag", default="last", help="which of its weights: last, best, ... (default last)")
    t.add_argument("--eager", action="store_true", help="no compiled train step (debugging)")
    e = sub.add_parser("export", help="a run's weights -> a .keras model")
    e.add_argument("out_dir")
    e.add_argument("model_path")
    e.add_argument("--best", action="store_true", help="the weights of the lowest validation loss")
    h = sub.add_parser("half", help="a run's weights as float16 parts: a starting point in half the bytes")
    h.add_argument("out_dir")
    h.add_argument("init_dir")
    h.add_argument("--tag", default="last")
    a = p.parse_args(argv)
    if a.command == "half":
        save_weight_parts(load_weight_parts(a.out_dir, a.tag), a.init_dir, "last", dtype=np.float16)
    elif a.command == "train":
        train_timed(a.packed_dir, a.out_dir, a.config, a.minutes, a.batch_size, a.crop_seconds, a.learning_rate,
                    a.warmup_steps, a.steps_per_epoch, a.validation_batches, a.save_minutes, a.seed, a.workers,
                    a.init_dir, a.init_tag, a.eager)
    else:
        if Path(a.model_path).exists():
            raise SystemExit(f"{a.model_path}: exists; not overwritten")
        export(a.out_dir, a.model_path, "best" if a.best else "last")


if __name__ == "__main__":
    main()
