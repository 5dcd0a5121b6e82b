"""A build lock that cannot outlive its holder.

PyTorch's extension builder serialises builds with a file it creates and deletes (``lock`` in the build
folder) and waits, without limit or message, while that file exists; a build killed part-way (Ctrl-C in the
minute-long compile, a benchmark's timeout) leaves the file behind, and every later process that loads the
kernels then sleeps forever. Here each build first takes an ``fcntl`` lock on ``beltrami.lock`` beside it,
which the operating system releases when the holding process exits, however it exits. Whoever holds that
lock is the only process that can be building, so a ``lock`` file found then is a dead build's and is
removed. A process that waits gives up after a time limit with a message naming the holder and the lock.
Without ``fcntl`` (Windows) builds are not serialised beyond torch's own file.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Iterator

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

TORCH_LOCK = "lock"
OUR_LOCK = "beltrami.lock"


@contextlib.contextmanager
def build_lock(folder: Path, timeout: float, poll: float = 0.2) -> Iterator[None]:
    """Hold the build lock of ``folder`` for the body; raises TimeoutError after ``timeout`` seconds of
    waiting for another process."""
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    path = Path(folder) / OUR_LOCK
    with open(path, "a+") as handle:
        _acquire(handle, path, timeout, poll)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            _remove_stale_torch_lock(Path(folder))
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _acquire(handle, path: Path, timeout: float, poll: float) -> None:
    start, told = time.monotonic(), False
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        waited = time.monotonic() - start
        if waited >= timeout:
            raise TimeoutError(f"waited {waited:.0f} s for the C++ kernels' build lock {path}, held by process "
                               f"{_holder(path)}; if no build is running there, end that process (the lock "
                               "goes with it), or use backend='torch'")
        if not told and waited > 2.0:
            print(f"beltrami: waiting for process {_holder(path)}, which is building the C++ kernels ({path})",
                  file=sys.stderr)
            told = True
        time.sleep(poll)


def _holder(path: Path) -> str:
    try:
        return path.read_text().strip() or "unknown"
    except OSError:
        return "unknown"


def _remove_stale_torch_lock(folder: Path) -> None:
    stale = folder / TORCH_LOCK
    if stale.exists():
        warnings.warn(f"removed {stale}, left by a build of the C++ kernels that was stopped part-way",
                      stacklevel=4)
        stale.unlink(missing_ok=True)
