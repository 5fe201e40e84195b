"""The sidebar's comm in a real kernel, spoken over ZMQ the way JupyterLab speaks it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from .kernel import Kernel, Message

LISTENERS = "len(llm.manager.events)"


class RawComm:
    """A frontend-side comm: opens, sends and closes with raw shell messages."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.comm_id = uuid.uuid4().hex
        self._shell("comm_open", target_name="llmux", data={})

    def _shell(self, msg_type: str, **content: Any) -> None:
        client = self.kernel.client
        client.shell_channel.send(
            client.session.msg(msg_type, {"comm_id": self.comm_id, **content})
        )

    def send(self, data: Any) -> None:
        self._shell("comm_msg", data=data)

    def close(self) -> None:
        self._shell("comm_close", data={})

    def data_of(self, message: Message) -> dict[str, Any] | None:
        """The data of a comm_msg to this comm, else None."""
        content = message["content"]
        if message["msg_type"] == "comm_msg" and content["comm_id"] == self.comm_id:
            return content["data"]
        return None

    def receive(self, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Read IOPub until this comm gets a message whose data matches."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            data = self.data_of(self.kernel.client.get_iopub_msg(timeout=60))
            if data is not None and match(data):
                return data
        raise AssertionError("no matching comm message")


def is_type(kind: str) -> Callable[[dict[str, Any]], bool]:
    return lambda data: data.get("type") == kind


@pytest.fixture
def comm(kernel: Kernel):
    listeners = kernel.value(LISTENERS)
    comm = RawComm(kernel)
    comm.receive(is_type("snapshot"))
    assert kernel.value(LISTENERS) == listeners + 1
    yield comm
    comm.close()
    assert kernel.value(LISTENERS) == listeners  # no listener left behind


def test_opening_gets_a_snapshot_and_requests_get_replies(comm, kernel):
    assert kernel.run("%llm load smollm2").status == "ok"
    comm.send({"op": "refresh", "id": 1})
    snapshot = comm.receive(lambda d: d.get("type") == "snapshot" and d["snapshot"]["models"])
    loaded = [m for m in snapshot["snapshot"]["models"] if m["loaded"]]
    assert [m["name"] for m in loaded] == ["smollm2"] and loaded[0]["measured"] > 0
    assert comm.receive(is_type("reply")) == {"type": "reply", "id": 1, "op": "refresh", "ok": True}
    comm.send({"op": "keep_alive", "model": "smollm2", "duration": "rm -rf /", "id": 2})
    reply = comm.receive(is_type("reply"))
    assert reply["id"] == 2 and reply["ok"] is False and "not a duration" in reply["error"]
    comm.send({"op": "unload", "model": "smollm2", "id": 3})
    assert comm.receive(is_type("reply"))["ok"] is True
    assert kernel.value("[m.name for m in llm.ps()]") == []


def test_snapshots_with_progress_arrive_while_a_cell_generates(comm, kernel):
    progress: list[dict[str, Any]] = []

    def collect(message: Message) -> None:
        data = comm.data_of(message)
        if data is not None and data.get("generation"):
            progress.append(data["generation"])

    run = kernel.run(
        "%%llm --max-tokens 200 --new\nCount from one to one hundred.", on_message=collect
    )
    assert run.status == "ok", run.error
    assert progress and progress[-1]["model"] == "smollm2" and progress[-1]["tokens"] > 0


def test_reload_announces_and_closes_open_comms(comm, kernel):
    seen: list[tuple[str, str, Any]] = []

    def collect(message: Message) -> None:
        if message["msg_type"] in ("comm_open", "comm_close"):
            content = message["content"]
            seen.append((message["msg_type"], content["comm_id"], content.get("data")))

    run = kernel.run("%reload_ext llmux_jupyter", on_message=collect)
    assert run.status == "ok", run.error
    assert ("comm_close", comm.comm_id, {}) in seen  # the unload closed the sidebar's comm
    opened = [(i, c) for i, (kind, c, data) in enumerate(seen) if data == {"type": "hello"}]
    assert len(opened) == 1 and seen[opened[0][0] + 1][:2] == ("comm_close", opened[0][1])
