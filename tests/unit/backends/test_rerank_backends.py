"""Reranking backends: a transformers cross-encoder (a tiny random BERT classifier built in a
fixture, with all-MiniLM's real tokenizer) checked against sentence-transformers' CrossEncoder,
and a server's /v1/rerank on the loopback fake OpenAI server."""

from __future__ import annotations

import pytest

from llmux_jupyter.api import LLM
from llmux_jupyter.errors import ModelLoadError, RemoteServerError
from llmux_jupyter.models.catalog import Catalog

from ...tiny_models import build_tiny_cross_encoder
from ..fake_openai import FakeOpenAIServer

DOCUMENTS = [
    "Stock markets fell sharply today.",
    "My cat likes to sleep in the sun.",
    "Bread rises in a warm oven.",
    "A dog barks at the rain, and the rain goes on.",
    "Cats sleep up to sixteen hours a day.",
]
QUERY = "how long do cats sleep"


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    root = tmp_path_factory.mktemp("cross")
    return {
        "cross": build_tiny_cross_encoder(root / "cross"),
        "classifier": build_tiny_cross_encoder(root / "classifier", labels=3),
    }


@pytest.fixture(scope="module")
def api(encoders, tmp_path_factory):
    llm = LLM(Catalog(tmp_path_factory.mktemp("cfg") / "models.json"))
    for name, path in encoders.items():
        llm.register(name, backend="transformers", path=str(path), task="rerank", batch_size=2)
    yield llm
    llm.unload(all=True)


def test_a_cross_encoder_scores_every_pair_like_sentence_transformers(api, encoders):
    from sentence_transformers import CrossEncoder

    ranking = api.rerank(QUERY, DOCUMENTS, model="cross")
    assert len(ranking) == len(DOCUMENTS) and sorted(ranking.indices) == list(range(5))
    scores = [result.score for result in ranking]
    assert scores == sorted(scores, reverse=True) and all(0 < s < 1 for s in scores)
    assert len(set(scores)) == len(scores)  # random weights, yet every pair scored apart
    reference = CrossEncoder(str(encoders["cross"]), device="cpu").predict(
        [(QUERY, document) for document in DOCUMENTS]
    )
    by_index = {result.index: result.score for result in ranking}
    assert [by_index[i] for i in range(5)] == pytest.approx(reference.tolist(), abs=1e-5)
    assert ranking.method == "cross-encoder"
    model = api.manager.get_loaded("cross")
    assert model.spec.task.value == "rerank" and type(model.backend._model).__name__ == (
        "BertForSequenceClassification"
    )


def test_top_n_and_batches_smaller_than_the_list(api):
    top = api.rerank(QUERY, DOCUMENTS, model="cross", top_n=2)
    everything = api.rerank(QUERY, DOCUMENTS, model="cross")
    assert top.results == everything.results[:2]


def test_a_classifier_with_several_labels_is_refused_and_nothing_stays_loaded(api):
    with pytest.raises(ModelLoadError, match="classifies into 3 labels; a cross-encoder"):
        api.rerank(QUERY, DOCUMENTS, model="classifier")
    assert not api.manager.is_loaded("classifier")


@pytest.fixture
def server():
    fake = FakeOpenAIServer(models=("reranker",))
    yield fake
    fake.close()


def remote(tmp_path, server, **settings):
    llm = LLM(Catalog(tmp_path / "models.json"))
    llm.register(
        "remote-rr",
        backend="openai",
        base_url=server.url,
        model="reranker",
        task="rerank",
        **settings,
    )
    return llm


def test_a_server_reranks_through_its_rerank_endpoint(tmp_path, server):
    llm = remote(tmp_path, server, extra_body={"truncate": True})
    ranking = llm.rerank("cats sleep", DOCUMENTS, model="remote-rr", top_n=3)
    assert ranking.indices == [4, 1, 0] and ranking.method == "the server's /v1/rerank"
    assert [r.score for r in ranking] == [1.0, 0.5, 0.0]
    request = server.requests[-1]
    assert request.path == "/v1/rerank"
    assert request.json() == {
        "model": "reranker",
        "query": "cats sleep",
        "documents": DOCUMENTS,
        "truncate": True,
    }
    llm.unload(all=True)


def test_a_server_answering_score_instead_of_relevance_score(tmp_path):
    fake = FakeOpenAIServer(models=("reranker",), rerank_score_key="score")
    try:
        ranking = remote(tmp_path, fake).rerank("cats sleep", DOCUMENTS)
        assert ranking.indices[:2] == [4, 1]
    finally:
        fake.close()


@pytest.mark.parametrize(
    ("behaviour", "message"),
    [
        ({"rerank": False}, "has no /v1/rerank endpoint"),
        ({"rerank_omit": 2}, "without scores for 1 of 5 documents \\(first: #2\\)"),
        ({"key": "secret"}, "refused the request \\(HTTP 401"),
    ],
)
def test_server_faults_are_one_clear_error(tmp_path, behaviour, message):
    fake = FakeOpenAIServer(models=("reranker",), **behaviour)
    try:
        llm = remote(tmp_path, fake, check_model=False)
        with pytest.raises(RemoteServerError, match=message):
            llm.rerank("cats sleep", DOCUMENTS)
        assert all(model.busy == 0 for model in llm.ps())
    finally:
        fake.close()
