"""The C++ kernels' build lock: a process killed while it builds cannot leave later ones waiting forever
(before: a ``lock`` file left by a stopped build made every later process, the test suite included, sleep
with no message)."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from beltrami.sparse import cpu_kernels
from beltrami.sparse.build_lock import OUR_LOCK, TORCH_LOCK, build_lock

HOLD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from beltrami.sparse.build_lock import build_lock
    with build_lock(Path(sys.argv[1]), timeout=5):
        (Path(sys.argv[1]) / "lock").write_text("")  # as torch's builder does while it compiles
        print("holding", flush=True)
        time.sleep(600)
""")


def _holder(folder: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "holding"
    return proc


def test_waiting_gives_up_with_a_message_and_a_killed_holder_frees_the_lock(tmp_path):
    proc = _holder(tmp_path)
    try:
        with pytest.raises(TimeoutError, match=f"build lock {tmp_path / OUR_LOCK}, held by process {proc.pid}"):
            with build_lock(tmp_path, timeout=0.5, poll=0.05):
                pass
    finally:
        proc.send_signal(signal.SIGKILL)  # killed mid-"build": torch's lock file stays behind
        proc.wait()
    assert (tmp_path / TORCH_LOCK).exists()
    started = time.monotonic()
    with pytest.warns(UserWarning, match="left by a build of the C\\+\\+ kernels that was stopped part-way"):
        with build_lock(tmp_path, timeout=5):
            assert not (tmp_path / TORCH_LOCK).exists()
            assert (tmp_path / OUR_LOCK).read_text().strip() == str(os.getpid())
    assert time.monotonic() - started < 2


def test_the_lock_is_released_after_the_body(tmp_path):
    with build_lock(tmp_path, timeout=1):
        pass
    with build_lock(tmp_path, timeout=0.1, poll=0.01):
        pass


@pytest.mark.slow
@pytest.mark.skipif(not cpu_kernels.compiler_available(), reason="needs a C++ compiler and ninja")
def test_a_build_killed_part_way_does_not_hang_the_next(tmp_path):
    """A real build into an empty cache, killed once torch's builder has taken its lock file; the next
    process builds and loads the kernels (minutes: two builds)."""
    env = {**os.environ, "TORCH_EXTENSIONS_DIR": str(tmp_path)}
    load = "from beltrami.sparse import cpu_kernels; cpu_kernels.load(); print('loaded')"
    first = subprocess.Popen([sys.executable, "-c", load], env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(f"*/*/{TORCH_LOCK}")):
        assert time.monotonic() < deadline and first.poll() is None, "the build never took its lock"
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert list(tmp_path.glob(f"*/*/{TORCH_LOCK}"))  # what used to hang every later process
    second = subprocess.run([sys.executable, "-c", load], env=env, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stderr
    assert "loaded" in second.stdout and "stopped part-way" in second.stderr
