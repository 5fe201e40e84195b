"""What the history costs: (1) a cell's time from the answer's end to the cell's end, logged
vs ``--no-log`` (goal: < 2 ms added), alternating rounds, the real SmolLM2 on llama.cpp in an
IPython shell; (2) ``%llm history QUERY`` over 100,000 logged exchanges (goal: < 200 ms), next
to the same FTS5 query run on raw sqlite3. The history lives in a temporary folder (the
logged cells of (1) go on top of the 100,000 rows).

    .venv/bin/python bench/bench_history.py [--rounds 30] [--rows 100000] [--searches 15]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import os
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator

# Before llmux is imported: nothing here touches the user's own history.
os.environ["LLMUX_DATA_DIR"] = tempfile.mkdtemp(prefix="llmux-bench-history-")

from IPython.testing.globalipapp import start_ipython

from llmux_jupyter import llm
from llmux_jupyter.engine.history.log import DATABASE, data_dir
from llmux_jupyter.engine.history.records import Exchange
from llmux_jupyter.engine.history.store import HistoryStore, match_expression

CELL = "--temperature 0 --max-tokens 16 --new --thread bench{flag}"
PROMPT = "Name one planet of the solar system."
COMMON = ("the", "data", "model", "python", "function", "table", "answer", "value", "plot")
RARE = "lighthouse"  # in about 1 of 2,000 rows
VOCABULARY = (
    "and of to in is for that with on as it be are this by from or an at which can not all "
    "one more use will each other time two may first also into about many these then than "
    "some what how when where why list column row index frame series mean median sum count "
    "group sort merge join filter map apply string number integer float array matrix vector "
    "loop class method object file path read write open close error warning test check run "
    "load save print show chart bar line axis label title color size memory speed token "
    "prompt thread kernel notebook cell output input result question reason explain small "
    "large fast slow simple complex clean missing date month year city country price sales"
)
POOL = COMMON + tuple(VOCABULARY.split())
ZIPF = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(POOL))))


def sentence(rng: random.Random, length: int) -> str:
    """Words with a Zipf-like spread: common words common, RARE in ~1/2000 rows."""
    words = rng.choices(POOL, cum_weights=ZIPF, k=length)
    if rng.random() < 1 / 2000:
        words[rng.randrange(length)] = RARE
    return " ".join(words).capitalize() + "."


def fill(store: HistoryStore, rows: int) -> float:
    """``rows`` exchanges of ~25-word prompts and ~90-word answers; returns the seconds."""
    rng = random.Random(7)
    started = time.perf_counter()
    now = time.time() - rows
    for start in range(0, rows, 5000):
        batch = [
            Exchange(
                "chat",
                sentence(rng, 25),
                sentence(rng, 90),
                rng.choice(("smollm2", "gemma")),
                "llamacpp",
                created=now + i,
                notebook="/work/analysis.ipynb",
                thread=f"t{i % 50}",
                conversation=f"c{i % 50}",
                prompt_tokens=40,
                completion_tokens=120,
                duration_s=1.0,
                messages=[{"role": "user", "content": "..."}],
            )
            for i in range(start, min(rows, start + 5000))
        ]
        store.add_many(batch)
    return time.perf_counter() - started


@contextlib.contextmanager
def log_calls() -> Iterator[list[float]]:
    """The seconds each call of the history's log_chat takes (the whole of logging's work)."""
    spent: list[float] = []
    log_chat = llm.history.log_chat

    def timed(*args, **kwargs):
        started = time.perf_counter()
        log_chat(*args, **kwargs)
        spent.append(time.perf_counter() - started)

    llm.history.log_chat = timed
    try:
        yield spent
    finally:
        del llm.history.log_chat


@contextlib.contextmanager
def answer_ends(backend) -> Iterator[list[float]]:
    """Record when each of the backend's generations ends (its generator returns)."""
    ended: list[float] = []
    generate = backend.generate

    def timed(messages, params, cancel):
        summary = yield from generate(messages, params, cancel)
        ended.append(time.perf_counter())
        return summary

    backend.generate = timed
    try:
        yield ended
    finally:
        backend.generate = generate


