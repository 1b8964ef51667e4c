"""Polyphonic piano transcription with an Onsets-and-Frames network.

Heavy dependencies (TensorFlow) are imported lazily inside the modules that need them, so
that the light TFLite install works without them.  Once this package is imported, a plain
``keras.saving.load_model(path)`` reads the project's ``.keras`` files and TensorFlow loads without its native
start-up lines on stderr (see ``_import_hooks``).
"""

from . import _import_hooks

__version__ = "0.2.0"

_import_hooks.install()
