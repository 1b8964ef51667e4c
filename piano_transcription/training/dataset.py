"""tf.data input from prepared shards: streamed, shuffled, batched, prefetched.

Shards are read one at a time by a Python generator (shard order reshuffled every pass), then a
shuffle buffer of segments mixes pieces; the whole split is never in memory.
"""

from __future__ import annotations

import os

import numpy as np

from ..constants import N_KEYS, N_MELS, PEDAL_CHANNELS, SEGMENT_FRAMES, TARGETS
from .maestro import REGRESSION_ROLLS, DatasetError, load_shard, shard_paths

AUGMENT_STREAM = 7  # the second word of the log-mel augmentation's random seed (the first: the input's seed)



def check_targets(targets: str) -> str:
    """``targets`` if it is one of :data:`~piano_transcription.constants.TARGETS`, else ValueError."""
    if targets not in TARGETS:
        raise ValueError(f"unknown onset/offset targets {targets!r}; choose from {', '.join(TARGETS)}")
    return targets


def segment_targets(shard: dict, k: int, a: int, b: int, pedal: bool = False, keys: bool = False,
                    targets: str = "binary") -> dict:
    """The training targets of frames ``a:b`` of segment ``k`` of a shard (:func:`~.maestro.load_shard`'s arrays):
    ``onset``, ``offset``, ``frame`` ``[frames, 88]``, ``velocity`` ``[frames, 176]`` (velocities and onsets, for
    :func:`~.losses.velocity_loss`), with ``pedal`` ``pedal`` ``[frames, 4]`` (the three pedal channels and the
    segment's label mask repeated per frame) and with ``keys`` ``keys`` ``[frames, 89]`` (key-down labels and mask).
    ``targets="regression"``: ``onset`` and ``offset`` are the triangles of :mod:`.labels` (the velocity loss keeps
    the binary onsets as its mask); DatasetError for a shard written before they existed."""
    onsets = shard["onsets"][k][a:b]
    onset_target, offset_target = onsets, shard["offsets"][k][a:b]
    if check_targets(targets) == "regression":
        if not all(name in shard for name in REGRESSION_ROLLS):
            raise DatasetError("the shards hold no regression targets (written before they existed): prepare the "
                               "data set or build the corpus again, into a new folder, to train with --targets "
                               "regression")
        onset_target, offset_target = (shard[name][k][a:b] for name in REGRESSION_ROLLS)
    out = {"onset": onset_target, "offset": offset_target, "frame": shard["frames"][k][a:b],
           "velocity": np.concatenate([shard["velocities"][k][a:b], onsets], axis=-1)}
    n = len(onsets)
    if pedal:
        mask = np.full((n, 1), shard["pedal_mask"][k], np.float32)
        out["pedal"] = np.concatenate([shard["pedal"][k][a:b], mask], axis=-1)
    if keys:
        mask = np.full((n, 1), shard["keys_mask"][k], np.float32)
        out["keys"] = np.concatenate([shard["keys"][k][a:b], mask], axis=-1)
    return out


def segment_generator(paths, shuffle: bool, seed: int, repeat: bool, pedal: bool = False, frames: int | None = None,
                      keys: bool = False, mel_augment=None, targets: str = "binary"):
    """Yield ``(mel, targets)`` per segment from shard ``paths``; with ``pedal`` the targets include
    ``pedal`` ``[frames, 4]``: the three pedal channels and the example's label mask repeated per frame;
    with ``keys``, ``keys`` ``[frames, 89]``: the key-down labels and their mask.
    With ``frames`` shorter than the stored segments, each example is a random crop of that many frames
    (within the segment's valid frames where it has enough).  ``mel_augment(mel, rng)``: a change of each
    example's log-mel (:func:`~.packed.mel_augmenter`), drawn from its own stream, so that the order and crops
    stay those of a run without it.  ``targets``: the onset/offset targets (:func:`segment_targets`)."""
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
                       segment_targets(shard, k, a, b, pedal, keys, targets))
        if not repeat:
            return


def make_dataset(prepared_dir: str | os.PathLike, split: str = "train", batch_size: int = 4, shuffle: bool = True,
                 repeat: bool = True, shuffle_buffer: int = 256, seed: int = 0, frames: int = SEGMENT_FRAMES,
                 pedal: bool = False, keys: bool = False, mel_augment: str | None = None, targets: str = "binary"):
    """A ``tf.data.Dataset`` of ``(mel [B, frames, 229], {onset, offset, frame, velocity[, pedal][, keys]})``
    batches; ``mel_augment``: a log-mel augmentation by name (:data:`~.packed.MEL_AUGMENTS`), new every pass;
    ``targets``: ``binary`` or ``regression`` onset and offset targets (:func:`segment_targets`)."""
    from .packed import mel_augmenter

    augmenter = mel_augmenter(mel_augment)
    from ..tf_env import quiet_tensorflow

    quiet_tensorflow()
    import tensorflow as tf

    paths = [str(p) for p in shard_paths(prepared_dir, split)]
    if not paths:
        raise ValueError(f"{prepared_dir}: the split {split!r} has no prepared pieces")
    segment_targets(load_shard(paths[0]), 0, 0, 1, targets=check_targets(targets))  # unusable shards fail here
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
                                                                      augmenter, targets),
                                        output_signature=signature)
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size, drop_remainder=repeat).prefetch(tf.data.AUTOTUNE)
