"""``llm.map`` throughput, each against the plain way of doing the same work, in one process run:

- transformers (SmolLM2-135M float32, greedy, N prompts x M tokens): ``llm.map`` at batch size
  B (continuous batching) vs a sequential loop of ``llm.chat`` calls (goal >= 5x) and vs raw
  batched ``model.generate`` at the same batch size, left padding, same inputs (goal >= 0.95),
  the two alternating for ``--rounds`` rounds (medians, ± half their interquartile range);
  the same for a typed map (a dataclass schema) vs ``generate`` under the same llguidance masks;
- remote: ``llm.map`` with concurrency 4 vs a sequential loop of the raw ``openai`` client
  against the same ``llama_cpp.server`` on loopback, alternating rounds (it serialises
  requests, so the ratio shows our overhead; goal: within 5 %);
- llama.cpp (SmolLM2, greedy, ``--llamacpp-rows`` rows x ``--llamacpp-tokens`` tokens, 32 x 16):
  ``llm.map`` as it runs by default vs a loop of raw llama-cpp-python chat completions at its
  best settings (a decoding thread per physical core; goal >= 0.97), the map one row at a time
  vs the same loop (our overhead), and the map with parallel sequences vs one row at a time,
  plain and typed (the answers compared: greedy answers must be the same), alternating rounds;
- llama.cpp: a map's first run vs its cached rerun (goal >= 100x).

tokens/s is answer tokens over wall time. The sequential chat loop answers the first
``--loop-prompts`` prompts only (a rate needs no more; 64 would take minutes).

    .venv/bin/python bench/bench_map.py [--prompts 64] [--max-tokens 64] [--batch-size 16]
        [--rounds 3] [--llamacpp-rows 32] [--llamacpp-tokens 16] [--sequences 8]
        [--parts transformers,remote,llamacpp,cache]
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
from chat_timing import SMOLLM2_GGUF, Run, best_llama, median, spread, threads_line

from tests.integration.llama_server import ALIAS, LlamaServer

TOPICS = [
    "rivers", "volcanoes", "bread", "chess", "owls", "copper", "tides", "violins", "deserts",
    "bicycles", "glaciers", "honey", "lighthouses", "maps", "comets", "tea", "bridges", "moss",
    "trains", "coral", "kites", "salt", "clocks", "wolves", "paper", "thunder", "gardens",
    "satellites", "cheese", "lanterns", "caves", "whales",
]  # fmt: skip
STYLES = ["Write one sentence about {topic}.", "Give a surprising fact about {topic}."]


def prompts(count: int) -> list[str]:
    every = [style.format(topic=topic) for style in STYLES for topic in TOPICS]
    return [every[i % len(every)] for i in range(count)]


def raw_batched(
    model, tokenizer, texts: list[str], batch_size: int, max_tokens: int, masks=None
) -> int:
    """Answer tokens of greedy ``model.generate`` over ``texts`` in batches (left padding),
    under ``masks(rows)`` (a logits processor) if given, counted up to each row's
    end-of-sequence as ours are."""
    import torch

    eos = model.generation_config.eos_token_id
    ends = set(eos if isinstance(eos, list) else [eos])
    ids = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": t}], add_generation_prompt=True, return_dict=True
        )["input_ids"]
        for t in texts
    ]
    ids.sort(key=len)
    tokens = 0
    for start in range(0, len(ids), batch_size):
        batch = tokenizer.pad(
            {"input_ids": ids[start : start + batch_size]},
            padding=True,
            padding_side="left",
            return_tensors="pt",
        )
        with torch.inference_mode():
            rows = batch["input_ids"].shape[0]
            output = model.generate(
                **batch, max_new_tokens=max_tokens, do_sample=False,
                pad_token_id=tokenizer.pad_token_id or next(iter(ends)),
                logits_processor=masks(rows) if masks else None,
            )  # fmt: skip
        for row in output[:, batch["input_ids"].shape[-1] :].tolist():
            tokens += next((i + 1 for i, t in enumerate(row) if t in ends), len(row))
    return tokens


def timed(work) -> tuple[float, object]:
    started = time.perf_counter()
    value = work()
    return time.perf_counter() - started, value


@dataclass
class Fact:
    """The typed map's answer."""

    topic: str
    surprising: bool


