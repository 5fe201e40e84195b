"""Reranking with the real all-MiniLM-L6-v2 (the embedded embedding model, as a bi-encoder):
the relevant document comes first for five fixed queries over ten documents, through the API
and through ``%llm rerank`` in a real kernel."""

from __future__ import annotations

import pytest

from llmux_jupyter.api import LLM
from llmux_jupyter.models.catalog import Catalog

from .kernel import llmux_kernel

DOCUMENTS = [
    "The Eiffel Tower is a wrought-iron lattice tower in Paris, completed in 1889.",
    "Photosynthesis lets plants turn sunlight, water and carbon dioxide into sugar.",
    "A sourdough starter is a culture of wild yeast and bacteria used to leaven bread.",
    "The Python programming language uses indentation to delimit blocks of code.",
    "Jupiter is the largest planet in the solar system, a gas giant with many moons.",
    "Regular exercise strengthens the heart and lowers blood pressure.",
    "The French Revolution began in 1789 with the storming of the Bastille.",
    "Bees pollinate flowers while they collect nectar to make honey.",
    "A mortgage is a loan used to buy a house, repaid with interest over many years.",
    "Violins, violas and cellos are string instruments played with a bow.",
]
QUERIES = [
    ("Which planet is the biggest?", 4),
    ("How do I bake bread with natural yeast?", 2),
    ("a tall iron tower in Paris", 0),
    ("How do plants make their food from light?", 1),
    ("borrowing money to purchase a home", 8),
]


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    llm = LLM(Catalog(tmp_path_factory.mktemp("cfg") / "models.json"))
    yield llm
    llm.unload(all=True)


@pytest.mark.parametrize(("query", "relevant"), QUERIES)
def test_all_minilm_puts_the_relevant_document_first(api, query, relevant):
    ranking = api.rerank(query, DOCUMENTS)  # no rerank model registered: all-minilm
    assert ranking.model == "all-minilm" and ranking.method.startswith("bi-encoder")
    assert ranking.indices[0] == relevant, ranking.documents[:3]
    assert ranking[0].score > ranking[1].score + 0.05
    assert sorted(ranking.indices) == list(range(10))


def test_top_n_and_the_scores_are_cosines(api):
    import numpy as np

    query, relevant = QUERIES[0]
    top = api.rerank(query, DOCUMENTS, model="all-minilm", top_n=3)
    assert len(top) == 3 and top.indices[0] == relevant
    vectors = api.embed([query, DOCUMENTS[relevant]])
    assert top[0].score == pytest.approx(float(vectors[0] @ vectors[1]), abs=1e-5)
    assert np.all(np.diff([r.score for r in top]) <= 0)


def test_rerank_magic_in_a_kernel(tmp_path):
    setup = f"docs = {DOCUMENTS!r}\n"
    with llmux_kernel(tmp_path, setup=setup) as kernel:
        run = kernel.run('%llm rerank "Which planet is the biggest?" docs --top-n 3 -o ranked')
        assert run.status == "ok", run.error
        table = run.displays[-1]["content"]["data"]  # after transformers' loading bar
        assert (
            "llmux-table" in table["text/html"] and "Jupiter is the largest" in table["text/html"]
        )
        assert table["text/plain"].splitlines()[3].startswith("1     4      0.")
        indices = kernel.value("ranked.indices")
        assert len(indices) == 3 and indices[0] == 4
        bad = kernel.run("%llm rerank planets nowhere -o ranked")
        assert bad.status == "error" and "UsageError: No variable 'nowhere'" in bad.stderr
        assert kernel.value("ranked.indices") == indices
