"""``%%llm --map TABLE``: the cell as a template over every row of a notebook table, with a
progress bar, a summary line and the answers as a table; ``-o`` receives the MapResult."""

from __future__ import annotations

from argparse import Namespace
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.display import display

from ..engine.map import MapResult, row_columns
from .interrupts import sigint_cancels
from .tables import Table

if TYPE_CHECKING:
    from ..api import LLM

# Options of a single answer that mean nothing for a map.
NOT_WITH_MAP = {
    "compare": "--compare",
    "new": "--new",
    "raw": "--raw",
    "format": "-f/--format",
    "tools": "--tools",
    "approve": "--approve",
    "insert": "--insert",
    "cells": "--cells",
}
MAP_ONLY = {"no_cache": "--no-cache", "batch_size": "--batch-size", "concurrency": "--concurrency"}
SHOWN_ROWS = 10


def map_cell(llm: LLM, args: Namespace, cell: str, user_ns: dict[str, Any]) -> None:
    """Run the map; on an interrupt keep (and store) the finished rows, then stop the queued
    cells as Jupyter does."""
    used = [flag for name, flag in NOT_WITH_MAP.items() if getattr(args, name)]
    if args.thread != "default":
        used.append("--thread")
    if used:
        raise UsageError(f"--map answers each row on its own: {', '.join(used)} cannot go with it.")
    for option, name in (("--map", args.map), ("--schema", args.schema)):
        if name is not None and name not in user_ns:
            raise UsageError(f"{option} {name}: no variable {name!r} in the notebook.")
    job = llm.map(
        cell.strip("\n"),
        user_ns[args.map],
        model=args.model,
        schema=None if args.schema is None else user_ns[args.schema],
        system=args.system,
        temperature=args.temperature,
        top_p=args.top_p,
        max_tokens=args.max_tokens,
        seed=args.seed,
        stop=args.stop,
        batch_size=args.batch_size,
        concurrency=args.concurrency,
        cache=not args.no_cache,
        variables=user_ns,
        stream=True,
        log=not args.no_log,
    )
    with sigint_cancels(job.cancel_event):
        result = job.run(progress=True)
    if args.output:
        user_ns[args.output] = result
    show_result(result)
    if result.interrupted:
        raise KeyboardInterrupt  # the user pressed interrupt: stop the queued cells


def check_no_map_options(args: Namespace) -> None:
    used = [flag for name, flag in MAP_ONLY.items() if getattr(args, name)]
    if used:
        raise UsageError(f"{', '.join(used)} go with --map TABLE.")


def show_result(result: MapResult) -> None:
    """The summary line, then the first rows' answers (and errors)."""
    shown = list(zip(result.labels, result.values, strict=True))[:SHOWN_ROWS]
    title = result.summary()
    if len(result.labels) > len(shown):
        title += f". The first {len(shown)} rows (-o VAR keeps them all):"
    table = Table(["row", *result.fields, "error"], title=title)
    for position, (label, value) in enumerate(shown):
        columns = row_columns(value, result.fields)
        cells = [_shorten(columns.get(name)) for name in result.fields]
        table.rows.append([str(label), *cells, result.row_error(position) or ""])
    display(table)


def _shorten(value: Any, width: int = 120) -> str:
    """One line of at most ``width`` characters ("" for nothing)."""
    line = "" if value is None else " ".join(str(value).split())
    return line if len(line) <= width else line[: width - 1] + "…"
