"""``%%llm --filter / --classify / --extract / --reduce / --topk TABLE``: the cell asks the
operator's question of a notebook table; a progress bar, a summary and the first rows show,
and ``-o`` receives the result. An interrupt keeps (and stores) what finished."""

from __future__ import annotations

from argparse import Namespace
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.display import display

from ..engine.map_table import as_table, row_text
from ..engine.operators import ClassifyResult, FilterResult, OperatorJob, RowsResult
from ..engine.reduce import ReduceResult
from ..engine.topk import TopKResult
from ..errors import InvalidParameter
from .map_view import SHOWN_ROWS, run_table_job, shorten, show_result
from .table_options import check_table_options
from .tables import Table

if TYPE_CHECKING:
    from ..api import LLM

DEFAULT_K = 5


def operator_cell(
    llm: LLM, operation: str, args: Namespace, cell: str, user_ns: dict[str, Any]
) -> None:
    """Build the operator's job (bad input is a UsageError and nothing runs), run it with the
    interrupt stopping it, store and show the result; an interrupt then stops the queued
    cells as Jupyter does."""
    check_table_options(args, operation, user_ns)
    table = user_ns[getattr(args, operation)]
    try:
        job = _job(llm, operation, args, cell.strip("\n"), table, user_ns)
    except InvalidParameter as error:
        raise UsageError(str(error)) from None
    run_table_job(job, args.output, user_ns, _show)


def _job(
    llm: LLM, operation: str, args: Namespace, cell: str, table: Any, user_ns: dict[str, Any]
) -> OperatorJob[Any]:
    options: dict[str, Any] = {
        "system": args.system,
        "top_p": args.top_p,
        "max_tokens": args.max_tokens,
        "seed": args.seed,
        "stop": args.stop,
        "batch_size": args.batch_size,
        "concurrency": args.concurrency,
        "cache": not args.no_cache,
        "variables": user_ns,
        "log": not args.no_log,
    }
    if args.temperature is not None:
        options["temperature"] = args.temperature
    model = args.model
    if operation == "filter":
        return llm.filter(table, cell, model=model, job=True, **options)
    if operation == "classify":
        if args.labels is None:
            raise UsageError("--classify needs --labels a,b,c (or a variable holding them).")
        labels = args.labels
        if len(labels) == 1 and labels[0] in user_ns:
            labels = user_ns[labels[0]]
        return llm.classify(table, cell, labels, model=model, job=True, **options)
    if operation == "extract":
        if args.schema is None:
            raise UsageError("--extract needs --schema TYPE: the fields to pull out of each row.")
        schema = user_ns[args.schema]
        return llm.extract(table, cell, schema, model=model, job=True, **options)
    if operation == "reduce":
        return llm.reduce(table, cell, args.by, model=model, job=True, **options)
    return llm.topk(
        table,
        cell.strip(),
        _default_k(table) if args.k is None else args.k,
        model=model,
        document=args.document,
        judge=args.judge,
        job=True,
        **options,
    )


def _default_k(table: Any) -> int:
    """DEFAULT_K, or every row of a shorter table (anything else is refused by topk itself)."""
    return min(DEFAULT_K, len(table)) if hasattr(table, "__len__") and len(table) else DEFAULT_K


def _show(result: Any) -> None:
    if isinstance(result, FilterResult):
        _show_filter(result)
    elif isinstance(result, ClassifyResult):
        _show_rows(result, "label")
    elif isinstance(result, ReduceResult):
        _show_reduce(result)
    elif isinstance(result, TopKResult):
        _show_topk(result)
    else:
        assert isinstance(result, RowsResult)
        show_result(result.map)


def _show_filter(result: FilterResult) -> None:
    """The summary, then the first rows kept with their confidence."""
    rows = as_table(result.data)
    confidence = list(result.confidence)
    kept = [i for i, value in enumerate(result.values) if value is True]
    title = result.summary()
    if len(kept) > SHOWN_ROWS:
        title += f". The first {SHOWN_ROWS} kept (-o VAR keeps them all):"
    shown = Table(["row", "confidence", "values"], title=title, empty="(no row kept)")
    for i in kept[:SHOWN_ROWS]:
        text = row_text(rows.rows[i], rows.columns).replace("\n", "; ")
        shown.rows.append([str(rows.labels[i]), _percent(confidence[i]), shorten(text)])
    display(shown)
    if result.errors:
        _show_rows(result, "keep", only_errors=True)


def _show_rows(result: RowsResult, column: str, only_errors: bool = False) -> None:
    """The summary (unless ``only_errors``), then the first rows' values and errors."""
    labels = result.map.labels
    positions = range(len(labels))
    if only_errors:
        positions = [i for i in positions if result.map.row_error(i)]
    confidence = list(result.confidence)
    title = "Failed rows:" if only_errors else result.summary()
    if len(positions) > SHOWN_ROWS:
        title += f" The first {SHOWN_ROWS} rows (-o VAR keeps them all):"
    shown = Table(["row", column, "confidence", "error"], title=title)
    for i in list(positions)[:SHOWN_ROWS]:
        value = result.values[i]
        shown.rows.append([
            str(labels[i]), shorten(getattr(value, "value", value)), _percent(confidence[i]),
            result.map.row_error(i) or "",
        ])  # fmt: skip
    display(shown)


def _show_reduce(result: ReduceResult) -> None:
    if result.by is None:
        answer = result.answers[None] or result.errors.get(None, "")
        markdown = f"**{result.summary()}**\n\n{answer}"
        display(
            {"text/markdown": markdown, "text/plain": f"{result.summary()}\n\n{answer}"}, raw=True
        )
        return
    shown = Table([result.by, "rows", "levels", "answer", "error"], title=result.summary())
    for group, answer in result.answers.items():
        shown.rows.append([
            str(group), str(result.rows[group]), str(result.levels.get(group, "")),
            answer or "", result.errors.get(group, ""),
        ])  # fmt: skip
    display(shown)


def _show_topk(result: TopKResult) -> None:
    rows = as_table(result.data)
    columns = ["rank", "row", "score", *(["wins"] if result.judge else []), "values"]
    shown = Table(columns, title=result.summary())
    for rank, position in enumerate(result.positions, 1):
        text = row_text(rows.rows[position], rows.columns).replace("\n", "; ")
        wins = [str(result.wins.get(position, 0))] if result.judge else []
        score = result.all_scores[position]
        shown.rows.append([
            str(rank), str(rows.labels[position]), f"{score:.4f}" if score is not None else "",
            *wins, shorten(text),
        ])  # fmt: skip
    display(shown)


def _percent(probability: float | None) -> str:
    return "" if probability is None else f"{probability:.0%}"
