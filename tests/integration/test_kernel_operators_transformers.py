"""filter and classify on the real SmolLM2 through transformers (continuous batching under an
enum schema, confidences from its scores) and top-k with the real all-MiniLM, in the session's
kernel: results on the input's index, a rerun with no backend call, an interrupt, a pairwise
judge."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from llmux_jupyter.models.cache import cache_root

from .kernel import Kernel, interrupt_at_rows
from .operators import SENTIMENT, SETUP, count_batches

pytest.importorskip("pandas")
pytest.importorskip("torch")
BROKEN = {"T-105", "T-111", "T-115", "T-119"}  # broke, battery dies, screen cracked, app crashes


@pytest.fixture(scope="module")
def hf_kernel(kernel: Kernel) -> Iterator[Kernel]:
    """The kernel with smollm2-hf loaded; what this module loaded is unloaded afterwards."""
    shutil.rmtree(cache_root() / "map", ignore_errors=True)  # a cache of our own answers only
    before = set(kernel.value("[m.name for m in llm.ps()]"))
    run = kernel.run(SETUP + "%llm load smollm2-hf\n" + count_batches("smollm2-hf"))
    assert run.status == "ok", run.error
    yield kernel
    loaded = set(kernel.value("[m.name for m in llm.ps()]"))
    unload = "".join(f"%llm unload {name}\n" for name in sorted(loaded - before))
    assert kernel.run("uncount()\n" + unload).status == "ok"


def test_classify_by_continuous_batching_with_confidences_then_from_the_cache(hf_kernel):
    cell = (
        "%%llm --classify reviews --labels positive,negative -m smollm2-hf --batch-size 8"
        f" -o moods\n{SENTIMENT}"
    )
    run = hf_kernel.run(cell)
    assert run.status == "ok", run.error
    right, confidences, index, tokens = hf_kernel.value(
        "(sum(moods.to_pandas()['label'] == reviews['truth']), list(moods.confidence),"
        " list(moods.to_pandas().index[:2]), moods.usage.completion_tokens)"
    )
    assert right >= 12, right
    assert all(0 < c <= 1 for c in confidences) and len(set(confidences)) > 5
    assert index == ["T-101", "T-102"] and tokens <= 4 * 20  # '"', the label, '"', the end
    calls = hf_kernel.value("len(batches)")
    again = hf_kernel.run(cell.replace("-o moods", "-o again"))
    assert again.status == "ok" and "20 from the cache" in again.shown_text
    assert hf_kernel.value("len(batches)") == calls
    assert hf_kernel.value("again.values == moods.values and list(again.confidence)") == (
        confidences
    )


def test_filter_keeps_yes_rows_on_the_index(hf_kernel):
    run = hf_kernel.run(
        "%%llm --filter reviews -m smollm2-hf -o kept\nIs this review negative? Review: {review}"
    )
    assert run.status == "ok", run.error
    assert hf_kernel.value("kept.kept.equals(reviews[kept.mask]) and kept.errors == {}")
    assert hf_kernel.value("all(isinstance(v, bool) for v in kept.values)")
    assert hf_kernel.value("all(c is not None for c in kept.confidence)")


def test_an_interrupt_keeps_the_rows_the_batch_finished(hf_kernel):
    run = hf_kernel.run(
        "%%llm --classify reviews --labels positive,negative -m smollm2-hf --batch-size 4"
        f" --no-cache -o part\n{SENTIMENT}",
        on_message=interrupt_at_rows(hf_kernel, 4),
    )
    assert run.status == "error" and run.error["ename"] == "KeyboardInterrupt", run.error
    done, flag = hf_kernel.value("(sum(v is not None for v in part.values), part.interrupted)")
    assert 4 <= done < 20 and flag is True and "interrupted" in run.shown_text
    assert hf_kernel.value("[m.busy for m in llm.ps() if m.name == 'smollm2-hf']") == [0]


def test_topk_with_all_minilm_then_a_pairwise_judge(hf_kernel):
    run = hf_kernel.run("%%llm --topk reviews --k 3 -m all-minilm -o best\nthe device broke")
    assert run.status == "ok", run.error
    rows, scores = hf_kernel.value("(list(best.rows.index), best.scores)")
    assert set(rows) <= BROKEN and scores == sorted(scores, reverse=True), rows
    judged = hf_kernel.run(
        "judged = llm.topk(reviews, 'the device broke', 2, model='all-minilm',"
        " judge='smollm2-hf', candidates=3, progress=False)"
    )
    assert judged.status == "ok", judged.error
    wins, positions, cached = hf_kernel.value(
        "(sum(judged.wins.values()), judged.positions, judged.usage.cached)"
    )
    assert wins == 6 and len(positions) == 2  # a winner for each order of the 3 pairs
    assert cached == 20  # the scores came from the first ranking's cache
