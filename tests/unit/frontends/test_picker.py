"""The picker's layout, formatting and event handling, driving the echo backend."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from dataclasses import replace

import pytest
from IPython.core.interactiveshell import InteractiveShell

import llmux_jupyter
from llmux_jupyter.api import LLM
from llmux_jupyter.engine.budgets import DeviceBudget
from llmux_jupyter.engine.events import ModelEvent
from llmux_jupyter.frontends import magics
from llmux_jupyter.frontends.magics import LLMuxMagics
from llmux_jupyter.frontends.picker_view import Activity, badge, next_activity
from llmux_jupyter.frontends.status import ModelStatus
from llmux_jupyter.models.catalog import Catalog
from llmux_jupyter.models.spec import ModelSpec
from llmux_jupyter.types.values import Task

from ..conftest import echo_spec, held

widgets = pytest.importorskip("ipywidgets")
from llmux_jupyter.frontends.picker import ModelPicker, ModelRow, _tree  # noqa: E402


@pytest.fixture
def picker(fake_llm):
    picker = ModelPicker(fake_llm)
    yield picker
    picker.close()
    fake_llm.unload(all=True)


def test_the_package_makes_the_picker_of_an_llm(fake_llm):
    """``llmux_jupyter.picker()`` is the front ends' constructor: the API knows no widgets."""
    made = llmux_jupyter.picker(fake_llm)
    assert isinstance(made, ModelPicker) and made.llm is fake_llm
    made.close()


