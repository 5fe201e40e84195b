"""Test-session set-up: folders set the markers; registrations go to a throwaway folder."""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmux_jupyter.engine.timers import DeadlineTimer

MARKERS = ("unit", "integration", "browser", "notebooks", "docs")
_SESSION_CACHE = os.path.join(tempfile.gettempdir(), f"llmux-test-cache-{os.getpid()}")
# Every keep-alive timer made in this process (the in-process LLMs of the tests), weakly.
_TIMERS: list[weakref.ref[DeadlineTimer]] = []
_make_timer = DeadlineTimer.__init__


def _tracked_timer(timer: DeadlineTimer, *args, **kwargs) -> None:
    _make_timer(timer, *args, **kwargs)
    _TIMERS.append(weakref.ref(timer))


def _cancel_timers(made: list[weakref.ref[DeadlineTimer]]) -> None:
    for ref in made:
        if (timer := ref()) is not None:
            timer.cancel_all()


def pytest_configure(config: pytest.Config) -> None:
    DeadlineTimer.__init__ = _tracked_timer  # type: ignore[method-assign]
    # Kernels, notebooks and subprocesses inherit these: nothing writes the user's ~/.jupyter
    # or the history in the user's Jupyter data folder.
    if "LLMUX_CONFIG_DIR" not in os.environ:
        os.environ["LLMUX_CONFIG_DIR"] = tempfile.mkdtemp(prefix="llmux-test-config-")
    if "LLMUX_DATA_DIR" not in os.environ:
        os.environ["LLMUX_DATA_DIR"] = tempfile.mkdtemp(prefix="llmux-test-data-")
    # Converted models (GGUF -> transformers, ~0.5 GB) are cached once per session, then
    # removed; set LLMUX_CACHE_DIR yourself to keep them between sessions.
    if "LLMUX_CACHE_DIR" not in os.environ:
        os.environ["LLMUX_CACHE_DIR"] = _SESSION_CACHE
    # The session's kernels share one memory ledger, apart from the user's (and other runs').
    if "LLMUX_RUNTIME_DIR" not in os.environ:
        os.environ["LLMUX_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="llmux-test-runtime-")


def pytest_unconfigure(config: pytest.Config) -> None:
    _cancel_timers(_TIMERS)
    DeadlineTimer.__init__ = _make_timer  # type: ignore[method-assign]
    if os.environ.get("LLMUX_CACHE_DIR") == _SESSION_CACHE:
        shutil.rmtree(_SESSION_CACHE, ignore_errors=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for folder in Path(str(item.fspath)).parts:
            if folder in MARKERS:
                item.add_marker(folder)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Each tutorial's kernel starts as a new user's would: registrations and history of its
    own, not those the session's other kernels left (caches stay shared: they only save time)."""
    notebook = str(item.fspath)
    if notebook.endswith(".ipynb") and notebook != os.environ.get("_LLMUX_TEST_NOTEBOOK"):
        os.environ["_LLMUX_TEST_NOTEBOOK"] = notebook
        os.environ["LLMUX_CONFIG_DIR"] = tempfile.mkdtemp(prefix="llmux-test-config-")
        os.environ["LLMUX_DATA_DIR"] = tempfile.mkdtemp(prefix="llmux-test-data-")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """After each test file (its fixtures torn down): collect its garbage, then freeze what is
    left (modules imported, the session's fixtures) out of later collections. An unload's
    full gc.collect then walks only what the current file made: in this process, whose heap
    every test grows, each one took ~0.45 s (51 s of the unit tests' 94)."""
    yield
    if nextitem is None or nextitem.path != item.path:
        gc.collect()
        gc.freeze()


@pytest.fixture(autouse=True)
def _keep_alive_ends_with_the_test() -> Iterator[None]:
    """Models a test loaded in-process are not unloaded minutes later by their keep-alive:
    each such unload runs a full gc.collect, which (hundreds of them, over the session's big
    heap) stalled later tests and held the session's exit for minutes. The session's and
    modules' own LLMs, made before the test, keep their timers."""
    made_before = len(_TIMERS)
    yield
    _cancel_timers(_TIMERS[made_before:])


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Each in-process test gets its own registration store, history and memory ledger."""
    monkeypatch.setenv("LLMUX_CONFIG_DIR", str(tmp_path_factory.mktemp("llmux-config")))
    monkeypatch.setenv("LLMUX_DATA_DIR", str(tmp_path_factory.mktemp("llmux-data")))
    monkeypatch.setenv("LLMUX_RUNTIME_DIR", str(tmp_path_factory.mktemp("llmux-runtime")))
