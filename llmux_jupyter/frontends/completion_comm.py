"""The kernel side of code completion as you type: the comm target ``llmux-complete``.

The labextension's inline completion provider opens one comm per kernel (the front end opens
every comm; the kernel never opens one). A kernel without the target closes it at once.

**A running cell always wins.** While a cell executes, a completion request is answered
``busy`` at once and nothing runs. JupyterLab and Notebook 7 (4.4+) send a comm target's
messages on a kernel subshell of its own when the kernel has subshells (ipykernel 7), so the
request reaches this handler, in the subshell's thread, while the cell runs. With a kernel
without subshells the request would wait behind the cell; the front end, which sees the cell
running, then asks nothing (it answers "busy" itself). A cell that starts while a completion
runs cancels it and waits (briefly: until the next token) until the model is free, so the
cell never shares the model or the CPU with a completion.

Frontend -> kernel: ``{"op": "complete", "id": int, "before": str, "after": str, "context":
[str, ...], "max_tokens": int}`` (the cell's text around the cursor and the cells above it);
``{"op": "cancel", "id"?: int}``. A newer request cancels the running one.

Kernel -> frontend: ``{"type": "status", "model": str | null}`` when the comm opens and when
the completion model changes (null: completion is off); ``{"type": "delta", "id", "text"}``
as the ghost text grows; ``{"type": "end", "id", "reason", "text", "error"?}`` once per
request, ``reason`` one of stop, end, max_tokens, cancelled, busy, off, error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..engine.completion import (
    CANCEL_WAIT_S,
    DEFAULT_COMPLETION_TOKENS,
    Completion,
    CompletionRequest,
)
from ..engine.events import ModelEvent
from ..errors import InvalidParameter, LLMuxError
from .kernel_target import KernelTarget
from .sidebar import Comm, request_id

if TYPE_CHECKING:
    from ..api import LLM

log = logging.getLogger(__name__)

TARGET = "llmux-complete"
MAX_CELL_TEXT = 100_000
MAX_CONTEXT_CELLS = 50


@dataclass(frozen=True)
class Ask:
    """A validated ``complete`` request."""

    id: int
    request: CompletionRequest


def parse_complete(data: dict[str, Any]) -> Ask:
    """Check a ``complete`` request; InvalidParameter on anything else."""
    ident = request_id(data)
    if ident is None:
        raise InvalidParameter("complete: 'id' must be an integer.")
    extra = set(data) - {"op", "id", "before", "after", "context", "max_tokens"}
    if extra:
        raise InvalidParameter(f"complete: unexpected field(s) {', '.join(sorted(extra))}.")
    before, after = data.get("before"), data.get("after", "")
    context = data.get("context", [])
    if not isinstance(before, str) or not isinstance(after, str):
        raise InvalidParameter("complete: 'before' and 'after' must be strings.")
    if not isinstance(context, list) or not all(isinstance(cell, str) for cell in context):
        raise InvalidParameter("complete: 'context' must be a list of strings.")
    texts = [before, after, *context]
    if len(context) > MAX_CONTEXT_CELLS or sum(map(len, texts)) > MAX_CELL_TEXT:
        raise InvalidParameter(
            f"complete: at most {MAX_CONTEXT_CELLS} cells and {MAX_CELL_TEXT} characters."
        )
    max_tokens = data.get("max_tokens", DEFAULT_COMPLETION_TOKENS)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise InvalidParameter("complete: 'max_tokens' must be an integer.")
    return Ask(ident, CompletionRequest(before, after, tuple(context), max_tokens))


class CellWatch:
    """Whether a cell is executing: IPython's ``pre_run_cell`` and ``post_run_cell`` events, in
    the main thread (``pre_execute`` would not do: the comm package fires it around every comm
    message). A cell that starts cancels the running completion and waits until the model is
    free."""

    def __init__(self, llm: LLM) -> None:
        self.llm = llm
        self._depth = 0  # cells running (one inside another with run_cell); main thread only

    @property
    def executing(self) -> bool:
        return self._depth > 0

    def cell_started(self, info: object) -> None:
        self._depth += 1
        if not self.llm.completer.cancel(wait=CANCEL_WAIT_S):
            log.warning("llmux: a completion still runs after %s s; the cell starts", CANCEL_WAIT_S)

    def cell_finished(self, result: object) -> None:
        self._depth = max(self._depth - 1, 0)


class CompletionComm:
    """One open comm: answers requests through the kernel's Completer."""

    def __init__(self, comm: Comm, llm: LLM, cells: CellWatch) -> None:
        self.comm = comm
        self.llm = llm
        self.cells = cells
        self.closed = False
        self.on_closed: Callable[[CompletionComm], None] | None = None
        comm.on_msg(self._on_msg)
        comm.on_close(self._on_close)
        self._unsubscribe = llm.manager.events.subscribe(self._on_event)
        self.send_status()

    def send_status(self) -> None:
        self.comm.send({"type": "status", "model": self.llm.completer.model})

    def _on_event(self, event: ModelEvent) -> None:
        if event.kind == "completion":
            self.send_status()

    # -- the Completer's listener (from its worker thread) -----------------------
    def delta(self, request_id: int, text: str) -> None:
        if not self.closed:
            self.comm.send({"type": "delta", "id": request_id, "text": text})

    def finished(self, completion: Completion) -> None:
        if self.closed:
            return
        end: dict[str, Any] = {
            "type": "end",
            "id": completion.request_id,
            "reason": completion.reason,
            "text": completion.text,
        }
        if completion.error is not None:
            end["error"] = completion.error
        self.comm.send(end)

    # -- frontend -> kernel --------------------------------------------------------
    def _on_msg(self, message: dict[str, Any]) -> None:
        data = message.get("content", {}).get("data")
        ident = request_id(data)
        try:
            if not isinstance(data, dict) or data.get("op") not in ("complete", "cancel"):
                raise InvalidParameter("Unknown op: use complete or cancel.")
            if data["op"] == "cancel":
                self.llm.completer.cancel(ident)
                return
            ask = parse_complete(data)
        except LLMuxError as error:
            self._end(ident, "error", str(error))
            return
        if self.llm.completer.model is None:
            self._end(ask.id, "off")
        elif self.cells.executing:
            self._end(ask.id, "busy")
        else:
            self.llm.completer.submit(ask.id, ask.request, self)

    def _end(self, ident: int | None, reason: str, error: str | None = None) -> None:
        self.finished(Completion(ident if ident is not None else -1, "", reason, error=error))

    # -- closing -------------------------------------------------------------------
    def _on_close(self, message: dict[str, Any]) -> None:
        self.release()

    def release(self) -> None:
        if not self.closed:
            self.closed = True
            self._unsubscribe()
            self.llm.completer.cancel()
            if self.on_closed is not None:
                self.on_closed(self)


