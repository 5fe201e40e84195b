"""%%llm on SmolLM2 through transformers in a real kernel: streaming with provenance, the
interrupt, bad input, and unloading that gives the memory back."""

from __future__ import annotations

import pytest

from llmux_jupyter.backends.hf_streaming import THREAD_NAME

from ..tiny_models import build_tiny_llama, train_tokenizer
from .kernel import interrupt_answer, streamed_answer

PROMPT = "%%llm -m smollm2-hf --temperature 0 --max-tokens 40 {options}\nWrite a haiku about GPUs."
GENERATION_THREADS = (
    f"[t.name for t in __import__('threading').enumerate() if t.name == {THREAD_NAME!r}]"
)
PROCESS_RSS = "__import__('llmux_jupyter.hardware.memory').hardware.memory.process_rss()"
STATE = (
    "(sorted((m.name, m.loaded_at) for m in llm.ps()),"
    " {n: len(llm.threads.get(n).turns) for n in llm.threads.names()},"
    " keep, sorted(m.name for m in llm.models()))"
)


@pytest.fixture(scope="module")
def hf_kernel(kernel, tmp_path_factory):
    """The session kernel with SmolLM2 loaded through transformers, and 2 bad models registered."""
    folder = tmp_path_factory.mktemp("bad-transformers")
    (folder / "no-config").mkdir()
    (folder / "no-config" / "model.safetensors").write_bytes(b"\0" * 16)
    alien = build_tiny_llama(folder / "alien", train_tokenizer())
    run = kernel.run(
        "keep = 'precious'\n"
        # another module may have left it loaded
        "if any(m.name == 'smollm2-hf' for m in llm.ps()): llm.unload('smollm2-hf')\n"
        "%llm load smollm2-hf\n"
        f"%llm register no-config --backend transformers --path {folder / 'no-config'}\n"
        f"%llm register alien --backend transformers --path {alien}\n"
    )
    assert run.status == "ok", run.error
    assert "smollm2-hf loaded on cpu" in run.stdout and "GGUF " in run.stdout
    return kernel


def test_answer_streams_with_provenance(hf_kernel):
    final = streamed_answer(hf_kernel.run(PROMPT.format(options="--thread hf-stream --seed 3")))
    provenance = final["metadata"]["llmux"]
    assert (provenance["model"], provenance["backend"]) == ("smollm2-hf", "transformers")
    assert provenance["params"] == {"temperature": 0.0, "max_tokens": 40, "seed": 3}
    usage = provenance["usage"]
    assert 0 < usage["completion_tokens"] <= 40 and usage["prompt_tokens"] > 5
    assert usage["tokens_per_second"] > 0 and usage["time_to_first_token_s"] > 0
    assert len(final["data"]["text/markdown"].split()) >= 5


def test_interrupt_stops_generation_keeps_partial_model_and_no_thread(hf_kernel):
    answer = interrupt_answer(
        hf_kernel,
        "%%llm -m smollm2-hf --thread hf-long --new --max-tokens 1500 --temperature 0.8\n"
        "Write a very long story about a lighthouse keeper, in many chapters.",
        after_updates=2,
    )
    assert answer.final["metadata"]["llmux"]["usage"]["completion_tokens"] < 1500
    assert hf_kernel.value(GENERATION_THREADS) == []
    assert "smollm2-hf" in hf_kernel.value("[m.name for m in llm.ps()]")
    assert hf_kernel.value("llm.threads.get('hf-long').turns[-1].interrupted") is True
    after = hf_kernel.run(PROMPT.format(options="--thread hf-after --max-tokens 8"))
    assert after.status == "ok", after.error
    assert hf_kernel.value("llm.manager.get_loaded('smollm2-hf').busy") == 0


def test_a_load_from_the_cached_conversion_shows_one_line(hf_kernel):
    run = hf_kernel.run("%llm load smollm2-hf --set verbose=false")  # other options: a reload
    assert run.status == "ok", run.error
    assert run.displays == []  # no progress bar widget per file
    assert run.stdout.startswith("smollm2-hf loaded on cpu") and run.stdout.count("\n") == 1
    assert run.stderr == ""


CASES = [
    ("%llm load smollm2-hf --device cuda", "InvalidParameter", "no CUDA GPU"),
    ("%llm load smollm2-hf --dtype float64", "UsageError", "invalid choice: 'float64'"),
    (
        "%llm load smollm2-hf --set dtype=float64",
        "InvalidParameter",
        "dtype='float64': give one of",
    ),
    ("%llm load no-config", "ModelLoadError", "has no config.json"),
    ("%llm load smollm2-hf --draft alien", "InvalidParameter", "its tokenizer differs"),
    ("%llm load smollm2-hf --draft smollm2", "InvalidParameter", "must be a transformers chat"),
    ("%llm load smollm2 --draft smollm2-hf", "InvalidParameter", "must be a llamacpp chat model"),
    ("%llm load smollm2-hf --draft nope", "UnknownModel", "No model named 'nope'"),
]


@pytest.mark.parametrize(("code", "ename", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_error_and_changes_nothing(hf_kernel, code, ename, message):
    before = hf_kernel.value(STATE)
    run = hf_kernel.run(code)
    assert run.status == "error"
    if ename == "UsageError":  # IPython prints it as one line on stderr, no traceback
        assert "UsageError: " in run.stderr and message in run.stderr, run.stderr
    else:
        assert (run.error["ename"], len(run.error["traceback"])) == (ename, 1), run.error
        assert message in run.error["evalue"], run.error["evalue"]
    after = hf_kernel.value(STATE)
    if "--draft alien" in code:  # the reload was undone: the model is back with its old options
        assert [name for name, _ in after[0]] == [name for name, _ in before[0]]
        assert after[1:] == before[1:]
    else:
        assert after == before


def test_unload_gives_the_memory_back(hf_kernel, capsys):
    """Last in this file: RSS after a generation (weights paged in) vs after unloading."""
    hf_kernel.run(PROMPT.format(options="--thread hf-mem --max-tokens 4"))
    size = hf_kernel.value("llm.manager.get_loaded('smollm2-hf').measured.ram")
    before = hf_kernel.value(PROCESS_RSS)
    run = hf_kernel.run("%llm unload smollm2-hf\n%llm ps")
    assert run.status == "ok", run.error
    after = hf_kernel.value(PROCESS_RSS)
    with capsys.disabled():
        print(
            f"\nsmollm2-hf: tensors {size / 2**20:.0f} MiB; kernel RSS {before / 2**20:.0f} MiB "
            f"-> {after / 2**20:.0f} MiB after unload (freed {(before - after) / size:.0%})"
        )
    assert before - after > 0.8 * size
    assert "smollm2-hf" not in hf_kernel.value("[m.name for m in llm.ps()]")
