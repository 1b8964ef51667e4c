"""Packed data sets: a compact, TensorFlow-free copy of part of a prepared data set, and its Keras input.

An accelerator lent for a few minutes has no copy of ``../shared`` and takes only a few tens of MB along
(``device`` tool: 64 MiB in all), while a prepared shard stores its log-mel in float16 (about 200 KB per 20 s
segment, compressed).  A packed shard keeps the same arrays with the log-mel quantised to ``MEL_STEP_DB`` steps
(uint8, coded as differences along time, whose small values compress well) and the rolls as uint8, the whole
file compressed with LZMA: about 65 KB per 20 s segment, so about an hour of training audio in 12 MB.
The quantisation error (at most half a step, 0.5 dB) is far below the gain and EQ changes the training input
sees anyway (:func:`augment_mel`).

``python -m piano_transcription.training.packed PREPARED_DIR PACKED_DIR --megabytes 55`` packs a random
choice of whole pieces of each split up to that size; :func:`packed_sequence` feeds random crops of them to
``model.fit`` on any Keras backend.
"""

from __future__ import annotations

import argparse
import io
import json
import lzma
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..constants import TOP_DB
from ..io import atomic_path, write_json
from .dataset import segment_targets
from .maestro import REGRESSION_LEVELS, REGRESSION_ROLLS, load_shard, read_manifest, regression_codes

MEL_STEP_DB = 1.0  # quantisation step of the packed log-mel (dB)
MEL_FLOOR_DB = -120.0  # log-mel value of code 0 (dB); code 255 is MEL_FLOOR_DB + 255 dB
ROLLS = ("onsets", "offsets", "frames", "pedal", "keys")  # 0/1 arrays, stored as uint8
VELOCITY_LEVELS = 255  # velocities in [0, 1] stored as uint8 codes
PACKED_SUFFIX = ".npz.xz"
MANIFEST = "packed.json"


def quantise_mel(mel: np.ndarray) -> np.ndarray:
    """Log-mel ``[n, frames, bins]`` (dB) -> uint8 codes, coded as differences along time (mod 256)."""
    q = np.clip(np.round((mel - MEL_FLOOR_DB) / MEL_STEP_DB), 0, 255).astype(np.uint8)
    return np.diff(q, axis=1, prepend=np.zeros_like(q[:, :1]))  # uint8 arithmetic wraps: exact inverse below


def dequantise_mel(codes: np.ndarray) -> np.ndarray:
    """Inverse of :func:`quantise_mel`: log-mel in dB, float32."""
    q = np.cumsum(codes, axis=1, dtype=np.uint8)
    return q.astype(np.float32) * MEL_STEP_DB + MEL_FLOOR_DB


def pack_shard(shard: dict) -> bytes:
    """The bytes of a packed shard from :func:`~.maestro.load_shard`'s arrays."""
    arrays = {"mel": quantise_mel(shard["mel"]), "lengths": shard["lengths"].astype(np.int32),
              "velocities": np.round(np.clip(shard["velocities"], 0, 1) * VELOCITY_LEVELS).astype(np.uint8),
              "pedal_mask": shard["pedal_mask"].astype(np.uint8), "keys_mask": shard["keys_mask"].astype(np.uint8)}
    arrays.update({k: shard[k].astype(np.uint8) for k in ROLLS})
    arrays.update({k: regression_codes(shard[k]) for k in REGRESSION_ROLLS if k in shard})
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return lzma.compress(buf.getvalue(), preset=6)


def unpack_shard(data: bytes) -> dict[str, np.ndarray]:
    """A packed shard's bytes -> the arrays of :func:`~.maestro.load_shard` (float32 mel and rolls)."""
    with np.load(io.BytesIO(lzma.decompress(data))) as z:
        out = {k: z[k] for k in z.files}
    out["mel"] = dequantise_mel(out["mel"])
    out["velocities"] = out["velocities"].astype(np.float32) / VELOCITY_LEVELS
    for k in (*ROLLS, "pedal_mask", "keys_mask"):
        out[k] = out[k].astype(np.float32)
    for k in REGRESSION_ROLLS:
        if k in out:
            out[k] = out[k].astype(np.float32) / REGRESSION_LEVELS
    return out


