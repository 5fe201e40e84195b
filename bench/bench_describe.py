"""Describing a 1,000,000-row DataFrame for ``{df}`` (goal: < 50 ms; it must never stringify the
whole frame): ``describe`` within the default 500-token cap, counted by the real SmolLM2's
tokenizer (llama.cpp, the model loaded as after a first cell) and by the estimate, and the
whole ``{df}`` fill of a cell, side by side with pandas' own ``str(df)`` (what ``{df}`` sent
before: its truncated repr), alternating rounds in one process.

    .venv/bin/python bench/bench_describe.py [--rows 1000000] [--rounds 15]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from llmux_jupyter import llm
from llmux_jupyter.engine.describe import describe, estimate_tokens
from llmux_jupyter.frontends.interpolate import fill

CAP = 500


def frame(rows: int) -> pd.DataFrame:
    """Six columns of the usual kinds: floats, ints, strings, dates, a category, booleans."""
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "price": rng.random(rows) * 100,
            "quantity": rng.integers(0, 1000, rows),
            "customer": [f"customer {i % 5000}" for i in range(rows)],
            "ordered": pd.date_range("2020-01-01", periods=rows, freq="min"),
            "city": pd.Categorical(rng.choice(["Oslo", "Lima", "Pune", "Kobe"], rows)),
            "paid": rng.random(rows) > 0.1,
        }
    )


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def spread(seconds: list[float]) -> float:
    """Half the interquartile range, as a share of the median."""
    low, _, high = statistics.quantiles(seconds, n=4)
    return (high - low) / 2 / statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    data = frame(args.rows)
    count = llm.load("smollm2").backend.count_text
    sides: dict[str, Callable[[], object]] = {
        "pandas str(df)": lambda: str(data),
        "describe, tokenizer": lambda: describe("df", data, CAP, count),
        "describe, estimate": lambda: describe("df", data, CAP, estimate_tokens),
        "{df} fill, tokenizer": lambda: fill("Rows? {df}", {"df": data}, CAP, count),
    }
    for work in sides.values():  # warm: first calls import and cache
        work()
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(args.rounds):  # alternate, so drift on a busy machine hits every side
        for name, work in sides.items():
            times[name].append(timed(work))

    described = describe("df", data, CAP, count)
    print(f"DataFrame: {args.rows:,} rows × {data.shape[1]} columns, cap {CAP} tokens")
    print(
        f"description: {described.tokens} tokens by SmolLM2's tokenizer "
        f"({estimate_tokens(described.text)} estimated), {len(described.text):,} characters, "
        f"cut to fit: {described.cut}"
    )
    base = statistics.median(times["pandas str(df)"])
    print(f"median of {args.rounds} rounds (± half the interquartile range):")
    for name, seconds in times.items():
        median = statistics.median(seconds)
        print(
            f"  {name:<22} {median * 1000:8.2f} ms ±{spread(seconds):4.0%}   "
            f"ratio to str(df) {median / base:5.2f}"
        )
    ours = statistics.median(times["{df} fill, tokenizer"])
    print(f"goal: {{df}} described in < 50 ms: {ours * 1000:.1f} ms")
    llm.unload(all=True)


if __name__ == "__main__":
    main()
