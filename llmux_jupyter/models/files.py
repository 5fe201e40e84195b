"""Files every kernel of the user shares (registrations, caches, the memory ledger): each is
written whole or not at all, changed under a cross-process lock, and an SQLite file is opened
so that several kernels may write it at once.

- ``write_atomically``: a uniquely named temporary in the same folder, flushed to disk, then
  renamed over the target; a reader sees the old file or the new one, never half of one, and
  a writer killed mid-write leaves only its temporary (``.<name>.<random>.tmp``) behind.
- ``file_lock``: a ``filelock.FileLock`` (``flock`` on Unix), so the system releases it when
  its holder dies, even by SIGKILL.
- ``seal_folder`` / ``is_sealed``: a folder (e.g. a converted model) counts as complete only
  when its seal, written last, lists every file at the size it has.
- ``connect_shared``: SQLite in WAL mode (readers never wait for a writer) with a busy timeout
  (a writer waits for another instead of failing at once).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from filelock import FileLock

BUSY_TIMEOUT_S = 10.0


def write_atomically(path: Path, data: str | bytes, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` in one step (its folder is created if needed).
    ``durable``: flush it to the disk first, so that it survives a power cut too (state that
    only matters while processes run, such as the memory ledger, skips that wait)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data.encode() if isinstance(data, str) else data)
            if durable:
                file.flush()
                os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def file_lock(path: Path, timeout: float = -1) -> FileLock:
    """A cross-process lock held in the file ``path`` (its folder is created if needed);
    ``timeout`` seconds to wait (-1: as long as it takes). Use it as a context manager."""
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(path, timeout=timeout)


def connect_shared(
    path: Path, timeout: float = BUSY_TIMEOUT_S, **options: Any
) -> sqlite3.Connection:
    """An SQLite connection that shares ``path`` with other processes: WAL journal, and a
    writer waits up to ``timeout`` seconds for another to finish (its folder is created);
    ``options`` go to ``sqlite3.connect`` (e.g. ``isolation_level=None``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=timeout, **options)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
    except sqlite3.Error:
        connection.close()
        raise
    return connection


SEAL = ".llmux-complete.json"


def seal_folder(folder: Path) -> None:
    """Mark ``folder`` complete: record every file's size in a seal, written last. A writer
    fills a temporary folder, seals it, then renames it into place."""
    sizes = {
        str(path.relative_to(folder)): path.stat().st_size
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != SEAL
    }
    write_atomically(folder / SEAL, json.dumps({"files": sizes}, indent=1))


def is_sealed(folder: Path) -> bool:
    """Whether ``folder`` was sealed and every file it lists still has the size it had then
    (a folder left by a killed writer, or truncated since, is not)."""
    try:
        sizes = json.loads((folder / SEAL).read_text(encoding="utf-8"))["files"]
        return all((folder / name).stat().st_size == size for name, size in sizes.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False
