"""Budgets, LRU eviction, pinning and keep-alive, on the echo backend with declared sizes."""

import json
import os
import threading
import time

import pytest

from llmux_jupyter.engine.budgets import DeviceBudget
from llmux_jupyter.engine.ledger import HostLedger, default_directory
from llmux_jupyter.engine.manager import ModelManager
from llmux_jupyter.errors import MemoryHeldElsewhere, OutOfMemoryBudget
from llmux_jupyter.models.catalog import Catalog

from ..conftest import echo_spec, held


@pytest.fixture
def catalog(tmp_path, model_file, echo_backend):
    gate = threading.Event()
    specs = [echo_spec(n, model_file, ram=400) for n in ("a", "b", "c")]
    specs += [
        echo_spec("big", model_file, ram=900),
        echo_spec("slow", model_file, ram=400, gate=gate),
    ]
    catalog = Catalog(tmp_path / "models.json", builtins=specs)
    catalog.gate = gate
    return catalog


@pytest.fixture
def manager(catalog):
    events = []
    manager = ModelManager(catalog, budgets={"cpu": DeviceBudget("cpu", 1000, 4000)})
    manager.events.subscribe(events.append)
    manager.seen = events
    return manager


def evictions(manager):
    return [(e.model, e.detail["reason"]) for e in manager.seen if e.kind == "evicted"]


def touch(manager, name):
    with manager.using(name):
        pass


def test_loading_past_the_budget_evicts_the_least_recently_used(manager):
    touch(manager, "a")
    touch(manager, "b")
    touch(manager, "a")  # b is now the least recently used
    manager.load("c")
    assert sorted(m.name for m in manager.loaded()) == ["a", "c"]
    assert evictions(manager) == [("b", "memory: c needs 400 B on cpu")]
    assert manager.used() == {"cpu": 800}


def test_pinned_models_are_never_evicted(manager):
    manager.load("a", pin=True)
    touch(manager, "b")
    manager.load("c")
    assert sorted(m.name for m in manager.loaded()) == ["a", "c"]
    with pytest.raises(OutOfMemoryBudget):
        manager.load("big")


def test_a_load_that_cannot_fit_is_refused_with_numbers_and_changes_nothing(manager):
    manager.load("a", pin=True)
    before = [(m.name, m.last_used) for m in manager.loaded()]
    with pytest.raises(OutOfMemoryBudget) as refused:
        manager.load("big")
    message = str(refused.value)
    assert "big needs 900 B on cpu" in message
    assert "only 600 B of the 1000 B budget is free" in message
    assert "a 400 B pinned" in message and "%config LLMux.memory_budget" in message
    assert [(m.name, m.last_used) for m in manager.loaded()] == before
    assert evictions(manager) == []


def test_eviction_never_happens_under_a_running_generation(manager, catalog):
    results = {}

    def generate():
        with manager.using("slow") as model:
            results["text"] = "".join(
                model.backend.generate(
                    [__import__("llmux_jupyter").Message("user", "one two three")],
                    __import__("llmux_jupyter").GenerationParams(),
                    threading.Event(),
                )
            )

    worker = threading.Thread(target=generate)
    worker.start()
    while not (manager.is_loaded("slow") and manager.get_loaded("slow").busy):
        time.sleep(0.01)
    touch(manager, "a")  # slow (busy) is the least recently used, but a is the only victim
    with pytest.raises(OutOfMemoryBudget, match="slow 400 B busy"):
        manager.load("big")
    manager.load("b")  # evicts the idle a, never the busy slow
    catalog.gate.set()
    worker.join()
    assert results["text"] == "one two three"
    assert evictions(manager) == [("a", "memory: b needs 400 B on cpu")]


def test_keep_alive_zero_unloads_right_after_use(manager):
    manager.load("a", keep_alive=0)
    assert manager.is_loaded("a")
    touch(manager, "a")
    assert not manager.is_loaded("a")
    assert evictions(manager) == [("a", "keep-alive 0: unloaded after use")]


def wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def test_keep_alive_expires_in_the_background(manager):
    manager.load("a", keep_alive="0.2s")
    manager.load("b", keep_alive=-1)
    assert wait_for(lambda: not manager.is_loaded("a"))
    assert evictions(manager) == [("a", "keep-alive 0s expired")]
    assert manager.is_loaded("b") and manager.get_loaded("b").expires_at is None


def test_keep_alive_waits_while_busy_and_restarts_after_use(manager, catalog):
    manager.load("slow", keep_alive=0.1)
    done = threading.Event()

    def generate():
        with manager.using("slow") as model:
            list(
                model.backend.generate(
                    [__import__("llmux_jupyter").Message("user", "x y")],
                    __import__("llmux_jupyter").GenerationParams(),
                    threading.Event(),
                )
            )
        done.set()

    worker = threading.Thread(target=generate)
    worker.start()
    time.sleep(0.3)  # well past the keep-alive: the model is busy, so it must stay
    assert manager.is_loaded("slow") and manager.get_loaded("slow").expires_at is None
    catalog.gate.set()
    worker.join()
    assert wait_for(lambda: not manager.is_loaded("slow"))


