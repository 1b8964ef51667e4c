"""Training: Adam with Magenta's schedule, checkpoints with resume, CSV / TensorBoard logs.

Command line (long runs belong outside Jupyter)::

    python -m piano_transcription.training.train PREPARED_DIR RUN_DIR --config small --steps 20000

Re-running the same command after an interruption resumes from the last checkpoint in
``RUN_DIR/checkpoint.keras`` (weights, optimizer state and step count, written every
``--save-every`` steps); ``RUN_DIR/model.keras`` is the final model; ``RUN_DIR/log.csv`` and
``RUN_DIR/tensorboard`` hold the learning curves.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ..constants import TARGETS

# Magenta's hyper-parameters (onsets_frames_transcription/model.py).
LEARNING_RATE = 6e-4
DECAY_STEPS = 10000
DECAY_RATE = 0.98
CLIP_NORM = 3.0


def make_optimizer(learning_rate: float = LEARNING_RATE, cosine_steps: int | None = None):
    """Adam with global-norm clipping at 3 and Magenta's exponential staircase decay (x0.98 every 10k steps),
    or, with ``cosine_steps``, a cosine decay from ``learning_rate`` to zero over that many steps (for
    fine-tuning runs of known length)."""
    import keras

    if cosine_steps:
        schedule = keras.optimizers.schedules.CosineDecay(learning_rate, cosine_steps)
    else:
        schedule = keras.optimizers.schedules.ExponentialDecay(learning_rate, DECAY_STEPS, DECAY_RATE, staircase=True)
    return keras.optimizers.Adam(schedule, global_clipnorm=CLIP_NORM)


def loss_objects() -> dict:
    """The loss functions by name, to load a compiled checkpoint."""
    from .losses import log_loss, masked_log_loss, velocity_loss

    return {"log_loss": log_loss, "velocity_loss": velocity_loss, "pedal_loss": masked_log_loss,
            "masked_log_loss": masked_log_loss}


def compile_model(model, learning_rate: float = LEARNING_RATE, cosine_steps: int | None = None):
    """Compile with the losses of the model's heads (summed) and the optimizer."""
    from ..model import has_keys, has_pedal
    from .losses import losses

    model.compile(optimizer=make_optimizer(learning_rate, cosine_steps), loss=losses(has_pedal(model), has_keys(model)),
                  jit_compile=False)
    return model


def random_batch(batch_size: int, frames: int, pedal: bool, seed: int = 0, keys: bool = False):
    """A batch of random inputs and targets with the training shapes (``mel``, and the targets of the heads;
    ``pedal`` adds the pedal head's, ``keys`` the key head's), for timing steps."""
    import numpy as np

    from ..constants import N_KEYS, N_MELS, PEDAL_CHANNELS

    rng = np.random.default_rng(seed)
    x = rng.normal(-30, 15, (batch_size, frames, N_MELS)).astype(np.float32)
    y = {k: (rng.random((batch_size, frames, N_KEYS)) < 0.05).astype(np.float32) for k in ("onset", "offset", "frame")}
    y["velocity"] = np.concatenate([y["onset"] * 0.5, y["onset"]], axis=-1)
    if pedal:
        y["pedal"] = (rng.random((batch_size, frames, len(PEDAL_CHANNELS) + 1)) < 0.3).astype(np.float32)
    if keys:
        y["keys"] = (rng.random((batch_size, frames, N_KEYS + 1)) < 0.05).astype(np.float32)
    return x, y


