"""The kernel's history: every answer logged once it ends, threads resumed from the log after
a restart, and the user's commands over it (search, show, fork, export, clear).

Logging never breaks a chat: a database that cannot be opened or written turns logging off
with one warning line (again only for a new reason, or once the file changed).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import HistoryError, InvalidParameter
from ...units import format_path
from ..chat import ChatResponse
from ..conversation import DEFAULT_THREAD, Thread, Threads, new_conversation_id
from .export import export_format, write_export
from .records import Exchange, LoggedThread, Origin
from .secrets import SecretFilter
from .store import HistoryStore

if TYPE_CHECKING:
    import pandas

    from ..map import MapJob

DATABASE = "history.sqlite3"
DEFAULT_LIMIT = 20


def data_dir() -> Path:
    """``$LLMUX_DATA_DIR``, else ``<jupyter data dir>/llmux`` (``jupyter --data-dir``)."""
    configured = os.environ.get("LLMUX_DATA_DIR")
    if configured:
        return Path(configured).expanduser()
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "llmux"


def notebook_origin() -> Origin:
    """The notebook's path as jupyter_server gives it to the kernel (no cell id)."""
    return Origin(os.environ.get("JPY_SESSION_NAME", ""))


def print_warning(text: str) -> None:
    print(text, file=sys.stderr)


