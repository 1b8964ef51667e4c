"""What must happen when TensorFlow or Keras is first imported, without importing either here.

- ``tensorflow`` loads with its native start-up lines filtered (:mod:`piano_transcription.native_logs`: absl's
  and oneDNN's notices, printed on some CPUs whatever ``TF_CPP_MIN_LOG_LEVEL`` says) and with
  ``TF_CPP_MIN_LOG_LEVEL=2`` unless the user chose a level.  Every import counts: the package's own, Keras's, a
  notebook's ``import tensorflow as tf``.
- ``keras`` gets the project's custom layer registered: a project ``.keras`` file names its ``StopGradient``
  layer as ``piano_transcription>StopGradient``, and a plain ``keras.saving.load_model(path)`` reads it once that
  class is registered.

Importing either eagerly would cost every ``import piano_transcription`` seconds (and the light install has
neither), so the work runs in an import hook: a finder that wraps the real loader of that one module.
"""

from __future__ import annotations

import importlib.abc
import os
import sys
from collections.abc import Callable


def _register_keras_objects() -> None:
    from .model import custom_objects

    custom_objects()


class _ImportWatcher(importlib.abc.MetaPathFinder):
    """Finds nothing itself; wraps the loader of module ``name``: ``run(exec_module, module)`` executes it."""

    def __init__(self, name: str, run: Callable):
        self.name, self.run = name, run

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        for finder in sys.meta_path:
            if isinstance(finder, _ImportWatcher):
                continue
            spec = finder.find_spec(fullname, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
                loader, watcher = spec.loader, self

                class _Loader(importlib.abc.Loader):
                    def create_module(self, spec):
                        return loader.create_module(spec)

                    def exec_module(self, module):
                        watcher.uninstall()
                        watcher.run(loader.exec_module, module)

                spec.loader = _Loader()
                return spec
        return None

    def uninstall(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)

    def install(self) -> None:
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)


def _load_tensorflow(exec_module, module) -> None:
    from .native_logs import filtered_stderr

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with filtered_stderr():
        exec_module(module)


def _load_keras(exec_module, module) -> None:
    exec_module(module)
    _register_keras_objects()


_WATCHERS = (_ImportWatcher("tensorflow", _load_tensorflow), _ImportWatcher("keras", _load_keras))


def install() -> None:
    """Arm the hooks (a module already imported gets its after-import work at once)."""
    for watcher in _WATCHERS:
        if watcher.name not in sys.modules:
            watcher.install()
        elif watcher.name == "keras":
            _register_keras_objects()
