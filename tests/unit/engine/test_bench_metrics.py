"""guidellm's metric definitions on hand-made timings."""

import pytest

from llmux_jupyter.engine.bench_metrics import Distribution, RequestRecord, summarize


def record(start=0.0, first=0.2, last=1.2, end=1.25, tokens=11, status="successful", **rest):
    return RequestRecord(
        model="m", backend="b", concurrency=1, request=0, prompt="p", status=status,
        prompt_tokens=5, output_tokens=tokens, request_start=start, first_token=first,
        last_token=last, request_end=end, **rest,
    )  # fmt: skip


def test_per_request_metrics_follow_guidellm():
    timed = record()
    assert timed.time_to_first_token_ms == pytest.approx(200)
    assert timed.inter_token_latency_ms == pytest.approx(100)  # 1 s over 10 gaps: first excluded
    assert timed.time_per_output_token_ms == pytest.approx(1200 / 11)  # first token included
    assert timed.request_latency == pytest.approx(1.25)
    row = timed.as_row()
    assert row["inter_token_latency_ms"] == pytest.approx(100) and row["status"] == "successful"


def test_one_token_has_no_inter_token_latency_and_none_has_no_token_times():
    single = record(first=0.3, last=0.3, tokens=1)
    assert single.inter_token_latency_ms is None
    assert single.time_per_output_token_ms == pytest.approx(300)
    empty = record(first=None, last=None, tokens=0)
    assert empty.time_to_first_token_ms is None and empty.time_per_output_token_ms is None


def test_distribution_interpolates_percentiles_like_numpy():
    spread = Distribution.of([4.0, 1.0, 3.0, 2.0])
    assert (spread.mean, spread.p50, spread.p90, spread.p99) == pytest.approx((2.5, 2.5, 3.7, 3.97))
    assert Distribution.of([7.0]) == Distribution(7.0, 7.0, 7.0, 7.0)
    assert Distribution.of([]) is None


def test_a_level_counts_successful_requests_over_its_whole_duration():
    level = summarize([
        record(start=0.0, first=0.1, last=0.5, end=0.5, tokens=5),
        record(start=0.5, first=0.7, last=1.5, end=1.6, tokens=9),
        record(start=1.6, first=1.7, last=1.8, end=2.0, tokens=2, status="incomplete"),
    ])  # fmt: skip
    assert (level.successful, level.incomplete, level.errored) == (2, 1, 0)
    assert level.duration == pytest.approx(2.0)
    assert level.output_tokens == 14
    assert level.output_tokens_per_second == pytest.approx(7.0)
    assert level.requests_per_second == pytest.approx(1.0)
    assert level.time_to_first_token_ms.mean == pytest.approx(150)  # the incomplete one left out
    row = level.as_row()
    assert row["time_to_first_token_ms_p50"] == pytest.approx(150)
    assert row["request_latency_mean"] == pytest.approx(0.8)
