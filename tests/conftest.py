"""Shared fixtures: the embedded synthetic data set, built once per test session."""

import os
import tempfile
import warnings

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # numba's file cache is not safe for processes compiling the same librosa kernels at once (a parallel run
    # crashed in librosa.beat.beat_track with a cold cache): each worker compiles into a temporary folder of its own
    os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix=f"numba-{os.environ['PYTEST_XDIST_WORKER']}-")


@pytest.fixture(scope="session")
def synthetic_maestro(tmp_path_factory):
    """A tiny MAESTRO-format corpus (4 train, 1 validation, 1 test piece of ~25 s)."""
    from piano_transcription.corpus.synthetic import build_synthetic_maestro

    out = tmp_path_factory.mktemp("maestro")
    return build_synthetic_maestro(out, {"train": 4, "validation": 1, "test": 1}, duration=25.0, seed=7)


@pytest.fixture(scope="session")
def prepared(synthetic_maestro, tmp_path_factory):
    """The tiny corpus prepared into shards (single process, to keep the test quick)."""
    from piano_transcription.training.maestro import prepare_dataset

    out = tmp_path_factory.mktemp("prepared")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepare_dataset(synthetic_maestro, out, workers=1, progress=False)
    return out


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def pytest_collection_modifyitems(config, items):
    """Slow tests (notebooks first, then training) ahead of the rest, so that parallel workers do not end on one."""
    items.sort(key=lambda item: (item.get_closest_marker("slow") is None, "test_notebooks" not in item.nodeid))
