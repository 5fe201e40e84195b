"""The table operators on the real SmolLM2 (llama.cpp) in the session's kernel: classify and
filter 20 reviews (most answers right, confidences from log-probabilities, the input's index,
a rerun with no backend call), extract, a reduce that must fold because the rows outgrow the
context window, an interrupt half-way, and bad input that changes nothing."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from llmux_jupyter.models.cache import cache_root

from .kernel import Kernel, interrupt_at_rows
from .operators import SENTIMENT, SETUP, STATE, count_batches

pytest.importorskip("pandas")


@pytest.fixture(scope="module")
def ops_kernel(kernel: Kernel) -> Iterator[Kernel]:
    shutil.rmtree(cache_root() / "map", ignore_errors=True)  # a cache of our own answers only
    run = kernel.run(SETUP + "%llm load smollm2\n" + count_batches("smollm2"))
    assert run.status == "ok", run.error
    yield kernel
    assert kernel.run("uncount()\n%llm unload smollm2").status == "ok"


def test_classify_twenty_reviews_then_the_rerun_calls_no_backend(ops_kernel):
    cell = f"%%llm --classify reviews --labels positive,negative -o moods\n{SENTIMENT}"
    run = ops_kernel.run(cell)
    assert run.status == "ok", run.error
    assert "classify: positive" in run.shown_text and "20 of 20 rows" in run.shown_text
    right, index, confidences, table = ops_kernel.value(
        "(sum(moods.to_pandas()['label'] == reviews['truth']), list(moods.confidence.index[:2]),"
        " [c for c in moods.confidence], list(moods.to_pandas().columns))"
    )
    assert right >= 13, right  # 16 of 20 measured: a 135M model
    assert index == ["T-101", "T-102"]
    assert all(0 < c <= 1 for c in confidences) and len(set(confidences)) > 5
    assert table == ["review", "truth", "label", "confidence", "error"]
    calls = ops_kernel.value("len(batches)")
    again = ops_kernel.run(cell.replace("-o moods", "-o again"))
    assert again.status == "ok" and "20 from the cache" in again.shown_text
    assert ops_kernel.value("len(batches)") == calls  # no backend call at all
    assert ops_kernel.value("again.values == moods.values and again.usage.cached") == 20
    assert ops_kernel.value("list(again.confidence) == list(moods.confidence)")


def test_filter_keeps_rows_on_the_index_with_yes_no_answers_of_three_tokens(ops_kernel):
    run = ops_kernel.run(
        "%%llm --filter reviews -o kept\nIs this review negative? Review: {review}"
    )
    assert run.status == "ok", run.error
    rows, kept_index, mask_index, tokens = ops_kernel.value(
        "(len(kept.kept), list(kept.kept.index), list(kept.mask[kept.mask].index),"
        " kept.usage.completion_tokens)"
    )
    assert kept_index == mask_index and set(kept_index) <= {f"T-{n}" for n in range(101, 121)}
    assert tokens <= 3 * 20  # the schema keeps the answer to "yes" or "no"
    assert ops_kernel.value("all(isinstance(v, bool) for v in kept.values)")
    assert ops_kernel.value("kept.kept.equals(reviews[kept.mask])")
    assert f"filter kept {rows} of 20 rows" in run.shown_text


def test_extract_fields_as_columns(ops_kernel):
    run = ops_kernel.run(
        "from pydantic import BaseModel\n"
        "class Verdict(BaseModel):\n    recommend: bool\n"
        "fields = llm.extract(reviews.head(4), 'Would the writer recommend it? {review}',"
        " Verdict, model='smollm2', max_tokens=16, progress=False)"
    )
    assert run.status == "ok", run.error
    columns, kinds = ops_kernel.value(
        "(list(fields.to_pandas().columns), {type(v).__name__ for v in fields.values})"
    )
    assert columns == ["review", "truth", "recommend", "error"] and kinds == {"Verdict"}


def test_reduce_folds_rows_that_outgrow_the_window_and_reports_the_levels(ops_kernel, smollm2_path):
    """On SmolLM2 loaded with a 512-token window (as its own registration, so the session's
    smollm2 stays as it is): 20 notes of ~40 tokens do not fit one prompt."""
    run = ops_kernel.run(
        f"llm.register('smol-512', backend='llamacpp', path={str(smollm2_path)!r}, n_ctx=512)\n"
        "backend = llm.load('smol-512').backend\n"
        "notes = pd.DataFrame({'note': [f'Visit {i}: ' + (r + ' ') * 3 for i, r in"
        " enumerate(reviews['review'])]})\n"
        "tokens = sum(backend.count_text(t) for t in notes['note'])\n"
        "summary = llm.reduce(notes, 'Summarise what the visitors thought of {note}.',"
        " model='smol-512', max_tokens=24, progress=False)"
    )
    assert run.status == "ok", run.error
    window, tokens, levels, prompts, answer = ops_kernel.value(
        "(backend.context_window(), tokens, summary.levels[None],"
        " [m.usage.rows for m in summary.maps], summary.answer)"
    )
    assert ops_kernel.run("%llm unregister smol-512").status == "ok"
    assert tokens > window == 512  # the rows alone do not fit
    assert levels == len(prompts) >= 2 and prompts[0] >= 2 and prompts[-1] == 1
    assert isinstance(answer, str) and answer.strip()


def test_an_interrupt_half_way_keeps_the_finished_rows(ops_kernel):
    run = ops_kernel.run(
        "%%llm --filter reviews -o part --no-cache\nIs this review positive? Review: {review}",
        on_message=interrupt_at_rows(ops_kernel, 5),
    )
    assert run.status == "error" and run.error["ename"] == "KeyboardInterrupt", run.error
    done, flag = ops_kernel.value("(sum(v is not None for v in part.values), part.interrupted)")
    assert 5 <= done < 20 and flag is True and "interrupted" in run.shown_text
    assert ops_kernel.value("[m.busy for m in llm.ps() if m.name == 'smollm2']") == [0]


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("%%llm --classify reviews\n{review}", "--classify needs --labels"),
        ("%%llm --classify reviews --labels good,bad,good\n{review}", "repeat 'good'"),
        ("%%llm --topk reviews --k 50\na complaint", "k=50 but the table has 20 rows"),
        ("%%llm --filter empty\nIs {review} good?", "The table is empty"),
        ("%%llm --filter reviews\nIs it any good?", "The template names no column"),
        ("%%llm --reduce reviews --by stars\n{review}", "by='stars'"),
    ],
)
def test_bad_input_is_a_usage_error_and_changes_nothing(ops_kernel, cell, message):
    before = ops_kernel.value(STATE)
    run = ops_kernel.run(cell + "\n")
    assert run.status == "error" and run.error is None  # IPython: one line on stderr
    assert "UsageError: " in run.stderr and message in run.stderr, run.stderr
    assert ops_kernel.value(STATE) == before
