"""The llama.cpp backend on the real SmolLM2 GGUF, through the Python API (no kernel)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from llmux_jupyter.api import LLM
from llmux_jupyter.hardware.threads import ThreadCounts
from llmux_jupyter.models.catalog import Catalog
from llmux_jupyter.models.gguf_info import read_gguf_info

from .repetition import check_repetition_stop

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    llm = LLM(Catalog(tmp_path_factory.mktemp("cfg") / "models.json"))
    yield llm
    llm.unload(all=True)


def test_chat_and_streaming_on_the_embedded_model(api):
    response = api.chat(
        "What is the capital of France? Answer in one word.",
        temperature=0,
        max_tokens=16,
        thread="paris",
    )
    assert "paris" in response.text.lower()
    deltas = list(
        api.chat(
            "Count from one to five.", stream=True, max_tokens=30, temperature=0, thread="count"
        )
    )
    assert len(deltas) > 5 and all(isinstance(d, str) for d in deltas)
    model = api.ps()[0]
    assert (model.name, model.device, model.spec.backend) == ("smollm2", "cpu", "llamacpp")
    assert model.measured.ram > 0 and model.estimate.ram > 50_000_000


def test_max_tokens_stop_and_seed(api):
    short = api.chat("Tell me a story.", max_tokens=5, temperature=0, new=True, thread="p")
    assert short.usage.completion_tokens <= 5
    stopped = api.chat(
        "List three fruits, one per line.",
        temperature=0,
        max_tokens=60,
        stop=["\n"],
        new=True,
        thread="p",
    )
    assert "\n" not in stopped.text.strip()
    a = api.chat("Invent a name.", temperature=1.0, seed=42, max_tokens=12, new=True, thread="a")
    b = api.chat("Invent a name.", temperature=1.0, seed=42, max_tokens=12, new=True, thread="b")
    assert a.text == b.text


def test_cancel_between_tokens(api):
    stream = api.chat(
        "Write a long essay about the sea.", stream=True, max_tokens=500, thread="cancel", new=True
    )
    received = 0
    for _ in stream:
        received += 1
        if received == 4:
            stream.cancel()
    assert received == 4
    assert stream.response.interrupted and stream.response.usage.completion_tokens == 4
    assert api.ps()[0].busy == 0


def test_an_answer_repeating_a_line_is_stopped_and_said(api):
    """The repetition stop on the real model (checked by the engine, so on every backend)."""
    check_repetition_stop(api, "smollm2")


def test_model_from_a_prepopulated_hugging_face_cache(tmp_path, smollm2_path, monkeypatch):
    """--hf goes through huggingface_hub for real, resolving from its cache offline."""
    import huggingface_hub.constants as constants

    repo = tmp_path / "hub" / "models--HuggingFaceTB--SmolLM2-135M-Instruct-GGUF"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (snapshot / "smollm2.Q4_1.gguf").symlink_to(smollm2_path)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    llm = LLM(Catalog(tmp_path / "models.json"))
    llm.register(
        "smol-hf",
        backend="llamacpp",
        hf="HuggingFaceTB/SmolLM2-135M-Instruct-GGUF",
        file="smollm2.Q4_1.gguf",
        n_ctx=512,
    )
    reloaded = LLM(Catalog(tmp_path / "models.json"))  # as after a kernel restart
    answer = reloaded.chat("Say hello.", model="smol-hf", max_tokens=8, temperature=0)
    assert answer.text.strip()
    assert reloaded.ps()[0].backend.settings["n_ctx"] == 512
    reloaded.unload(all=True)


def test_threads_are_one_per_core_for_decoding_unless_set(api, smollm2_path):
    cores = psutil.cpu_count(logical=False) or 1
    usable = len(psutil.Process().cpu_affinity())
    best = ThreadCounts(min(cores, usable), usable)
    assert api.load("smollm2").backend.cpu_threads() == best  # as llama.cpp took them
    api.register("one-thread", backend="llamacpp", path=str(smollm2_path), n_threads=1, n_ctx=512)
    single = api.load("one-thread")
    assert single.backend.cpu_threads() == ThreadCounts(1, usable)
    assert api.chat("Say hi.", model="one-thread", max_tokens=4, temperature=0).text.strip()
    api.unload("one-thread")


def test_gguf_header_of_the_real_file(smollm2_path):
    info = read_gguf_info(smollm2_path)
    assert (info.architecture, info.vocabulary_size, info.tensor_count) == ("llama", 49152, 272)
    assert info.data_end == info.file_size == smollm2_path.stat().st_size
    # 30 layers x 3 KV heads x (64 + 64) x 2 bytes per token
    assert info.kv_cache_bytes(1) == 30 * 3 * 128 * 2


def test_terminal_ipython_prints_plain_text_as_it_streams(tmp_path):
    script = tmp_path / "chat.ipy"
    script.write_text(
        "%%llm --temperature 0 --max-tokens 20\n"
        "What is the capital of France? Answer in one word.\n"
    )
    ipython = Path(sys.executable).parent / "ipython"
    result = subprocess.run(
        [
            ipython,
            "--no-banner",
            "--colors=nocolor",
            "--InteractiveShellApp.extensions=['llmux_jupyter']",
            str(script),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "LLMUX_CONFIG_DIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout
    assert "text/markdown" not in result.stdout and "<IPython" not in result.stdout


SMOL_TOOLS_TEMPLATE = (
    "{% if tools %}<|im_start|>system\nYou may call: {% for t in tools %}"
    "{{ t['function']['name'] }} {% endfor %}<|im_end|>\n{% endif %}"
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def test_a_template_that_knows_tools_gets_them(api, smollm2_path):
    def multiply(a: int, b: int) -> int:
        """Multiply two integers."""
        return a * b

    api.register(
        "smol-tools", backend="llamacpp", path=str(smollm2_path), template=SMOL_TOOLS_TEMPLATE
    )
    backend = api.load("smol-tools").backend
    assert backend.template_tools() and not api.load("smollm2").backend.template_tools()
    offered = []
    create = backend._llm.create_chat_completion

    def recorded(**keywords):
        offered.append([t["function"]["name"] for t in keywords.get("tools", [])])
        return create(**keywords)

    backend._llm.create_chat_completion = recorded
    try:
        response = api.chat(
            "What is 17 times 23?",
            model="smol-tools",
            tools=[multiply],
            tool_choice="multiply",
            temperature=0,
            max_tokens=16,
            new=True,
        )
    finally:
        api.unload("smol-tools")
    assert response.tool_calls[0].arguments == {"a": 17, "b": 23}
    assert offered and all(names == ["multiply"] for names in offered)
