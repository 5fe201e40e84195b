"""``llm.map``'s answers on disk (SQLite under ``<llmux cache>/map``), so that a rerun of the same
cell returns at once.

An answer is keyed by the model's identity (backend, its file with size and modification time,
or the server's URL and served name, and its settings), the rendered prompt, the system
prompt, the sampling parameters and the schema. Only deterministic requests are stored:
greedy (temperature 0) or seeded. An answer's log-probability, when it was measured, is kept
beside it (in a table of its own, so files written before it existed stay readable).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import CacheError
from ..models.cache import cache_root
from ..models.disk import FolderCache, register_cache
from ..models.files import connect_shared
from ..models.sources import RemoteSource
from ..models.spec import ModelSpec
from ..types.batch import BatchAnswer
from ..types.values import GenerationParams

FOLDER = "map"
FILE = "answers.sqlite3"
register_cache(FolderCache("map results", FOLDER))


def deterministic(params: GenerationParams) -> bool:
    """Whether the same request gives the same answer: greedy, or sampled with a seed."""
    return params.temperature == 0 or params.seed is not None


def model_identity(spec: ModelSpec) -> dict[str, Any]:
    """What makes a model's answers what they are, short of loading it."""
    identity: dict[str, Any] = {"backend": spec.backend, "settings": spec.settings}
    if isinstance(spec.source, RemoteSource):
        identity["server"] = [spec.source.base_url, spec.source.model]
        return identity
    if spec.source.content_id() is not None:
        identity["content"] = spec.source.content_id()
        return identity
    path = spec.source.local_path()
    if path is not None and path.is_file():
        stat = path.stat()
        identity["file"] = [str(path.resolve()), stat.st_size, stat.st_mtime_ns]
    elif path is not None and path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        identity["folder"] = [str(path.resolve())] + [
            [str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns] for p in files
        ]
    else:
        identity["source"] = spec.source.describe()
    return identity


def answer_key(identity: dict[str, Any], request: dict[str, Any]) -> str:
    """The key of one request's answer (a SHA-256 of both, as canonical JSON)."""
    text = json.dumps([identity, request], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class AnswerCache:
    """The answers file; every call opens it, so threads and processes may share it: WAL
    mode (readers never wait) and a busy timeout (a writer waits for another kernel's), and
    each answer is one transaction, so a kernel killed mid-write leaves the file whole."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_root() / FOLDER / FILE

    def get(self, keys: Iterable[str]) -> dict[str, BatchAnswer]:
        """The stored answers among ``keys`` (their ``key`` field is 0: the caller's to set)."""
        wanted = list(dict.fromkeys(keys))
        if not wanted or not self.path.is_file():
            return {}
        found: dict[str, BatchAnswer] = {}
        with self._connect() as connection:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = connection.execute(
                    "SELECT answers.key, text, prompt_tokens, completion_tokens, logprob "
                    "FROM answers LEFT JOIN logprobs ON logprobs.key = answers.key "
                    f"WHERE answers.key IN ({marks})",
                    chunk,
                )
                for key, text, prompt_tokens, completion_tokens, logprob in rows:
                    found[key] = BatchAnswer(
                        0, text, prompt_tokens, completion_tokens, logprob=logprob
                    )
        return found

    def put(self, key: str, answer: BatchAnswer) -> None:
        with self._connect() as connection:
            connection.execute(
                "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?)",
                (key, answer.text, answer.prompt_tokens, answer.completion_tokens),
            )
            if answer.logprob is not None:
                connection.execute(
                    "INSERT OR REPLACE INTO logprobs VALUES (?, ?)", (key, answer.logprob)
                )

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection inside one transaction (committed unless it raised), then closed."""
        try:
            connection = connect_shared(self.path)
        except (OSError, sqlite3.Error) as error:
            raise self._refusal(error) from None
        try:
            with connection:
                connection.execute(
                    "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, text TEXT, "
                    "prompt_tokens INTEGER, completion_tokens INTEGER)"
                )
                connection.execute(
                    "CREATE TABLE IF NOT EXISTS logprobs (key TEXT PRIMARY KEY, logprob REAL)"
                )
                yield connection
        except sqlite3.Error as error:
            raise self._refusal(error) from None
        finally:
            connection.close()

    def _refusal(self, error: Exception) -> CacheError:
        return CacheError(
            f"Cannot use the map cache {self.path} ({error}): check the folder's permissions "
            "and free space, or pass cache=False (--no-cache)."
        )
