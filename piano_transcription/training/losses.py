"""Magenta's losses for the four heads (``model.py`` of onsets_frames_transcription).

* onsets, offsets, frames: log loss ``-y log(p + eps) - (1 - y) log(1 - p + eps)``, eps 1e-7,
  averaged over frames and keys;
* velocity: ``sum over keys of onset_label * (velocity_label - velocity)^2``, averaged over frames.
  Its target packs ``[velocity labels, onset labels]`` on the last axis (``[B, T, 176]``).

* pedal (models with the sustain-pedal head): the log loss of the three pedal channels, averaged over
  frames and channels, times the example's label mask (0 where the source has no pedal labels, such
  as MAPS's note tables).  Its target packs ``[pedal labels (3), mask]`` (``[B, T, 4]``).
* keys (models with the key head): the same masked log loss over 88 keys (``[B, T, 89]``): only
  rendered MIDI knows when a key is released under the pedal.

The total training loss is the sum.
"""

from __future__ import annotations

EPSILON = 1e-7


def log_loss(y_true, y_pred):
    """Per-example log loss ``[B]`` (mean over frames and keys)."""
    from keras import ops

    y_true = ops.cast(y_true, y_pred.dtype)
    loss = -y_true * ops.log(y_pred + EPSILON) - (1.0 - y_true) * ops.log(1.0 - y_pred + EPSILON)
    return ops.mean(loss, axis=(1, 2))


def velocity_loss(y_true, y_pred):
    """Per-example onset-masked squared velocity error ``[B]``; ``y_true`` is ``[velocity, onsets]`` stacked."""
    from keras import ops

    y_true = ops.cast(y_true, y_pred.dtype)
    n = ops.shape(y_pred)[-1]
    velocity, onsets = y_true[..., :n], y_true[..., n:]
    return ops.mean(ops.sum(onsets * ops.square(velocity - y_pred), axis=-1), axis=1)


def masked_log_loss(y_true, y_pred):
    """Per-example masked log loss ``[B]`` (mean over frames and channels); ``y_true`` is ``[labels, mask]``
    stacked on the last axis (the mask: 1 where the example's labels are known)."""
    from keras import ops

    y_true = ops.cast(y_true, y_pred.dtype)
    n = ops.shape(y_pred)[-1]
    labels, mask = y_true[..., :n], y_true[..., n:]
    loss = -labels * ops.log(y_pred + EPSILON) - (1.0 - labels) * ops.log(1.0 - y_pred + EPSILON)
    return ops.mean(loss * mask, axis=(1, 2))


pedal_loss = masked_log_loss  # the name older checkpoints were compiled with


def losses(pedal: bool = False, keys: bool = False) -> dict:
    """Loss per output name, for ``model.compile`` (with the pedal head's when ``pedal``, the key head's
    when ``keys``)."""
    out = {"onset": log_loss, "offset": log_loss, "frame": log_loss, "velocity": velocity_loss}
    if pedal:
        out["pedal"] = masked_log_loss
    if keys:
        out["keys"] = masked_log_loss
    return out