def versus(args, ours, raw, labels: tuple[str, str], goal: str = "goal >= 0.95") -> float:
    """``ours`` and ``raw`` (each returning (answer tokens, seconds)) alternately for
    ``--rounds`` rounds; prints both medians (labelled ``labels``) and their ratio, and
    returns ours."""
    maps: list[Run] = []
    raws: list[Run] = []
    for round_number in range(args.rounds):  # alternate, so drift hits both sides
        order = [(ours, maps), (raw, raws)][:: 1 if round_number % 2 == 0 else -1]
        for side, runs in order:
            tokens, seconds = side()
            runs.append(Run(tokens, 0.0, tokens / seconds))
    mapped, batched = median(maps, "tokens_per_second"), median(raws, "tokens_per_second")
    for label, value, runs in ((labels[0], mapped, maps), (labels[1], batched, raws)):
        noise = spread(runs, "tokens_per_second")
        print(f"  {label:58} {value:7.1f} tokens/s (±{noise:.0%}, {runs[0].tokens} tokens)")
    print(f"  ratio {mapped / batched:5.3f} ({goal})", flush=True)
    return mapped


def transformers_part(llm, args) -> None:
    from llmux_jupyter.engine.schemas import Schema

    texts = prompts(args.prompts)
    backend = llm.load("smollm2-hf").backend
    model, tokenizer = backend._model, backend._tokenizer
    warm = {"temperature": 0, "max_tokens": 2, "cache": False, "progress": False}
    llm.map("{item}", texts[:2], model="smollm2-hf", batch_size=2, **warm)  # first-call costs
    raw_batched(model, tokenizer, texts[:2], 2, 2)
    print(
        f"transformers, {len(texts)} prompts x {args.max_tokens} tokens, batch {args.batch_size}, "
        f"median of {args.rounds} alternating rounds"
    )

    def mapped(items: list[str], **options):
        def run() -> tuple[int, float]:
            seconds, result = timed(
                lambda: llm.map(
                    "{item}", items, model="smollm2-hf", temperature=0,
                    max_tokens=args.max_tokens, batch_size=args.batch_size, cache=False,
                    progress=False, **options,
                )
            )  # fmt: skip
            return result.usage.completion_tokens, seconds

        return run

    def raw(items: list[str], masks=None):
        def run() -> tuple[int, float]:
            seconds, tokens = timed(
                lambda: raw_batched(
                    model, tokenizer, items, args.batch_size, args.max_tokens, masks
                )
            )
            return tokens, seconds

        return run

    batches = ("one generate per batch", "continuous batching")
    plain = versus(args, mapped(texts), raw(texts), (f"llm.map, {batches[1]}", batches[0]))
    typed_texts = [f"{text} Answer in JSON." for text in texts]
    schema = Schema.of(Fact).json_schema

    def masks(rows: int):
        return backend.json_processors(schema, rows)

    print("typed (a dataclass schema), the same prompts + ' Answer in JSON.'")
    labels = (f"llm.map typed, {batches[1]}", f"{batches[0]}, the same llguidance masks")
    versus(args, mapped(typed_texts, schema=Fact), raw(typed_texts, masks), labels)
    loop_texts = texts[: args.loop_prompts]

    def loop() -> int:
        answers = [
            llm.chat(t, model="smollm2-hf", new=True, temperature=0, max_tokens=args.max_tokens)
            for t in loop_texts
        ]
        return sum(a.usage.completion_tokens for a in answers)

    loop_seconds, loop_tokens = timed(loop)
    sequential = loop_tokens / loop_seconds
    print(f"  llm.chat loop      {sequential:7.1f} tokens/s ({len(loop_texts)} prompts)")
    print(f"  plain map / loop {plain / sequential:5.2f}x (goal >= 5)")
    llm.unload("smollm2-hf")


def remote_part(llm, args, folder: Path) -> None:
    import openai

    server = LlamaServer(SMOLLM2_GGUF, folder / "server.log", interrupt_requests=False)
    try:
        llm.register("served", backend="openai", base_url=server.url, model=ALIAS, timeout=300)
        texts = prompts(args.remote_prompts)
        client = openai.OpenAI(base_url=server.url, api_key="none")
        client.chat.completions.create(  # warm the server up
            model=ALIAS, messages=[{"role": "user", "content": "Hi"}], max_tokens=2
        )

        def raw_loop() -> tuple[int, float]:
            seconds, tokens = timed(
                lambda: sum(
                    client.chat.completions.create(
                        model=ALIAS, messages=[{"role": "user", "content": t}], temperature=0,
                        max_tokens=args.remote_tokens,
                    ).usage.completion_tokens
                    for t in texts
                )
            )  # fmt: skip
            return tokens, seconds

        def mapped() -> tuple[int, float]:
            seconds, result = timed(
                lambda: llm.map(
                    "{item}", texts, model="served", concurrency=4, temperature=0,
                    max_tokens=args.remote_tokens, cache=False, progress=False,
                )
            )  # fmt: skip
            return result.usage.completion_tokens, seconds

        print(f"remote (llama_cpp.server), {len(texts)} prompts x {args.remote_tokens} tokens")
        labels = ("llm.map, concurrency 4", "raw client loop")
        versus(args, mapped, raw_loop, labels, "the server serialises: our overhead, goal >= 0.95")
        client.close()
    finally:
        llm.unload(all=True)
        server.stop()


