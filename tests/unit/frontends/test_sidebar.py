"""The sidebar's kernel side, driven through a fake comm object."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import comm as comm_package
import pytest

from llmux_jupyter.errors import InvalidParameter
from llmux_jupyter.frontends import sidebar
from llmux_jupyter.frontends.sidebar import OPS, SidebarComm, parse_request

from ..conftest import held

WAIT_S = 20


class FakeComm:
    """Records what the kernel sends (as JSON, like the wire) and delivers frontend messages."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.closed = False
        self._condition = threading.Condition()
        self._on_msg: Callable[[dict[str, Any]], None] | None = None
        self._on_close: Callable[[dict[str, Any]], None] | None = None

    def send(self, data: dict[str, Any]) -> None:
        with self._condition:
            self.sent.append(json.loads(json.dumps(data, allow_nan=False)))
            self._condition.notify_all()

    def close(self) -> None:
        self.closed = True

    def on_msg(self, callback: Callable[[dict[str, Any]], None]) -> None:
        self._on_msg = callback

    def on_close(self, callback: Callable[[dict[str, Any]], None]) -> None:
        self._on_close = callback

    def receive(self, data: Any) -> dict[str, Any]:
        """Deliver a frontend message; returns the reply it got."""
        assert self._on_msg is not None
        count = len(self.sent)
        self._on_msg({"content": {"comm_id": "x", "data": data}})
        return next(m for m in self.sent[count:] if m["type"] == "reply")

    def close_from_frontend(self) -> None:
        assert self._on_close is not None
        self._on_close({"content": {"comm_id": "x", "data": {}}})

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], after: int = 0
    ) -> dict[str, Any]:
        """The first message sent (so far or within WAIT_S) from index ``after`` that matches."""
        deadline = time.monotonic() + WAIT_S
        with self._condition:
            while True:
                for message in self.sent[after:]:
                    if predicate(message):
                        return message
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"no matching message in {self.sent}"
                self._condition.wait(remaining)

    def snapshots(self) -> list[dict[str, Any]]:
        return [m for m in self.sent if m["type"] == "snapshot"]


def loaded(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in message["snapshot"]["models"] if m["loaded"]}


@pytest.fixture
def open_comm(fake_llm) -> Iterator[tuple[FakeComm, SidebarComm]]:
    fake = FakeComm()
    handler = SidebarComm(fake, fake_llm)
    yield fake, handler
    handler.close()
    handler.pusher.join(WAIT_S)


def state(llm) -> list[tuple[str, bool, float | None]]:
    return sorted((m.name, m.pinned, m.keep_alive) for m in llm.ps())


def test_open_sends_a_snapshot_at_once(fake_llm):
    fake_llm.load("echo")
    fake = FakeComm()
    handler = SidebarComm(fake, fake_llm)
    first = fake.sent[0]
    assert first["type"] == "snapshot" and first["generation"] is None
    assert loaded(first)["echo"]["measured"] is not None
    assert loaded(first)["echo"]["estimate"] == 1000
    assert {"device", "used", "budget", "total"} <= set(first["snapshot"]["devices"][0])
    handler.close()


def test_manager_events_push_a_new_snapshot(open_comm, fake_llm):
    fake, _ = open_comm
    fake_llm.load("echo")
    message = fake.wait_for(lambda m: m["type"] == "snapshot" and "echo" in loaded(m))
    assert loaded(message)["echo"]["state"] == "idle"


def test_a_burst_of_events_is_coalesced(fake_llm):
    fake = FakeComm()
    handler = SidebarComm(fake, fake_llm, min_interval=3600)
    events = fake_llm.manager.events
    events.emit("generating", "echo", tokens=1, tokens_per_second=None)
    fake.wait_for(lambda m: m["type"] == "snapshot" and m["generation"] is not None)
    for tokens in range(2, 50):  # within the interval after that push: held back
        events.emit("generating", "echo", tokens=tokens, tokens_per_second=9.0)
    handler.close()
    handler.pusher.join(WAIT_S)
    assert not handler.pusher.is_alive()
    assert len(fake.snapshots()) == 2  # the one on open, then one at the first event


