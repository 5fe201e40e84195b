"""Constrained decoding's cost: ``llm.chat`` with a JSON schema vs without, same model, prompt
and length, on llama.cpp and transformers (SmolLM2), alternating rounds; and the time a tool
round trip adds beyond the model's own generations.

The schema asks for one long string field, so both sides generate ``--max-tokens`` tokens
(the constrained answer is cut, which is expected here). Decode tokens/s ratio: goal >= 0.90.
On llama.cpp also raw llama-cpp-python at its best settings (a decoding thread per physical
core), plain and under the same schema through its own grammar (``response_format``, GBNF),
in the same alternating rounds: ours / raw plain (goal >= 0.97) and our llguidance / its GBNF.

    .venv/bin/python bench/bench_constrained.py [--rounds 5] [--max-tokens 128]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chat_timing import PROMPT, Run, best_llama, median, spread, threads_line

from llmux_jupyter import llm
from llmux_jupyter.errors import SchemaError

MODELS = ("smollm2", "smollm2-hf")
STORY = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "story": {"type": "string", "minLength": 4000}},
    "required": ["title", "story"],
}


def multiply(a: int, b: int) -> int:
    """Multiply two integers.

    Args:
        a: The first factor.
        b: The second factor.
    """
    return a * b


def answer(model: str, max_tokens: int, schema: dict | None) -> Run:
    try:
        response = llm.chat(
            PROMPT, model=model, new=True, temperature=0.0, max_tokens=max_tokens, schema=schema
        )
    except SchemaError:  # the long field was cut at max_tokens, as intended
        response = llm.last
    assert response is not None
    return Run.from_usage(response.usage.as_dict())


def raw_answer(model, max_tokens: int, schema: dict | None) -> Run:
    """Raw llama-cpp-python streaming the same chat, under its own grammar of ``schema``."""
    started = time.perf_counter()
    stream = model.create_chat_completion(
        messages=[{"role": "user", "content": PROMPT}], stream=True, temperature=0.0,
        max_tokens=max_tokens,
        response_format=None if schema is None else {"type": "json_object", "schema": schema},
    )  # fmt: skip
    return Run.timed((chunk["choices"][0]["delta"].get("content") for chunk in stream), started)


def line(label: str, runs: list[Run]) -> str:
    """``label`` median tokens/s (± spread)."""
    tps = median(runs, "tokens_per_second")
    return f"{label} {tps:6.1f} (±{spread(runs, 'tokens_per_second'):.0%})"


def ratio(ours: list[Run], other: list[Run]) -> float:
    return median(ours, "tokens_per_second") / median(other, "tokens_per_second")


def tool_round_trip(model: str) -> tuple[float, float]:
    """(wall seconds of a forced multiply call and its answer, seconds of it spent inside
    the model's generations): the difference is what the loop adds."""
    backend = llm.manager.get_loaded(model).backend
    inside = []
    generate = backend.generate

    def timed(*args, **kwargs):
        started = time.perf_counter()
        result = yield from generate(*args, **kwargs)
        inside.append(time.perf_counter() - started)
        return result

    backend.generate = timed
    try:
        started = time.perf_counter()
        llm.chat("What is 17 times 23?", model=model, new=True, temperature=0.0, max_tokens=16,
                 tools=[multiply], tool_choice="multiply")  # fmt: skip
        return time.perf_counter() - started, sum(inside)
    finally:
        del backend.generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()
    for model in MODELS:
        loaded = llm.load(model)
        raw = best_llama() if model == "smollm2" else None
        answer(model, 8, None)  # warm-ups: the first answer and the first schema (tokenizer)
        answer(model, 8, STORY)
        plain: list[Run] = []
        constrained: list[Run] = []
        raw_plain: list[Run] = []
        raw_grammar: list[Run] = []
        for _ in range(args.rounds):
            plain.append(answer(model, args.max_tokens, None))
            constrained.append(answer(model, args.max_tokens, STORY))
            if raw is not None:
                raw_plain.append(raw_answer(raw, args.max_tokens, None))
                raw_grammar.append(raw_answer(raw, args.max_tokens, STORY))
        free, fixed = median(plain, "tokens_per_second"), median(constrained, "tokens_per_second")
        print(
            f"{model:12} tokens {median(plain, 'tokens'):.0f}/{median(constrained, 'tokens'):.0f} "
            f"tokens/s plain {free:6.1f} (±{spread(plain, 'tokens_per_second'):.0%}) schema "
            f"{fixed:6.1f} (±{spread(constrained, 'tokens_per_second'):.0%}) ratio "
            f"{fixed / free:.3f} (goal >= 0.90)   TTFT plain {median(plain, 'ttft_s') * 1000:.1f} "
            f"ms schema {median(constrained, 'ttft_s') * 1000:.1f} ms"
        )
        if raw is not None:
            print(
                f"{'':12} raw llama-cpp-python, {threads_line(raw, loaded.backend._llm)}: "
                f"{line('plain', raw_plain)} {line('grammar', raw_grammar)}; ours / raw plain "
                f"{ratio(plain, raw_plain):.3f} (goal >= 0.97), our schema / its grammar "
                f"{ratio(constrained, raw_grammar):.3f}"
            )
            raw.close()
        trips = [tool_round_trip(model) for _ in range(args.rounds)]
        wall = sorted(w for w, _ in trips)[len(trips) // 2]
        added = sorted(w - inside for w, inside in trips)[len(trips) // 2]
        print(
            f"{model:12} forced tool call + answer: {wall:.2f} s, of which the loop "
            f"(validation, the call, messages) {added * 1000:.1f} ms outside generations"
        )
        llm.unload(model)


if __name__ == "__main__":
    main()
