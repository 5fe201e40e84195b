"""Several notebooks on one machine, one user: real kernels sharing the registrations file, the
caches (GGUF conversions, map answers) and the host memory ledger.

Two kernels start once for the module ("early" first, then "late"), with the same config,
cache and runtime folders and the notebook paths a Jupyter server would give them; a third
is started to be killed with SIGKILL. Cells meant to run "at once" meet at a file barrier
first, so they really overlap.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from llmux_jupyter.backends.gguf_conversion import cached_conversion, conversion_directory

from .kernel import CellRun, Kernel, llmux_kernel

KILL_WAIT_S = 300
# A rendezvous: each cell marks itself ready, then waits for the other one.
BARRIER = """
import pathlib as _p, time as _t
_gate = _p.Path({gate!r}); _gate.mkdir(parents=True, exist_ok=True); (_gate / {me!r}).touch()
while len(list(_gate.iterdir())) < 2:
    _t.sleep(0.005)
"""


@pytest.fixture(scope="module")
def user(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The folders one user's kernels share."""
    root = tmp_path_factory.mktemp("one-user")
    return {name: root / name for name in ("config", "cache", "runtime", "gates")}


def notebook_kernel(user: dict[str, Path], notebook: str) -> Iterator[Kernel]:
    env = {
        "LLMUX_CACHE_DIR": str(user["cache"]),
        "LLMUX_RUNTIME_DIR": str(user["runtime"]),
        "JPY_SESSION_NAME": notebook,  # what jupyter_server sets for a notebook's kernel
    }
    with llmux_kernel(user["config"], env=env) as kernel:
        yield kernel


@pytest.fixture(scope="module")
def early(user: dict[str, Path]) -> Iterator[Kernel]:
    yield from notebook_kernel(user, "/home/me/early.ipynb")


@pytest.fixture(scope="module")
def late(user: dict[str, Path], early: Kernel) -> Iterator[Kernel]:
    yield from notebook_kernel(user, "/home/me/late.ipynb")


@pytest.fixture
def victim(user: dict[str, Path]) -> Iterator[Kernel]:
    yield from notebook_kernel(user, "/home/me/victim.ipynb")


def at_once(user: dict[str, Path], gate: str, cells: dict[Kernel, str]) -> list[CellRun]:
    """Run one cell in each kernel, meeting at a barrier first; their runs, in order."""
    assert len(cells) == 2
    prefixed = [
        (kernel, BARRIER.format(gate=str(user["gates"] / gate), me=str(index)) + cell)
        for index, (kernel, cell) in enumerate(cells.items())
    ]
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda pair: pair[0].run(pair[1]), prefixed))
    for run in runs:
        assert run.status == "ok", run.error
    return runs


def wait_until_dead(pid: int) -> None:
    """Until the killed process is gone, or a zombie its parent (here) has not reaped."""
    deadline = time.monotonic() + 30
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        assert time.monotonic() < deadline, f"process {pid} outlived SIGKILL"
        time.sleep(0.01)


def stored_names(user: dict[str, Path]) -> list[str]:
    data = json.loads((user["config"] / "models.json").read_text())
    return sorted(model["name"] for model in data["models"])


def test_registrations_of_two_kernels_are_all_kept(early, late, user, smollm2_path):
    for kernel, names in ((late, ["late-1", "late-2"]), (early, ["early-1", "early-2"])):
        for name in names:
            run = kernel.run(f"%llm register {name} --backend llamacpp --path {smollm2_path}")
            assert run.status == "ok", run.error
    assert stored_names(user) == ["early-1", "early-2", "late-1", "late-2"]
    listed = late.run("%llm list")  # the early kernel's registrations, without a restart
    assert listed.status == "ok" and "early-2" in listed.shown_text
    assert late.run("%llm use early-1").status == "ok"
    assert early.run("%llm unregister late-2").status == "ok"
    assert "late-2" not in late.value("[spec.name for spec in llm.models()]")


def test_registrations_at_the_same_moment_are_all_kept(early, late, user, smollm2_path):
    register = (
        "for _i in range(25):\n"
        f"    llm.register(f'{{_who}}-{{_i}}', backend='llamacpp', path={str(smollm2_path)!r})\n"
    )
    at_once(user, "register", {early: "_who = 'a'\n" + register, late: "_who = 'b'\n" + register})
    together = [name for name in stored_names(user) if name[:2] in ("a-", "b-")]
    assert len(together) == 50
    assert all(name in early.value("llm.manager.catalog.names()") for name in together)


