import threading

import pytest

from llmux_jupyter.backends.settings import Setting
from llmux_jupyter.engine.manager import ModelManager
from llmux_jupyter.errors import (
    InvalidParameter,
    ModelBusy,
    ModelLoadError,
    ModelNotLoaded,
    UnknownModel,
)
from llmux_jupyter.models.spec import Draft, DraftMethod, LoadOptions
from llmux_jupyter.types.values import Task


@pytest.fixture
def manager(catalog):
    return ModelManager(catalog)


def test_load_once_and_reuse(manager, echo_backend):
    first = manager.load("echo")
    assert manager.load("echo") is first
    with manager.using("echo") as model:
        assert model is first
    assert echo_backend.loads == 1
    assert first.estimate.ram == 1000
    assert first.device == "cpu"


def test_different_options_reload(manager, echo_backend):
    manager.load("echo")
    manager.load("echo", LoadOptions(settings={"n_ctx": 8}))
    assert echo_backend.loads == 2
    assert len(manager.loaded()) == 1


def test_settings_equal_once_converted_do_not_reload(manager, echo_backend, monkeypatch):
    declared = (Setting("n_ctx", int, "context", minimum=1), Setting("fail_load", bool, ""))
    monkeypatch.setattr(echo_backend, "accepted_settings", declared)
    first = manager.load("echo", LoadOptions(settings={"n_ctx": "4096"}))
    assert manager.load("echo", LoadOptions(settings={"n_ctx": 4096})) is first
    assert echo_backend.loads == 1
    manager.load("echo", LoadOptions(settings={"n_ctx": 2048}))
    assert echo_backend.loads == 2
    with pytest.raises(InvalidParameter, match="n_ctx"):
        manager.load("echo", LoadOptions(settings={"n_ctx": "many"}))
    assert [m.options.settings for m in manager.loaded()] == [{"n_ctx": 2048}]


def test_failed_reload_with_new_options_brings_the_old_load_back(manager, echo_backend):
    manager.load("echo", LoadOptions(settings={"n_ctx": 8}))
    with pytest.raises(ModelLoadError, match="injected load failure"):
        manager.load("echo", LoadOptions(settings={"fail_load": True}))
    assert [(m.name, m.options.settings) for m in manager.loaded()] == [("echo", {"n_ctx": 8})]
    assert manager.loaded()[0].backend.loaded


def test_a_draft_needs_a_backend_that_takes_its_kind(manager, catalog):
    manager.load("echo")
    with pytest.raises(InvalidParameter, match="echo backend cannot use a draft model"):
        manager.load("echo", LoadOptions(draft=catalog.draft("flaky")))
    with pytest.raises(InvalidParameter, match=r"draft method .* \(it takes: no drafts\)"):
        manager.load("echo", LoadOptions(draft=catalog.draft("prompt-lookup")))
    assert [m.options for m in manager.loaded()] == [LoadOptions()]


def test_draft_names_resolve_to_a_method_or_a_model(catalog):
    assert catalog.draft("prompt-lookup") == Draft(method=DraftMethod.PROMPT_LOOKUP)
    assert catalog.draft("prompt-lookup").kind == "prompt-lookup"
    model = catalog.draft("flaky")
    assert (model.kind, model.name, model.model) == ("model", "flaky", catalog.get("flaky"))
    with pytest.raises(UnknownModel, match="No model named 'nope'"):
        catalog.draft("nope")


def test_failed_load_leaves_nothing_and_reports(manager):
    events = []
    manager.events.subscribe(events.append)
    with pytest.raises(ModelLoadError, match="injected load failure"):
        manager.load("broken")
    assert manager.loaded() == []
    assert [e.kind for e in events] == ["loading", "error"]


def test_unload_and_errors(manager):
    manager.load("echo")
    manager.unload("echo")
    assert not manager.is_loaded("echo")
    with pytest.raises(ModelNotLoaded, match="'echo' is not loaded"):
        manager.unload("echo")
    with pytest.raises(UnknownModel):
        manager.unload("nope")


def test_busy_model_cannot_be_unloaded(manager):
    with manager.using("echo"):
        with pytest.raises(ModelBusy, match="busy generating"):
            manager.unload("echo")
        with pytest.raises(ModelBusy):
            manager.unload_all()
    assert manager.unload_all() == ["echo"]


def test_events_trace_the_life_of_a_model(manager):
    events = []
    unsubscribe = manager.events.subscribe(events.append)
    with manager.using("echo"):
        pass
    manager.unload("echo")
    unsubscribe()
    manager.load("echo")
    assert [e.kind for e in events] == [
        "loading",
        "loaded",
        "busy",
        "idle",
        "unloading",
        "unloaded",
    ]


def test_a_failing_listener_does_not_break_others(manager):
    seen = []
    manager.events.subscribe(lambda e: 1 / 0)
    manager.events.subscribe(seen.append)
    manager.load("echo")
    assert [e.kind for e in seen] == ["loading", "loaded"]


def test_use_sets_the_default(manager):
    assert manager.default_for(Task.CHAT) == "echo"
    manager.use("flaky")
    assert manager.default_for(Task.CHAT) == "flaky"
    with pytest.raises(ModelNotLoaded, match="No speech-to-text model"):
        manager.default_for(Task.TRANSCRIPTION)


def test_using_is_thread_safe(manager, echo_backend):
    held = [manager.using("echo") for _ in range(8)]
    threads = [threading.Thread(target=context.__enter__) for context in held]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert echo_backend.loads == 1
    assert manager.get_loaded("echo").busy == 8
    for context in held:
        context.__exit__(None, None, None)
    assert manager.get_loaded("echo").busy == 0
