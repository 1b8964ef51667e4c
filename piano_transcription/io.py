"""Small I/O helpers: atomic writes and downloads that resume and fail clearly offline."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import signal
import tempfile
import threading
from pathlib import Path
from typing import Iterator


class DownloadError(RuntimeError):
    """A download failed (usually: no internet connection)."""


def _temporary_affixes(path: Path) -> tuple[str, str]:
    """Prefix and suffix of the temporary files that :func:`atomic_paths` makes for ``path``."""
    return f".{path.name}.", ".tmp" + path.suffix


def _temporary_beside(path: Path) -> Path:
    """An empty temporary file beside ``path`` (its folder created); OSError names ``path``, not the temporary."""
    prefix, suffix = _temporary_affixes(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    except OSError as exc:
        raise type(exc)(f"cannot write {path}: {exc.strerror or exc}") from exc
    os.close(fd)
    return Path(tmp)


def _publish(tmp: Path, path: Path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600 files
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``.

    Readers never see a half-written file; on error the temporary file is removed (a process killed meanwhile
    leaves it: :func:`temporary_siblings` finds it).
    """
    with atomic_paths([path]) as (tmp,):
        yield tmp


@contextlib.contextmanager
def atomic_paths(paths: list[str | os.PathLike]) -> Iterator[list[Path]]:
    """Yield a temporary path beside each of ``paths``; when the block succeeds, rename them all to their
    targets (Ctrl-C held back until the last rename), else remove them all: all of the files or none."""
    targets = [Path(p) for p in paths]
    temps: list[Path] = []
    try:
        for target in targets:
            temps.append(_temporary_beside(target))
        yield temps
        interrupted = []
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, lambda *a: interrupted.append(a)) if main else None
        try:
            for tmp, target in zip(temps, targets):
                _publish(tmp, target)
        finally:
            if main:
                signal.signal(signal.SIGINT, previous)
        if interrupted:
            raise KeyboardInterrupt
    finally:
        for tmp in temps:
            if tmp.exists():
                tmp.unlink()


def temporary_siblings(path: str | os.PathLike) -> list[Path]:
    """Temporary files that :func:`atomic_paths` made for ``path`` and that are still there (a writer in progress,
    or one that was killed)."""
    path = Path(path)
    prefix, suffix = _temporary_affixes(path)
    return [Path(p) for p in glob.glob(glob.escape(str(path.parent / prefix)) + "*" + glob.escape(suffix))]


def write_json(path: str | os.PathLike, data) -> None:
    """Write ``data`` as indented JSON, atomically (:func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1))


def sha256sum(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def download(url: str, dest: str | os.PathLike, timeout: float = 30.0, progress: bool = True) -> Path:
    """Download ``url`` to ``dest``, resuming a partial ``dest.part`` with an HTTP Range request.

    Returns ``dest``.  Raises :class:`DownloadError` with a plain message when the server
    cannot be reached (e.g. offline) or answers with an error.
    """
    import urllib.error
    import urllib.request

    from tqdm.auto import tqdm

    dest = Path(dest)
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # already complete
            os.replace(part, dest)
            return dest
        raise DownloadError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise DownloadError(
            f"cannot download {url}: {getattr(exc, 'reason', exc)}. Are you offline? "
            f"Download it by hand and place it at {dest}."
        ) from exc
    with resp:
        if have and resp.status != 206:  # server ignored Range: start over
            have = 0
        total = resp.length + have if resp.length else None
        with open(part, "ab" if have else "wb") as f, tqdm(
            total=total, initial=have, unit="B", unit_scale=True, desc=dest.name, disable=not progress
        ) as bar:
            for block in iter(lambda: resp.read(1 << 20), b""):
                f.write(block)
                bar.update(len(block))
    os.replace(part, dest)
    return dest
