"""The sidebar's comm in a real kernel, spoken over ZMQ the way JupyterLab and Notebook 7 speak
it: the front end opens every comm, the kernel none."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from .kernel import LOAD_EXTENSION, CellRun, Kernel, Message

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
        return self._read(
            lambda message: (data := self.data_of(message)) is not None and match(data)
        )["content"]["data"]

    def wait_closed_by_kernel(self) -> Message:
        """Read IOPub until the kernel closes this comm."""
        return self._read(
            lambda m: m["msg_type"] == "comm_close" and m["content"]["comm_id"] == self.comm_id
        )

    def _read(self, match: Callable[[Message], bool]) -> Message:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            message = self.kernel.client.get_iopub_msg(timeout=60)
            if match(message):
                return message
        raise AssertionError("no matching IOPub message")


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


def comm_messages(run: CellRun) -> list[tuple[str, str, Any]]:
    """The comm_open / comm_close messages a cell sent: (type, comm id, data)."""
    return [
        (m["msg_type"], m["content"]["comm_id"], m["content"].get("data"))
        for m in run.of_type("comm_open", "comm_close")
    ]


def test_reload_closes_open_comms_and_opens_none(comm, kernel):
    run = kernel.run("%reload_ext llmux_jupyter")
    assert run.status == "ok", run.error
    # The unload closed the panel's comm; the load opened nothing (the panel reconnects itself).
    assert comm_messages(run) == [("comm_close", comm.comm_id, {})]
    again = RawComm(kernel)
    assert again.receive(is_type("snapshot"))["snapshot"]["models"]
    again.close()


def test_load_ext_sends_nothing_and_a_panel_connects_after_it(tmp_path):
    """What a front end sees: a comm opened before ``%load_ext`` is closed by the kernel, the
    ``%load_ext`` itself sends no comm and no output, a comm opened after it is answered."""
    kernel = Kernel(env={"LLMUX_CONFIG_DIR": str(tmp_path)})
    try:
        early = RawComm(kernel)
        early.wait_closed_by_kernel()
        run = kernel.run(LOAD_EXTENSION)
        assert run.status == "ok", run.error
        assert comm_messages(run) == []
        assert run.of_type("stream", "display_data", "error") == []
        panel = RawComm(kernel)
        assert panel.receive(is_type("snapshot"))["snapshot"]["models"]
        panel.close()
    finally:
        kernel.shutdown()
