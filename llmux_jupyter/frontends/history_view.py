"""``%llm history ...``: the logged answers as a table, one in full, a fork, an export, a
clear (asking first); and the cell's origin (notebook and cell id) for the log."""

from __future__ import annotations

import json
import os
import time
from argparse import Namespace
from collections.abc import Callable
from typing import Any

from IPython.core.error import StdinNotImplementedError, UsageError
from IPython.display import display

from ..api import LLM
from ..engine.history.log import notebook_origin
from ..engine.history.records import Exchange, Origin
from ..types.tools import shortened
from ..units import format_path
from .tables import Table

PREVIEW_CHARS = 60


def cell_origin(shell: Any) -> Origin:
    """The notebook's path (from jupyter_server) and the running cell's id: the ``cellId``
    JupyterLab and Notebook 7 put in each execute request's metadata ('' when absent)."""
    kernel = getattr(shell, "kernel", None)
    try:
        parent = kernel.get_parent() if kernel is not None else shell.parent_header
    except (AttributeError, LookupError):
        parent = {}
    cell = ((parent or {}).get("metadata") or {}).get("cellId", "")
    return Origin(notebook_origin().notebook, cell if isinstance(cell, str) else "")


def history_command(llm: LLM, args: Namespace) -> None:
    """Run ``%llm history ACTION``."""
    ACTIONS[args.action](llm, args)


def _search(llm: LLM, args: Namespace) -> None:
    if args.n < 1:
        raise UsageError(f"-n {args.n}: show at least 1.")
    query = " ".join(f'"{word}"' if " " in word else word for word in args.query)
    found = llm.history.search(query or None, model=args.model, thread=args.thread, n=args.n)
    what = f" matching {query}" if query else ""
    table = Table(
        ["id", "when", "notebook", "thread", "model", "prompt", "answer", "status"],
        title=f"History{what}, newest first ({format_path(llm.history.path)})",
        empty="(no match)" if query else "(nothing logged yet)",
    )
    for exchange in found:
        table.rows.append([
            str(exchange.id), _when(exchange.created), os.path.basename(exchange.notebook),
            _thread(exchange), exchange.model, shortened(exchange.prompt, PREVIEW_CHARS),
            shortened(exchange.answer, PREVIEW_CHARS), exchange.status,
        ])  # fmt: skip
    display(table)


def _show(llm: LLM, args: Namespace) -> None:
    print(describe(llm.history.show(args.id)))


def describe(exchange: Exchange) -> str:
    """One exchange in full, as text."""
    lines = [
        f"#{exchange.id}  {_when(exchange.created, full=True)}  {exchange.kind}  {exchange.status}",
        f"notebook: {exchange.notebook or '-'}  cell: {exchange.cell or '-'}",
        f"thread: {_thread(exchange)}",
        f"model: {exchange.model} ({exchange.backend})  params: {json.dumps(exchange.params)}",
        f"usage: {_usage(exchange)}",
    ]
    if exchange.stop_reason:
        lines.append(f"stopped: {exchange.stop_reason}")
    if exchange.kind == "map":
        lines += ["", "--- template ---", exchange.prompt]
    else:
        lines += ["", "--- messages sent ---"]
        lines += [f"[{m['role']}] {m['content']}" for m in exchange.messages]
    heading = "--- summary ---" if exchange.kind == "map" else "--- answer ---"
    lines += ["", heading, exchange.answer]
    if exchange.tool_calls:
        lines += ["", "--- tool calls ---"]
        lines += [f"{c['name']}({json.dumps(c['arguments'])}) {c['status']}: {c['result']}"
                  for c in exchange.tool_calls]  # fmt: skip
    if exchange.schema is not None:
        lines += ["", f"--- value ({exchange.schema}) ---", json.dumps(exchange.value, indent=2)]
    if exchange.error:
        lines += ["", f"error: {exchange.error}"]
    if exchange.details:
        lines += ["", f"details: {json.dumps(exchange.details)}"]
    return "\n".join(lines)


def _fork(llm: LLM, args: Namespace) -> None:
    thread = llm.history.fork(args.id, args.thread)
    print(
        f"Thread {thread.name!r} continues from #{args.id} ({len(thread.turns)} turns): "
        f"%%llm --thread {thread.name}"
    )


def _export(llm: LLM, args: Namespace) -> None:
    count = llm.history.export(args.thread, args.path)
    print(f"Wrote {count} messages of thread {args.thread!r} to {args.path}.")


def _clear(llm: LLM, args: Namespace) -> None:
    chosen = {"before": args.before, "thread": args.thread, "all": args.all}
    if [args.before is not None, args.thread is not None, args.all].count(True) != 1:
        raise UsageError("%llm history clear --before DATE, or --thread T, or --all (and --yes)")
    count = llm.history.count(**chosen)
    if not count:
        print("Nothing to clear.")
        return
    what = "(all)"
    if args.before is not None:
        what = f"logged before {args.before}"
    elif args.thread is not None:
        what = f"of thread {args.thread!r}"
    if not args.yes and not _confirmed(f"Delete {count} logged answers {what}? [y/N] "):
        print("Nothing was deleted.")
        return
    deleted = llm.history.clear(**chosen)
    print(f"Deleted {deleted} logged answers {what}.")


def _confirmed(question: str) -> bool:
    try:
        answer = input(question)
    except StdinNotImplementedError:
        raise UsageError("This front end cannot ask: add --yes to clear.") from None
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _thread(exchange: Exchange) -> str:
    return exchange.thread if exchange.kind == "chat" else f"({exchange.kind})"


def _usage(exchange: Exchange) -> str:
    parts = [f"{exchange.prompt_tokens} prompt + {exchange.completion_tokens} answer tokens"]
    if exchange.ttft_s is not None:
        parts.append(f"TTFT {exchange.ttft_s:.3f} s")
    if exchange.tokens_per_s is not None:
        parts.append(f"{exchange.tokens_per_s:.1f} tokens/s")
    parts.append(f"{exchange.duration_s:.2f} s")
    return ", ".join(parts)


def _when(created: float, full: bool = False) -> str:
    """The time, with the date unless it is today (``full``: always)."""
    today = time.strftime("%Y-%m-%d") == time.strftime("%Y-%m-%d", time.localtime(created))
    pattern = "%H:%M:%S" if today and not full else "%Y-%m-%d %H:%M:%S"
    return time.strftime(pattern, time.localtime(created))


ACTIONS: dict[str, Callable[[LLM, Namespace], None]] = {
    "search": _search,
    "show": _show,
    "fork": _fork,
    "export": _export,
    "clear": _clear,
}
