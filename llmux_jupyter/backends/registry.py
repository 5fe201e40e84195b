"""Backend classes by name: the built-ins, ``@register_backend`` and the entry-point group."""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points

from ..errors import BackendNotInstalled, UnknownBackend
from ..hardware.capabilities import DeviceCapabilities, DeviceSupport
from ..types.values import Task
from .base import Backend

ENTRY_POINT_GROUP = "llmux_jupyter.backends"
BUILTIN_BACKENDS = tuple(
    f"llmux_jupyter.backends.{name}"
    for name in ("llamacpp", "transformers", "openai", "whisper", "piper", "chatterbox")
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackendStatus:
    """A backend as ``%llm list`` shows it."""

    name: str
    tasks: tuple[str, ...]
    status: str


class BackendRegistry:
    """Maps backend names to classes; discovers built-ins and plugins on first use."""

    def __init__(self) -> None:
        self._classes: dict[str, type[Backend]] = {}
        self._errors: dict[str, str] = {}
        self._discovered = False

    def add(self, name: str, cls: type[Backend]) -> None:
        cls.name = name
        self._classes[name] = cls
        self._errors.pop(name, None)

    def remove(self, name: str) -> None:
        self._classes.pop(name, None)
        self._errors.pop(name, None)

    def names(self) -> list[str]:
        self._discover()
        return sorted(self._classes)

    def get(self, name: str) -> type[Backend]:
        """The backend class, after checking that its library is installed."""
        self._discover()
        if name not in self._classes:
            known = ", ".join(self.names()) or "none"
            raise UnknownBackend(f"No backend named {name!r}. Known backends: {known}.")
        cls = self._classes[name]
        missing = missing_requirements(cls)
        if missing:
            raise BackendNotInstalled(
                f"The {name} backend needs {', '.join(missing)}: {install_hint(cls)}"
            )
        return cls

    def class_of(self, name: str) -> type[Backend] | None:
        """The backend class, whether or not its library is installed (None: no such backend)."""
        self._discover()
        return self._classes.get(name)

    def task_set(self, name: str) -> frozenset[Task]:
        """The tasks a backend does, even if its library is not installed."""
        self._discover()
        return self._classes[name].tasks

    def default_task(self, name: str) -> Task | None:
        """The task a registration gets when it names none (None: it must name one)."""
        self._discover()
        return self._classes[name].default_task

    def mark_error(self, name: str, message: str) -> None:
        """Remember that using a backend failed in a way that is not a missing package."""
        self._errors[name] = message

    def statuses(self) -> list[BackendStatus]:
        return [self.status(name) for name in self.names()]

    def status(self, name: str) -> BackendStatus:
        cls = self._classes[name]
        if missing_requirements(cls):
            state = f"Not Installed: {install_hint(cls)}"
        elif name in self._errors:
            state = f"Error: {self._errors[name]}"
        else:
            state = "Running"
        return BackendStatus(name, tuple(sorted(t.value for t in cls.tasks)), state)

    def device_support(self, device: DeviceCapabilities) -> dict[str, DeviceSupport]:
        """Each backend's answer for ``device``: whether its library is installed, and if so
        whether and how it can use the device (asked of the library, which may be imported)."""
        answers = {}
        for name in self.names():
            cls = self._classes[name]
            if missing_requirements(cls):
                answers[name] = DeviceSupport(None, f"not installed: {install_hint(cls)}")
                continue
            try:
                answer = cls.device_support(device)
            except Exception as error:  # one library's failure must not hide the others
                answer = DeviceSupport(None, f"error: {type(error).__name__}: {error}")
            answers[name] = answer or DeviceSupport(None, "does not say")
        return answers

    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        for module in BUILTIN_BACKENDS:  # they register themselves with @register_backend
            importlib.import_module(module)
        for entry_point in entry_points(group=ENTRY_POINT_GROUP):
            try:
                cls = entry_point.load()
            except Exception as error:  # a broken plugin must not break the others
                log.warning("llmux backend plugin %s failed to load: %s", entry_point.value, error)
                self._errors[entry_point.name] = f"plugin failed to import ({error})"
                continue
            if entry_point.name not in self._classes:
                self.add(entry_point.name, cls)


def missing_requirements(cls: type[Backend]) -> list[str]:
    return [module for module in cls.requires if importlib.util.find_spec(module) is None]


def install_hint(cls: type[Backend]) -> str:
    return f"pip install llmux-jupyter[{cls.extra}]" if cls.extra else "install its package"


registry = BackendRegistry()


def register_backend(name: str) -> Callable[[type[Backend]], type[Backend]]:
    """Class decorator: make a Backend subclass available under ``name``."""

    def decorate(cls: type[Backend]) -> type[Backend]:
        registry.add(name, cls)
        return cls

    return decorate
