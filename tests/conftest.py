"""Shared fixtures: the embedded synthetic data set, built once per test session."""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parent.parent


NUMBA_LOCK = "PIANO_TRANSCRIPTION_NUMBA_LOCK"  # environment variable: the warm-up's lock file, inherited by workers
_WARMUP = pytest.StashKey[subprocess.Popen]()


def pytest_configure(config):
    """In the first process only (not in xdist workers): librosa's numba kernels compiled into numba's cache, in the
    background while the workers start and run the tests that do not use librosa.

    Processes compiling into one cold cache at once crashed a worker in librosa.beat; compiled once (about 35 s of
    one core the first time, a few seconds once cached), the workers only read the cache: the warm-up holds a file
    lock until it is done, and the ``librosa`` fixture waits for it.
    """
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    # One lock per environment, not per run: two test runs compiling into one cold cache at once corrupt it (a
    # later librosa.beat call then crashed with a segmentation fault, seen with two runs in parallel).
    venv = hashlib.sha256(sys.prefix.encode()).hexdigest()[:12]
    lock = Path(tempfile.gettempdir()) / f"piano-transcription-numba-{venv}.lock"
    os.environ[NUMBA_LOCK] = str(lock)
    proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "compile_numba_kernels.py"), str(lock)],
                            stdout=subprocess.PIPE, text=True)
    proc.stdout.readline()  # the warm-up holds the lock from here on
    config.stash[_WARMUP] = proc


def pytest_unconfigure(config):
    proc = config.stash.get(_WARMUP, None)
    if proc is None:
        return
    if proc.wait() != 0:
        warnings.warn(f"compiling librosa's numba kernels failed (exit status {proc.returncode})")
    os.environ.pop(NUMBA_LOCK)  # the lock file stays: another run may hold or wait for it


@pytest.fixture(scope="session")
def librosa():
    """librosa (the tests' reference), once the background warm-up has compiled its kernels."""
    lock = os.environ.get(NUMBA_LOCK)
    if lock:
        with FileLock(lock):
            pass
    return pytest.importorskip("librosa")


@pytest.fixture(scope="session")
def built_once(tmp_path_factory, worker_id):
    """``built_once(name, build)``: a folder that ``build(folder)`` fills, once per test run.

    Parallel workers share it: the first to ask builds it under a file lock, the others wait and then read it
    (pytest-xdist's recipe for session fixtures). A serial run builds it in a temporary folder of its own.
    """

    def get(name: str, build) -> Path:
        if worker_id == "master":
            folder = tmp_path_factory.mktemp(name)
            build(folder)
            return folder
        folder = tmp_path_factory.getbasetemp().parent / name
        with FileLock(f"{folder}.lock"):
            if not (folder / ".built").exists():
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir()
                build(folder)
                (folder / ".built").touch()
        return folder

    return get


@pytest.fixture(scope="session")
def synthetic_maestro(built_once):
    """A tiny MAESTRO-format corpus (4 train, 1 validation, 1 test piece of ~25 s)."""
    from piano_transcription.corpus.synthetic import build_synthetic_maestro

    return built_once("maestro", lambda out: build_synthetic_maestro(
        out, {"train": 4, "validation": 1, "test": 1}, duration=25.0, seed=7))


@pytest.fixture(scope="session")
def prepared(synthetic_maestro, built_once):
    """The tiny corpus prepared into shards (single process, to keep the test quick)."""
    from piano_transcription.training.maestro import prepare_dataset

    def build(out):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prepare_dataset(synthetic_maestro, out, workers=1, progress=False)

    return built_once("prepared", build)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def pytest_collection_modifyitems(config, items):
    """Slow tests (notebooks first, then training) ahead of the rest, so that parallel workers do not end on one."""
    items.sort(key=lambda item: (item.get_closest_marker("slow") is None, "test_notebooks" not in item.nodeid))