def pack(prepared_dir: str | os.PathLike, packed_dir: str | os.PathLike, megabytes: float,
         validation_megabytes: float = 2.0, seed: int = 0, exclude=()) -> dict:
    """Pack whole pieces of the ``train`` and ``validation`` splits, in a random order (``seed``), until each
    split reaches its size (MB); return the manifest written to ``PACKED_DIR/packed.json``.  ``exclude``: earlier
    packed directories (or their ``packed.json``) whose training pieces are left out (a disjoint part).  A packed
    directory is written once: an existing manifest is an error (nothing is overwritten)."""
    packed_dir = Path(packed_dir)
    if (packed_dir / MANIFEST).exists():
        raise FileExistsError(f"{packed_dir}: already holds a packed data set")
    manifest = read_manifest(prepared_dir)
    taken = set()
    for path in exclude:
        path = Path(path)
        taken |= set(json.loads((path / MANIFEST if path.is_dir() else path).read_text())["splits"].get("train", {}))
    manifest["splits"]["train"] = {k: v for k, v in manifest["splits"].get("train", {}).items() if k not in taken}
    rng = np.random.default_rng(seed)
    out = {"source": str(prepared_dir), "mel_step_db": MEL_STEP_DB, "splits": {}}
    for split, budget in (("train", megabytes), ("validation", validation_megabytes)):
        pieces = list(manifest["splits"].get(split, {}).items())
        (packed_dir / split).mkdir(parents=True, exist_ok=True)
        chosen, used = {}, 0
        for i in rng.permutation(len(pieces)):
            pid, entry = pieces[i]
            data = pack_shard(load_shard(Path(prepared_dir) / entry["shard"]))
            if used + len(data) > budget * 1e6:
                break
            with atomic_path(packed_dir / split / f"{pid}{PACKED_SUFFIX}") as tmp:
                tmp.write_bytes(data)
            chosen[pid] = {"shard": f"{split}/{pid}{PACKED_SUFFIX}", "source": entry.get("source")}
            used += len(data)
        out["splits"][split] = chosen
    write_json(packed_dir / MANIFEST, out)
    return out


def load_packed(packed_dir: str | os.PathLike, split: str) -> list[dict]:
    """The unpacked shards of a split (all in memory, read in parallel)."""
    packed_dir = Path(packed_dir)
    manifest = json.loads((packed_dir / MANIFEST).read_text())
    entries = manifest["splits"].get(split, {})
    if not entries:
        raise ValueError(f"{packed_dir}: the packed split {split!r} is empty")
    with ThreadPoolExecutor(os.cpu_count()) as pool:  # LZMA lets go of the GIL: one shard per core
        return list(pool.map(lambda e: unpack_shard((packed_dir / e["shard"]).read_bytes()), entries.values()))


def augment_mel(mel: np.ndarray, rng: np.random.Generator, gain_db: float | tuple[float, float] = 6.0,
                eq_db: float = 3.0, noise_probability: float = 0.3) -> np.ndarray:
    """A random recording-chain change of each log-mel of ``[..., frames, bins]`` (dB): a gain within
    ``+-gain_db`` (or within ``gain_db = (low, high)``), a smooth EQ curve over the bins (three cosines of up to
    ``eq_db`` each), and with ``noise_probability`` a steady noise floor 35-65 dB below the loudest bin, added in
    power; then librosa's ``top_db`` floor again.  Vectorised over the leading axes (a batch costs one pass)."""
    low, high = (-gain_db, gain_db) if np.isscalar(gain_db) else gain_db
    lead = mel.shape[:-2]
    x = np.linspace(0.0, np.pi, mel.shape[-1], dtype=np.float32)
    amps = rng.uniform(-eq_db, eq_db, lead + (3, 1, 1))
    phases = rng.uniform(0.0, np.pi, lead + (3, 1, 1))
    curve = (amps * np.cos(np.arange(1, 4).reshape(3, 1, 1) * x + phases)).sum(axis=-3)
    out = (mel + rng.uniform(low, high, lead + (1, 1)) + curve).astype(np.float32)
    peak = out.max(axis=(-2, -1), keepdims=True)
    noise = peak - rng.uniform(35.0, 65.0, lead + (1, 1)) + rng.uniform(-6.0, 6.0, lead + (1, 1)) * (x / np.pi - 0.5)
    noisy = np.broadcast_to(rng.random(lead + (1, 1)) < noise_probability, out.shape)
    out[noisy] = 10.0 * np.log10(10.0 ** (out[noisy] / 10.0)
                                 + 10.0 ** (np.broadcast_to(noise, out.shape)[noisy].astype(np.float32) / 10.0))
    return np.maximum(out, out.max(axis=(-2, -1), keepdims=True) - TOP_DB).astype(np.float32)


