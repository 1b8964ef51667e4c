"""Polyphonic piano transcription with an Onsets-and-Frames network.

Heavy dependencies (TensorFlow) are imported lazily inside the modules that need them, so
that the light TFLite install works without them.  Once this package is imported, a plain
``keras.saving.load_model(path)`` reads the project's ``.keras`` files (see ``_keras_hook``).
"""

from . import _keras_hook

__version__ = "0.2.0"

_keras_hook.install()
