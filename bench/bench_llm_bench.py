"""``%llm bench`` measures the model, not itself: its figures for SmolLM2 on llama.cpp vs the raw
llama-cpp-python figures (``raw_llamacpp`` of bench_llamacpp_chat.py) on the same prompts.

One process run, alternating for several rounds: this script streams the bench's first N
built-in prompts one after another with llama-cpp-python itself at its best settings
(``best_llama``: a decoding thread per physical core; greedy, same max tokens),
then a real ipykernel (over ZMQ, as JupyterLab drives it) runs ``%llm bench smollm2`` on the
same prompts. Compared per round: output tokens/s (all output tokens over the wall time of
the N requests) and decode tokens/s (per request, after the first token), with the TTFTs.

    .venv/bin/python bench/bench_llm_bench.py [--rounds 3] [--prompts 8] [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_llamacpp_chat import THREADS, raw_llamacpp
from chat_timing import SMOLLM2_GGUF, Run, best_llama, compare

from llmux_jupyter.engine.bench_prompts import BUILTIN_PROMPTS
from tests.integration.kernel import Kernel

SUMMARY = (
    "(r.levels[0].output_tokens, r.levels[0].output_tokens_per_second,"
    " statistics.median(x.time_to_first_token_ms for x in r.requests) / 1000,"
    " statistics.median(1000 / x.inter_token_latency_ms for x in r.requests))"
)


def raw_round(llm, prompts: list[str], max_tokens: int) -> tuple[Run, Run]:
    """(throughput, decode) of llama-cpp-python answering the prompts one after another."""
    started = time.perf_counter()
    runs = [raw_llamacpp(llm, max_tokens, 0, prompt) for prompt in prompts]
    wall = time.perf_counter() - started
    tokens = sum(run.tokens for run in runs)
    ttft = statistics.median(run.ttft_s for run in runs)
    decode = statistics.median(run.tokens_per_second for run in runs)
    return Run(tokens, ttft, tokens / wall), Run(tokens, ttft, decode)


def bench_round(kernel: Kernel, count: int, max_tokens: int) -> tuple[Run, Run]:
    """(throughput, decode) as ``%llm bench`` reports them."""
    run = kernel.run(f"%llm bench smollm2 --prompts {count} --max-tokens {max_tokens} -o r")
    assert run.status == "ok", run.error
    tokens, throughput, ttft, decode = kernel.value(SUMMARY)
    return Run(tokens, ttft, throughput), Run(tokens, ttft, decode)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()
    prompts = list(BUILTIN_PROMPTS[: args.prompts])

    raw_model = best_llama()
    raw_throughput: list[Run] = []
    raw_decode: list[Run] = []
    our_throughput: list[Run] = []
    our_decode: list[Run] = []
    with tempfile.TemporaryDirectory() as config:
        kernel = Kernel(env={"LLMUX_CONFIG_DIR": config})
        try:
            setup = "%load_ext llmux_jupyter\nimport statistics\n%llm load smollm2"
            assert kernel.run(setup).status == "ok"
            ours = kernel.run(THREADS).stdout.strip()
            raw_llamacpp(raw_model, 4, 0, "hi")  # warm-up; the bench warms its model itself
            for _ in range(args.rounds):
                throughput, decode = raw_round(raw_model, prompts, args.max_tokens)
                raw_throughput.append(throughput)
                raw_decode.append(decode)
                throughput, decode = bench_round(kernel, len(prompts), args.max_tokens)
                our_throughput.append(throughput)
                our_decode.append(decode)
        finally:
            kernel.shutdown()
    print(
        f"model: {SMOLLM2_GGUF.name}, {args.rounds} rounds of {len(prompts)} prompts, "
        f"max_tokens={args.max_tokens}, greedy, cpus: {os.cpu_count()}, threads "
        f"(decoding/prompts): raw {raw_model.context_params.n_threads}/"
        f"{raw_model.context_params.n_threads_batch}, %llm bench {ours}"
    )
    print(
        "output tokens per round: raw "
        f"{[r.tokens for r in raw_throughput]} bench {[r.tokens for r in our_throughput]}"
    )
    compare("output tokens/s (throughput)", raw_throughput, our_throughput)
    compare("decode tokens/s (median)", raw_decode, our_decode)


if __name__ == "__main__":
    main()
