"""Training and inference speed of the model configurations on this machine.

    .venv/bin/python benchmarks/train_speed.py [--configs small small_pedal maestro] [--batch-size 4]
                                               [--precision float32 mixed_bfloat16] [--jit]

Prints training examples (20 s segments) per second and inference seconds per audio second (one
20 s window at a time, as transcription runs), after a warm-up step, for each config and Keras
precision policy (``mixed_bfloat16`` uses the CPU's bfloat16 units where it has them: AVX512-BF16 or
AMX; ``lscpu`` tells), with or without XLA (``--jit``).
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", nargs="+", default=["small", "maestro"])
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--precision", nargs="+", default=["float32"], help="Keras dtype policies to compare")
    p.add_argument("--jit", action="store_true", help="also with XLA (jit_compile=True)")
    a = p.parse_args()
    import keras

    from piano_transcription.tf_env import cpu_flags
    from piano_transcription.constants import SEGMENT_FRAMES, SEGMENT_SECONDS
    from piano_transcription.model import build_model, has_pedal
    from piano_transcription.training.train import compile_model

    rng = np.random.default_rng(0)
    x = rng.normal(-30, 15, (a.batch_size, SEGMENT_FRAMES, 229)).astype(np.float32)
    y = {k: (rng.random((a.batch_size, SEGMENT_FRAMES, 88)) < 0.05).astype(np.float32)
         for k in ("onset", "offset", "frame")}
    y["velocity"] = np.concatenate([y["onset"] * 0.5, y["onset"]], axis=-1)
    y_pedal = {**y, "pedal": (rng.random((a.batch_size, SEGMENT_FRAMES, 4)) < 0.3).astype(np.float32)}
    print("CPU bfloat16 / AMX flags:", " ".join(sorted(f for f in cpu_flags() if "bf16" in f or "amx" in f)) or "none")
    runs = [(c, prec, jit) for c in a.configs for prec in a.precision for jit in ([False, True] if a.jit else [False])]
    for name, precision, jit in runs:
        keras.mixed_precision.set_global_policy(precision)
        model = compile_model(build_model(name))
        if jit:
            model.compile(optimizer=model.optimizer, loss=model.loss, jit_compile=True)
        y = y_pedal if has_pedal(model) else {k: v for k, v in y_pedal.items() if k != "pedal"}
        model.train_on_batch(x, y)
        t0 = time.perf_counter()
        for _ in range(a.steps):
            model.train_on_batch(x, y)
        step = (time.perf_counter() - t0) / a.steps
        model.predict_on_batch(x[:1])
        t0 = time.perf_counter()
        for _ in range(a.steps):
            model.predict_on_batch(x[:1])
        infer = (time.perf_counter() - t0) / a.steps
        print(f"{name} [{precision}{', XLA' if jit else ''}]: {model.count_params():,} parameters; training {step:.2f} s per step of {a.batch_size} "
              f"= {a.batch_size / step:.2f} examples/s ({3600 * a.batch_size / step:,.0f} per hour); "
              f"inference {infer:.3f} s per 20 s window = {infer / SEGMENT_SECONDS:.4f} s per audio second")


if __name__ == "__main__":
    main()
