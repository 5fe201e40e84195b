"""Tools and schemas through the openai backend against llama-cpp-python's server on loopback
with a tool-capable chat format (chatml-function-calling): the server's native forced tool
call, streamed as deltas, and a schema answer (response_format)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .kernel import Kernel, llmux_kernel
from .llama_server import LlamaServer

SETUP = '''
import pydantic
runs = []

def multiply(a: int, b: int) -> int:
    """Multiply two integers.

    Args:
        a: The first factor.
        b: The second factor.
    """
    runs.append((a, b))
    return a * b

class Person(pydantic.BaseModel):
    name: str
    age: int
'''


@pytest.fixture(scope="module")
def tools_server(tmp_path_factory, smollm2_path) -> Iterator[LlamaServer]:
    folder = tmp_path_factory.mktemp("tools-server")
    server = LlamaServer(smollm2_path, folder / "server.log", chat_format="chatml-function-calling")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def remote_kernel(tmp_path_factory, tools_server) -> Iterator[Kernel]:
    register = (
        f"%llm register served --backend openai --base-url {tools_server.url} --model smollm2 "
        "--set schema_format=json_object\n"
    )
    config = tmp_path_factory.mktemp("remote-tools-config")
    with llmux_kernel(config, SETUP + register) as kernel:
        yield kernel


def test_a_forced_native_tool_call_runs_and_its_result_goes_back(remote_kernel, tools_server):
    run = remote_kernel.run(
        "%%llm -m served --tools multiply --tool-choice multiply --temperature 0 "
        "--max-tokens 30 --max-tool-calls 1\nWhat is 17 times 23?"
    )
    assert run.status == "ok", run.error
    (a, b), *_ = remote_kernel.value("runs")
    assert isinstance(a, int) and isinstance(b, int)
    calls = run.displays[-1]["content"]["metadata"]["llmux"]["tool_calls"]
    assert calls[0]["name"] == "multiply" and calls[0]["result"] == str(a * b)
    assert any(
        m["content"]["data"].get("text/plain", "").startswith("🔧 multiply(") for m in run.displays
    )


def test_a_schema_answer_through_response_format(remote_kernel):
    run = remote_kernel.run(
        "%%llm -m served --schema Person -o p --temperature 0 --max-tokens 40\n"
        "Ada Lovelace was 36 years old. Give her name and age."
    )
    assert run.status == "ok", run.error
    assert remote_kernel.value(
        "(type(p).__name__, type(p.name).__name__, type(p.age).__name__)"
    ) == ("Person", "str", "int")
