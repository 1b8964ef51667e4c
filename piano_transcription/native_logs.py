"""Lines that native libraries print straight to the process's stderr, filtered at the file descriptor.

TensorFlow 2.21 prints absl's ``WARNING: All log messages before absl::InitializeLog() is called ...`` and
oneDNN's ``I0000 ... port.cc:153] oneDNN custom operations are on ...`` while it loads on some CPUs (AVX-512
machines), whatever ``TF_CPP_MIN_LOG_LEVEL`` says; LiteRT prints ``INFO: Created TensorFlow Lite XNNPACK delegate
for CPU.`` for every interpreter; libsndfile's mpg123 prints ``Warning: Xing stream size ...`` for a truncated
MP3.  They bypass ``sys.stderr``, so Python's own means cannot silence them.  The few calls that print them run
inside :func:`filtered_stderr`: file descriptor 2 points at a temporary file for the call; afterwards the known
start-up lines are dropped, the lines a caller understands go to its ``handle`` (which turns them into a warning
of ours), and everything else is written back to stderr unchanged.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator

# Start-up notices that tell a user nothing they can act on (absl's info and warning lines: I/W + date + thread).
NOISE = (
    re.compile(r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"),
    re.compile(r"[IW]\d{4} [\d:.]+\s+\d+ [\w./-]+:\d+\] "),
    re.compile(r"INFO: Created TensorFlow Lite XNNPACK delegate for CPU\."),
    re.compile(r"INFO: Initialized TensorFlow Lite runtime\."),
)

_LOCK = threading.RLock()  # one redirection at a time: two threads swapping fd 2 could lose stderr for good


def is_noise(line: str) -> bool:
    """Whether ``line`` is one of the native libraries' start-up notices (:data:`NOISE`)."""
    return any(p.match(line) for p in NOISE)


def _write_back(lines: list[str]) -> None:
    if lines:
        sys.stderr.write("".join(line + "\n" for line in lines))
        sys.stderr.flush()


@contextlib.contextmanager
def filtered_stderr(handle: Callable[[str], bool] | None = None) -> Iterator[None]:
    """Run the block with file descriptor 2 captured; then drop :data:`NOISE`, pass each other line to
    ``handle`` (True: dealt with) and write the rest back to stderr.  Python-level writes to ``sys.stderr``
    inside the block are captured and given back the same way, in order."""
    with _LOCK:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):  # no usable stderr (a closed descriptor, a GUI process)
            yield
            return
        with tempfile.TemporaryFile() as capture:
            os.dup2(capture.fileno(), 2)
            try:
                yield
            finally:
                with contextlib.suppress(OSError, ValueError, AttributeError):
                    sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                capture.seek(0)
                text = capture.read().decode("utf-8", "replace")
                kept = [line for line in text.splitlines()
                        if line.strip() and not is_noise(line) and not (handle is not None and handle(line))]
                _write_back(kept)
