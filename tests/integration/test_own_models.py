"""Models users bring, through the Python API on the real libraries: a GGUF without a chat
template (SmolLM2 with it removed) on llama.cpp and transformers, a split GGUF, and the real
Gemma-3-270M base GGUF (no chat template) with llama.cpp's gemma chat format."""

from __future__ import annotations

import shutil

import pytest

from llmux_jupyter.api import LLM
from llmux_jupyter.backends.gguf_conversion import conversion_directory
from llmux_jupyter.errors import InvalidParameter, ModelLoadError, SourceNotFound
from llmux_jupyter.frontends.status import source_size
from llmux_jupyter.models.catalog import Catalog

from ..gguf_files import CHATML

QUESTION = "What is the capital of France? Answer in one word."
NO_TEMPLATE = (
    r"'bare' has no chat template.*--set template=FILE\.jinja.*"
    r"--set chat_format=NAME \(chatml, gemma.*--set completion=true"
)


@pytest.fixture(scope="module")
def api(tmp_path_factory, bare_gguf):
    llm = LLM(Catalog(tmp_path_factory.mktemp("cfg") / "models.json"))
    llm.register("bare", backend="llamacpp", path=str(bare_gguf), n_ctx=1024)
    yield llm
    llm.unload(all=True)


def test_no_chat_template_is_refused_before_loading_and_nothing_is_unloaded(api):
    api.load("smollm2")
    with pytest.raises(ModelLoadError, match=NO_TEMPLATE):
        api.load("bare")
    with pytest.raises(ModelLoadError, match="no chat template"):
        api.chat(QUESTION, model="bare")
    assert [m.name for m in api.ps()] == ["smollm2"]


def test_completion_mode_continues_the_text(api):
    api.load("bare", completion=True)
    answer = api.chat("The capital of France is", model="bare", max_tokens=8, temperature=0)
    assert "Paris" in answer.text
    assert answer.stop_reason == "max_tokens" and answer.usage.completion_tokens == 8


def test_a_named_chat_format_answers(api):
    api.load("bare", chat_format="chatml")
    answer = api.chat(QUESTION, model="bare", max_tokens=16, temperature=0, new=True)
    assert "paris" in answer.text.lower() and answer.stop_reason == "stop"
    with pytest.raises(
        InvalidParameter, match=r"chat_format='chatlm' is not.*Did you mean .*chatml\?"
    ):
        api.load("bare", chat_format="chatlm")
    assert api.manager.get_loaded("bare").options.settings == {"chat_format": "chatml"}


def test_a_template_file_answers(api, tmp_path):
    folder = tmp_path / "My Templates"
    folder.mkdir()
    (folder / "chatml.jinja").write_text(CHATML)
    api.load("bare", template=str(folder / "chatml.jinja"))
    answer = api.chat(QUESTION, model="bare", max_tokens=16, temperature=0, new=True)
    assert "paris" in answer.text.lower()
    with pytest.raises(InvalidParameter, match="exclude each other"):
        api.load("bare", template=CHATML, completion=True)


def test_a_split_gguf_loads_and_its_estimate_sums_the_parts(api, split_gguf, smollm2_path):
    api.register("split", backend="llamacpp", path=str(split_gguf[0]))
    assert source_size(api.manager.catalog.get("split")) == sum(
        p.stat().st_size for p in split_gguf
    )
    whole = api.load("smollm2")
    split = api.load("split")
    assert split.estimate == whole.estimate  # the same tensors, read from three headers
    ours = api.chat(QUESTION, model="split", max_tokens=16, temperature=0, new=True)
    theirs = api.chat(QUESTION, model="smollm2", max_tokens=16, temperature=0, new=True)
    assert ours.text == theirs.text and "paris" in ours.text.lower()
    api.unload("split")


def test_a_missing_part_is_named(api, split_gguf, tmp_path):
    for part in split_gguf[:2]:
        shutil.copy(part, tmp_path / part.name)
    with pytest.raises(SourceNotFound, match=r"smol-00003-of-00003\.gguf is missing from"):
        api.register("partial", backend="llamacpp", path=str(tmp_path / split_gguf[0].name))
    with pytest.raises(SourceNotFound, match=r"use its first part, smol-00001-of-00003\.gguf"):
        api.register("second", backend="llamacpp", path=str(split_gguf[1]))
    shutil.copy(split_gguf[2], tmp_path / split_gguf[2].name)
    api.register("partial", backend="llamacpp", path=str(tmp_path / split_gguf[0].name))
    (tmp_path / split_gguf[1].name).unlink()  # a part goes missing after registration
    with pytest.raises(SourceNotFound, match=r"smol-00002-of-00003\.gguf is missing"):
        api.load("partial")
    assert "partial" not in [m.name for m in api.ps()]


def test_transformers_refuses_before_converting_then_completes_and_templates(
    api, bare_gguf, monkeypatch
):
    import gguf

    parses: list[str] = []
    parse = gguf.GGUFReader

    def counted(path, *args):
        parses.append(str(path))
        return parse(path, *args)

    monkeypatch.setattr(gguf, "GGUFReader", counted)
    api.register("bare-hf", backend="transformers", path=str(bare_gguf))
    with pytest.raises(ModelLoadError, match=r"'bare-hf' has no chat template.*completion=true"):
        api.load("bare-hf")
    assert not conversion_directory(bare_gguf, "float32").exists()
    # transformers declares no chat_format setting: the refusal lists what it takes (template)
    with pytest.raises(InvalidParameter, match=r"no such setting\. It accepts: .*template"):
        api.load("bare-hf", chat_format="chatml")
    api.load("bare-hf", completion=True)
    assert parses == [str(bare_gguf)]  # transformers asks three times (config, tokenizer, weights)
    continued = api.chat("The capital of France is", model="bare-hf", max_tokens=8, temperature=0)
    assert "Paris" in continued.text
    api.load("bare-hf", template=CHATML)
    answer = api.chat(QUESTION, model="bare-hf", max_tokens=16, temperature=0, new=True)
    assert "paris" in answer.text.lower()
    api.unload("bare-hf")


def test_transformers_refuses_a_split_gguf(api, split_gguf):
    api.register("split-hf", backend="transformers", path=str(split_gguf[0]))
    with pytest.raises(ModelLoadError, match=r"split GGUF.*llama-gguf-split --merge"):
        api.load("split-hf")


def test_gemma_base_model_with_the_gemma_chat_format(api, gemma_path):
    api.register("gemma", backend="llamacpp", path=str(gemma_path))
    with pytest.raises(ModelLoadError, match="'gemma' has no chat template"):
        api.load("gemma")
    loaded = api.load("gemma", chat_format="gemma")
    # A second, bigger architecture (Gemma 3, sliding-window attention): estimate vs measured.
    assert loaded.estimate.ram > 200 * 2**20
    assert 0.5 < loaded.measured.ram / loaded.estimate.ram < 1.5
    answer = api.chat(QUESTION, model="gemma", max_tokens=12, temperature=0, new=True)
    assert answer.usage.completion_tokens > 0 and answer.text.strip()  # a base model: no quality
    assert answer.stop_reason in ("stop", "max_tokens")
    api.unload("gemma")
    assert "gemma" not in [m.name for m in api.ps()]
