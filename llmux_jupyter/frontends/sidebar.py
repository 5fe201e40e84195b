"""The kernel side of the LLMux panel (JupyterLab, Notebook 7): the comm target ``llmux``.

The front end opens every comm; the kernel never opens one. ``%load_ext`` only registers the
target, so a front end without our labextension (VS Code, Colab, a plain nbclient run) sees no
comm at all. The panel opens an ``llmux`` comm when it starts, when its notebook's kernel
changes or restarts, and, while it has no connection, each time an execution finishes (that
is how it notices a later ``%load_ext``). A kernel without the target closes such a comm at
once: the panel shows "not loaded" and tries again after the next execution.

Kernel -> frontend: ``{"type": "snapshot", "snapshot": status.snapshot(...), "generation":
{"model", "tokens", "tokens_per_second"} | None}`` when the comm opens and after every manager
event (bursts coalesced, at most one every ``MIN_INTERVAL_S``, sent by a background thread so a
running ``%%llm`` cell keeps the panel live), and when another kernel's entry in the host
memory ledger changes (that thread looks every ``LEDGER_POLL_S``: one ``scandir``);
``{"type": "reply", "id", "op", "ok", "error"?}`` for each request. ``%unload_ext`` closes
every open comm.

Frontend -> kernel: ``{"op": OP, "id"?: int, ...}`` with OP one of ``OPS``. Anything else
(unknown op, missing, extra or mistyped fields, a model that is not loaded, a bad duration) gets
an ``ok: false`` reply and changes nothing. The comm only calls the operations below: it never
runs code and never reads or writes files.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..engine.events import ModelEvent
from ..errors import InvalidParameter, LLMuxError
from .kernel_target import KernelTarget
from .status import snapshot

if TYPE_CHECKING:
    from ..api import LLM

log = logging.getLogger(__name__)

TARGET = "llmux"
MIN_INTERVAL_S = 0.2
LEDGER_POLL_S = 2.0
MAX_TEXT = 200
GENERATION_ENDS = ("idle", "unloaded", "evicted", "error")

_MODEL = {"model": (str,)}
OPS: dict[str, dict[str, tuple[type, ...]]] = {
    "refresh": {},
    "unload": _MODEL,
    "pin": _MODEL,
    "unpin": _MODEL,
    "keep_alive": {**_MODEL, "duration": (str, int, float)},
}


class Comm(Protocol):
    """What we use of ``comm.base_comm.BaseComm`` (unit tests pass a fake)."""

    def send(self, data: dict[str, Any]) -> None: ...
    def close(self) -> None: ...
    def on_msg(self, callback: Callable[[dict[str, Any]], None]) -> None: ...
    def on_close(self, callback: Callable[[dict[str, Any]], None]) -> None: ...


@dataclass(frozen=True)
class Generation:
    """The answer being generated now."""

    model: str
    tokens: int
    tokens_per_second: float | None


@dataclass(frozen=True)
class Request:
    """A validated request from the frontend."""

    op: str
    fields: dict[str, Any]


def parse_request(data: Any) -> Request:
    """Check a frontend message against ``OPS``; raise InvalidParameter on anything else."""
    if not isinstance(data, dict):
        raise InvalidParameter("A request is a JSON object with an 'op'.")
    op = data.get("op")
    if not isinstance(op, str) or op not in OPS:
        raise InvalidParameter(f"Unknown op {op!r}: use one of {', '.join(OPS)}.")
    schema = OPS[op]
    extra = set(data) - set(schema) - {"op", "id"}
    if extra:
        raise InvalidParameter(f"{op}: unexpected field(s) {', '.join(sorted(extra))}.")
    fields = {}
    for name, types in schema.items():
        value = data.get(name)
        if isinstance(value, bool) or not isinstance(value, types):
            kinds = " or ".join(t.__name__ for t in types)
            raise InvalidParameter(f"{op}: {name!r} must be a {kinds}.")
        if isinstance(value, str) and not 0 < len(value) <= MAX_TEXT:
            raise InvalidParameter(f"{op}: {name!r} must be 1 to {MAX_TEXT} characters.")
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidParameter(f"{op}: {name!r} must be a finite number.")
        fields[name] = value
    return Request(op, fields)


def request_id(data: Any) -> int | None:
    """The request's ``id`` when it is an integer (echoed in the reply), else None."""
    value = data.get("id") if isinstance(data, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class SidebarComm:
    """One open comm: pushes snapshots on every manager event and answers requests."""

    def __init__(
        self,
        comm: Comm,
        llm: LLM,
        min_interval: float = MIN_INTERVAL_S,
        ledger_poll: float = LEDGER_POLL_S,
    ) -> None:
        self.comm = comm
        self.llm = llm
        self.min_interval = min_interval
        self.ledger_poll = ledger_poll
        self.generation: Generation | None = None
        self.on_closed: Callable[[SidebarComm], None] | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = threading.Event()
        comm.on_msg(self._on_msg)
        comm.on_close(self._on_close)
        self._unsubscribe = llm.manager.events.subscribe(self._on_event)
        llm.manager.refresh_elsewhere()
        self.send_snapshot()
        self.pusher = threading.Thread(target=self._push_loop, name="llmux-sidebar", daemon=True)
        self.pusher.start()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    # -- kernel -> frontend ------------------------------------------------------
    def send_snapshot(self) -> None:
        with self._lock:
            generation = self.generation
        self.comm.send(
            {
                "type": "snapshot",
                "snapshot": snapshot(self.llm, sizes=False),
                "generation": None if generation is None else asdict(generation),
            }
        )

    def _on_event(self, event: ModelEvent) -> None:
        """Any thread (main, keep-alive timer): note the change, let the pusher send it."""
        with self._lock:
            if event.kind == "generating":
                self.generation = Generation(
                    event.model,
                    int(event.detail.get("tokens", 0)),
                    event.detail.get("tokens_per_second"),
                )
            elif event.kind in GENERATION_ENDS and event.model == getattr(
                self.generation, "model", None
            ):
                self.generation = None
        self._wake.set()

    def _push_loop(self) -> None:
        while True:
            woken = self._wake.wait(self.ledger_poll)
            if self.closed:
                return
            if not woken and not self.llm.manager.refresh_elsewhere_if_changed():
                continue
            self._wake.clear()
            try:
                self.send_snapshot()
            except Exception:
                log.exception("llmux sidebar: could not send a snapshot")
            if self._closed.wait(self.min_interval):
                return

    # -- frontend -> kernel ------------------------------------------------------
    def _on_msg(self, message: dict[str, Any]) -> None:
        data = message.get("content", {}).get("data")
        reply: dict[str, Any] = {"type": "reply", "id": request_id(data), "op": None}
        try:
            request = parse_request(data)
            reply["op"] = request.op
            self._perform(request)
        except LLMuxError as error:
            reply.update(ok=False, error=str(error))
        except Exception as error:
            log.exception("llmux sidebar: %s failed", reply["op"])
            reply.update(ok=False, error=f"{type(error).__name__}: {error}")
        else:
            reply["ok"] = True
        self.comm.send(reply)

    def _perform(self, request: Request) -> None:
        """Each operation checks the model (UnknownModel, ModelNotLoaded) and the duration
        before it changes anything."""
        model = request.fields.get("model")
        if request.op == "refresh":
            self.llm.manager.refresh_elsewhere()
            self.send_snapshot()
        elif request.op == "unload":
            self.llm.unload(model)
        elif request.op in ("pin", "unpin"):
            self.llm.pin(model, request.op == "pin")
        elif request.op == "keep_alive":
            self.llm.keep_alive(model, request.fields["duration"])

    # -- closing -----------------------------------------------------------------
    def _on_close(self, message: dict[str, Any]) -> None:
        self._release()

    def close(self) -> None:
        """Close from the kernel side (``%unload_ext``)."""
        if not self.closed:
            self.comm.close()
        self._release()

    def _release(self) -> None:
        if self.closed:
            return
        self._closed.set()
        self._wake.set()
        self._unsubscribe()
        if self.on_closed is not None:
            self.on_closed(self)


class SidebarTarget:
    """The comm target: a SidebarComm for every comm a frontend opens."""

    def __init__(self, llm: LLM) -> None:
        self.llm = llm
        self.comms: set[SidebarComm] = set()

    def __call__(self, comm: Comm, open_message: dict[str, Any]) -> None:
        sidebar = SidebarComm(comm, self.llm)
        sidebar.on_closed = self.comms.discard
        self.comms.add(sidebar)

    def close_all(self) -> None:
        for sidebar in list(self.comms):
            sidebar.close()


_registration = KernelTarget(TARGET, lambda ipython, llm: SidebarTarget(llm))


def register(ipython: Any, llm: LLM) -> bool:
    """Register the comm target in a Jupyter kernel; open panels connect on their own (see the
    module docstring), so nothing is sent. A terminal IPython has no comms: does nothing."""
    return _registration.register(ipython, llm)


def unregister(ipython: Any) -> None:
    """Close every sidebar comm and remove the target (``%unload_ext``)."""
    _registration.unregister(ipython)
