"""Code completion in a real kernel with the real Qwen2.5-Coder GGUF, over the ``llmux-complete``
comm the way JupyterLab and Notebook 7 speak it: on a kernel subshell of its own (ipykernel 7),
so requests reach the kernel while a cell runs."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from .kernel import Kernel, Message
from .test_kernel_sidebar_comm import RawComm

CODER = "qwen2.5-coder-0.5b"
WAIT_S = 300
# Qwen2.5-Coder's <|fim_prefix|>, <|fim_suffix|>, <|fim_middle|> in its vocabulary.
FIM_TOKEN_IDS = [151659, 151661, 151660]
RECORD_PROMPTS = f"""
backend = llm.manager.get_loaded({CODER!r}).backend
prompts = []
_create = backend._llm.create_completion
def _recording(prompt, **keywords):
    prompts.append(prompt)
    return _create(prompt, **keywords)
backend._llm.create_completion = _recording
"""


class CompletionComm(RawComm):
    """The front end's completion comm, its messages sent on a subshell as JupyterLab sends
    them (``commsOverSubshells``: one subshell per comm target)."""

    def __init__(self, kernel: Kernel) -> None:
        client = kernel.client
        client.control_channel.send(client.session.msg("create_subshell_request", {}))
        reply = client.control_channel.get_msg(timeout=60)
        assert reply["content"]["status"] == "ok", reply["content"]
        self.subshell = reply["content"]["subshell_id"]
        self.kernel, self.comm_id, self.next_id = kernel, uuid.uuid4().hex, 0
        self._shell("comm_open", target_name="llmux-complete", data={})
        self.model = self.receive(lambda d: d.get("type") == "status")["model"]

    def _shell(self, msg_type: str, **content: Any) -> None:
        client = self.kernel.client
        message = client.session.msg(msg_type, {"comm_id": self.comm_id, **content})
        message["header"]["subshell_id"] = self.subshell
        client.shell_channel.send(message)

    def ask(self, before: str, after: str = "", **fields: Any) -> int:
        self.next_id += 1
        request = {"op": "complete", "id": self.next_id, "before": before, "after": after}
        self.send({**request, "context": [], "max_tokens": 24, **fields})
        return self.next_id

    def end_of(self, request_id: int) -> dict[str, Any]:
        return self.receive(lambda d: d.get("type") == "end" and d["id"] == request_id)


@pytest.fixture(scope="module")
def coder(kernel: Kernel) -> Iterator[Kernel]:
    """The shared kernel completing with Qwen2.5-Coder; left as it was found."""
    run = kernel.run(f"%llm complete --model {CODER}")
    assert run.status == "ok", run.error
    assert f"Code completion with {CODER} (idle" in run.stdout
    yield kernel
    assert kernel.run(f"%llm complete off\n%llm unload {CODER}").status == "ok"


@pytest.fixture
def comm(coder: Kernel) -> Iterator[CompletionComm]:
    comm = CompletionComm(coder)
    assert comm.model == CODER
    yield comm
    comm.close()


def test_the_prompt_is_the_models_fim_layout_and_nothing_is_recorded(comm, coder):
    assert coder.run(RECORD_PROMPTS).status == "ok"
    state = "(id(llm.last), llm.threads.names(), llm.history.count(all=True))"
    before_state = coder.value(state)
    cells = ["import math", "def area(r):\n    return math.pi * r ** 2"]
    request = comm.ask("def fibonacci(n):\n    ", "\n\nprint(fibonacci(10))", context=cells)
    end = comm.end_of(request)
    assert end["reason"] in ("end", "stop", "max_tokens") and end["text"].strip(), end
    expected = (
        "<|fim_prefix|>import math\n\ndef area(r):\n    return math.pi * r ** 2\n\n"
        "def fibonacci(n):\n<|fim_suffix|>\n\nprint(fibonacci(10))<|fim_middle|>"
    )
    assert coder.value("prompts") == [expected]
    tokens = coder.value("backend._llm.tokenize(prompts[0].encode(), special=True)")
    assert [t for t in tokens if t in FIM_TOKEN_IDS] == FIM_TOKEN_IDS  # parsed as markers
    assert coder.value(state) == before_state  # no answer, thread or history row
    assert coder.run("backend._llm.create_completion = _create").status == "ok"


def test_a_newer_request_cancels_the_running_one(comm):
    first = comm.ask("numbers = [\n", max_tokens=200)
    comm.receive(lambda d: d.get("type") == "delta" and d["id"] == first)
    second = comm.ask("x = 1\n")
    cancelled = comm.end_of(first)
    assert cancelled["reason"] == "cancelled" and cancelled["text"]
    assert comm.end_of(second)["reason"] != "cancelled"


def test_a_running_cell_gets_busy_at_once_and_runs_unaffected(comm, coder, tmp_path):
    """The request reaches the kernel on its subshell while the cell runs (until the test
    has its answer): the answer is "busy" before the cell ends, and the cell finishes as if
    nothing happened."""
    client = coder.client
    go = tmp_path / "go"
    cell = client.execute(
        f"import pathlib, time\nwhile not pathlib.Path({str(go)!r}).exists(): time.sleep(0.05)\n"
        "print('slept')"
    )
    started = ended = busy_at = None
    deadline = time.monotonic() + WAIT_S
    while ended is None and time.monotonic() < deadline:
        message: Message = client.get_iopub_msg(timeout=WAIT_S)
        parent = message["parent_header"].get("msg_id")
        if message["msg_type"] == "status" and parent == cell:
            if message["content"]["execution_state"] == "busy":
                started = time.monotonic()
                request = comm.ask("def f(x):\n    ")
            else:
                ended = time.monotonic()
        data = comm.data_of(message)
        if data is not None and data.get("type") == "end":
            assert data == {"type": "end", "id": request, "reason": "busy", "text": ""}
            busy_at = time.monotonic()
            go.touch()
    assert started is not None and busy_at is not None and ended is not None
    assert started < busy_at < ended  # answered while the cell ran, not after it
    reply = client.get_shell_msg(timeout=WAIT_S)
    assert reply["parent_header"]["msg_id"] == cell and reply["content"]["status"] == "ok"


def test_an_interrupt_during_a_completion_leaves_the_model_idle(comm, coder):
    request = comm.ask("numbers = [\n", max_tokens=120)
    comm.receive(lambda d: d.get("type") == "delta" and d["id"] == request)
    coder.interrupt()
    comm.end_of(request)
    run = coder.run(f"print(llm.manager.get_loaded({CODER!r}).state)")
    assert run.status == "ok" and run.stdout.strip() == "idle", (run.error, run.stdout)


def test_a_model_without_fim_tokens_is_refused_and_nothing_changes(coder):
    run = coder.run("%llm complete --model smollm2")
    assert run.status == "error" and run.error["ename"] == "CompletionUnsupported"
    assert "'smollm2' has no fill-in-the-middle tokens" in run.error["evalue"]
    assert coder.value("llm.config.completion_model") == CODER


def test_fifty_completions_in_a_row_leave_rss_flat(comm, coder):
    rss = "__import__('llmux_jupyter.hardware.memory').hardware.memory.process_rss()"
    code = "import pandas as pd\n\ndef load(path):\n    frame = pd.read_csv(path)\n    "
    sizes = []
    for number in range(50):
        typed = code + "return frame"[: number % 12]  # as if typing, keystroke by keystroke
        assert comm.end_of(comm.ask(typed, max_tokens=2))["reason"] != "error"
        if number in (9, 49):
            sizes.append(coder.value(rss))
    # Warm after 10. Each generation's sampler held ~1.7 MB until a full garbage collection
    # before the backend freed it: 40 more completions grew RSS by ~60 MiB.
    assert sizes[1] - sizes[0] < 8 * 2**20, sizes