def test_pin_and_keep_alive_can_change_later(manager):
    manager.load("a")
    assert manager.get_loaded("a").keep_alive == 300.0
    manager.pin("a")
    assert manager.get_loaded("a").expires_at is None
    manager.pin("a", False)
    manager.set_keep_alive("a", 0)
    assert not manager.is_loaded("a")
    kinds = [e.kind for e in manager.seen]
    assert kinds[-3:] == ["changed", "changed", "evicted"]


def test_a_loaded_model_reloaded_with_keep_alive_zero_stays_until_its_next_use(manager):
    manager.load("a", keep_alive=0.05)
    model = manager.load("a", keep_alive=0)
    assert model is manager.get_loaded("a") and model.keep_alive == 0
    time.sleep(0.2)  # its old keep-alive deadline passes: 0 is not a deadline
    assert manager.is_loaded("a")
    touch(manager, "a")
    assert not manager.is_loaded("a") and model.unloaded
    assert (model.device, model.load_note, model.draft_totals()) == ("cpu", "", None)


def test_unpinning_with_keep_alive_zero_on_load_keeps_it_until_its_next_use(manager):
    manager.load("a", keep_alive=0, pin=True)
    manager.load("a", pin=False)
    assert manager.is_loaded("a")
    manager.pin("a", False)  # the command itself: idle and keep-alive 0, so it goes now
    assert not manager.is_loaded("a")


@pytest.fixture
def shared(catalog):
    """A manager on the host ledger of this test (``$LLMUX_RUNTIME_DIR``)."""
    return ModelManager(
        catalog, budgets={"cpu": DeviceBudget("cpu", 1000, 4000)}, ledger=HostLedger()
    )


def test_a_load_that_fits_only_without_the_other_kernels_is_refused_naming_them(
    shared, other_kernel
):
    shared.load("a")
    other_kernel.hold(held("smollm2", 700), notebook="/home/me/analysis.ipynb")
    with pytest.raises(MemoryHeldElsewhere) as refused:
        shared.load("b")  # even with a evicted, 400 + 700 > 1000
    message = str(refused.value)
    assert message.startswith(
        "b needs 400 B on cpu, but other kernels on this machine hold 700 B of the 1000 B "
        f"budget: notebook /home/me/analysis.ipynb (pid {other_kernel.pid}): smollm2 700 B."
    )
    assert "%llm unload NAME in that notebook" in message
    assert [m.name for m in shared.loaded()] == ["a"]  # nothing evicted for naught


def test_our_idle_models_make_room_beside_the_other_kernels(shared, other_kernel):
    seen = []
    shared.events.subscribe(seen.append)
    touch(shared, "a")
    other_kernel.hold(held("theirs", 300))
    shared.load("b")  # 400 + 400 + 300 > 1000: a goes
    assert [m.name for m in shared.loaded()] == ["b"]
    assert [(e.kind, e.model) for e in seen if e.kind == "evicted"] == [("evicted", "a")]


def test_a_model_too_big_for_our_budget_alone_gets_the_usual_refusal(shared, other_kernel):
    other_kernel.hold(held("theirs", 50))
    shared.load("big", pin=True)  # fits: 900 + 50
    with pytest.raises(OutOfMemoryBudget) as refused:
        shared.load("a")
    assert not isinstance(refused.value, MemoryHeldElsewhere)
    message = str(refused.value)
    assert "only 50 B of the 1000 B budget is free" in message
    assert f"other kernels hold notebook analysis.ipynb (pid {other_kernel.pid})" in message


def test_a_dead_kernels_models_stop_counting(shared, other_kernel):
    other_kernel.hold(held("smollm2", 700))
    with pytest.raises(MemoryHeldElsewhere):
        shared.load("a")
    other_kernel.stop()  # SIGKILL
    shared.load("a")
    assert shared.elsewhere == []
    assert not (default_directory() / f"{other_kernel.pid}.json").exists()


def test_loads_unloads_and_evictions_are_written_to_the_ledger(shared):
    entry = default_directory() / f"{os.getpid()}.json"

    def recorded():
        return [m["name"] for m in json.loads(entry.read_text())["models"]]

    shared.load("a")
    assert recorded() == ["a"]
    shared.load("b")
    assert recorded() == ["a", "b"]
    shared.load("c")  # evicts a
    assert recorded() == ["b", "c"]
    shared.unload_all()
    assert not entry.exists()
