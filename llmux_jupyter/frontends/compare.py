"""``%%llm --compare A,B``: the answers side by side, in columns that stream live (one display
updated in place in Jupyter; each answer as a block of text in a terminal)."""

from __future__ import annotations

import html
import sys
from abc import ABC, abstractmethod
from argparse import Namespace
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from IPython.core.error import UsageError

from ..engine.chat import ChatResponse
from ..engine.compare import CompareEvent
from ..engine.conversation import DEFAULT_THREAD
from ..types.values import GenerationParams
from .interrupts import sigint_cancels
from .render import INTERRUPTED_NOTE, Bundle, CoalescedDisplay, Publisher, in_jupyter_kernel

if TYPE_CHECKING:
    from ..api import LLM

# What a column says before and after its answer.
WAITING, STARTED = "waiting for its turn", "starting…"
NOT_RUN = "not run (interrupted before its turn)"

_GRID = (
    "display:grid;grid-template-columns:repeat({n},minmax(0,1fr));gap:10px;"
    "font-family:var(--jp-ui-font-family);color:var(--jp-ui-font-color1)"
)
_COLUMN = (
    "border:1px solid var(--jp-border-color2);border-radius:4px;padding:6px 10px;"
    "background:var(--jp-layout-color1);min-width:0"
)
_HEADER = "font-weight:bold;font-size:var(--jp-ui-font-size1)"
_STATS = "color:var(--jp-ui-font-color2);font-size:var(--jp-ui-font-size0);margin-bottom:6px"
_TEXT = "white-space:pre-wrap;overflow-wrap:anywhere;font-size:var(--jp-content-font-size1)"
_FONTS = {"code": "var(--jp-code-font-family)", "json": "var(--jp-code-font-family)"}
_ERROR = "color:var(--jp-error-color1)"


@dataclass
class Column:
    """One model's answer as far as it has come, and how it went."""

    model: str
    text: str = ""
    status: str = WAITING
    response: ChatResponse | None = None
    error: str = ""

    def apply(self, event: CompareEvent) -> None:
        if event.kind == "started":
            self.status = STARTED
        elif event.kind == "delta":
            self.text += event.text
            self.status = "streaming…"
        elif event.kind == "done" and event.response is not None:
            self.response = event.response
            self.status = stats(event.response)
        elif event.kind == "failed":
            self.error = str(event.error)
            self.status = "failed"
        elif event.kind == "skipped":
            self.status = NOT_RUN

    def plain(self) -> str:
        lines = [f"── {self.model} · {self.status} ──"]
        if self.text:
            lines.append(self.text)
        if self.error:
            lines.append(f"[error: {self.error}]")
        return "\n".join(lines)

    def html(self, font: str) -> str:
        error = f'<div style="{_ERROR}">{html.escape(self.error)}</div>' if self.error else ""
        return (
            f'<div class="llmux-compare-column" style="{_COLUMN}">'
            f'<div style="{_HEADER}">{html.escape(self.model)}</div>'
            f'<div style="{_STATS}">{html.escape(self.status)}</div>'
            f'<div style="{_TEXT};font-family:{font}">{html.escape(self.text)}</div>'
            f"{error}</div>"
        )


def stats(response: ChatResponse) -> str:
    """'TTFT 0.21 s · 45.3 tokens/s · 31 prompt + 40 output tokens', marked if interrupted."""
    usage = response.usage
    parts = []
    if usage.time_to_first_token_s is not None:
        parts.append(f"TTFT {usage.time_to_first_token_s:.2f} s")
    if usage.tokens_per_second is not None:
        parts.append(f"{usage.tokens_per_second:.1f} tokens/s")
    prompt = f"{usage.prompt_tokens} prompt + " if usage.prompt_tokens else ""  # 0: not told
    parts.append(f"{prompt}{usage.completion_tokens} output tokens")
    if response.interrupted:
        parts.append(f"⏹ {INTERRUPTED_NOTE}")
    return " · ".join(parts)