def llamacpp_part(llm, args) -> None:
    from llmux_jupyter.backends.llamacpp import DEFAULT_SEQUENCES

    texts = prompts(args.llamacpp_rows)
    tokens = args.llamacpp_tokens
    loaded = llm.load("smollm2")
    raw = best_llama()
    answers: dict[str, list[object]] = {}

    def raw_loop() -> tuple[int, float]:
        def loop() -> int:
            return sum(
                raw.create_chat_completion(
                    messages=[{"role": "user", "content": t}], temperature=0.0, max_tokens=tokens
                )["usage"]["completion_tokens"]
                for t in texts
            )

        seconds, count = timed(loop)
        return count, seconds

    def mapped(name: str, items: list[str], batch_size: int | None = None, **options):
        def run() -> tuple[int, float]:
            seconds, result = timed(
                lambda: llm.map(
                    "{item}", items, model="smollm2", temperature=0, max_tokens=tokens,
                    cache=False, progress=False, batch_size=batch_size, **options,
                )
            )  # fmt: skip
            answers[name] = result.values
            return result.usage.completion_tokens, seconds

        return run

    mapped("warm", texts[:2])()
    raw.create_chat_completion(messages=[{"role": "user", "content": "Hi"}], max_tokens=2)
    print(
        f"llama.cpp, {len(texts)} prompts x {tokens} tokens, "
        f"{threads_line(raw, loaded.backend._llm)}, parallel sequences by default: "
        f"{DEFAULT_SEQUENCES}, median of {args.rounds} alternating rounds"
    )
    raw_label = "raw llama-cpp-python loop, best threads"
    versus(args, mapped("default", texts), raw_loop, ("llm.map", raw_label), "goal >= 0.97")
    labels = ("llm.map one row at a time", raw_label)
    versus(args, mapped("one", texts, 1), raw_loop, labels, "our overhead, goal >= 0.97")
    for typed, items, options in (
        ("plain", texts, {}),
        ("typed", [f"{text} Answer in JSON." for text in texts], {"schema": Fact}),
    ):
        labels = (f"llm.map {typed}, {args.sequences} sequences", f"{typed}, one row at a time")
        versus(
            args, mapped("parallel", items, args.sequences, **options),
            mapped("sequential", items, 1, **options), labels, "parallel / one at a time",
        )  # fmt: skip
        same = sum(a == b for a, b in zip(answers["parallel"], answers["sequential"], strict=True))
        print(f"  the same answers: {same} of {len(items)} rows")
    raw.close()
    llm.unload("smollm2")


def cache_part(llm, args, folder: Path) -> None:
    os.environ["LLMUX_CACHE_DIR"] = str(folder / "cache")  # answers cached here only
    texts = prompts(args.remote_prompts)
    options = {"model": "smollm2", "temperature": 0, "max_tokens": 32, "progress": False}
    first, _ = timed(lambda: llm.map("{item}", texts, **options))
    again, cached = timed(lambda: llm.map("{item}", texts, **options))
    assert cached.usage.cached == len(texts)
    print(f"llama.cpp, {len(texts)} prompts: first run {first:.2f} s, cached rerun {again:.4f} s")
    print(f"  first / cached {first / again:8.0f}x (goal >= 100)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--loop-prompts", type=int, default=8)
    parser.add_argument("--remote-prompts", type=int, default=16)
    parser.add_argument("--remote-tokens", type=int, default=32)
    parser.add_argument("--llamacpp-rows", type=int, default=32)
    parser.add_argument("--llamacpp-tokens", type=int, default=16)
    parser.add_argument("--sequences", type=int, default=8, help="parallel sequences to measure")
    parser.add_argument(
        "--parts", default="transformers,remote,llamacpp,cache", help="which parts to run"
    )
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-map-"))
    os.environ["LLMUX_CONFIG_DIR"] = str(folder / "config")
    from llmux_jupyter.api import LLM

    llm = LLM()
    try:
        parts = args.parts.split(",")
        if "transformers" in parts:
            transformers_part(llm, args)
        if "remote" in parts:
            remote_part(llm, args, folder)
        if "llamacpp" in parts:
            llamacpp_part(llm, args)
        if "cache" in parts:
            cache_part(llm, args, folder)
    finally:
        llm.unload(all=True)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