def test_map_answers_written_at_once_are_all_kept(early, late, user):
    write = (
        "from llmux_jupyter.engine.map_cache import AnswerCache\n"
        "from llmux_jupyter.types.batch import BatchAnswer\n"
        "_cache = AnswerCache()\n"
        "for _i in range(200):\n"
        "    _cache.put(f'{_who}-{_i}', BatchAnswer(0, f'answer {_i}', 3, 4))\n"
    )
    at_once(user, "map", {early: "_who = 'a'\n" + write, late: "_who = 'b'\n" + write})
    keys = [f"{who}-{index}" for who in "ab" for index in range(200)]
    assert late.value(f"len(_cache.get({keys!r}))") == 400
    with sqlite3.connect(user["cache"] / "map" / "answers.sqlite3") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_load_that_fits_only_without_the_other_kernels_models_is_refused(early, late):
    run = late.run("%llm load smollm2")
    assert run.status == "ok", run.error
    estimate, measured = late.value("[(m.estimate.ram, m.measured.ram) for m in llm.ps()][0]")
    one = max(estimate, measured)  # what the ledger counts for it
    assert estimate > one // 2  # so that a budget of 1.5 of them fits one SmolLM2, not two
    for kernel in (early, late):
        kernel.run(f"%config LLMux.memory_budget = 'cpu={one * 3 // 2}'")
    refused = early.run("%llm load smollm2")
    assert refused.status == "error"
    assert refused.error["ename"] == "MemoryHeldElsewhere"
    message = refused.error["evalue"]
    late_pid = late.value("__import__('os').getpid()")
    assert f"notebook /home/me/late.ipynb (pid {late_pid}): smollm2" in message
    assert "%llm unload NAME in that notebook" in message
    assert early.value("[m.name for m in llm.ps()]") == []
    everything = early.run("%llm ps --all")
    row = next(line for line in everything.shown_text.splitlines() if "late.ipynb" in line)
    assert str(late_pid) in row and "smollm2" in row
    assert late.run("%llm unload smollm2").status == "ok"
    loaded = early.run("%llm load smollm2")
    assert loaded.status == "ok", loaded.error
    assert early.run("%llm unload smollm2").status == "ok"
    for kernel in (early, late):
        kernel.run("%config LLMux.memory_budget = ''")


def test_a_kernel_killed_mid_conversion_leaves_nothing_trusted_and_holds_nothing(
    early, late, victim, user, smollm2_path, monkeypatch
):
    monkeypatch.setenv("LLMUX_CACHE_DIR", str(user["cache"]))
    assert victim.run("%llm load smollm2").status == "ok"
    pid = victim.value("__import__('os').getpid()")
    assert pid in early.value("[kernel.pid for kernel in llm.elsewhere()]")
    target = conversion_directory(smollm2_path, "float32")
    victim.client.execute("%llm load smollm2-hf")  # ~20 s of dequantising, then the writing
    deadline = time.monotonic() + KILL_WAIT_S
    while not list(target.parent.glob(f".{target.name}.*")):  # its temporary folder
        assert time.monotonic() < deadline, "the conversion never started writing"
        time.sleep(0.005)
    os.kill(pid, signal.SIGKILL)
    wait_until_dead(pid)
    assert cached_conversion(smollm2_path, "float32") is None
    assert list(target.parent.glob(f".{target.name}.*"))  # what it left half-written
    # Its ledger entry stops counting, and is cleaned away by the next reader.
    assert pid not in early.value("[kernel.pid for kernel in llm.elsewhere()]")
    assert not (user["runtime"] / "llmux-memory" / f"{pid}.json").exists()

    # Two kernels load the same model from the same GGUF at once: one conversion.
    runs = at_once(user, "convert", {early: "%llm load smollm2-hf", late: "%llm load smollm2-hf"})
    notes = [run.stdout for run in runs]
    assert sum("GGUF converted and cached as float32" in note for note in notes) == 1, notes
    assert all("GGUF converted" in note or "GGUF cached" in note for note in notes), notes
    assert cached_conversion(smollm2_path, "float32") == target
    assert not list(target.parent.glob(f".{target.name}.*"))  # the leftover was removed
    answer = late.run("%%llm -m smollm2-hf --max-tokens 4 --temperature 0\nSay hi.")
    assert answer.status == "ok", answer.error
    for kernel in (early, late):
        assert kernel.run("%llm unload smollm2-hf").status == "ok"