MEL_AUGMENTS = {
    # an excerpt quieter than the recording's peak, as most 20 s windows of a peak-normalised recording are (the
    # real recordings' windows: 5-95 % of them peak 11-0 dB below their file's peak), where every training
    # excerpt was normalised to its own peak
    "gain": dict(gain_db=(-12.0, 0.0), eq_db=0.0, noise_probability=0.0),
    "chain": dict(gain_db=6.0, eq_db=3.0, noise_probability=0.3),  # gain, EQ and noise floor (the packed trainer's)
}


def mel_augmenter(name: str | None):
    """The training input pipeline's per-example log-mel change ``f(mel, rng)`` named ``name`` (a key of
    :data:`MEL_AUGMENTS`), or None for none; ValueError for another name."""
    if name is None:
        return None
    if name not in MEL_AUGMENTS:
        raise ValueError(f"unknown log-mel augmentation {name!r}; choose from {', '.join(MEL_AUGMENTS)}")
    options = MEL_AUGMENTS[name]
    return lambda mel, rng: augment_mel(mel, rng, **options)


def crop_batch(shards: list[dict], picks, frames: int, rng: np.random.Generator, random_crops: bool = True,
               augment: bool = True, pedal: bool = False, keys: bool = False, targets: str = "binary"):
    """``(mel [B, frames, bins], targets)`` for the segments ``picks`` (pairs of shard and segment index): random
    crops of ``frames`` within each segment's valid frames (else its first frames), :func:`augment_mel` on the
    log-mel with ``augment``; the targets of :func:`~.dataset.segment_targets`."""
    mels, out = [], []
    for s, k in picks:
        shard = shards[s]
        a = int(rng.integers(max(int(shard["lengths"][k]) - frames, 0) + 1)) if random_crops else 0
        mels.append(shard["mel"][k][a:a + frames])
        out.append(segment_targets(shard, k, a, a + frames, pedal, keys, targets))
    mel = np.stack(mels)
    return augment_mel(mel, rng) if augment else mel, {n: np.stack([t[n] for t in out]) for n in out[0]}


def packed_sequence(shards: list[dict], batch_size: int, frames: int, steps: int, pedal: bool = False,
                    keys: bool = False, shuffle: bool = True, augment: bool = True, seed: int = 0,
                    targets: str = "binary", **kwargs):
    """Batches of packed shards for ``model.fit`` on any Keras backend (a ``keras.utils.PyDataset``; ``kwargs``
    such as ``workers`` go to it).  With ``shuffle``: ``steps`` batches per epoch of random segments, random crops of
    ``frames`` frames, :func:`augment_mel` when ``augment``.  Without: fixed batches (validation), the first
    ``frames`` of the segments in order, at most ``steps``."""
    import keras

    index = [(s, k) for s, shard in enumerate(shards) for k in range(len(shard["mel"]))]

    class PackedSequence(keras.utils.PyDataset):
        def __init__(self):
            super().__init__(**kwargs)
            self.epoch = 0

        def __len__(self) -> int:
            return steps if shuffle else min(steps, len(index) // batch_size)

        def on_epoch_end(self) -> None:
            self.epoch += 1

        def __getitem__(self, i: int):
            rng = np.random.default_rng((seed, self.epoch, i))
            picks = ([index[j] for j in rng.integers(len(index), size=batch_size)] if shuffle
                     else index[i * batch_size:(i + 1) * batch_size])
            return crop_batch(shards, picks, frames, rng, shuffle, augment and shuffle, pedal, keys, targets)

    return PackedSequence()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m piano_transcription.training.packed", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("prepared_dir", help="a prepared data set (manifest.json + shards)")
    p.add_argument("packed_dir", help="new folder for the packed copy")
    p.add_argument("--megabytes", type=float, required=True, help="size of the packed training split (MB)")
    p.add_argument("--validation-megabytes", type=float, default=2.0, help="size of the packed validation split")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--exclude", nargs="*", default=(),
                   help="earlier packed folders (or their packed.json) whose training pieces to leave out")
    a = p.parse_args(argv)
    out = pack(a.prepared_dir, a.packed_dir, a.megabytes, a.validation_megabytes, a.seed, a.exclude)
    for split, entries in out["splits"].items():
        print(f"{split}: {len(entries)} pieces", flush=True)


if __name__ == "__main__":
    main()