def train(prepared_dir, run_dir, config="small", steps: int = 1000, batch_size: int = 4, steps_per_epoch: int = 100,
          save_every: int = 100, learning_rate: float = LEARNING_RATE, seed: int = 0, mixed_precision: bool = False,
          validation_steps: int | None = None, init_model=None, verbose: int = 1, stop_after: int | None = None,
          keep_every: int | None = None, crop_seconds: float | None = None, cosine_decay: bool = False,
          trainable: list[str] | None = None, threads: int | None = None, mel_augment: str | None = None,
          targets: str = "binary", initial_step: int = 0):
    """Train (or resume) a model on a prepared data set; return ``(model, history dict)``.

    ``steps`` is the total number of optimizer steps: a resumed run continues from the step and
    optimizer state of ``RUN_DIR/checkpoint.keras`` (written every ``save_every`` steps, atomically)
    up to it.  Validation loss on the ``validation`` split is logged each epoch of ``steps_per_epoch``
    steps (``validation_steps`` batches, default all).  ``init_model``: a ``.keras`` file to start
    from (fine-tuning).  ``stop_after``: stop after that many steps of this call (to test resume).
    ``trainable``: train only the layers whose names start with one of these prefixes (e.g. ``["keys"]``: a new
    head on a model whose other heads stay exactly as they were; frozen batch norms stay in inference mode).
    ``threads``: CPU threads TensorFlow may use (within and between ops; default: all), for a run in the background
    of a shared machine.  ``mel_augment``: a log-mel augmentation of the training input (``gain`` or ``chain``,
    :data:`~.packed.MEL_AUGMENTS`), new at every step.  ``targets``: the onset and offset heads' targets, ``binary``
    (Magenta's 32 ms of ones) or ``regression`` (Kong et al. 2021's triangles around the exact times, from which the
    decoder reads sub-frame times; recorded in ``config.json`` and in ``model.thresholds.json``'s ``timing``).
    ``initial_step``: a new run (from ``init_model``) counts its steps from there, for a run carried on from weights
    saved without the optimizer (the schedule and the snapshot names go on; Adam's moments start anew).
    """
    from ..tf_env import distribution_strategy, quiet_tensorflow

    quiet_tensorflow()
    import keras

    if threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)

    from ..constants import FRAMES_PER_SECOND, SEGMENT_FRAMES
    from .dataset import make_dataset
    from ..model import (build_model, custom_objects, get_config, has_keys, has_pedal, load_model, save_model,
                         transfer_weights)

    from .dataset import segment_targets
    from .maestro import DatasetError, load_shard, shard_paths

    paths = shard_paths(prepared_dir, "train")
    if not paths:  # before anything is written into run_dir
        raise DatasetError(f"{prepared_dir}: the prepared data set has no training shards")
    segment_targets(load_shard(paths[0]), 0, 0, 1, targets=targets)  # shards without regression targets fail here
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    if mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    cfg = get_config(config)
    checkpoint = run_dir / "checkpoint.keras"
    strategy = distribution_strategy()
    if checkpoint.exists() and (run_dir / "config.json").exists():
        started = json.loads((run_dir / "config.json").read_text()).get("targets", "binary")
        if started != targets:
            raise ValueError(f"{run_dir}: the run was started with --targets {started}; resume it with the same")
    with strategy.scope():
        if checkpoint.exists():
            model = keras.saving.load_model(str(checkpoint), custom_objects={**custom_objects(), **loss_objects()})
        else:
            model = build_model(cfg)
            if init_model:
                fresh = transfer_weights(load_model(init_model), model)
                if fresh:
                    print(f"fine-tuning {init_model}: new layers {', '.join(fresh)}", flush=True)
            if trainable:
                for layer in model.layers:
                    layer.trainable = any(layer.name.startswith(prefix) for prefix in trainable)
                if not any(layer.trainable_weights for layer in model.layers):
                    raise ValueError(f"no layer of the model starts with {', '.join(trainable)}")
            compile_model(model, learning_rate, steps if cosine_decay else None)
            if initial_step:
                model.optimizer.iterations.assign(initial_step)
            (run_dir / "config.json").write_text(json.dumps(
                dict(config=cfg.__dict__, steps=steps, batch_size=batch_size, learning_rate=learning_rate,
                     cosine_decay=cosine_decay, crop_seconds=crop_seconds, trainable=trainable,
                     seed=seed, mel_augment=mel_augment, targets=targets, initial_step=initial_step, prepared_dir=str(prepared_dir), init_model=str(init_model) if init_model else None),
                indent=1))
    start_step = int(model.optimizer.iterations.numpy())
    batch_size *= strategy.num_replicas_in_sync
    pedal, keys = has_pedal(model), has_keys(model)
    frames = int(crop_seconds * FRAMES_PER_SECOND) + 1 if crop_seconds else SEGMENT_FRAMES
    train_ds = make_dataset(prepared_dir, "train", batch_size, shuffle=True, repeat=True, seed=seed + start_step,
                            pedal=pedal, frames=frames, keys=keys, mel_augment=mel_augment, targets=targets)
    try:
        val_ds = make_dataset(prepared_dir, "validation", batch_size, shuffle=False, repeat=False, pedal=pedal,
                              keys=keys, targets=targets)
        if validation_steps:
            val_ds = val_ds.take(validation_steps)
    except ValueError:
        val_ds = None
    last = min(steps, start_step + stop_after) if stop_after is not None else steps

    class Checkpointer(keras.callbacks.Callback):
        """Saves the resumable checkpoint (model + optimizer) every ``save_every`` steps; stops at ``last``."""

        def on_train_batch_end(self, batch, logs=None):
            step = int(self.model.optimizer.iterations.numpy())
            if step % save_every == 0 or step >= last:
                save_model(self.model, checkpoint)
            if keep_every and step % keep_every == 0:  # snapshots for a learning curve on other data
                save_model(self.model, run_dir / "snapshots" / f"step_{step:06d}.keras")
            if step >= last:
                self.model.stop_training = True

    class StepLog(keras.callbacks.Callback):
        """One line every 50 steps (step, loss, seconds per step) for logs of background runs."""

        def on_train_begin(self, logs=None):
            self.t0, self.s0 = time.time(), int(self.model.optimizer.iterations.numpy())

        def on_train_batch_end(self, batch, logs=None):
            step = int(self.model.optimizer.iterations.numpy())
            if verbose == 2 and step % 50 == 0:
                rate = (time.time() - self.t0) / max(step - self.s0, 1)
                print(f"step {step}: loss {logs.get('loss', float('nan')):.4f}, {rate:.2f} s/step", flush=True)

    history = {}
    if start_step < last:
        callbacks = [Checkpointer(), StepLog(), keras.callbacks.CSVLogger(str(run_dir / "log.csv"), append=True),
                     keras.callbacks.TensorBoard(str(run_dir / "tensorboard"), update_freq=50)]
        epochs = -(-last // steps_per_epoch)
        history = model.fit(train_ds, epochs=epochs, initial_epoch=start_step // steps_per_epoch,
                            steps_per_epoch=steps_per_epoch, validation_data=val_ds, callbacks=callbacks,
                            verbose=verbose).history
    save_model(model, run_dir / "model.keras")
    if targets == "regression":
        write_timing(run_dir / "model.keras", "regression")
    return model, history


def write_timing(model_path, timing: str) -> None:
    """Record how a model's note times are decoded (``timing`` in ``X.thresholds.json`` beside it, the file's
    thresholds kept), so that transcription reads a regression-target model's sub-frame times by default."""
    from ..io import write_json
    from ..predictor import read_sidecar, thresholds_path

    write_json(thresholds_path(model_path), {**read_sidecar(model_path), "timing": timing})


def main(argv=None, prog: str = "python -m piano_transcription.training.train") -> None:
    p = argparse.ArgumentParser(prog=prog, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("prepared_dir", help="folder written by prepare_dataset (manifest.json + shards)")
    p.add_argument("run_dir", help="folder for checkpoints, logs and model.keras (resumed if it exists)")
    p.add_argument("--config", default="small",
                   help="model size: maestro, small, small_pedal, small_keys, medium_keys or tiny (default small)")
    p.add_argument("--pedal", action="store_true", help="add the sustain-pedal head to the config")
    p.add_argument("--keys", action="store_true",
                   help="add the key head (key held down, for note ends at key release; implies --pedal)")
    p.add_argument("--steps", type=int, default=20000, help="total optimizer steps")
    p.add_argument("--batch-size", type=int, default=4, help="20 s segments per step and GPU (default 4)")
    p.add_argument("--steps-per-epoch", type=int, default=500, help="steps between validation runs")
    p.add_argument("--save-every", type=int, default=250, help="steps between checkpoints")
    p.add_argument("--learning-rate", type=float, default=LEARNING_RATE)
    p.add_argument("--cosine-decay", action="store_true",
                   help="decay the learning rate to zero over --steps along a cosine (default: Magenta's staircase)")
    p.add_argument("--validation-steps", type=int, default=None, help="validation batches per epoch (default all)")
    p.add_argument("--init-model", default=None, help=".keras file to start from")
    p.add_argument("--crop-seconds", type=float, default=None,
                   help="train on random crops of this many seconds of each 20 s example (shorter steps; "
                        "measured: 10 s crops process 18 %% more audio per second than 20 s, benchmarks/train_speed.py)")
    p.add_argument("--trainable", nargs="+", default=None, metavar="PREFIX",
                   help="train only the layers whose names start with these prefixes (e.g. keys: the key head alone)")
    p.add_argument("--keep-every", type=int, default=None, help="also keep RUN_DIR/snapshots/step_N.keras every N steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--initial-step", type=int, default=0,
                   help="a new run from --init-model counts its steps from N (weights saved without the optimizer)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads TensorFlow may use (default: all)")
    p.add_argument("--mixed-precision", action="store_true", help="float16 compute (GPUs with tensor cores)")
    p.add_argument("--targets", choices=TARGETS, default="binary",
                   help="onset and offset targets: binary (32 ms of ones, Magenta's) or regression (triangles around "
                        "the exact times, Kong et al. 2021; the decoder then reads sub-frame times); default binary")
    p.add_argument("--mel-augment", choices=("gain", "chain"), default=None,
                   help="change each training example's log-mel, new at every step: gain (an excerpt 0-12 dB below "
                        "its recording's peak) or chain (gain, EQ and a noise floor); default none")
    a = p.parse_args(argv)
    from ..model import with_heads

    config = with_heads(a.config, a.pedal, a.keys)
    train(a.prepared_dir, a.run_dir, config, a.steps, a.batch_size, a.steps_per_epoch, a.save_every,
          a.learning_rate, a.seed, a.mixed_precision, a.validation_steps, a.init_model, verbose=2,
          keep_every=a.keep_every, crop_seconds=a.crop_seconds, cosine_decay=a.cosine_decay, trainable=a.trainable,
          threads=a.threads, mel_augment=a.mel_augment, targets=a.targets, initial_step=a.initial_step)


if __name__ == "__main__":
    main()
