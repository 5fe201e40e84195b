"""The history in real kernels with the real SmolLM2: a thread (and the notebook's default
thread) continues after a kernel restart with its earlier turns in the prompt; search, export
and --no-log; two kernels logging 100 answers each at once; a corrupt database."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from .kernel import LOAD_EXTENSION, Kernel, llmux_kernel, streamed_answer

NOTEBOOK = "/work/notebooks/trip planning.ipynb"
SMALL = "--temperature 0 --max-tokens 12"
LAST_SENT = "[(m.role, m.content) for m in llm.last.messages]"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("history-data")


@pytest.fixture(scope="module")
def notebook_kernel(tmp_path_factory, data_dir) -> Iterator[Kernel]:
    """A kernel that jupyter_server started for NOTEBOOK, SmolLM2 loaded."""
    env = {"JPY_SESSION_NAME": NOTEBOOK, "LLMUX_DATA_DIR": str(data_dir)}
    with llmux_kernel(tmp_path_factory.mktemp("history"), "%llm load smollm2", env) as kernel:
        yield kernel


def rows(data_dir: Path, where: str = "1", parameters=()) -> list[sqlite3.Row]:
    connection = sqlite3.connect(data_dir / "history.sqlite3")
    connection.row_factory = sqlite3.Row
    try:
        return connection.execute(f"SELECT * FROM exchanges WHERE {where}", parameters).fetchall()
    finally:
        connection.close()


def test_threads_continue_after_a_restart(notebook_kernel, data_dir, tmp_path):
    kernel = notebook_kernel
    questions = ["Name a city in France.", "Name a city in Italy.", "Name a city in Spain."]
    for number, question in enumerate(questions):
        run = kernel.run(
            f"%%llm {SMALL} --thread trip\n{question}", metadata={"cellId": f"c{number}"}
        )
        assert run.status == "ok", run.error
    assert kernel.run(f"%%llm {SMALL}\nSay hello.").status == "ok"  # the default thread
    answers = kernel.value("[t.assistant for t in llm.threads.get('trip').turns]")
    logged = rows(data_dir, "thread = 'trip' ORDER BY id")
    assert [(r["prompt"], r["answer"], r["cell"]) for r in logged] == list(
        zip(questions, answers, ["c0", "c1", "c2"], strict=True)
    )
    assert {r["notebook"] for r in logged} == {NOTEBOOK}

    # %llm history finds an answer by a word in it
    word = max((w.strip(".,!?*") for w in answers[1].split()), key=len)
    found = kernel.run(f"%llm history {word}")
    assert found.status == "ok", found.error
    assert f"\n{logged[1]['id']} " in found.displays[0]["content"]["data"]["text/plain"]

    # --no-log leaves no row
    before = len(rows(data_dir))
    assert kernel.run(f"%%llm {SMALL} --no-log --thread quiet\nHi.").status == "ok"
    assert len(rows(data_dir)) == before

    kernel.restart()
    assert kernel.run(LOAD_EXTENSION).status == "ok"
    assert kernel.value("llm.threads.names()") == []  # nothing in memory: all from the log
    run = kernel.run(f"%%llm {SMALL} --thread trip\nWhich of them is the largest?")
    streamed_answer(run)
    sent = kernel.value(LAST_SENT)
    earlier = [(role, text) for q, a in zip(questions, answers, strict=True)
               for role, text in (("user", q), ("assistant", a))]  # fmt: skip
    assert sent == [*earlier, ("user", "Which of them is the largest?")]
    assert kernel.run(f"%%llm {SMALL}\nAnd goodbye.").status == "ok"
    assert kernel.value(LAST_SENT)[0] == ("user", "Say hello.")  # this notebook's default
    assert kernel.run(f"%%llm {SMALL} --thread trip --new\nStart over.").status == "ok"
    assert kernel.value(LAST_SENT) == [("user", "Start over.")]

    # the export round-trips: the messages the model was sent, one a line
    target = tmp_path / "trip.jsonl"
    assert kernel.run(f"%llm history export trip '{target}'").status == "ok"
    exported = [json.loads(line) for line in target.read_text().splitlines()]
    answer = kernel.value("llm.last.text")
    assert [(m["role"], m["content"]) for m in exported] == [
        ("user", "Start over."), ("assistant", answer)
    ]  # fmt: skip


def test_two_kernels_log_at_once(notebook_kernel, data_dir, tmp_path):
    """Each kernel answers once with the real model, then logs that answer 100 times the way
    every cell does, both at once (a file is the starting gun): 200 rows, no error. (Two
    kernels generating 200 answers on this 2-core machine take minutes: the model's threads
    fight for the cores; the writes are what is tested.)"""
    go = tmp_path / "go"
    cell = (
        "import dataclasses, time, pathlib\n"
        "answer = llm.chat('Say hi.', thread='{name}', temperature=0, max_tokens=4, log=False)\n"
        f"pathlib.Path({str(tmp_path)!r}, '{{name}}').touch()\n"
        f"while not pathlib.Path({str(go)!r}).exists(): time.sleep(0.001)\n"
        "for i in range(100):\n"
        "    llm.history.log_chat(dataclasses.replace(answer, prompt=f'Say {{i}}.'))\n"
        "    time.sleep(0.002)\n"
    )
    env = {"LLMUX_DATA_DIR": str(data_dir)}
    with llmux_kernel(tmp_path / "other", "%llm load smollm2", env) as other:
        runs = {}

        def answer(kernel: Kernel, name: str) -> None:
            runs[name] = kernel.run(cell.format(name=name))

        workers = [threading.Thread(target=answer, args=pair)
                   for pair in ((notebook_kernel, "racer-a"), (other, "racer-b"))]  # fmt: skip
        for worker in workers:
            worker.start()
        while not all((tmp_path / name).exists() for name in ("racer-a", "racer-b")):
            time.sleep(0.01)  # both answered: start them together
        go.touch()
        for worker in workers:
            worker.join()
    for run in runs.values():
        assert run.status == "ok", run.error
        assert run.stderr == "" and run.stdout == ""
    logged = rows(data_dir, "thread IN ('racer-a', 'racer-b')")
    assert Counter(r["thread"] for r in logged) == {"racer-a": 100, "racer-b": 100}
    a = [r["created"] for r in logged if r["thread"] == "racer-a"]
    b = [r["created"] for r in logged if r["thread"] == "racer-b"]
    assert min(a) < max(b) and min(b) < max(a)  # they wrote in the same stretch of time
    connection = sqlite3.connect(data_dir / "history.sqlite3")
    assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_corrupt_database_never_breaks_a_chat(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "history.sqlite3").write_bytes(b"not a database at all\n" * 200)
    env = {"LLMUX_DATA_DIR": str(data)}
    with llmux_kernel(tmp_path / "config", "%llm load smollm2", env) as kernel:
        first = kernel.run("%%llm --max-tokens 24 --thread broken\nDescribe the sea.")
        second = kernel.run("%%llm --max-tokens 24 --thread broken\nAnd the sky?")
        for run in (first, second):
            streamed_answer(run)
        (warning,) = first.stderr.splitlines()
        assert warning.startswith("llmux: history logging is off: cannot open the history")
        assert "file is not a database" in warning
        assert second.stderr == ""
        assert kernel.value("len(llm.threads.get('broken').turns)") == 2
    assert (data / "history.sqlite3").read_bytes() == b"not a database at all\n" * 200
