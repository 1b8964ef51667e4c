"""Compile librosa's numba kernels into numba's cache once, so that no later process pays for it.

librosa 0.11 compiles its numba kernels when its modules load: about 35 s of one core on a 2-core AMD EPYC
(AVX2), 4 s once cached. The test suite runs this in its first process before any parallel worker starts,
because processes compiling into one cold cache at once crashed a worker inside ``librosa.beat``. The calls
below are the ones the tests make (librosa is their reference for the package's numpy log-mel and beat tracker).
"""

import librosa
import numpy as np

from piano_transcription.constants import HOP_LENGTH, N_FFT, SAMPLE_RATE, TOP_DB

x = np.random.default_rng(0).normal(size=2 * SAMPLE_RATE).astype(np.float32)
spec = np.abs(librosa.stft(x, n_fft=N_FFT, hop_length=HOP_LENGTH, center=False)) ** 2
librosa.power_to_db(spec, ref=1.0, top_db=TOP_DB)
librosa.feature.melspectrogram(y=x, sr=SAMPLE_RATE)
envelope = np.abs(np.random.default_rng(0).normal(size=3000))
librosa.beat.beat_track(onset_envelope=envelope, sr=100 * HOP_LENGTH, hop_length=HOP_LENGTH, trim=False)
librosa.feature.tempo(onset_envelope=envelope[:800], sr=100 * HOP_LENGTH, hop_length=HOP_LENGTH)
