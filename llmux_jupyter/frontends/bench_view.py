"""``%llm bench``: a progress bar while it runs, then a themed table, the plot and the notes."""

from __future__ import annotations

import html
from argparse import Namespace
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.display import display

from ..engine.bench import DEFAULT_PROMPTS, BenchReport
from ..engine.bench_metrics import Distribution, LevelSummary
from .bench_plot import INSTALL_HINT, bench_plot
from .interrupts import sigint_cancels
from .tables import Table

if TYPE_CHECKING:
    from ..api import LLM

COLUMNS = [
    "model", "backend", "concurrency", "requests", "output tokens/s", "requests/s",
    "TTFT ms", "ITL ms", "TPOT ms", "latency s", "load s",
]  # fmt: skip
_NOTES = "color:var(--jp-ui-font-color2);font-size:var(--jp-ui-font-size0);margin-top:4px"
DEFINITIONS = (
    "Metrics as guidellm defines them: TTFT from sending a request to its first token; ITL "
    "the mean time between tokens after the first; TPOT the time to the last token over the "
    "output tokens (first included); latency the whole request; output tokens/s and "
    "requests/s over each level's duration. Each: mean / p50 / p90 / p99 of the successful "
    "requests."
)


def bench_command(llm: LLM, args: Namespace, user_ns: dict[str, Any]) -> None:
    """Run the benchmark with a progress bar, show the results (also after an interrupt or a
    failure), store the report in ``-o``'s variable."""
    bench = llm.bench(
        args.models,
        prompts=_prompts(args, user_ns),
        max_tokens=args.max_tokens,
        concurrency=args.concurrency,
        stream=True,
    )
    from tqdm.auto import tqdm

    progress = tqdm(total=bench.planned, desc="bench", unit="request")
    try:
        with sigint_cancels(bench.cancel_event):
            for record in bench:
                progress.set_description(f"{record.model} ×{record.concurrency}", refresh=False)
                progress.update()
    finally:
        progress.close()
        show_report(bench.report)
        if args.output:
            user_ns[args.output] = bench.report
    if bench.report.interrupted:
        raise KeyboardInterrupt  # the user pressed interrupt: stop the queued cells


def _prompts(args: Namespace, user_ns: dict[str, Any]) -> int | list[str]:
    """``--prompts N`` built-in prompts, or the list in ``--prompts-from VAR`` (cycled to N)."""
    if args.prompts_from is None:
        return DEFAULT_PROMPTS if args.prompts is None else args.prompts
    if args.prompts_from not in user_ns:
        raise UsageError(f"No variable {args.prompts_from!r}: give the name of a list of prompts.")
    given = user_ns[args.prompts_from]
    if isinstance(given, str) or args.prompts is None:
        return given  # the engine refuses a bare string, and checks the list
    given = list(given)
    return [given[i % len(given)] for i in range(args.prompts)] if given else given


def show_report(report: BenchReport) -> None:
    """The table, the plot (or how to get it) and the notes."""
    if not report.levels:
        display(_notes(report), raw=True)
        return
    plot = bench_plot(report)
    display(bench_table(report))
    if plot is not None:
        display(plot)
    display(_notes(report, no_plot=plot is None), raw=True)


def bench_table(report: BenchReport) -> Table:
    loads = {load.model: f"{load.load_seconds:.2f}" for load in report.loads}
    table = Table(
        COLUMNS,
        title=f"Benchmark: {report.prompts} requests per level, at most {report.max_tokens} "
        "tokens each, greedy · TTFT, ITL, TPOT, latency: mean / p50 / p90 / p99",
    )
    for level in report.levels:
        table.rows.append([
            level.model, level.backend, str(level.concurrency), _requests(level),
            f"{level.output_tokens_per_second:.1f}", f"{level.requests_per_second:.2f}",
            _stats(level.time_to_first_token_ms), _stats(level.inter_token_latency_ms),
            _stats(level.time_per_output_token_ms), _stats(level.request_latency, seconds=True),
            loads.get(level.model, "-"),
        ])  # fmt: skip
    return table


def _requests(level: LevelSummary) -> str:
    other = [f"{n} {kind}" for n, kind in ((level.incomplete, "incomplete"), (level.errored,
             "errored")) if n]  # fmt: skip
    return f"{level.successful}" + (f" (+{', '.join(other)})" if other else "")


def _stats(distribution: Distribution | None, seconds: bool = False) -> str:
    if distribution is None:
        return "-"
    values = (distribution.mean, distribution.p50, distribution.p90, distribution.p99)
    return " / ".join(f"{v:.2f}" if seconds else _milliseconds(v) for v in values)


def _milliseconds(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _notes(report: BenchReport, no_plot: bool = False) -> dict[str, str]:
    lines = [
        f"{load.model} on {load.device}: loaded in {load.load_seconds:.2f} s"
        + (" by the bench, before its requests" if load.loaded_by_bench else ", before the bench")
        for load in report.loads
    ]
    lines += report.notes
    if report.interrupted:
        lines.append("Interrupted: the table shows the requests that had finished.")
    if no_plot:
        lines.append(f"No plot: {INSTALL_HINT}.")
    lines.append(DEFINITIONS)
    shown = "".join(f"<div>{html.escape(line)}</div>" for line in lines)
    return {
        "text/html": f'<div class="llmux-bench-notes" style="{_NOTES}">{shown}</div>',
        "text/plain": "\n".join(lines),
    }
