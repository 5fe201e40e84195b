"""Benchmark metrics, with guidellm's names and definitions: each request's timings, then their
distributions and throughput per model and concurrency level."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

# guidellm's request statuses: finished, stopped by the user, failed.
Status = Literal["successful", "incomplete", "errored"]
# The per-request metrics each level summarises (milliseconds, except the latency in seconds).
METRICS = (
    "time_to_first_token_ms",
    "inter_token_latency_ms",
    "time_per_output_token_ms",
    "request_latency",
)
STATISTICS = ("mean", "p50", "p90", "p99")


@dataclass(frozen=True)
class RequestRecord:
    """One benchmark request. Times are seconds since its concurrency level began: the request
    was sent, its first and last pieces of text arrived, the answer was complete."""

    model: str
    backend: str
    concurrency: int
    request: int
    prompt: str
    status: Status
    prompt_tokens: int
    output_tokens: int
    request_start: float
    first_token: float | None
    last_token: float | None
    request_end: float
    error: str = ""

    @property
    def time_to_first_token_ms(self) -> float | None:
        """From sending the request to its first token."""
        if self.first_token is None:
            return None
        return 1000 * (self.first_token - self.request_start)

    @property
    def inter_token_latency_ms(self) -> float | None:
        """The mean time between two tokens, the first token excluded."""
        if self.first_token is None or self.last_token is None or self.output_tokens < 2:
            return None
        return 1000 * (self.last_token - self.first_token) / (self.output_tokens - 1)

    @property
    def time_per_output_token_ms(self) -> float | None:
        """The mean time per output token, the first token (and so the prompt) included."""
        if self.last_token is None or self.output_tokens < 1:
            return None
        return 1000 * (self.last_token - self.request_start) / self.output_tokens

    @property
    def request_latency(self) -> float:
        """Seconds from sending the request to its complete answer."""
        return self.request_end - self.request_start

    def as_row(self) -> dict[str, Any]:
        """The fields and the metrics, for a table."""
        row = asdict(self)
        row.update({name: getattr(self, name) for name in METRICS})
        return row


@dataclass(frozen=True)
class Distribution:
    """Mean and percentiles (linear interpolation between the closest ranks, as numpy's
    default) of one metric over a level's successful requests."""

    mean: float
    p50: float
    p90: float
    p99: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Distribution | None:
        if not values:
            return None
        if len(values) == 1:
            return cls(values[0], values[0], values[0], values[0])
        cuts = statistics.quantiles(values, n=100, method="inclusive")
        return cls(statistics.fmean(values), cuts[49], cuts[89], cuts[98])


@dataclass(frozen=True)
class LevelSummary:
    """One model at one concurrency level. Throughput counts successful requests over the
    level's duration, from its first request sent to its last answer complete."""

    model: str
    backend: str
    concurrency: int
    successful: int
    incomplete: int
    errored: int
    duration: float
    output_tokens: int
    output_tokens_per_second: float
    requests_per_second: float
    time_to_first_token_ms: Distribution | None
    inter_token_latency_ms: Distribution | None
    time_per_output_token_ms: Distribution | None
    request_latency: Distribution | None

    def as_row(self) -> dict[str, Any]:
        """Flat: ``time_to_first_token_ms_p90`` and so on."""
        row: dict[str, Any] = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name in METRICS:
                for stat in STATISTICS:
                    row[f"{field.name}_{stat}"] = None if value is None else getattr(value, stat)
            else:
                row[field.name] = value
        return row


def summarize(records: Sequence[RequestRecord]) -> LevelSummary:
    """The summary of one model's requests at one concurrency level (``records`` not empty)."""
    first = records[0]
    done = [r for r in records if r.status == "successful"]
    duration = max(r.request_end for r in records) - min(r.request_start for r in records)
    tokens = sum(r.output_tokens for r in done)

    def distribution(metric: str) -> Distribution | None:
        values = [getattr(r, metric) for r in done]
        return Distribution.of([v for v in values if v is not None])

    return LevelSummary(
        model=first.model,
        backend=first.backend,
        concurrency=first.concurrency,
        successful=len(done),
        incomplete=sum(r.status == "incomplete" for r in records),
        errored=sum(r.status == "errored" for r in records),
        duration=duration,
        output_tokens=tokens,
        output_tokens_per_second=tokens / duration if duration > 0 else 0.0,
        requests_per_second=len(done) / duration if duration > 0 else 0.0,
        **{metric: distribution(metric) for metric in METRICS},
    )
