"""Compile librosa's numba kernels into numba's cache once, so that no later process pays for it.

librosa 0.11 compiles its numba kernels when its modules load: about 35 s of one core on a 2-core AMD EPYC
(AVX2), 4 s once cached. The test suite starts this from its first process, in the background, with a lock file
as argument: the lock is held until the kernels are compiled, and the tests that use librosa wait for it, because
processes compiling into one cold cache at once crashed a worker inside ``librosa.beat``. The calls
below are the ones the tests make (librosa is their reference for the package's numpy log-mel and beat tracker).
"""

import os
import sys

from filelock import FileLock

if len(sys.argv) > 1:  # the test suite waits on this lock (tests/conftest.py): held until the kernels are compiled
    _lock = FileLock(sys.argv[1])
    _lock.acquire()
    print("compiling", flush=True)  # tells the suite that the lock is held; nothing more goes to its pipe
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())

import librosa  # noqa: E402 - after the lock is held
import numpy as np  # noqa: E402

from piano_transcription.constants import HOP_LENGTH, N_FFT, SAMPLE_RATE, TOP_DB  # noqa: E402

x = np.random.default_rng(0).normal(size=2 * SAMPLE_RATE).astype(np.float32)
spec = np.abs(librosa.stft(x, n_fft=N_FFT, hop_length=HOP_LENGTH, center=False)) ** 2
librosa.power_to_db(spec, ref=1.0, top_db=TOP_DB)
librosa.feature.melspectrogram(y=x, sr=SAMPLE_RATE)
envelope = np.abs(np.random.default_rng(0).normal(size=3000))
librosa.beat.beat_track(onset_envelope=envelope, sr=100 * HOP_LENGTH, hop_length=HOP_LENGTH, trim=False)
librosa.feature.tempo(onset_envelope=envelope[:800], sr=100 * HOP_LENGTH, hop_length=HOP_LENGTH)
