"""Polyphonic piano transcription with an Onsets-and-Frames network.

Heavy dependencies (TensorFlow, librosa) are imported lazily inside the modules
that need them, so that the light TFLite install works without them.
"""

__version__ = "0.1.0"
