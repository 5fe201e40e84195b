"""Code completion's comm (kernel side), driven through a fake comm object."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import comm as comm_package
import pytest

from llmux_jupyter.frontends.completion_comm import CellWatch, CompletionComm
from llmux_jupyter.frontends.sidebar import Comm

from ..conftest import WAIT_S, FIMBackend, hold_completions
from .test_sidebar import FakeComm


class CompletionFake(FakeComm):
    def ask(self, data: Any) -> None:
        assert self._on_msg is not None
        self._on_msg({"content": {"comm_id": "x", "data": data}})

    def end_of(self, request_id: int | None) -> dict[str, Any]:
        return self.wait_for(lambda m: m["type"] == "end" and m["id"] == request_id)


@pytest.fixture
def completion(coder) -> Iterator[tuple[CompletionFake, CompletionComm]]:
    fake = CompletionFake()
    comm: Comm = fake
    opened = CompletionComm(comm, coder, CellWatch(coder))
    yield fake, opened
    fake.close_from_frontend()
    assert opened.closed and len(coder.manager.events) == 0


def complete(request_id: int, before: str, **fields: Any) -> dict[str, Any]:
    return {"op": "complete", "id": request_id, "before": before, **fields}


def test_status_follows_the_completion_model(completion, coder):
    fake, _ = completion
    assert fake.sent[0] == {"type": "status", "model": None}
    fake.ask(complete(1, "x = "))
    assert fake.end_of(1)["reason"] == "off"
    coder.config.completion_model = "coder"
    assert fake.sent[-1] == {"type": "status", "model": "coder"}


def test_a_request_streams_deltas_then_ends(completion, coder):
    fake, _ = completion
    coder.set_completion_model("coder")
    FIMBackend.answers = ["total = a + b\n    return total\n\nprint()"]
    fake.ask(complete(5, "def add(a, b):\n    ", after="", context=["import os"]))
    end = fake.end_of(5)
    deltas = "".join(m["text"] for m in fake.sent if m["type"] == "delta" and m["id"] == 5)
    assert deltas == end["text"] == "total = a + b\n    return total"
    assert end["reason"] == "end" and FIMBackend.prompts[0].startswith("<|fim_prefix|>import os")


def running(fake: CompletionFake, coder, request_id: int) -> threading.Event:
    """``coder`` completing ``request_id``, held after its first piece: the gate."""
    gate = hold_completions(coder)
    fake.ask(complete(request_id, "x = 1\n"))
    assert FIMBackend.started.wait(WAIT_S)
    return gate


def test_a_running_cell_gets_busy_at_once_and_cancels_a_completion(completion, coder):
    fake, opened = completion
    threading.Timer(0.2, running(fake, coder, 1).set).start()
    opened.cells.cell_started(None)  # a cell starts: the completion stops before it runs
    assert fake.end_of(1)["reason"] == "cancelled" and coder.completer.cancel()
    fake.ask(complete(2, "y = "))
    assert fake.end_of(2)["reason"] == "busy"
    opened.cells.cell_finished(None)
    FIMBackend.answers = ["3\n"]
    fake.ask(complete(3, "y = "))
    assert fake.end_of(3)["text"] == "3"


def test_cancel_by_id(completion, coder):
    fake, _ = completion
    gate = running(fake, coder, 4)
    fake.ask({"op": "cancel", "id": 4})
    gate.set()
    assert fake.end_of(4)["reason"] == "cancelled"


@pytest.mark.parametrize(
    "data, message",
    [
        ("text", "Unknown op"),
        ({"op": "complete", "before": "x"}, "'id' must be an integer"),
        ({"op": "complete", "id": 1, "before": 3}, "must be strings"),
        (complete(1, "x", context="import os"), "list of strings"),
        (complete(1, "x", max_tokens=0), "max_tokens must be between"),
        (complete(1, "x", max_tokens="9"), "must be an integer"),
        (complete(1, "x", extra=1), "unexpected field"),
        (complete(1, "x" * 200_000), "at most"),
    ],
)
def test_bad_requests_end_with_an_error_and_run_nothing(completion, coder, data, message):
    fake, _ = completion
    coder.set_completion_model("coder")
    fake.ask(data)
    end = fake.wait_for(lambda m: m["type"] == "end")
    assert end["reason"] == "error" and message in end["error"]
    assert FIMBackend.prompts == []


def test_register_watches_cells_and_unregister_closes_everything(coder, monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell

    from llmux_jupyter.frontends import completion_comm

    from .test_sidebar import FakeCommManager

    manager = FakeCommManager()
    monkeypatch.setattr(comm_package, "get_comm_manager", lambda: manager)
    shell = InteractiveShell.instance()
    monkeypatch.setattr(shell, "kernel", object(), raising=False)
    events = ("pre_run_cell", "post_run_cell")
    hooks = {event: len(shell.events.callbacks[event]) for event in events}
    assert completion_comm.register(shell, coder)
    frontend = CompletionFake()
    manager.targets["llmux-complete"](frontend, {"content": {"data": {}}})
    seen = []
    shell.user_ns["seen"] = seen
    shell.user_ns["cells"] = completion_comm._registration.target.cells
    shell.run_cell("seen.append(cells.executing)")
    assert seen == [True] and not completion_comm._registration.target.cells.executing
    completion_comm.unregister(shell)
    assert frontend.closed and "llmux-complete" not in manager.targets
    assert {event: len(shell.events.callbacks[event]) for event in events} == hooks
