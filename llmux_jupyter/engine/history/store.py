"""The history database: one SQLite file that every kernel of the user writes at once (WAL
journal, a busy timeout, one short ``BEGIN IMMEDIATE`` transaction per write) and searches
(an FTS5 index over prompts and answers, kept by triggers)."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import fields
from pathlib import Path
from typing import Any

from ...errors import HistoryError
from ...models.files import connect_shared
from ...units import format_path
from .records import Exchange

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 10.0
# A fork of a fork of ...: deeper chains than this are cut (they cannot arise from forks,
# which always start a new conversation; this only guards a hand-edited file).
MAX_FORK_DEPTH = 100

_JSON_COLUMNS = ("params", "messages", "tool_calls", "value", "details")
COLUMNS = tuple(f.name for f in fields(Exchange) if f.name != "id")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS exchanges (
    id INTEGER PRIMARY KEY,
    created REAL NOT NULL,
    kind TEXT NOT NULL,
    notebook TEXT NOT NULL,
    cell TEXT NOT NULL,
    thread TEXT NOT NULL,
    conversation TEXT NOT NULL,
    model TEXT NOT NULL,
    backend TEXT NOT NULL,
    params TEXT NOT NULL,
    system TEXT,
    prompt TEXT NOT NULL,
    messages TEXT NOT NULL,
    answer TEXT NOT NULL,
    status TEXT NOT NULL,
    stop_reason TEXT,
    error TEXT,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    ttft_s REAL,
    tokens_per_s REAL,
    duration_s REAL NOT NULL,
    tool_calls TEXT NOT NULL,
    schema TEXT,
    value TEXT,
    details TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS exchanges_by_conversation ON exchanges (conversation, id);
CREATE INDEX IF NOT EXISTS exchanges_by_thread ON exchanges (thread, id);
CREATE INDEX IF NOT EXISTS exchanges_by_model ON exchanges (model, id);
CREATE INDEX IF NOT EXISTS exchanges_by_time ON exchanges (created);
-- A thread's conversations: --new starts one, a fork starts one after ``parent`` (an
-- exchange of another conversation, whose turns up to it come first).
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    thread TEXT NOT NULL,
    notebook TEXT NOT NULL,
    parent INTEGER,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS conversations_by_thread ON conversations (thread, updated);
CREATE VIRTUAL TABLE IF NOT EXISTS exchanges_fts USING fts5(
    prompt, answer, content='exchanges', content_rowid='id',
    tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS exchanges_indexed AFTER INSERT ON exchanges BEGIN
    INSERT INTO exchanges_fts (rowid, prompt, answer) VALUES (new.id, new.prompt, new.answer);
END;
CREATE TRIGGER IF NOT EXISTS exchanges_unindexed AFTER DELETE ON exchanges BEGIN
    INSERT INTO exchanges_fts (exchanges_fts, rowid, prompt, answer)
    VALUES ('delete', old.id, old.prompt, old.answer);
END;
PRAGMA user_version = {SCHEMA_VERSION};
"""


def match_expression(query: str) -> str:
    """A user's search as an FTS5 query: every word must appear (any order), ``"two words"``
    is a phrase, ``word*`` a prefix; nothing else is syntax (so no query is an error)."""
    terms = []
    for phrase, word in re.findall(r'"([^"]*)"|(\S+)', query):
        text = phrase or word
        prefix = not phrase and text.endswith("*")
        text = text.rstrip("*") if prefix else text
        if text.strip():
            terms.append('"' + text.replace('"', '""') + '"' + ("*" if prefix else ""))
    return " ".join(terms)


