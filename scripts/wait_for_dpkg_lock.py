"""Wait, for a bounded time, until no other package install holds dpkg's and apt's locks.

``scripts/setup.sh`` runs this before it calls apt-get, so that an unattended upgrade or another install that
holds the lock makes set-up wait instead of failing at once with "Could not get lock /var/lib/dpkg/lock-frontend".
The locks are the fcntl locks that apt and dpkg take themselves; each is tried and released at once.
Exit status 0 when they are free (or cannot be checked: not root), 1 with a one-line reason after the timeout.

    python3 scripts/wait_for_dpkg_lock.py [--timeout SECONDS] [LOCK_FILE ...]
"""

import argparse
import fcntl
import os
import sys
import time

LOCKS = ("/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock", "/var/lib/apt/lists/lock")


def held(path: str) -> bool:
    """Whether another process holds the fcntl lock on ``path`` (False when it cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing releases the lock
    return False


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("locks", nargs="*", default=list(LOCKS))
    p.add_argument("--timeout", type=float, default=float(os.environ.get("SETUP_DPKG_LOCK_TIMEOUT", 600)))
    a = p.parse_args()
    start, told = time.monotonic(), False
    while busy := [path for path in a.locks if held(path)]:
        waited = time.monotonic() - start
        if waited >= a.timeout:
            print(f"setup: gave up after {waited:.0f} s: another package install still holds {busy[0]}; "
                  "run set-up again when it has finished", file=sys.stderr)
            return 1
        if not told:
            print(f"setup: another package install holds {busy[0]}; waiting for it (up to {a.timeout:.0f} s)",
                  file=sys.stderr, flush=True)
            told = True
        time.sleep(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