class History:
    """The history log (``llm.history``): call it to search, newest first, as a DataFrame.

    ``threads`` are this kernel's threads; one not used yet in this kernel continues from the
    log: its most recent conversation (a named thread's in this notebook if it has one, else
    in any; the default thread's only in this notebook, and only when the notebook is known).
    ``origin`` says where an answer is asked (the front end adds the cell's id).
    """

    def __init__(
        self,
        *,
        enabled: Callable[[], bool] = lambda: True,
        secrets: Callable[[], SecretFilter] = lambda: SecretFilter({}),
        warn: Callable[[str], None] = print_warning,
    ) -> None:
        self.origin: Callable[[], Origin] = notebook_origin
        self.threads = Threads(self._resume)
        self._enabled = enabled
        self._secrets = secrets
        self._warn = warn
        self._store: HistoryStore | None = None
        self._failure: tuple[Any, ...] | None = None  # the file as it was when it failed
        self._warned: set[str] = set()

    @property
    def store(self) -> HistoryStore:
        if self._store is None:
            self._store = HistoryStore(data_dir() / DATABASE)
        return self._store

    @property
    def path(self) -> Path:
        """The database file."""
        return self.store.path

    # -- logging ---------------------------------------------------------------
    def log_chat(self, response: ChatResponse, kind: str = "chat") -> None:
        """Log one answer (``kind`` "compare" for one model's answer of a comparison: it
        belongs to no thread)."""
        origin = self.origin()
        chat = kind == "chat"
        usage = response.usage
        details: dict[str, Any] = {}
        if response.context is not None and response.context.window is not None:
            details["context"] = response.context.as_dict()
        if response.draft is not None:
            details["draft"] = response.draft.as_dict()
        if response.tool_limit_reached:
            details["tool_limit_reached"] = True
        if response.inputs:  # the variables described, cells and error the prompt was made of
            details["inputs"] = response.inputs
        if response.images:  # what they were, not their pixels: a resumed turn is text only
            details["images"] = [image.as_dict() for image in response.images]
        self._log(
            Exchange(
                kind=kind,
                prompt=response.prompt,
                answer=response.text,
                model=response.model,
                backend=response.backend,
                created=time.time(),
                notebook=origin.notebook,
                cell=origin.cell,
                thread=response.thread if chat else "",
                conversation=response.conversation if chat else "",
                params=response.params,
                system=response.system,
                messages=[message.as_dict() for message in response.messages],
                status=_status(response),
                stop_reason=response.stop_reason,
                error=response.error,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                ttft_s=usage.time_to_first_token_s,
                tokens_per_s=usage.tokens_per_second,
                duration_s=usage.duration_s,
                tool_calls=[call.as_dict() for call in response.tool_calls],
                schema=response.schema,
                value=_json_data(response.value),
                details=details,
            )
        )

    def log_map(self, job: MapJob) -> None:
        """Log one row for a whole map: its template, table shape, usage, cache hits and the
        operator it served (``MapResult.kind``: map, filter, classify, reduce level 2...)."""
        origin = self.origin()
        result, usage = job.result, job.result.usage
        self._log(
            Exchange(
                kind="map",
                prompt=job.template,
                answer=result.summary(),
                model=job.model,
                backend=job.backend,
                notebook=origin.notebook,
                cell=origin.cell,
                params=job.params.as_dict(),
                system=job.system,
                status="error" if job.error else "interrupted" if result.interrupted else "ok",
                error=job.error,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                tokens_per_s=usage.tokens_per_second,
                duration_s=usage.seconds,
                schema=None if job.schema is None else job.schema.name,
                details={
                    "shape": [usage.rows, len(job.columns)],
                    "columns": list(job.columns),
                    "done": usage.done,
                    "failed": usage.failed,
                    "cached": usage.cached,
                    "load_seconds": round(usage.load_seconds, 4),
                    "operator": result.kind,
                },
            )
        )

    def _log(self, exchange: Exchange) -> None:
        if not self._enabled() or not self._usable():
            return
        scrub = self._secrets().scrub
        for name in ("prompt", "answer", "system", "messages", "error", "tool_calls", "value"):
            setattr(exchange, name, scrub(getattr(exchange, name)))
        try:
            self.store.add(exchange)
        except HistoryError as error:
            self._failed(error)

    def _usable(self) -> bool:
        """False while the file is as it was when it failed (moved away or changed: retry)."""
        if self._failure is None:
            return True
        if _signature(self.path) == self._failure:
            return False
        self._failure = None
        self.store.close()
        return True

    def _failed(self, error: HistoryError) -> None:
        self._failure = _signature(self.path)
        self.store.close()
        reason = str(error)
        if reason not in self._warned:
            self._warned.add(reason)
            self._warn(
                f"llmux: history logging is off: {reason}. Answers are not affected; move the "
                "file away to start a new history, or %config LLMux.log = False."
            )

    # -- threads ---------------------------------------------------------------
    def _resume(self, name: str) -> Thread | None:
        """The thread ``name`` continues from the log, if any (Threads calls this)."""
        if not self.store.exists() or not self._usable():
            return None
        notebook = self.origin().notebook
        here_only = name == DEFAULT_THREAD
        if here_only and not notebook:
            return None  # the default thread is per notebook: unknown here, start afresh
        try:
            conversation = self.store.latest_conversation(name, notebook, here_only)
            return None if conversation is None else self._thread(name, conversation)
        except HistoryError as error:
            self._failed(error)
            return None

    def _thread(
        self, name: str, conversation: str, exchanges: list[Exchange] | None = None
    ) -> Thread:
        """Thread ``name`` as conversation ``conversation``, its turns those of ``exchanges``
        (by default the conversation's own) that became turns."""
        if exchanges is None:
            exchanges = self.store.conversation(conversation)
        kept = [e for e in exchanges if e.in_thread]
        system = kept[-1].system if kept else None
        return Thread(name, system, [e.turn() for e in kept], id=conversation)

    def _conversation_of(self, name: str) -> str:
        """The conversation thread ``name`` is (in this kernel, else in the log)."""
        if name in self.threads:
            return self.threads.get(name).id
        notebook = self.origin().notebook
        found = self.store.latest_conversation(name, notebook, name == DEFAULT_THREAD)
        if found is None:
            raise HistoryError(f"No logged thread named {name!r} (see %llm threads).")
        return found

    def logged_threads(self) -> list[LoggedThread]:
        """Each thread the log would resume (its latest conversation), newest first; none
        when the log cannot be read (logging then says why, once)."""
        if not self.store.exists() or not self._usable():
            return []
        notebook = self.origin().notebook
        found: dict[str, LoggedThread] = {}
        try:
            for conversation, name, where, updated in self.store.conversations():
                other_default = name == DEFAULT_THREAD and (not notebook or where != notebook)
                if name in found or other_default:  # another notebook's default thread
                    continue
                thread = self._thread(name, conversation)
                found[name] = LoggedThread(
                    name, conversation, len(thread.turns), thread.system, where, updated
                )
        except HistoryError as error:
            self._failed(error)
        return list(found.values())

    def fork(self, exchange_id: int, thread: str) -> Thread:
        """A new thread ``thread`` whose turns are those of exchange ``exchange_id``'s
        thread up to and including it; it continues from there (and after a restart)."""
        exchange = self.show(exchange_id)
        if exchange.kind != "chat":
            raise InvalidParameter(
                f"#{exchange_id} is a {exchange.kind}, not a turn of a thread: fork a chat answer."
            )
        notebook = self.origin().notebook
        taken = thread in self.threads or self.store.latest_conversation(thread, notebook, False)
        if taken:
            raise InvalidParameter(
                f"A thread named {thread!r} exists: fork into a new name (or clear it first "
                f"with %llm history clear --thread {thread})."
            )
        conversation = new_conversation_id()
        if self._enabled():
            self.store.fork(conversation, thread, notebook, exchange_id, time.time())
        upto = self.store.conversation(exchange.conversation, exchange_id)
        forked = self._thread(thread, conversation, upto)
        self.threads.put(forked)
        return forked

    # -- searching and reading -------------------------------------------------
    def __call__(
        self,
        query: str | None = None,
        *,
        model: str | None = None,
        thread: str | None = None,
        n: int = DEFAULT_LIMIT,
    ) -> pandas.DataFrame:
        """The ``n`` newest exchanges (of ``model``, in ``thread``) whose prompt or answer
        holds every word of ``query`` ("a phrase" in quotes, ``word*`` a prefix), as a
        DataFrame indexed by id."""
        import pandas

        rows = [_row(exchange) for exchange in self.search(query, model=model, thread=thread, n=n)]
        return pandas.DataFrame(rows, columns=list(ROW_COLUMNS)).set_index("id")

    def search(
        self,
        query: str | None = None,
        *,
        model: str | None = None,
        thread: str | None = None,
        n: int = DEFAULT_LIMIT,
    ) -> list[Exchange]:
        """As calling the history, as a list of Exchange records."""
        if n < 1:
            raise InvalidParameter(f"n must be at least 1, not {n}.")
        if not self.store.exists():
            return []
        return self.store.search(query, model=model, thread=thread, limit=n)

    def show(self, exchange_id: int) -> Exchange:
        """One exchange in full."""
        found = self.store.get(exchange_id) if self.store.exists() else None
        if found is None:
            raise HistoryError(f"No exchange #{exchange_id} in the history (see %llm history).")
        return found

    def exchanges(self, thread: str) -> list[Exchange]:
        """The logged turns of ``thread`` (as this kernel would continue it), oldest first."""
        kept = [e for e in self.store.conversation(self._conversation_of(thread)) if e.in_thread]
        if not kept:
            raise HistoryError(f"Thread {thread!r} has no logged turns.")
        return kept

    def export(self, thread: str, path: str | Path) -> int:
        """Write ``thread``'s logged turns to ``path``: .md (Markdown) or .jsonl (one message
        a line, as the model sees them). Returns the number of messages written."""
        target = Path(path).expanduser()
        export_format(target)  # a wrong suffix is refused before anything is read
        exchanges = self.exchanges(thread)
        try:
            return write_export(target, thread, exchanges)
        except OSError as error:
            raise HistoryError(f"Cannot write {format_path(target)}: {error}") from None

    # -- clearing --------------------------------------------------------------
    def count(
        self,
        *,
        before: str | date | datetime | None = None,
        thread: str | None = None,
        all: bool = False,
    ) -> int:
        """How many exchanges ``clear`` with the same arguments would delete."""
        if not self.store.exists():
            return 0
        return self.store.count(*_selection(before, thread, all))

    def clear(
        self,
        *,
        before: str | date | datetime | None = None,
        thread: str | None = None,
        all: bool = False,
    ) -> int:
        """Delete the exchanges logged ``before`` a date (or datetime), those of ``thread``,
        or ``all``; returns how many. Threads in this kernel keep their turns."""
        where, parameters = _selection(before, thread, all)
        return self.store.clear(where, parameters, thread) if self.store.exists() else 0


