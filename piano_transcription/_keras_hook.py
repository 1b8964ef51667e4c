"""Register the project's custom Keras layer as soon as Keras is imported, without importing Keras here.

A project ``.keras`` file names its ``StopGradient`` layer as ``piano_transcription>StopGradient``; Keras can
load it with a plain ``keras.saving.load_model(path)`` once that class is registered.  Importing Keras
eagerly would cost every ``import piano_transcription`` seconds (and the light install has no Keras), so
the registration runs when Keras itself is first imported (an import hook), or at once if it already is.
"""

from __future__ import annotations

import importlib.abc
import sys


def _register() -> None:
    from .model import custom_objects

    custom_objects()


class _KerasWatcher(importlib.abc.MetaPathFinder):
    """Finds nothing itself; wraps the loader of the ``keras`` package to register after it has run."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        for finder in sys.meta_path:
            if finder is self:
                continue
            spec = finder.find_spec(fullname, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
                loader = spec.loader

                class _Loader(importlib.abc.Loader):
                    def create_module(self, spec):
                        return loader.create_module(spec)

                    def exec_module(self, module):
                        loader.exec_module(module)
                        _uninstall()
                        _register()

                spec.loader = _Loader()
                return spec
        return None


_WATCHER = _KerasWatcher()


def _uninstall() -> None:
    if _WATCHER in sys.meta_path:
        sys.meta_path.remove(_WATCHER)


def install() -> None:
    """Register now if Keras is loaded, else when it is."""
    if "keras" in sys.modules:
        _register()
    elif _WATCHER not in sys.meta_path:
        sys.meta_path.insert(0, _WATCHER)
