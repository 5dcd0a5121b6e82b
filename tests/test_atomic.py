"""Atomic writes: the old file or the whole new one, never a half-written one; and the file's permissions
those a plain ``open()`` would give (before, every result file came out private, 0600, from mkstemp)."""
import os
import stat

import pytest

from beltrami.atomic import atomic_write_bytes, atomic_write_text


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_gets_the_umask_mode(tmp_path, umask_022):
    path = tmp_path / "sub" / "r.json"
    atomic_write_text(path, "{}")
    assert path.read_text() == "{}" and _mode(path) == 0o644


def test_a_replaced_file_keeps_its_mode(tmp_path, umask_022):
    path = tmp_path / "r.json"
    path.write_text("old")
    path.chmod(0o640)
    atomic_write_text(path, "new")
    assert path.read_text() == "new" and _mode(path) == 0o640


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "r.bin"
    path.write_bytes(b"old")

    def interrupted(fd):
        raise KeyboardInterrupt  # Ctrl-C after the data went out, before it reached the disk

    monkeypatch.setattr("beltrami.atomic.os.fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.bin"]
