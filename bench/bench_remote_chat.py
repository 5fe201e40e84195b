"""The raw ``openai`` client vs our remote backend, against one llama_cpp.server on loopback.

One process run: starts ``python -m llama_cpp.server`` on the SmolLM2 GGUF, then alternates
raw streaming chat with the openai client and ``llm.chat(stream=True)`` through the openai
backend (same prompt, seed, max tokens) and prints medians and ratios. Then it measures how
fast a cancel ends the stream: while tokens flow, and while the server is frozen (SIGSTOP),
and how long the server takes to notice (its "Disconnected from client" log line).

    .venv/bin/python bench/bench_remote_chat.py [--rounds 3] [--max-tokens 128]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from chat_timing import PROMPT, SMOLLM2_GGUF, Run, compare

from llmux_jupyter.api import LLM
from llmux_jupyter.models.catalog import Catalog
from tests.integration.llama_server import ALIAS, LlamaServer


def raw_openai(client, max_tokens: int, seed: int) -> Run:
    started = time.perf_counter()
    stream = client.chat.completions.create(
        model=ALIAS,
        messages=[{"role": "user", "content": PROMPT}],
        stream=True,
        temperature=0.0,
        seed=seed,
        max_tokens=max_tokens,
    )
    return Run.timed((c.choices[0].delta.content for c in stream if c.choices), started)


def ours(llm: LLM, max_tokens: int, seed: int) -> Run:
    response = llm.chat(
        PROMPT, model="remote", new=True, temperature=0.0, seed=seed, max_tokens=max_tokens
    )
    return Run.from_usage(response.usage.as_dict())


def cancel_latency(llm: LLM, server: LlamaServer, frozen: bool) -> tuple[float, float | None]:
    """Seconds from cancel() to the end of the stream, and to the server noticing (live only)."""
    hang_ups = server.log().count("Disconnected from client")
    stream = llm.chat(PROMPT, model="remote", new=True, max_tokens=1000, stream=True)
    deltas = iter(stream)
    for _ in range(5):
        next(deltas)
    if frozen:
        server.pause()
    cancelled_at: list[float] = []

    def cancel() -> None:
        cancelled_at.append(time.perf_counter())
        stream.cancel()

    threading.Timer(0.3, cancel).start()
    for _ in deltas:
        pass
    closed = time.perf_counter() - cancelled_at[0]
    if frozen:
        server.resume()
        server.wait_for_log("Disconnected from client", hang_ups + 1)
        return closed, None
    server.wait_for_log("Disconnected from client", hang_ups + 1)
    noticed = time.perf_counter() - cancelled_at[0]
    return closed, noticed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()
    import openai

    folder = Path(tempfile.mkdtemp(prefix="llmux-bench-remote-"))
    server = LlamaServer(SMOLLM2_GGUF, folder / "server.log")
    try:
        client = openai.OpenAI(base_url=server.url, api_key="none")
        llm = LLM(Catalog(folder / "models.json"))
        llm.config.repeat_limit = 0  # speed, not quality: a looping answer runs its course
        llm.register("remote", backend="openai", base_url=server.url, model=ALIAS)
        raw_openai(client, 8, 0)  # warm both paths (first answers are slower)
        ours(llm, 8, 0)
        raw_runs, our_runs = [], []
        for round_ in range(args.rounds):
            raw_runs.append(raw_openai(client, args.max_tokens, round_))
            our_runs.append(ours(llm, args.max_tokens, round_))
        compare("openai client vs ours", raw_runs, our_runs)
        live = [cancel_latency(llm, server, frozen=False) for _ in range(args.rounds)]
        frozen = [cancel_latency(llm, server, frozen=True) for _ in range(args.rounds)]
        print(
            f"cancel -> stream closed, tokens flowing: median "
            f"{statistics.median(c for c, _ in live) * 1000:.1f} ms; server noticed after "
            f"{statistics.median(n for _, n in live if n is not None) * 1000:.0f} ms"
        )
        print(
            f"cancel -> stream closed, server frozen (SIGSTOP): median "
            f"{statistics.median(c for c, _ in frozen) * 1000:.1f} ms"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
