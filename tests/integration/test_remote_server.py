"""The openai backend in a real kernel against a real OpenAI-compatible server on loopback
(llama-cpp-python's own server serving the SmolLM2 GGUF): streaming, -o, threads, the
interrupt, /v1/models, each fault, and the API key never appearing in any output."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from .kernel import Kernel, interrupt_answer, llmux_kernel, streamed_answer
from .llama_server import LlamaServer, free_port

KEY = "sk-llmux-test-5f1c2e9a7b"
STATE = (
    "(sorted((m.name, m.loaded_at) for m in llm.ps()),"
    " {n: len(t.turns) for n in llm.threads.names() if (t := llm.threads.get(n)).turns}, keep)"
)
HAIKU = "%%llm -m remote --temperature 0 --seed 7 --max-tokens 40 {options}\nWrite a haiku."
STORY = "Write a very long story about a lighthouse keeper, in many chapters."


def plain(run) -> str:
    return "\n".join(m["content"]["data"].get("text/plain", "") for m in run.displays)


@pytest.fixture(scope="module")
def server(tmp_path_factory, smollm2_path) -> Iterator[LlamaServer]:
    folder = tmp_path_factory.mktemp("llama-server")
    server = LlamaServer(smollm2_path, folder / "server.log", api_key=KEY)
    yield server
    server.stop()


@pytest.fixture
def spare_server(tmp_path, smollm2_path) -> Iterator[LlamaServer]:
    """A server of its own, for the tests that kill or freeze it."""
    server = LlamaServer(smollm2_path, tmp_path / "server.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@pytest.fixture(scope="module")
def remote(tmp_path_factory, server, silent_port) -> Iterator[Kernel]:
    """A kernel with the server's model registered (key by variable) and SmolLM2 loaded locally."""
    config = tmp_path_factory.mktemp("remote-config")
    fast = "--set timeout=1 --set max_retries=0"
    setup = (
        "keep = 'precious'\n"
        f"%llm register remote --backend openai --base-url {server.url} --model smollm2 "
        "--api-key-env REMOTE_KEY\n"
        f"%llm register wrongkey --backend openai --base-url {server.url} --model smollm2 "
        "--api-key-env WRONG_KEY\n"
        f"%llm register ghost --backend openai --base-url {server.url} --model no-such-model "
        "--api-key-env REMOTE_KEY\n"
        f"%llm register down --backend openai --base-url http://127.0.0.1:{free_port()}/v1 "
        f"--model smollm2 {fast}\n"
        f"%llm register silent --backend openai --base-url http://127.0.0.1:{silent_port}/v1 "
        f"--model smollm2 {fast}\n"
        "%llm load smollm2\n"
    )
    keys = {"REMOTE_KEY": KEY, "WRONG_KEY": "sk-wrong-000"}
    with llmux_kernel(config, setup, env=keys) as kernel:
        kernel.config = config
        yield kernel


def test_answer_streams_like_a_local_model(remote, server):
    final = streamed_answer(remote.run(HAIKU.format(options="-o answer --thread stream")))
    provenance = final["metadata"]["llmux"]
    assert (provenance["model"], provenance["backend"]) == ("remote", "openai")
    assert provenance["params"] == {"temperature": 0.0, "max_tokens": 40, "seed": 7}
    usage = provenance["usage"]
    assert 0 < usage["completion_tokens"] <= 40 and usage["tokens_per_second"] > 0
    assert remote.value("answer") == final["data"]["text/plain"] != ""
    ps = remote.run("%llm ps")
    assert f"remote {server.url}" in plain(ps) and "0 B" in plain(ps)


def test_threads_carry_the_conversation(remote):
    first = remote.run("%%llm -m remote --thread memory --new --max-tokens 15\nMy name is Ada.")
    second = remote.run("%%llm -m remote --thread memory --max-tokens 15\nWhat is my name?")
    assert first.status == second.status == "ok"
    turns = remote.value(
        "[(t.user, t.model, len(t.assistant) > 0) for t in llm.threads.get('memory').turns]"
    )
    assert turns == [("My name is Ada.", "remote", True), ("What is my name?", "remote", True)]


def test_interrupt_closes_the_stream_and_the_server_stops(remote, server):
    remote.run("%llm load remote")
    hang_ups = server.log().count("Disconnected from client")
    interrupt_answer(
        remote, f"%%llm -m remote --thread long --new --max-tokens 1500 -o partial\n{STORY}"
    )
    assert remote.value("(len(partial) > 0, llm.threads.get('long').turns[-1].interrupted)") == (
        True,
        True,
    )
    assert server.wait_for_log("Disconnected from client", hang_ups + 1), server.log()[-2000:]
    after = remote.run(HAIKU.format(options="--thread after"))
    assert after.status == "ok", after.error
    assert remote.value("llm.manager.get_loaded('remote').busy") == 0


def test_lists_what_the_server_serves(remote, server):
    by_name = remote.run("%llm list --remote remote")
    assert by_name.status == "ok", by_name.error
    assert f"Served at {server.url}" in plain(by_name)
    assert "smollm2" in plain(by_name) and "remote, wrongkey" in plain(by_name)
    by_url = remote.run(f"%llm list --remote {server.url} --api-key-env REMOTE_KEY")
    assert by_url.status == "ok" and "smollm2" in plain(by_url)