class CompletionTarget:
    """The comm target, and the cell watch its comms share (on IPython's events from the
    target's making to ``close_all``)."""

    def __init__(self, ipython: Any, llm: LLM) -> None:
        self.ipython = ipython
        self.llm = llm
        self.cells = CellWatch(llm)
        self.comms: set[CompletionComm] = set()
        ipython.events.register("pre_run_cell", self.cells.cell_started)
        ipython.events.register("post_run_cell", self.cells.cell_finished)

    def __call__(self, comm: Comm, open_message: dict[str, Any]) -> None:
        opened = CompletionComm(comm, self.llm, self.cells)
        opened.on_closed = self.comms.discard
        self.comms.add(opened)

    def close_all(self) -> None:
        """Close every comm (what runs is cancelled) and stop watching cells."""
        for opened in list(self.comms):
            if not opened.closed:
                opened.comm.close()
            opened.release()
        self.ipython.events.unregister("pre_run_cell", self.cells.cell_started)
        self.ipython.events.unregister("post_run_cell", self.cells.cell_finished)


_registration = KernelTarget(TARGET, CompletionTarget)


def register(ipython: Any, llm: LLM) -> bool:
    """Register the comm target and the cell watch in a Jupyter kernel (a terminal IPython has
    no comms: does nothing)."""
    return _registration.register(ipython, llm)


def unregister(ipython: Any) -> None:
    """Close every completion comm, cancel what runs, remove the target and the cell watch."""
    _registration.unregister(ipython)