def test_generation_progress_is_sent_and_cleared_when_idle(open_comm, fake_llm):
    fake, _ = open_comm
    events = fake_llm.manager.events
    events.emit("generating", "echo", tokens=12, tokens_per_second=30.5, thread="default")
    message = fake.wait_for(lambda m: m["type"] == "snapshot" and m["generation"] is not None)
    assert message["generation"] == {"model": "echo", "tokens": 12, "tokens_per_second": 30.5}
    count = len(fake.sent)
    events.emit("idle", "echo")
    assert fake.wait_for(lambda m: m["type"] == "snapshot", after=count)["generation"] is None


def test_keep_alive_expiry_on_the_timer_thread_reaches_the_frontend(open_comm, fake_llm):
    fake, _ = open_comm
    fake_llm.load("echo", keep_alive=0.05)
    with_echo = fake.wait_for(lambda m: m["type"] == "snapshot" and "echo" in loaded(m))
    fake.wait_for(
        lambda m: m["type"] == "snapshot" and "echo" not in loaded(m),
        after=fake.sent.index(with_echo) + 1,
    )
    assert fake_llm.ps() == []


@pytest.mark.parametrize(
    ("request_data", "check"),
    [
        ({"op": "unload", "model": "echo", "id": 4}, lambda llm: llm.ps() == []),
        ({"op": "pin", "model": "echo"}, lambda llm: llm.ps()[0].pinned),
        ({"op": "keep_alive", "model": "echo", "duration": "10m"},
         lambda llm: llm.ps()[0].keep_alive == 600),
        ({"op": "keep_alive", "model": "echo", "duration": -1},
         lambda llm: llm.ps()[0].keep_alive is None),
        ({"op": "keep_alive", "model": "echo", "duration": 90.5},
         lambda llm: llm.ps()[0].keep_alive == 90.5),
    ],
)  # fmt: skip
def test_valid_requests_act_and_reply_ok(open_comm, fake_llm, request_data, check):
    fake, _ = open_comm
    fake_llm.load("echo")
    reply = fake.receive(request_data)
    assert reply == {"type": "reply", "id": request_data.get("id"), "op": request_data["op"],
                     "ok": True}  # fmt: skip
    assert check(fake_llm)


def test_unpin_and_refresh(open_comm, fake_llm):
    fake, _ = open_comm
    fake_llm.load("echo", pin=True)
    assert fake.receive({"op": "unpin", "model": "echo"})["ok"]
    assert not fake_llm.ps()[0].pinned
    count = len(fake.snapshots())
    assert fake.receive({"op": "refresh", "id": 1})["ok"]
    assert len(fake.snapshots()) > count


MALFORMED = [
    None,
    "unload echo",
    ["unload", "echo"],
    {},
    {"op": 3},
    {"op": "exec", "code": "import os"},
    {"op": "UNLOAD", "model": "echo"},
    {"op": "unload"},
    {"op": "unload", "model": 5},
    {"op": "unload", "model": ["echo"]},
    {"op": "unload", "model": None},
    {"op": "unload", "model": ""},
    {"op": "unload", "model": "e" * 500},
    {"op": "unload", "model": "echo", "force": True},
    {"op": "unload", "model": "nope"},
    {"op": "unload", "model": "flaky"},
    {"op": "pin", "model": {"name": "echo"}},
    {"op": "refresh", "model": "echo"},
    {"op": "keep_alive", "model": "echo"},
    {"op": "keep_alive", "model": "echo", "duration": "soon"},
    {"op": "keep_alive", "model": "echo", "duration": "5 parsecs"},
    {"op": "keep_alive", "model": "echo", "duration": True},
    {"op": "keep_alive", "model": "echo", "duration": None},
    {"op": "keep_alive", "model": "echo", "duration": float("inf")},
    {"op": "keep_alive", "model": "flaky", "duration": "1m"},
]


@pytest.mark.parametrize("request_data", MALFORMED)
def test_malformed_requests_are_rejected_and_change_nothing(open_comm, fake_llm, request_data):
    fake, _ = open_comm
    fake_llm.load("echo", keep_alive="5m")
    before = state(fake_llm)
    reply = fake.receive(request_data)
    assert reply["ok"] is False and reply["error"]
    assert state(fake_llm) == before


