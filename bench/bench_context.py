"""What fitting a thread to the context window adds to a cell: the time from ``%%llm`` to the
backend's ``generate`` call on a ~1,800-token thread, with fitting (token counts cached on the
turns; the first, cold cell counts every turn) and without it (the whole thread sent as is, as
before fitting existed). One process, the real SmolLM2 on llama.cpp (n_ctx 4096, so both paths
send the same messages), an IPython shell running the magic; goal: < 5 ms added.

    .venv/bin/python bench/bench_context.py [--rounds 30] [--thread-tokens 1800]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import time
from collections.abc import Callable

from IPython.testing.globalipapp import start_ipython

import llmux_jupyter.engine.chat as chat
from llmux_jupyter import llm
from llmux_jupyter.engine.context import Fit
from llmux_jupyter.engine.conversation import Thread, Turn

SENTENCE = "The keeper climbed the stairs of the lighthouse to light the lamp at dusk. "
CELL = "--max-tokens 200 --thread bench\nWhat happened next in the story?"


def whole_thread(backend, model, thread: Thread, prompt, system, max_tokens, policy):
    """Today's path before fitting: every turn, nothing counted."""
    turns = len(thread.turns)
    return Fit(turns, turns, 0, None), thread.messages_for(prompt, system)


def build_thread(backend, tokens: int) -> Thread:
    """Turns of about 120 tokens each until the thread holds ``tokens``."""
    thread, total = Thread("bench"), 0
    while total < tokens:
        turn = Turn("Tell me more about the lighthouse keeper.", SENTENCE * 6, "smollm2")
        total += backend.count_text(turn.user) + backend.count_text(turn.assistant) + 10
        thread.turns.append(turn)
    return thread


def time_to_generate(shell, backend, rounds: int) -> list[float]:
    """Seconds from running the cell to the backend's generate call, ``rounds`` times."""
    called: list[float] = []
    real_generate = backend.generate

    def generate(messages, params, cancel):
        called.append(time.perf_counter())
        yield "ok"

    backend.generate = generate
    seconds = []
    try:
        for _ in range(rounds):
            started = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                shell.run_cell_magic("llm", CELL.split("\n")[0], CELL.split("\n")[1])
            seconds.append(called[-1] - started)
            llm.threads.get("bench").turns.pop()  # the thread stays the same size
    finally:
        backend.generate = real_generate
    return seconds


def run_with(fitter: Callable, shell, backend, rounds: int) -> list[float]:
    original = chat.fit_thread
    chat.fit_thread = fitter
    try:
        return time_to_generate(shell, backend, rounds)
    finally:
        chat.fit_thread = original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--thread-tokens", type=int, default=1800)
    args = parser.parse_args()

    shell = start_ipython()
    shell.run_line_magic("load_ext", "llmux_jupyter")
    backend = llm.load("smollm2", n_ctx=4096).backend
    thread = build_thread(backend, args.thread_tokens)
    llm.threads.put(thread)
    counted = sum(
        backend.count_text(t.user) + backend.count_text(t.assistant) for t in thread.turns
    )
    print(f"thread: {len(thread.turns)} turns, {counted:,} tokens of text")

    cold = run_with(chat.fit_thread, shell, backend, 1)[0]  # counts every turn once
    without, fitted = [], []
    for _ in range(args.rounds):  # alternate, so drift on a busy machine hits both sides
        without += run_with(whole_thread, shell, backend, 1)
        fitted += run_with(chat.fit_thread, shell, backend, 1)
    base, ours = statistics.median(without), statistics.median(fitted)
    print(f"%%llm to generate, median of {args.rounds}:")
    print(f"  whole thread (no fitting):  {base * 1000:7.2f} ms")
    print(f"  fitted, counts cached:      {ours * 1000:7.2f} ms")
    print(f"  added by fitting:           {(ours - base) * 1000:+7.2f} ms (goal < 5 ms)")
    print(f"  first cell, counting all:   {cold * 1000:7.2f} ms")
    print(f"  ratio fitted / whole:       {ours / base:7.3f}")
    llm.unload(all=True)


if __name__ == "__main__":
    main()
