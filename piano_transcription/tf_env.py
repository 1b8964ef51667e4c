"""TensorFlow process settings: quiet start-up logs, GPU memory growth, device detection."""

from __future__ import annotations

import os

_DONE = False


def quiet_tensorflow() -> None:
    """Quieter TensorFlow start-up (C++ warnings off) and GPU memory growth; nothing to do when ``KERAS_BACKEND``
    names another backend (``torch``, ``jax``: the model and its losses are plain Keras 3).

    oneDNN stays on: turning it off (``TF_ENABLE_ONEDNN_OPTS=0``, the only way to silence its start-up
    notice) makes a CPU training step of the small config 2.2x slower (3.4 s instead of 1.5 s, measured here).
    """
    global _DONE
    if _DONE:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if os.environ["KERAS_BACKEND"] != "tensorflow":  # Keras on PyTorch or JAX (training on an accelerator)
        _DONE = True
        return
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            pass
    _DONE = True


def gpu_count() -> int:
    """Number of visible GPUs (0 on CPU-only machines)."""
    quiet_tensorflow()
    import tensorflow as tf

    return len(tf.config.list_physical_devices("GPU"))


def distribution_strategy():
    """``MirroredStrategy`` over all GPUs when there are several, else the default strategy."""
    quiet_tensorflow()
    import tensorflow as tf

    if gpu_count() > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def cpu_flags() -> set[str]:
    """The CPU's feature flags (``/proc/cpuinfo``; empty where it cannot be read)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_has_bfloat16() -> bool:
    """Whether the CPU computes bfloat16 in hardware (AVX512-BF16 or AMX-BF16)."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def limit_threads(threads: int | None) -> None:
    """Let TensorFlow run each op on ``threads`` threads, ``threads`` ops at a time (a worker process's share of
    the machine's cores); nothing when ``threads`` is None or TensorFlow has already started in this process."""
    if not threads:
        return
    quiet_tensorflow()
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # already initialised: its thread pools are fixed
        pass
