"""Reranking's own logic with in-process fakes (tests/unit/conftest.py): a rerank backend that
scores word overlap, and an embedding backend whose vectors count words (so the bi-encoder path
computes real cosines)."""

from __future__ import annotations

import numpy as np
import pytest

from llmux_jupyter.engine.rerank import BI_ENCODER
from llmux_jupyter.errors import GenerationError, InvalidParameter, UnsupportedTask

from ..conftest import DOCUMENTS, OverlapScorer


@pytest.fixture
def api(rerank_llm):
    return rerank_llm


def test_a_rerank_model_orders_the_documents_with_scores_and_indices(api):
    ranking = api.rerank("cat sleep sun", DOCUMENTS, model="scorer")
    assert ranking.indices == [1, 0, 2, 3] and ranking.documents[0] == DOCUMENTS[1]
    assert [r.score for r in ranking] == [3.0, 0.0, 0.0, 0.0]  # ties keep the given order
    assert (ranking.model, ranking.method, len(ranking)) == ("scorer", "cross-encoder", 4)
    assert ranking[0].index == 1 and ranking.query == "cat sleep sun"
    top = api.rerank("dog rain", DOCUMENTS, model="scorer", top_n=2)
    assert top.indices == [3, 0] and len(top) == 2


def test_any_embedding_model_reranks_by_cosine_and_is_the_fallback_default(api):
    assert api.rerank("rain and a dog", DOCUMENTS).model == "scorer"  # the rerank model known
    api.unregister("scorer")
    api.unregister("short")
    ranking = api.rerank("rain and a dog", DOCUMENTS)  # no rerank model: the embedding default
    assert ranking.model == "bag" and ranking.method == BI_ENCODER
    assert ranking.indices[0] == 3
    vectors = api.embed(["rain and a dog", *DOCUMENTS], model="bag")
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    expected = unit[1:] @ unit[0]
    assert np.allclose([r.score for r in ranking], sorted(expected, reverse=True), atol=1e-6)
    assert api.rerank("rain and a dog", DOCUMENTS, top_n=1).indices == [3]


def test_the_job_streams_scores_in_order_holds_the_model_busy_and_stops_on_cancel(api):
    job = api.rerank("cat sun", DOCUMENTS, model="scorer", stream=True)
    scores = []
    for score in job:
        scores.append(score)
        assert api.manager.get_loaded("scorer").busy == 1
        job.cancel()
    assert scores == [0.0, 2.0] and OverlapScorer.batches == [0]  # one batch of two, then stop
    assert job.reranking is None and job.provenance["interrupted"] is True
    assert api.manager.get_loaded("scorer").busy == 0
    done = api.rerank("cat sun", DOCUMENTS, model="scorer", stream=True)
    assert list(done) == [0.0, 2.0, 0.0, 0.0]
    assert done.provenance["method"] == "cross-encoder" and done.provenance["documents"] == 4


@pytest.mark.parametrize(
    ("query", "documents", "options", "error", "message"),
    [
        ("", DOCUMENTS, {}, InvalidParameter, "The query is empty"),
        ("cat", "a single string", {}, InvalidParameter, "must be a list of strings, not a str"),
        ("cat", {"a": "b"}, {}, InvalidParameter, "not a dict"),
        ("cat", 42, {}, InvalidParameter, "not a int"),
        ("cat", [], {}, InvalidParameter, "no documents to rerank"),
        ("cat", ["ok", 3], {}, InvalidParameter, r"documents\[1\] is a int"),
        ("cat", DOCUMENTS, {"top_n": 0}, InvalidParameter, "top_n must be at least 1"),
        ("cat", DOCUMENTS, {"top_n": "2"}, InvalidParameter, "top_n must be a whole number"),
        ("cat", DOCUMENTS, {"model": "echo"}, UnsupportedTask, "'echo' is a chat model"),
        ("cat", DOCUMENTS, {"model": "short"}, GenerationError, "gave 3 scores for 4 documents"),
    ],
)
def test_bad_input_is_refused_with_one_clear_error(api, query, documents, options, error, message):
    with pytest.raises(error, match=message):
        api.rerank(query, documents, **options)
    assert all(model.busy == 0 for model in api.ps())


def test_documents_can_be_any_iterable_of_strings(api):
    ranking = api.rerank("cat", (d for d in DOCUMENTS), model="scorer")
    assert ranking.indices[0] == 1
    assert api.rerank("cat", np.array(DOCUMENTS), model="scorer").indices[0] == 1