def test_a_rejected_request_echoes_its_id(open_comm):
    fake, _ = open_comm
    reply = fake.receive({"op": "format_disk", "id": 7})
    assert reply["id"] == 7 and reply["op"] is None and "Unknown op" in reply["error"]
    assert fake.receive({"op": "nope", "id": True})["id"] is None


def test_unloading_a_busy_model_is_refused(open_comm, fake_llm):
    fake, _ = open_comm
    with fake_llm.manager.using("echo"):
        reply = fake.receive({"op": "unload", "model": "echo"})
    assert reply["ok"] is False and "busy" in reply["error"]
    assert [m.name for m in fake_llm.ps()] == ["echo"]


def test_parse_request_knows_every_op():
    assert set(OPS) == {"refresh", "unload", "pin", "unpin", "keep_alive"}
    assert parse_request({"op": "refresh", "id": 3}).fields == {}
    with pytest.raises(InvalidParameter, match="unexpected field"):
        parse_request({"op": "pin", "model": "a", "path": "/etc/passwd"})


def test_closing_from_the_frontend_unsubscribes_and_stops_the_pusher(fake_llm):
    events = fake_llm.manager.events
    listeners = len(events)
    fake = FakeComm()
    handler = SidebarComm(fake, fake_llm)
    assert len(events) == listeners + 1
    fake.close_from_frontend()
    handler.pusher.join(WAIT_S)
    assert len(events) == listeners and not handler.pusher.is_alive()
    assert not fake.closed  # the frontend closed it; nothing to send back
    count = len(fake.sent)
    fake_llm.load("echo")
    assert len(fake.sent) == count


class FakeCommManager:
    def __init__(self) -> None:
        self.targets: dict[str, Any] = {}

    def register_target(self, name: str, target: Any) -> None:
        self.targets[name] = target

    def unregister_target(self, name: str, target: Any) -> Any:
        return self.targets.pop(name)


class Shell:
    def __init__(self, kernel: object | None) -> None:
        self.kernel = kernel


def test_register_opens_no_comm_and_unregister_closes_every_comm(fake_llm, monkeypatch):
    manager = FakeCommManager()
    monkeypatch.setattr(comm_package, "get_comm_manager", lambda: manager)
    monkeypatch.setattr(comm_package, "create_comm", pytest.fail)  # the front end opens comms
    shell = Shell(kernel=object())
    assert sidebar.register(shell, fake_llm)
    frontend = FakeComm()
    manager.targets["llmux"](frontend, {"content": {"data": {}}})
    assert frontend.sent[0]["type"] == "snapshot"
    listeners = len(fake_llm.manager.events)
    sidebar.unregister(shell)
    assert frontend.closed and "llmux" not in manager.targets
    assert len(fake_llm.manager.events) == listeners - 1


def test_register_in_a_terminal_does_nothing(fake_llm, monkeypatch):
    monkeypatch.setattr(comm_package, "get_comm_manager", pytest.fail)
    assert not sidebar.register(Shell(kernel=None), fake_llm)
    sidebar.unregister(Shell(kernel=None))


def test_other_kernels_models_are_in_the_snapshot_and_followed(fake_llm, other_kernel):
    other_kernel.hold(held("smollm2", 300), notebook="analysis.ipynb")
    fake = FakeComm()
    handler = SidebarComm(fake, fake_llm, ledger_poll=0.05)
    try:
        first = fake.sent[0]["snapshot"]
        assert first["elsewhere"] == [
            {
                "pid": other_kernel.pid,
                "notebook": "analysis.ipynb",
                "models": [{"name": "smollm2", "device": "cpu", "held": 300}],
            }
        ]
        assert first["devices"][0]["others"] == 300
        count = len(fake.sent)
        other_kernel.hold(held("smollm2", 300), held("whisper", 100), notebook="analysis.ipynb")
        update = fake.wait_for(lambda m: m["type"] == "snapshot", after=count)["snapshot"]
        assert update["devices"][0]["others"] == 400  # no event here: the ledger changed
        other_kernel.stop()
        fake.receive({"op": "refresh", "id": 1})
        assert fake.snapshots()[-1]["snapshot"]["elsewhere"] == []
    finally:
        handler.close()
        handler.pusher.join(WAIT_S)