class CompareOutput(ABC):
    """Where the columns go while the answers come."""

    def __init__(self, models: list[str]) -> None:
        self.columns = {name: Column(name) for name in models}

    def texts(self) -> dict[str, str]:
        """Each model's answer as far as it came (what ``-o`` stores)."""
        return {name: column.text for name, column in self.columns.items()}

    @abstractmethod
    def apply(self, event: CompareEvent) -> None:
        """Show what happened to one answer."""

    @abstractmethod
    def finish(self, metadata: dict[str, Any]) -> None:
        """Show every column one last time, with the provenance."""


class JupyterCompareOutput(CompareOutput):
    """All columns in one display, updated in place (coalesced, from a background thread)."""

    def __init__(
        self,
        models: list[str],
        fmt: str = "markdown",
        max_updates_per_second: float = 15.0,
        publish: Publisher | None = None,
    ) -> None:
        super().__init__(models)
        self.font = _FONTS.get(fmt, "var(--jp-content-font-family)")
        self._display = CoalescedDisplay(self.bundle, max_updates_per_second, publish)

    def apply(self, event: CompareEvent) -> None:
        with self._display.change():
            self.columns[event.model].apply(event)

    def finish(self, metadata: dict[str, Any]) -> None:
        self._display.final(self.bundle(), {"llmux": metadata})

    def bundle(self) -> Bundle:
        columns = "".join(column.html(self.font) for column in self.columns.values())
        grid = _GRID.format(n=len(self.columns))
        return {
            "text/html": f'<div class="llmux-compare" style="{grid}">{columns}</div>',
            "text/plain": "\n\n".join(column.plain() for column in self.columns.values()),
        }


class TerminalCompareOutput(CompareOutput):
    """Prints each answer as a block once it is over (answers may come at the same time)."""

    def __init__(self, models: list[str], stream: TextIO | None = None) -> None:
        super().__init__(models)
        self.stream = stream or sys.stdout

    def apply(self, event: CompareEvent) -> None:
        column = self.columns[event.model]
        column.apply(event)
        if event.kind in ("done", "failed", "skipped"):
            self.stream.write(column.plain() + "\n\n")
            self.stream.flush()

    def finish(self, metadata: dict[str, Any]) -> None:
        self.stream.flush()


def compare_output(models: list[str], fmt: str, max_updates_per_second: float) -> CompareOutput:
    if in_jupyter_kernel():
        return JupyterCompareOutput(models, fmt, max_updates_per_second)
    return TerminalCompareOutput(models)


def compare_cell(
    llm: LLM, args: Namespace, prompt: str, params: GenerationParams, user_ns: dict[str, Any]
) -> None:
    """``%%llm --compare A,B``: stream every answer into its column; ``-o`` gets a dict model ->
    text (what each column shows, also after an interrupt); a failed model's error is raised
    once the others are done."""
    if args.model is not None:
        raise UsageError("--compare names the models: drop -m.")
    if args.new or args.thread != DEFAULT_THREAD:
        raise UsageError("--compare answers in fresh threads of their own: drop --thread/--new.")
    comparison = llm.compare(
        prompt,
        args.compare,
        system=args.system,
        stream=True,
        log=not args.no_log,
        **params.as_dict(),
    )
    output = compare_output(
        comparison.models, args.format or llm.config.default_format,
        llm.config.max_updates_per_second,
    )  # fmt: skip
    try:
        with sigint_cancels(comparison.cancel_event):
            for event in comparison:
                output.apply(event)
    finally:
        answers = {name: r.provenance() for name, r in comparison.responses.items()}
        output.finish(
            {"compare": answers, "errors": {n: str(e) for n, e in comparison.errors.items()}}
        )
        if args.output:
            user_ns[args.output] = output.texts()
    if comparison.errors:
        raise next(iter(comparison.errors.values()))
    if comparison.cancel_event.is_set():
        raise KeyboardInterrupt  # the user pressed interrupt: stop the queued cells
