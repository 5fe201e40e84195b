"""Files shared by every kernel: whole or nothing, locked across processes, sealed folders,
SQLite in WAL mode."""

import os
import sqlite3
import subprocess
import sys

import pytest
from filelock import Timeout

from llmux_jupyter.models.files import (
    SEAL,
    connect_shared,
    file_lock,
    is_sealed,
    seal_folder,
    write_atomically,
)


def test_a_write_replaces_the_file_whole_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "deep" / "store.json"
    write_atomically(target, "first")
    write_atomically(target, b"second")
    assert target.read_text() == "second"
    assert os.listdir(target.parent) == ["store.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "store.json"
    write_atomically(target, "old")

    def refuse(source, destination):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="No space left"):
        write_atomically(target, "new")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["store.json"]


def test_the_lock_excludes_another_process_and_is_freed_when_it_dies(tmp_path):
    lock_path = tmp_path / "locks" / "x.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from filelock import FileLock\n"
            f"lock = FileLock({str(lock_path)!r}); lock.acquire(); print('held', flush=True)\n"
            "time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(Timeout):
            file_lock(lock_path, timeout=0.2).acquire()
    finally:
        holder.kill()  # SIGKILL: the system releases its lock
        holder.wait()
    with file_lock(lock_path, timeout=5):
        pass


def test_a_sealed_folder_is_trusted_until_a_file_changes_size(tmp_path):
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "weights.bin").write_bytes(b"x" * 100)
    (folder / "sub" / "config.json").write_text("{}")
    assert not is_sealed(folder)  # a writer killed before sealing: not trusted
    seal_folder(folder)
    assert is_sealed(folder)
    (folder / "weights.bin").write_bytes(b"x" * 50)  # truncated
    assert not is_sealed(folder)
    (folder / "weights.bin").unlink()
    assert not is_sealed(folder)
    (folder / SEAL).write_text("{not json")
    assert not is_sealed(folder)


def test_a_shared_database_uses_wal_and_waits_for_a_writer(tmp_path):
    path = tmp_path / "cache" / "answers.sqlite3"
    first = connect_shared(path)
    assert first.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    first.execute("CREATE TABLE t (x)")
    first.commit()
    first.execute("BEGIN IMMEDIATE")
    first.execute("INSERT INTO t VALUES (1)")
    second = connect_shared(path, timeout=0.1)
    assert second.execute("SELECT count(*) FROM t").fetchone() == (0,)  # a reader never waits
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        second.execute("INSERT INTO t VALUES (2)")
    first.commit()
    second.execute("INSERT INTO t VALUES (2)")
    second.commit()
    assert first.execute("SELECT count(*) FROM t").fetchone() == (2,)
    first.close()
    second.close()
