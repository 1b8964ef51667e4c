"""tf.data input from prepared shards: streamed, shuffled, batched, prefetched.

Shards are read one at a time by a Python generator (shard order reshuffled every pass), then a
shuffle buffer of segments mixes pieces; the whole split is never in memory.
"""

from __future__ import annotations

import os

import numpy as np

from ..constants import N_KEYS, N_MELS, PEDAL_CHANNELS, SEGMENT_FRAMES
from .maestro import load_shard, shard_paths

AUGMENT_STREAM = 7  # the second word of the log-mel augmentation's random seed (the first: the input's seed)



def segment_targets(shard: dict, k: int, a: int, b: int, pedal: bool = False, keys: bool = False) -> dict:
    """The training targets of frames ``a:b`` of segment ``k`` of a shard (:func:`~.maestro.load_shard`'s arrays):
    ``onset``, ``offset``, ``frame`` ``[frames, 88]``, ``velocity`` ``[frames, 176]`` (velocities and onsets, for
    :func:`~.losses.velocity_loss`), with ``pedal`` ``pedal`` ``[frames, 4]`` (the three pedal channels and the
    segment's label mask repeated per frame) and with ``keys`` ``keys`` ``[frames, 89]`` (key-down labels and mask)."""
    onsets = shard["onsets"][k][a:b]
    targets = {"onset": onsets, "offset": shard["offsets"][k][a:b], "frame": shard["frames"][k][a:b],
               "velocity": np.concatenate([shard["velocities"][k][a:b], onsets], axis=-1)}
    n = len(onsets)
    if pedal:
        mask = np.full((n, 1), shard["pedal_mask"][k], np.float32)
        targets["pedal"] = np.concatenate([shard["pedal"][k][a:b], mask], axis=-1)
    if keys:
        mask = np.full((n, 1), shard["keys_mask"][k], np.float32)
        targets["keys"] = np.concatenate([shard["keys"][k][a:b], mask], axis=-1)
    return targets


def segment_generator(paths, shuffle: bool, seed: int, repeat: bool, pedal: bool = False, frames: int | None = None,
                      keys: bool = False, mel_augment=None):
    """Yield ``(mel, targets)`` per segment from shard ``paths``; with ``pedal`` the targets include
    ``pedal`` ``[frames, 4]``: the three pedal channels and the example's label mask repeated per frame;
    with ``keys``, ``keys`` ``[frames, 89]``: the key-down labels and their mask.
    With ``frames`` shorter than the stored segments, each example is a random crop of that many frames
    (within the segment's valid frames where it has enough).  ``mel_augment(mel, rng)``: a change of each
    example's log-mel (:func:`~.packed.mel_augmenter`), drawn from its own stream, so that the order and crops
    stay those of a run without it."""
    rng = np.random.default_rng(seed)
    augment_rng = np.random.default_rng([seed, AUGMENT_STREAM])
    while True:
        order = rng.permutation(len(paths)) if shuffle else np.arange(len(paths))
        for i in order:
            shard = load_shard(paths[i])
            for k in range(len(shard["mel"])):
                a, b = 0, shard["mel"].shape[1]
                if frames is not None and frames < b:
                    a = int(rng.integers(max(int(shard["lengths"][k]) - frames, 0) + 1)) if shuffle else 0
                    b = a + frames
                mel = shard["mel"][k][a:b]
                yield (mel if mel_augment is None else mel_augment(mel, augment_rng),
                       segment_targets(shard, k, a, b, pedal, keys))
        if not repeat:
            return


def make_dataset(prepared_dir: str | os.PathLike, split: str = "train", batch_size: int = 4, shuffle: bool = True,
                 repeat: bool = True, shuffle_buffer: int = 256, seed: int = 0, frames: int = SEGMENT_FRAMES,
                 pedal: bool = False, keys: bool = False, mel_augment: str | None = None):
    """A ``tf.data.Dataset`` of ``(mel [B, frames, 229], {onset, offset, frame, velocity[, pedal][, keys]})``
    batches; ``mel_augment``: a log-mel augmentation by name (:data:`~.packed.MEL_AUGMENTS`), new every pass."""
    from .packed import mel_augmenter

    augmenter = mel_augmenter(mel_augment)
    from ..tf_env import quiet_tensorflow

    quiet_tensorflow()
    import tensorflow as tf

    paths = [str(p) for p in shard_paths(prepared_dir, split)]
    if not paths:
        raise ValueError(f"{prepared_dir}: the split {split!r} has no prepared pieces")
    roll = tf.TensorSpec((frames, N_KEYS), tf.float32)
    signature = (tf.TensorSpec((frames, N_MELS), tf.float32),
                 {"onset": roll, "offset": roll, "frame": roll,
                  "velocity": tf.TensorSpec((frames, 2 * N_KEYS), tf.float32)})
    if pedal:
        signature[1]["pedal"] = tf.TensorSpec((frames, len(PEDAL_CHANNELS) + 1), tf.float32)
    if keys:
        signature[1]["keys"] = tf.TensorSpec((frames, N_KEYS + 1), tf.float32)
    crop = frames if frames != SEGMENT_FRAMES else None
    ds = tf.data.Dataset.from_generator(lambda: segment_generator(paths, shuffle, seed, repeat, pedal, crop, keys,
                                                                      augmenter),
                                        output_signature=signature)
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size, drop_remainder=repeat).prefetch(tf.data.AUTOTUNE)