FAULTS = {
    "refused": ("%%llm -m down\nhi", "Cannot connect to the server at http://127.0.0.1:"),
    "401": (
        "%%llm -m wrongkey\nhi",
        "the server at {url} refused the request (HTTP 401: Invalid API key): "
        "put the right key in $WRONG_KEY.",
    ),
    "unknown-model": (
        "%%llm -m ghost\nhi",
        "the server at {url} does not serve 'no-such-model'; it serves smollm2.",
    ),
    "timeout": (
        "%%llm -m silent\nhi",
        "the server at http://127.0.0.1:{silent}/v1 sent nothing for 1 s while listing",
    ),
    "list-401": ("%llm list --remote {url}", "it needs a key: name the variable holding it"),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_each_fault_is_one_clear_error_and_changes_nothing(remote, server, silent_port, fault):
    code, message = (text.format(url=server.url, silent=silent_port) for text in FAULTS[fault])
    before = remote.value(STATE)
    run = remote.run(code)
    assert run.status == "error"
    assert run.error["ename"] == "RemoteServerError", run.error
    assert message in run.error["evalue"], run.error["evalue"]
    assert len(run.error["traceback"]) == 1, "typed errors render as one line"
    assert remote.value(STATE) == before


def register_and_load(kernel: Kernel, name: str, server: LlamaServer, settings: str = "") -> None:
    run = kernel.run(
        f"%llm register {name} --backend openai --base-url {server.url} --model smollm2 "
        f"{settings}\n%llm load {name}"
    )
    assert run.status == "ok", run.error


def fail_mid_answer(kernel: Kernel, name: str, act) -> tuple[object, list[str]]:
    """Stream a long answer from ``name``, call ``act`` after three updates; return the run."""
    seen: list[str] = []

    def after_three_updates(message) -> None:
        if message["msg_type"] == "update_display_data":
            seen.append(message["content"]["data"]["text/markdown"])
            if len(seen) == 3:
                act()

    run = kernel.run(
        f"%%llm -m {name} --thread {name} --max-tokens 1500 -o lost\n{STORY}",
        on_message=after_three_updates,
    )
    return run, seen


def check_partial_kept_and_nothing_else_changed(kernel, run, seen, before, message) -> None:
    assert run.status == "error" and run.error["ename"] == "RemoteServerError", run.error
    assert message in run.error["evalue"], run.error["evalue"]
    final = run.displays[-1]["content"]
    assert final["data"]["text/plain"].startswith(seen[2])  # the partial answer is kept
    assert final["metadata"]["llmux"]["error"] == run.error["evalue"]
    assert kernel.value(STATE) == before  # no turn, no variable, every model still loaded
    assert kernel.value("'lost' in dir()") is False
    after = kernel.run(HAIKU.format(options="--thread after-fault"))
    assert after.status == "ok", after.error


def test_server_killed_mid_answer(remote, spare_server):
    register_and_load(remote, "doomed", spare_server)
    before = remote.value(STATE)
    run, seen = fail_mid_answer(remote, "doomed", spare_server.kill)
    message = f"The connection to the server at {spare_server.url} broke while answering"
    check_partial_kept_and_nothing_else_changed(remote, run, seen, before, message)


def test_server_frozen_mid_answer_hits_the_timeout(remote, spare_server):
    register_and_load(remote, "frozen", spare_server, "--set timeout=10 --set max_retries=0")
    warm = remote.run("%%llm -m frozen --max-tokens 4 --thread warm\nHi")  # a first answer is slow
    assert warm.status == "ok", warm.error
    before = remote.value(STATE)
    try:
        run, seen = fail_mid_answer(remote, "frozen", spare_server.pause)
    finally:
        spare_server.resume()
    message = f"the server at {spare_server.url} sent nothing for 10 s while answering"
    check_partial_kept_and_nothing_else_changed(remote, run, seen, before, message)


def test_the_key_never_appears_in_any_output(remote, server):
    cells = [
        "%llm list",
        "%llm list --remote remote",
        "%llm ps",
        "%llm load remote",
        "%%llm -m remote --max-tokens 8 --thread secret\nSay hello.",
        "%llm threads secret",
        "%llm help register",
        "%%llm -m wrongkey\nhi",
        f"%llm list --remote {server.url}",
        "print(repr(llm.ps()), repr(llm.models()), vars(llm.manager.get_loaded('remote').backend))",
        "llm.manager.get_loaded('remote')",
        "llm.last",
    ]
    runs = [remote.run(cell) for cell in cells]
    assert runs[4].status == "ok", runs[4].error  # the key was used: this server requires it
    outputs = json.dumps([[*run.messages, run.reply] for run in runs], default=str)
    assert "smollm2" in outputs and KEY not in outputs
    assert KEY not in (remote.config / "models.json").read_text()
    assert remote.value("__import__('os').environ['REMOTE_KEY']") == KEY


def test_the_key_never_reaches_the_history(remote, server):
    """A prompt holding the key (as a {variable}), a server's refusal of the wrong key: the
    log keeps neither key, in any of its files."""
    runs = [
        remote.run("import os\nmine = os.environ['REMOTE_KEY']"),
        remote.run("%%llm -m remote --max-tokens 8 --thread keylog\nRepeat this key: {mine}"),
        remote.run("%%llm -m wrongkey --thread keylog-wrong\nhi"),
    ]
    assert runs[1].status == "ok", runs[1].error
    assert runs[2].error["ename"] == "RemoteServerError"
    assert remote.value("llm.last.prompt") == f"Repeat this key: {KEY}"  # it was sent
    history = remote.config / "data"
    stored = b"".join(path.read_bytes() for path in history.iterdir())
    assert b"keylog" in stored and b"[secret REMOTE_KEY]" in stored
    assert KEY.encode() not in stored and b"sk-wrong-000" not in stored