def wait_for(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def html_of(picker: ModelPicker) -> str:
    return "\n".join(w.value for w in _tree([picker]) if isinstance(w, widgets.HTML))


# -- formatting ----------------------------------------------------------------
STATUS = ModelStatus("m", "echo", "chat", "file", 10, loaded=False, is_default=False)
LOADED = ModelStatus(
    "m", "echo", "chat", "file", 10, loaded=True, is_default=True, device="cuda:0",
    state="idle", estimate=2**20, measured=2**19, keep_alive=300.0, expires_at=0.0,
)  # fmt: skip


@pytest.mark.parametrize(
    ("status", "activity", "text", "progress"),
    [
        (STATUS, None, "not loaded", None),
        (STATUS, Activity("loading", 0.25, 2**20), "loading (about 1.0 MiB)…", 0.25),
        (STATUS, Activity("error", message="bad <file>"), "error: bad &lt;file&gt;", None),
        (STATUS, Activity("evicted", message="keep-alive 5m expired"), "evicted: keep-alive", None),
        (LOADED, None, "loaded on cuda:0</span> · idle · unloads at", None),
        (LOADED, Activity("error", message="stale"), "estimate 1.0 MiB, measured 512.0 KiB", None),
        (
            replace(LOADED, state="busy", pinned=True),
            Activity("generating", tokens=12, tokens_per_second=30.4),
            "generating: 12 tokens, 30 tok/s</span> · pinned",
            None,
        ),
    ],
)
def test_badge_says_the_state_with_theme_colours_only(status, activity, text, progress):
    shown = badge(status, activity)
    assert text in shown.html
    assert shown.progress == progress
    assert "var(--jp-" in shown.html
    assert not re.search(r"#[0-9a-fA-F]{3}|rgb\(", shown.html)


def test_activity_follows_the_events():
    steps = [
        ("loading", {"progress": 0.0, "estimate": 5}, Activity("loading", 0.0, 5)),
        ("error", {"message": "boom"}, Activity("error", message="boom")),
        ("loaded", {}, None),
        ("busy", {}, None),
        ("generating", {"tokens": 3}, Activity("generating", tokens=3)),
        ("changed", {"pinned": True}, Activity("generating", tokens=3)),
        ("idle", {}, None),
        ("evicted", {"reason": "memory"}, Activity("evicted", message="memory")),
    ]
    activity = None
    for kind, detail, expected in steps:
        activity = next_activity(ModelEvent(kind, "m", detail), activity)
        assert activity == expected, kind


# -- layout --------------------------------------------------------------------
def test_models_are_grouped_by_task_with_backend_size_and_state(tmp_path, model_file, echo_backend):
    speech = ModelSpec("voice", "echo", Task.SPEECH, echo_spec("x", model_file).source)
    llm = LLM(Catalog(tmp_path / "m.json", builtins=[echo_spec("echo", model_file), speech]))
    picker = ModelPicker(llm)
    try:
        titles = [group.children[0].value for group in picker.groups_area.children]
        assert "<b>Chat</b>" in titles[0] and "%%llm" in titles[0]
        assert "<b>Text-to-speech</b>" in titles[1] and "say" in titles[1]
        grid = picker.groups_area.children[1].children[1]
        row = picker.rows["voice"]
        assert grid.children[-len(row.cells) :] == tuple(row.cells)
        assert "echo · 1000 B" in row.about.value
        assert "not loaded" in row.badge.value
        assert row.device.options[:2] == ("auto", "cpu")
        assert row.use.description == "Default"  # the only text-to-speech model
        assert "llmux-picker" in picker._dom_classes
        assert {"llmux-picker-load", "llmux-model-voice"} <= set(row.load._dom_classes)
    finally:
        picker.close()


def test_a_model_that_takes_images_says_so_under_its_name(
    tmp_path, model_file, echo_backend, monkeypatch
):
    monkeypatch.setattr(
        echo_backend, "takes_images", classmethod(lambda cls, spec: spec.name == "seeing")
    )
    specs = [echo_spec("seeing", model_file), echo_spec("blind", model_file)]
    picker = ModelPicker(LLM(Catalog(tmp_path / "m.json", builtins=specs)))
    try:
        assert "echo · 1000 B · takes images" in picker.rows["seeing"].about.value
        assert "images" not in picker.rows["blind"].about.value
    finally:
        picker.close()


def test_no_hard_coded_colours_anywhere(picker, fake_llm):
    picker.rows["echo"].load.click()
    picker.rows["broken"].load.click()
    text = html_of(picker)
    assert "var(--jp-" in text and "error:" in text
    assert not re.search(r"#[0-9a-fA-F]{3}|rgb\(|color:\s*[a-z]+[;']", text)


# -- buttons -------------------------------------------------------------------
def test_buttons_load_pin_use_and_unload(picker, fake_llm):
    row = picker.rows["echo"]
    assert row.unload.disabled and not row.load.disabled
    row.keep_alive.value = "-1"
    row.load.click()
    (model,) = fake_llm.ps()
    assert model.keep_alive is None and model.device == "cpu"
    assert "loaded on cpu" in row.badge.value and "kept until unloaded" in row.badge.value
    assert row.load.disabled and not row.unload.disabled and row.device.disabled
    models_bar = picker.memory_area.children[0].children[1]
    assert models_bar.value == model.estimate.total
    row.pin.value = True
    assert model.pinned and "pinned" in row.badge.value
    picker.rows["flaky"].use.click()
    assert fake_llm.manager.default_for(Task.CHAT) == "flaky"
    assert picker.rows["flaky"].use.description == "Default" and row.use.description == "Use"
    row.unload.click()
    assert fake_llm.ps() == [] and "not loaded" in row.badge.value
    assert models_bar.value == 0 and picker.error == ""


def test_pin_before_loading_is_a_choice_for_load(picker, fake_llm):
    row = picker.rows["echo"]
    row.pin.value = True
    assert fake_llm.ps() == []
    row.load.click()
    assert fake_llm.ps()[0].pinned and row.pin.value


def test_a_failed_load_shows_in_the_widget_and_changes_nothing(picker, fake_llm):
    picker.rows["echo"].load.click()
    picker.rows["broken"].load.click()
    assert picker.error.startswith("Load broken: ModelLoadError: Could not load 'broken'")
    assert picker.error_area.layout.display == "" and "injected" in picker.error_area.value
    assert "error: Could not load" in picker.rows["broken"].badge.value
    assert [m.name for m in fake_llm.ps()] == ["echo"]
    picker.rows["broken"].use.click()  # the next action clears the error
    assert picker.error == "" and picker.error_area.layout.display == "none"


def test_a_refusal_by_the_budget_is_shown_and_evicts_nothing(picker, fake_llm):
    picker.rows["echo"].pin.value = True
    picker.rows["echo"].load.click()
    fake_llm.manager.budgets = {"cpu": DeviceBudget("cpu", 1500, 10**9)}
    picker.rows["flaky"].load.click()
    assert "OutOfMemoryBudget: flaky needs 1000 B on cpu" in picker.error
    assert "error: flaky needs" in picker.rows["flaky"].badge.value
    assert [m.name for m in fake_llm.ps()] == ["echo"]


def test_busy_unload_is_refused_in_the_widget(tmp_path, model_file, echo_backend):
    gate = threading.Event()
    llm = LLM(Catalog(tmp_path / "m.json", builtins=[echo_spec("gated", model_file, gate=gate)]))
    picker = ModelPicker(llm)
    row = picker.rows["gated"]
    worker = threading.Thread(target=llm.chat, args=("one two three",), kwargs={"model": "gated"})
    worker.start()
    try:
        assert wait_for(lambda: "busy" in row.badge.value)
        row.unload.click()
        assert "ModelBusy" in picker.error and llm.manager.is_loaded("gated")
    finally:
        gate.set()
        worker.join()
    assert wait_for(lambda: "idle" in row.badge.value)
    picker.close()
    llm.unload(all=True)


# -- live updates --------------------------------------------------------------
def test_changes_from_other_threads_and_the_timer_show_live(picker, fake_llm):
    row = picker.rows["echo"]
    worker = threading.Thread(target=fake_llm.load, args=("echo",), kwargs={"keep_alive": -1})
    worker.start()
    worker.join()
    assert "loaded on cpu" in row.badge.value
    fake_llm.keep_alive("echo", 0.05)  # the keep-alive timer thread unloads it
    assert wait_for(lambda: "evicted: keep-alive" in row.badge.value)
    assert row.unload.disabled and not row.load.disabled
    fake_llm.use("flaky")  # what %llm use does
    # the timer thread may still be drawing the eviction: it draws this event too, after
    assert wait_for(lambda: picker.rows["flaky"].use.description == "Default")
    assert picker.rows["echo"].use.description == "Use"


def test_catalog_and_budget_changes_redraw(picker, fake_llm, model_file):
    fake_llm.register("added", backend="echo", path=str(model_file))
    assert "added" in picker.rows
    row = picker.rows["added"]
    fake_llm.unregister("added")
    assert "added" not in picker.rows and row.load.comm is None
    fake_llm.config.memory_budget = "cpu=1MiB"
    assert picker.memory_area.children[0].children[1].max == 2**20


def test_the_memory_bars_show_the_other_kernels_share(fake_llm, other_kernel):
    fake_llm.config.memory_budget = "cpu=10KiB"
    other_kernel.hold(held("theirs", 4096), notebook="analysis.ipynb")
    picker = ModelPicker(fake_llm)
    try:
        text, models, others, _ = picker.memory_area.children[0].children
        assert "other kernels 4.0 KiB" in text.value
        assert (others.value, others.max, models.value) == (4096.0, 10240.0, 0.0)
        fake_llm.load("echo")  # our 1000 B and their 4 KiB
        assert models.value == 1000.0 and others.value == 4096.0
    finally:
        picker.close()
        fake_llm.unload(all=True)


def test_two_pickers_stay_in_sync_and_close_unsubscribes(fake_llm):
    bus = fake_llm.manager.events
    before = len(bus)
    first, second = ModelPicker(fake_llm), ModelPicker(fake_llm)
    assert len(bus) == before + 2
    first.rows["echo"].load.click()
    assert "loaded on cpu" in second.rows["echo"].badge.value
    second.rows["echo"].unload.click()
    assert "not loaded" in first.rows["echo"].badge.value
    first.close()
    assert len(bus) == before + 1
    assert all(w.comm is None for w in _tree([first]))
    fake_llm.load("echo")  # the closed picker ignores it, the open one follows
    assert "loaded on cpu" in second.rows["echo"].badge.value
    second.close()
    assert len(bus) == before
    fake_llm.unload(all=True)


def test_an_event_redraws_only_its_row(picker, fake_llm, monkeypatch):
    shown = []
    original = ModelRow.show
    monkeypatch.setattr(
        ModelRow, "show", lambda self, *a: (shown.append(self.spec.name), original(self, *a))
    )
    fake_llm.load("echo")
    assert set(shown) == {"echo"}


def test_events_during_a_redraw_are_coalesced_and_never_wait(picker, fake_llm, monkeypatch):
    """One thread draws (slowly); another emits many events: it does not wait, and the drawing
    thread draws the row once more afterwards, with the latest state."""
    drawing, release = threading.Event(), threading.Event()
    shown = []
    original = ModelRow.show

    def slow_show(self, status, activity):
        shown.append(activity)
        if len(shown) == 1:
            drawing.set()
            release.wait(10)
        original(self, status, activity)

    monkeypatch.setattr(ModelRow, "show", slow_show)
    bus = fake_llm.manager.events
    drawer = threading.Thread(target=bus.emit, args=("busy", "echo"))
    drawer.start()
    assert drawing.wait(10)
    emitter = threading.Thread(
        target=lambda: [bus.emit("generating", "echo", tokens=n) for n in range(1, 51)]
    )
    emitter.start()
    emitter.join(10)
    assert not emitter.is_alive()  # it did not wait for the drawing thread
    assert len(shown) == 1
    release.set()
    drawer.join(10)
    assert [a.tokens for a in shown[1:]] == [50]


def test_text_plain_lists_the_states_and_the_widget_view_stays(picker, fake_llm):
    fake_llm.load("echo", pin=True)
    bundle = picker._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == picker.model_id
    lines = bundle["text/plain"].splitlines()
    assert lines[0].startswith("LLMux model picker") and lines[1].split()[0] == "model"
    rows = {line.split()[0]: line for line in lines[3:]}
    assert re.search(r"chat\s+echo\s+loaded on cpu · idle · pinned", rows["echo"])
    assert "not loaded" in rows["flaky"]


# -- entry points --------------------------------------------------------------
def test_percent_llm_picker_displays_one(fake_llm, monkeypatch):
    shown = []
    monkeypatch.setattr(magics, "display", shown.append)
    shell = InteractiveShell.instance()
    shell.register_magics(LLMuxMagics(shell, fake_llm))
    shell.run_line_magic("llm", "picker")
    (picker,) = shown
    assert isinstance(picker, ModelPicker) and "echo" in picker.rows
    picker.close()


def test_load_ext_does_not_import_ipywidgets():
    code = (
        "import sys\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "InteractiveShell.instance().run_line_magic('load_ext', 'llmux_jupyter')\n"
        "assert 'llmux_jupyter.frontends.magics' in sys.modules\n"
        "print('ipywidgets' in sys.modules, 'llmux_jupyter.frontends.picker' in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["False", "False"]
