"""``llm.filter`` and ``llm.classify`` on 64 rows, against raw llama-cpp-python doing the same
work, in one process run:

- ours: the operator (SmolLM2 on llama.cpp, greedy, no cache), each answer decoded under a
  yes/no or an enum schema (llguidance masks);
- raw: a loop of ``create_chat_completion`` on the same messages with llama.cpp's own JSON
  schema grammar (``response_format``), both loaded with ``n_threads`` = the physical cores
  and ``n_threads_batch`` = the logical CPUs;

alternating for ``--rounds`` rounds: rows/s medians (± half their interquartile range), the
ratio ours/raw, tokens generated per row (goal <= 3: the schema keeps the answer to one
label) and how often both sides gave the same answer. With ``--transformers`` the same
operators on ``smollm2-hf`` (continuous batching) too, ours only.

    .venv/bin/python bench/bench_operators.py [--rows 64] [--rounds 3] [--transformers]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from chat_timing import SMOLLM2_GGUF, median, spread

from tests.integration.operators import TEXTS

FILTER = "Is this review positive? Review: {review}"
CLASSIFY = "What is the sentiment of this review? Review: {review}"
LABELS = ["positive", "negative"]


@dataclass
class Round:
    """One side's pass over the rows."""

    rows_per_second: float
    tokens: int
    answers: list[str | None]


def rows(count: int) -> list[str]:
    return [f"{TEXTS[i % len(TEXTS)]} (order {i})" for i in range(count)]


def threads() -> dict[str, int]:
    """Physical cores for decoding, logical CPUs for prompt evaluation."""
    import psutil

    logical = os.cpu_count() or 1
    return {"n_threads": psutil.cpu_count(logical=False) or logical, "n_threads_batch": logical}


def ours(llm, operator: str, texts: list[str], model: str) -> Round:
    import pandas as pd

    table = pd.DataFrame({"review": texts})
    started = time.perf_counter()
    if operator == "filter":
        result = llm.filter(table, FILTER, model=model, cache=False, progress=False)
        answers = [None if v is None else ("yes" if v else "no") for v in result.values]
    else:
        result = llm.classify(table, CLASSIFY, LABELS, model=model, cache=False, progress=False)
        answers = list(result.values)
    seconds = time.perf_counter() - started - result.usage.load_seconds
    return Round(len(texts) / seconds, result.usage.completion_tokens, answers)


def raw(model, operator: str, texts: list[str]) -> Round:
    """The same prompts as the operator sends, under llama.cpp's own schema grammar."""
    from llmux_jupyter.engine.operators import CLASSIFY_INSTRUCTION, FILTER_INSTRUCTION

    if operator == "filter":
        labels, suffix, template = ["yes", "no"], FILTER_INSTRUCTION, FILTER
    else:
        labels = LABELS
        suffix = CLASSIFY_INSTRUCTION.format(labels=", ".join(LABELS))
        template = CLASSIFY
    schema = {"type": "string", "enum": labels}
    tokens, answers = 0, []
    started = time.perf_counter()
    for text in texts:
        reply = model.create_chat_completion(
            messages=[{"role": "user", "content": template.format(review=text) + suffix}],
            response_format={"type": "json_object", "schema": schema},
            temperature=0,
            max_tokens=8,
        )
        tokens += reply["usage"]["completion_tokens"]
        answers.append(reply["choices"][0]["message"]["content"].strip().strip('"'))
    return Round(len(texts) / (time.perf_counter() - started), tokens, answers)


def report(label: str, rounds: list[Round], count: int) -> float:
    rate = median(rounds, "rows_per_second")
    noise = spread(rounds, "rows_per_second")
    per_row = rounds[0].tokens / count
    print(f"  {label:44} {rate:6.2f} rows/s (±{noise:.0%})  {per_row:4.2f} tokens/row")
    return rate


def llamacpp_part(llm, args, texts: list[str]) -> None:
    import llama_cpp

    settings = threads()
    llm.load("smollm2", **settings)
    model = llama_cpp.Llama(model_path=str(SMOLLM2_GGUF), n_ctx=2048, verbose=False, **settings)
    print(
        f"llama.cpp SmolLM2, {len(texts)} rows, {settings}, median of {args.rounds} "
        "alternating rounds (goal: <= 3 tokens per row)"
    )
    for operator in ("filter", "classify"):
        ours(llm, operator, texts[:2], "smollm2")  # first-call costs: the llguidance tokenizer
        raw(model, operator, texts[:2])
        mine: list[Round] = []
        theirs: list[Round] = []
        for number in range(args.rounds):  # alternate, so drift hits both sides
            if number % 2 == 0:
                mine.append(ours(llm, operator, texts, "smollm2"))
                theirs.append(raw(model, operator, texts))
            else:
                theirs.append(raw(model, operator, texts))
                mine.append(ours(llm, operator, texts, "smollm2"))
        print(f" {operator}")
        rate = report(f"llm.{operator} (llguidance masks)", mine, len(texts))
        raw_rate = report("raw create_chat_completion (llama.cpp grammar)", theirs, len(texts))
        same = sum(a == b for a, b in zip(mine[0].answers, theirs[0].answers, strict=True))
        print(f"  ratio {rate / raw_rate:5.3f}; the same answer on {same} of {len(texts)} rows")
    model.close()
    llm.unload("smollm2")


def transformers_part(llm, args, texts: list[str]) -> None:
    llm.load("smollm2-hf")
    print(f"transformers SmolLM2 float32 (continuous batching), {len(texts)} rows, ours only")
    for operator in ("filter", "classify"):
        ours(llm, operator, texts[:2], "smollm2-hf")
        runs = [ours(llm, operator, texts, "smollm2-hf") for _ in range(args.rounds)]
        report(f"llm.{operator}", runs, len(texts))
    llm.unload("smollm2-hf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--transformers", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-operators-"))
    os.environ["LLMUX_CONFIG_DIR"] = str(folder / "config")
    from llmux_jupyter.api import LLM

    llm = LLM()
    texts = rows(args.rows)
    try:
        llamacpp_part(llm, args, texts)
        if args.transformers:
            transformers_part(llm, args, texts)
    finally:
        llm.unload(all=True)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