class HistoryStore:
    """The database file at ``path``, opened once (and made if missing) on first use; every
    failure to open, read or write it is a HistoryError saying why."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    # -- connection ------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        if self._connection is None:
            try:
                self._create_private()
                connection = connect_shared(
                    self.path, BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
                )
            except (OSError, sqlite3.Error) as error:
                raise self._error("cannot open", error) from None
            try:
                connection.execute("PRAGMA synchronous = NORMAL")  # WAL: durable, never corrupt
                connection.execute("PRAGMA secure_delete = ON")  # cleared text is overwritten
                self._migrate(connection)
            except sqlite3.Error as error:
                connection.close()
                raise self._error("cannot open", error) from None
            self._connection = connection
        return self._connection

    def _create_private(self) -> None:
        """Make the folder and an empty database file readable by the user only (SQLite
        gives its -wal and -shm files the database's permissions): prompts are private."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with suppress(FileExistsError):
            os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))

    def _migrate(self, connection: sqlite3.Connection) -> None:
        (version,) = connection.execute("PRAGMA user_version").fetchone()
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"it was written by a newer llmux-jupyter (schema {version}): upgrade this one"
            )
        try:  # every statement idempotent: two kernels making the file at once is fine
            connection.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
        except sqlite3.Error:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def exists(self) -> bool:
        return self._connection is not None or self.path.is_file()

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction, begun IMMEDIATE so that a busy file is waited for
        (up to BUSY_TIMEOUT_S) instead of failing later half-way."""
        with self._lock:
            connection = self._open()
            try:
                connection.execute("BEGIN IMMEDIATE")
                try:
                    yield connection
                    connection.execute("COMMIT")
                except BaseException:
                    if connection.in_transaction:
                        connection.execute("ROLLBACK")
                    raise
            except sqlite3.Error as error:
                raise self._error("cannot write", error) from None

    def _read(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            connection = self._open()
            try:
                return connection.execute(sql, parameters).fetchall()
            except sqlite3.Error as error:
                raise self._error("cannot read", error) from None

    def _error(self, doing: str, error: Exception) -> HistoryError:
        return HistoryError(f"{doing} the history {format_path(self.path)}: {error}")

    # -- writing ---------------------------------------------------------------
    def add(self, exchange: Exchange) -> int:
        """Store ``exchange`` (its conversation is created or touched); returns its id."""
        row = [_stored(name, getattr(exchange, name)) for name in COLUMNS]
        marks = ", ".join("?" * len(COLUMNS))
        with self._writing() as connection:
            cursor = connection.execute(
                f"INSERT INTO exchanges ({', '.join(COLUMNS)}) VALUES ({marks})", row
            )
            if exchange.conversation:
                connection.execute(
                    "INSERT INTO conversations (id, thread, notebook, parent, created, updated) "
                    "VALUES (?, ?, ?, NULL, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                    "updated = excluded.updated, notebook = excluded.notebook",
                    (exchange.conversation, exchange.thread, exchange.notebook,
                     exchange.created, exchange.created),
                )  # fmt: skip
        exchange.id = cursor.lastrowid
        assert exchange.id is not None
        return exchange.id

    def add_many(self, exchanges: Sequence[Exchange]) -> None:
        """Store many exchanges in one transaction (an import, a benchmark's fill)."""
        marks = ", ".join("?" * len(COLUMNS))
        rows = [[_stored(name, getattr(e, name)) for name in COLUMNS] for e in exchanges]
        with self._writing() as connection:
            connection.executemany(
                f"INSERT INTO exchanges ({', '.join(COLUMNS)}) VALUES ({marks})", rows
            )

    def fork(self, conversation: str, thread: str, notebook: str, parent: int, now: float) -> None:
        """Start ``conversation`` of ``thread``, continuing after exchange ``parent``."""
        with self._writing() as connection:
            connection.execute(
                "INSERT INTO conversations (id, thread, notebook, parent, created, updated) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (conversation, thread, notebook, parent, now, now),
            )

    def clear(self, where: str, parameters: Sequence[Any], thread: str | None = None) -> int:
        """Delete the exchanges ``where`` selects, the conversations of ``thread`` and those
        left with nothing; the deleted text is overwritten on disk (secure_delete, then a
        WAL checkpoint). Returns how many exchanges were deleted."""
        with self._writing() as connection:
            deleted = connection.execute(f"DELETE FROM exchanges WHERE {where}", parameters)
            connection.execute(
                "DELETE FROM conversations WHERE thread = ? OR (id NOT IN "
                "(SELECT conversation FROM exchanges) AND (parent IS NULL OR parent NOT IN "
                "(SELECT id FROM exchanges)))",
                [thread],
            )
            count = deleted.rowcount
        self._read("PRAGMA wal_checkpoint(TRUNCATE)")
        return count

    # -- reading ---------------------------------------------------------------
    def count(self, where: str = "1", parameters: Sequence[Any] = ()) -> int:
        return self._read(f"SELECT COUNT(*) FROM exchanges WHERE {where}", parameters)[0][0]

    def get(self, exchange_id: int) -> Exchange | None:
        rows = self._select("WHERE id = ?", [exchange_id])
        return rows[0] if rows else None

    def search(
        self,
        query: str | None = None,
        *,
        model: str | None = None,
        thread: str | None = None,
        limit: int = 20,
    ) -> list[Exchange]:
        """The newest exchanges first, ``limit`` of them, whose prompt or answer match
        ``query`` (see match_expression), of ``model`` and ``thread`` when given."""
        conditions, parameters = [], []
        expression = match_expression(query) if query else ""
        for column, value in (("model", model), ("thread", thread)):
            if value is not None:
                conditions.append(f"e.{column} = ?")
                parameters.append(value)
        if expression:
            # FTS5 walks its matches newest first and stops at the limit.
            join = "exchanges_fts f JOIN exchanges e ON e.id = f.rowid"
            conditions.insert(0, "exchanges_fts MATCH ?")
            parameters.insert(0, expression)
            order = "f.rowid"
        else:
            join, order = "exchanges e", "e.id"
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        return self._select(where, [*parameters, limit], join, f"ORDER BY {order} DESC LIMIT ?")

    def latest_conversation(self, thread: str, notebook: str, only_here: bool) -> str | None:
        """The conversation ``thread`` continues: its most recently used one in ``notebook``,
        else (unless ``only_here``) in any notebook."""
        rows = self._read(
            "SELECT id FROM conversations WHERE thread = ? "
            + ("AND notebook = ? " if only_here else "")
            + "ORDER BY notebook = ? DESC, updated DESC, rowid DESC LIMIT 1",
            [thread, notebook, notebook] if only_here else [thread, notebook],
        )
        return rows[0][0] if rows else None

    def conversation(self, conversation: str, upto: int | None = None) -> list[Exchange]:
        """The chat exchanges of ``conversation`` in order (up to exchange ``upto``), after
        those of the conversation it was forked from, up to the fork; without the messages
        each one sent (a long thread's turns would read the thread again and again)."""
        chain: list[list[Exchange]] = []
        for _ in range(MAX_FORK_DEPTH):
            bound = "" if upto is None else "AND id <= ?"
            chain.append(
                self._select(
                    f"WHERE conversation = ? AND kind = 'chat' {bound}",
                    [conversation] if upto is None else [conversation, upto],
                    order="ORDER BY id",
                    messages=False,
                )
            )
            parent = self._read(
                "SELECT e.conversation, e.id FROM conversations c JOIN exchanges e "
                "ON e.id = c.parent WHERE c.id = ?",
                [conversation],
            )
            if not parent:
                break
            conversation, upto = parent[0]
        return [exchange for part in reversed(chain) for exchange in part]

    def conversations(self) -> list[tuple[str, str, str, float]]:
        """Every conversation (id, thread, notebook, last used), most recently used first."""
        return [
            (row[0], row[1], row[2], row[3])
            for row in self._read(
                "SELECT id, thread, notebook, updated FROM conversations "
                "ORDER BY updated DESC, rowid DESC"
            )
        ]

    def _select(
        self,
        where: str,
        parameters: Sequence[Any],
        source: str = "exchanges e",
        order: str = "",
        messages: bool = True,
    ) -> list[Exchange]:
        columns = ", ".join(
            f"e.{name}" if messages or name != "messages" else "'[]'" for name in ("id", *COLUMNS)
        )
        rows = self._read(f"SELECT {columns} FROM {source} {where} {order}", parameters)
        return [_exchange(row) for row in rows]


def _stored(name: str, value: Any) -> Any:
    if name not in _JSON_COLUMNS:
        return value
    if name == "value" and value is None:
        return None
    return json.dumps(value, ensure_ascii=False, default=str)


def _exchange(row: tuple[Any, ...]) -> Exchange:
    values = dict(zip(("id", *COLUMNS), row, strict=True))
    for name in _JSON_COLUMNS:
        if values[name] is not None:
            values[name] = json.loads(values[name])
    return Exchange(**values)
