"""Constants shared by every module: the one frame grid and the piano range.

Frame convention (used everywhere): frame ``i`` covers the audio around
``i * HOP_LENGTH / SAMPLE_RATE`` seconds (librosa ``center=True``: the analysis
window of frame ``i`` is centred at that time).  Note times become frames as in
Magenta's ``sequence_to_pianoroll``: a note from ``t0`` to ``t1`` seconds is
active in frames ``int(t0 * FRAMES_PER_SECOND)`` up to (excluding)
``ceil(t1 * FRAMES_PER_SECOND)``; decoded frames go back to seconds as
``frame / FRAMES_PER_SECOND``.
"""

SAMPLE_RATE = 16000  # Hz
N_FFT = 2048  # samples
HOP_LENGTH = 512  # samples
N_MELS = 229
FMIN = 30.0  # Hz
FMAX = SAMPLE_RATE / 2.0  # Hz (librosa's default)
MEL_HTK = True
TOP_DB = 80.0  # power_to_db clipping below the maximum, as librosa's default
AMIN = 1e-10  # power floor before the logarithm, as librosa's power_to_db

FRAMES_PER_SECOND = SAMPLE_RATE / HOP_LENGTH  # 31.25

MIN_MIDI_PITCH = 21  # A0
MAX_MIDI_PITCH = 108  # C8
N_KEYS = MAX_MIDI_PITCH - MIN_MIDI_PITCH + 1  # 88

ONSET_LENGTH_MS = 32.0
OFFSET_LENGTH_MS = 32.0
# Half width (frames) of the regression targets' triangles around each onset and offset time (Kong et al. 2021
# use 5 frames of 10 ms; 2 frames of 32 ms keep both neighbours of the peak frame inside the triangle, which the
# three-point sub-frame estimate needs).
REGRESSION_HALF_WIDTH = 2.0
TARGETS = ("binary", "regression")  # onset / offset training targets: 32 ms of ones, or Kong's triangles
TIMINGS = ("frames", "regression")  # decoded note times: frame starts, or sub-frame times from regression outputs

SEGMENT_SECONDS = 20.0
SEGMENT_MIN_SECONDS = 5.0
SEGMENT_FRAMES = int(SEGMENT_SECONDS * FRAMES_PER_SECOND) + 1  # 626

# Velocity mapping at the output: MIDI velocity = VEL_SCALE * clip(v, 0, 1) + VEL_BIAS
VEL_SCALE = 80.0
VEL_BIAS = 10.0

# The model's outputs: four note heads ``[frames, 88]`` and the optional sustain-pedal head ``[frames, 3]``
# (channels: pedal down, pedal goes down, pedal comes up).
NOTE_OUTPUTS = ("onset", "offset", "frame", "velocity")
PEDAL_OUTPUT = "pedal"
PEDAL_CHANNELS = ("frame", "onset", "offset")
# The optional key head ``[frames, 88]``: the key is held down (its note without the sustain pedal), for
# note ends at key release (``--durations keys``).
KEYS_OUTPUT = "keys"
DURATIONS = ("sounding", "keys")  # written note ends: where the note stops sounding / at key release (+ CC64)
DEFAULT_DURATIONS = "sounding"

DEFAULT_THRESHOLD = 0.5  # probability above which an onset / frame / pedal counts, without tuned values

SUSTAIN_CC = 64
SUSTAIN_THRESHOLD = 64  # CC64 value >= 64 means the pedal is down


def frames_for_samples(n_samples: int) -> int:
    """Number of spectrogram frames (centre padding) for ``n_samples`` audio samples."""
    return 1 + n_samples // HOP_LENGTH


def frame_to_time(frame: float) -> float:
    """Seconds at which frame ``frame`` starts on the label grid."""
    return frame / FRAMES_PER_SECOND