def after_answer(shell, ended: list[float], flag: str) -> float:
    """One cell; seconds from its answer's end to the cell's end."""
    with contextlib.redirect_stdout(io.StringIO()):
        shell.run_cell_magic("llm", CELL.format(flag=flag), PROMPT)
    return time.perf_counter() - ended[-1]


def timed(action: Callable[[], object], times: int) -> list[float]:
    seconds = []
    for _ in range(times):
        started = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - started)
    return seconds


def show(label: str, seconds: list[float], goal: str = "") -> float:
    middle = statistics.median(seconds)
    low, _, high = statistics.quantiles(seconds, n=4) if len(seconds) > 1 else (middle,) * 3
    print(f"  {label:44} {middle * 1000:8.2f} ms  (IQR {low * 1000:.2f}-{high * 1000:.2f}){goal}")
    return middle


def raw_search(path, query: str, model: str | None) -> Callable[[], list]:
    """The same search straight on sqlite3: FTS5 newest first, LIMIT 20, the rows' columns."""
    connection = sqlite3.connect(path)
    expression = match_expression(query)
    only = " AND e.model = ?" if model else ""

    def search() -> list:
        return connection.execute(
            "SELECT e.* FROM exchanges_fts f JOIN exchanges e ON e.id = f.rowid "
            f"WHERE exchanges_fts MATCH ?{only} ORDER BY f.rowid DESC LIMIT 20",
            [expression, model] if model else [expression],
        ).fetchall()

    return search


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--searches", type=int, default=15)
    args = parser.parse_args()

    path = data_dir() / DATABASE
    seconds = fill(HistoryStore(path), args.rows)
    print(f"history: {args.rows:,} exchanges written in {seconds:.1f} s to {path}")

    shell = start_ipython()
    shell.run_line_magic("load_ext", "llmux_jupyter")
    backend = llm.load("smollm2").backend
    with answer_ends(backend) as ended, log_calls() as spent:
        first = after_answer(shell, ended, "")  # opens the file
        logged, unlogged = [], []
        for _ in range(args.rounds):  # alternate, so drift on a busy machine hits both sides
            unlogged.append(after_answer(shell, ended, " --no-log"))
            logged.append(after_answer(shell, ended, ""))
    print(f"answer's end to the cell's end, median of {args.rounds} (SmolLM2, 16 tokens):")
    base = show("--no-log", unlogged)
    ours = show("logged", logged)
    print(f"  {'added by logging':44} {(ours - base) * 1000:+8.2f} ms  (goal < 2 ms)")
    print(f"  ratio logged / --no-log: {ours / base:.3f}")
    show("inside the log call (a row + its FTS5 entry)", spent[1:], "  (goal < 2 ms)")
    show("first logged cell (opens the database)", [first])

    print(f"%llm history over {llm.history.store.count():,} rows, median of {args.searches}:")
    queries = [
        ("", None, "newest 20, no query"),
        (RARE, None, "a rare word"),
        ("python", None, "a common word"),
        ("python table", None, "two common words"),
        ('"the data"', None, "a phrase"),
        ("python", "gemma", "a common word, one model"),
    ]
    for words, model, label in queries:
        line = f"{words} -m {model}" if model else words
        ours = show(
            f"%llm history {line}".strip(),
            timed(lambda line=line: _magic(shell, line), args.searches),
            "  (goal < 200 ms)",
        )
        if words:
            raw = timed(raw_search(path, words, model), args.searches)
            print(f"  {'':44} ratio ours / raw {ours / show(f'  raw sqlite3 ({label})', raw):.2f}")
    llm.unload(all=True)


def _magic(shell, query: str) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        shell.run_line_magic("llm", f"history {query}".strip())


if __name__ == "__main__":
    main()
