from importlib.metadata import EntryPoint

import pytest

from llmux_jupyter.backends import registry as registry_module
from llmux_jupyter.backends.base import Backend
from llmux_jupyter.backends.registry import BackendRegistry, register_backend, registry
from llmux_jupyter.errors import BackendNotInstalled, UnknownBackend
from llmux_jupyter.types.values import Task


class NeedsMissingLibrary(Backend):
    tasks = frozenset({Task.CHAT})
    requires = ("no_such_library_xyz",)
    extra = "xyz"

    def load(self) -> None:  # pragma: no cover - never loadable
        raise AssertionError


def test_decorator_registers_and_status_names_the_extra():
    register_backend("missing-lib")(NeedsMissingLibrary)
    try:
        assert "missing-lib" in registry.names()
        assert registry.status("missing-lib").status == (
            "Not Installed: pip install llmux-jupyter[xyz]"
        )
        with pytest.raises(BackendNotInstalled, match=r"pip install llmux-jupyter\[xyz\]"):
            registry.get("missing-lib")
    finally:
        registry.remove("missing-lib")


def test_unknown_backend_lists_the_known_ones():
    with pytest.raises(UnknownBackend, match=r"Known backends: .*llamacpp"):
        registry.get("nope")


class NeedsJson(Backend):
    tasks = frozenset({Task.CHAT, Task.EMBEDDING})
    requires = ("json",)

    def load(self) -> None:
        pass


def test_installed_backend_is_running_until_it_errors():
    fresh = BackendRegistry()
    fresh.add("json-backend", NeedsJson)
    assert fresh.get("json-backend") is NeedsJson
    assert fresh.status("json-backend").tasks == ("chat", "embedding")
    assert fresh.status("json-backend").status == "Running"
    fresh.mark_error("json-backend", "import failed (boom)")
    assert fresh.status("json-backend").status == "Error: import failed (boom)"
    fresh.add("json-backend", NeedsJson)  # registering again clears the error
    assert fresh.status("json-backend").status == "Running"


def test_entry_point_plugins_are_discovered(monkeypatch):
    good = EntryPoint(
        "plugin", f"{__name__}:NeedsMissingLibrary", registry_module.ENTRY_POINT_GROUP
    )
    bad = EntryPoint("broken", "no_such_module_xyz:Backend", registry_module.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry_module, "entry_points", lambda group: [good, bad])
    monkeypatch.syspath_prepend(str(__import__("pathlib").Path(__file__).parents[3]))
    fresh = BackendRegistry()
    assert "plugin" in fresh.names()
    assert fresh.status("plugin").status.startswith("Not Installed")
    assert "broken" not in fresh.names()
    assert "plugin failed to import" in fresh._errors["broken"]
