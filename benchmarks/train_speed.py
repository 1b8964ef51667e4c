"""Training and inference speed of the model configurations on this machine.

    .venv/bin/python benchmarks/train_speed.py [--configs small small_pedal maestro] [--batch-size 4 8]
                                               [--seconds 20 10] [--precision float32 mixed_bfloat16] [--jit]

Prints training examples (20 s segments) per second and inference seconds per audio second (one
20 s window at a time, as transcription runs), after a warm-up step, for each config and Keras
precision policy (``mixed_bfloat16`` uses the CPU's bfloat16 units where it has them: AVX512-BF16 or
AMX; ``lscpu`` tells), with or without XLA (``--jit``).
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", nargs="+", default=["small", "maestro"])
    p.add_argument("--batch-size", type=int, nargs="+", default=[4])
    p.add_argument("--seconds", type=float, nargs="+", default=[20.0], help="example lengths (s) to compare")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--precision", nargs="+", default=["float32"], help="Keras dtype policies to compare")
    p.add_argument("--jit", action="store_true", help="also with XLA (jit_compile=True)")
    a = p.parse_args()
    import keras

    from piano_transcription.constants import FRAMES_PER_SECOND
    from piano_transcription.tf_env import cpu_flags
    from piano_transcription.model import build_model, has_pedal
    from piano_transcription.training.train import compile_model, random_batch

    print("CPU bfloat16 / AMX flags:", " ".join(sorted(f for f in cpu_flags() if "bf16" in f or "amx" in f)) or "none")
    runs = [(c, prec, jit, b, s) for c in a.configs for prec in a.precision for jit in ([False, True] if a.jit else [False])
            for b in a.batch_size for s in a.seconds]
    for name, precision, jit, batch, seconds in runs:
        keras.mixed_precision.set_global_policy(precision)
        model = compile_model(build_model(name))
        if jit:
            model.compile(optimizer=model.optimizer, loss=model.loss, jit_compile=True)
        x, y = random_batch(batch, int(seconds * FRAMES_PER_SECOND) + 1, has_pedal(model))
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
        print(f"{name} [{precision}{', XLA' if jit else ''}, batch {batch} x {seconds:g} s]: {model.count_params():,} "
              f"parameters; training {step:.2f} s per step = {batch * seconds / step:.1f} s of audio per second "
              f"({batch * seconds / 20 / step:.2f} 20-s examples/s); "
              f"inference {infer:.3f} s per window = {infer / seconds:.4f} s per audio second", flush=True)


if __name__ == "__main__":
    main()