ROW_COLUMNS = ("id", "created", "kind", "notebook", "cell", "thread", "model", "backend",
               "status", "prompt", "answer", "prompt_tokens", "completion_tokens", "ttft_s",
               "tokens_per_s", "duration_s")  # fmt: skip


def _row(exchange: Exchange) -> dict[str, Any]:
    row = {name: getattr(exchange, name) for name in ROW_COLUMNS}
    row["created"] = datetime.fromtimestamp(exchange.created)
    return row


def _status(response: ChatResponse) -> str:
    if response.error is not None:
        return "error"
    if response.interrupted:
        return "interrupted"
    return "context_full" if response.stop_reason == "context_full" else "ok"


def _json_data(value: Any) -> Any:
    """A schema's value as JSON data (a pydantic model's dump, a dataclass's fields)."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def _selection(
    before: str | date | datetime | None, thread: str | None, everything: bool
) -> tuple[str, list[Any]]:
    """The SQL condition (and its parameters) of what to clear: exactly one of the three."""
    if [before is not None, thread is not None, everything].count(True) != 1:
        raise InvalidParameter("Clear the history before a date, of one thread, or all of it.")
    if before is not None:
        return "created < ?", [_timestamp(before)]
    if thread is not None:
        return "thread = ?", [thread]
    return "1", []


def _timestamp(moment: str | date | datetime) -> float:
    """Local midnight of a date, or a datetime, as seconds since the epoch."""
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment)
        except ValueError:
            raise InvalidParameter(
                f"{moment!r}: give a date such as 2026-01-31 or 2026-01-31T18:00."
            ) from None
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day)
    return moment.timestamp()


def _signature(path: Path) -> tuple[Any, ...]:
    """The file as it is now (None when it cannot be read at all)."""
    try:
        stat = path.stat()
    except OSError:
        return (None,)
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)
