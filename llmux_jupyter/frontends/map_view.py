"""``%%llm --map TABLE``: the cell as a template over every row of a notebook table, with a
progress bar, a summary line and the answers as a table; ``-o`` receives the MapResult."""

from __future__ import annotations

from argparse import Namespace
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from IPython.display import display

from ..engine.map import MapResult, row_columns
from .interrupts import sigint_cancels
from .table_options import check_table_options
from .tables import Table

if TYPE_CHECKING:
    from ..api import LLM

SHOWN_ROWS = 10


def map_cell(llm: LLM, args: Namespace, cell: str, user_ns: dict[str, Any]) -> None:
    """Run the map; on an interrupt keep (and store) the finished rows, then stop the queued
    cells as Jupyter does."""
    check_table_options(args, "map", user_ns)
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
    run_table_job(job, args.output, user_ns, show_result)


def run_table_job(
    job: Any, output: str | None, user_ns: dict[str, Any], show: Callable[[Any], None]
) -> None:
    """Run a map's or an operator's job with the interrupt cancelling it, store its result in
    ``output``, ``show`` it; after an interrupt, stop the queued cells as Jupyter does."""
    with sigint_cancels(job.cancel_event):
        result = job.run(progress=True)
    if output:
        user_ns[output] = result
    show(result)
    if result.interrupted:
        raise KeyboardInterrupt  # the user pressed interrupt: stop the queued cells


def show_result(result: MapResult) -> None:
    """The summary line, then the first rows' answers (and errors)."""
    shown = list(zip(result.labels, result.values, strict=True))[:SHOWN_ROWS]
    title = result.summary()
    if len(result.labels) > len(shown):
        title += f". The first {len(shown)} rows (-o VAR keeps them all):"
    table = Table(["row", *result.fields, "error"], title=title)
    for position, (label, value) in enumerate(shown):
        columns = row_columns(value, result.fields)
        cells = [shorten(columns.get(name)) for name in result.fields]
        table.rows.append([str(label), *cells, result.row_error(position) or ""])
    display(table)


def shorten(value: Any, width: int = 120) -> str:
    """One line of at most ``width`` characters ("" for nothing)."""
    line = "" if value is None else " ".join(str(value).split())
    return line if len(line) <= width else line[: width - 1] + "…"
