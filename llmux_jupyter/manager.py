"""The multiplexer: one per kernel; loads, reuses and unloads models and reports every change."""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from . import memory
from .backends.base import Backend
from .catalog import Catalog
from .errors import (
    BackendNotInstalled,
    InvalidParameter,
    LLMuxError,
    ModelBusy,
    ModelLoadError,
    ModelNotLoaded,
)
from .events import EventBus
from .registry import BackendRegistry, install_hint, registry
from .specs import LoadOptions, ModelSpec, RequiredMemory, Task


@dataclass
class LoadedModel:
    """A model in memory and what we know about it."""

    spec: ModelSpec
    backend: Backend
    options: LoadOptions
    loaded_at: float
    load_seconds: float
    estimate: RequiredMemory
    measured: RequiredMemory
    last_used: float
    busy: int = 0

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def device(self) -> str:
        return self.backend.device

    @property
    def state(self) -> str:
        return "busy" if self.busy else "idle"


class ModelManager:
    """Loads models on first use, keeps them, and unloads them on request."""

    def __init__(
        self,
        catalog: Catalog,
        backends: BackendRegistry = registry,
        events: EventBus | None = None,
    ) -> None:
        self.catalog = catalog
        self.backends = backends
        self.events = events if events is not None else EventBus()
        self._loaded: dict[str, LoadedModel] = {}
        self._defaults: dict[Task, str] = {}
        self._lock = threading.RLock()

    # -- queries ---------------------------------------------------------------
    def loaded(self) -> list[LoadedModel]:
        with self._lock:
            return list(self._loaded.values())

    def is_loaded(self, name: str) -> bool:
        return name in self._loaded

    def get_loaded(self, name: str) -> LoadedModel:
        with self._lock:
            if name not in self._loaded:
                self.catalog.get(name)  # an unknown name gets UnknownModel, not ModelNotLoaded
                raise ModelNotLoaded(f"{name!r} is not loaded (see %llm ps).")
            return self._loaded[name]

    def default_for(self, task: Task) -> str:
        """The model ``%%llm`` (or transcribe/say) uses when none is named."""
        if task in self._defaults:
            return self._defaults[task]
        for spec in self.catalog.all():
            if spec.task is task and spec.builtin:
                return spec.name
        for spec in self.catalog.all():
            if spec.task is task:
                return spec.name
        raise ModelNotLoaded(f"No {task.value} model is known: add one with %llm register.")

    # -- changes ---------------------------------------------------------------
    def use(self, name: str) -> ModelSpec:
        """Make ``name`` the default model of its task."""
        spec = self.catalog.get(name)
        self._defaults[spec.task] = name
        self.events.emit("default", name, task=spec.task.value)
        return spec

    def load(self, name: str, options: LoadOptions | None = None) -> LoadedModel:
        """Load ``name`` (or return it if already loaded with the same options).

        Reloading with other options that then fail to load brings the old load back.
        """
        with self._lock:
            current = self._loaded.get(name)
            if current is not None and (options is None or options == current.options):
                return current
            spec = self.catalog.get(name)
            backend = self._backend(spec, options or LoadOptions())
            estimate = backend.required_memory()  # also checks the device and settings
            if current is None:
                return self._load_new(backend, estimate)
            previous_options = current.options
            del current  # so unloading really drops the old backend
            self.unload(name)
            try:
                return self._load_new(backend, estimate)
            except BaseException:
                with contextlib.suppress(Exception):
                    previous = self._backend(spec, previous_options)
                    self._load_new(previous, previous.required_memory())
                raise

    def _backend(self, spec: ModelSpec, options: LoadOptions) -> Backend:
        backend_class = self.backends.get(spec.backend)
        if options.draft is not None and not backend_class.supports_draft:
            raise InvalidParameter(
                f"The {spec.backend} backend has no draft models (speculative decoding): "
                "drop --draft, or use a transformers model."
            )
        return backend_class(spec, options)

    def _load_new(self, backend: Backend, estimate: RequiredMemory) -> LoadedModel:
        spec, options = backend.spec, backend.options
        self.events.emit("loading", spec.name, estimate=estimate.total)
        ram_before = memory.process_rss()
        started = time.perf_counter()
        try:
            backend.load()
        except BaseException as error:
            backend_class = type(backend)
            _release(backend)
            del backend
            gc.collect()
            wrapped = self._wrap_load_error(spec, backend_class, error)
            self.events.emit("error", spec.name, message=str(wrapped or error))
            if wrapped is None:
                raise
            raise wrapped from error
        load_seconds = time.perf_counter() - started
        grown = RequiredMemory(ram=max(0, memory.process_rss() - ram_before))
        measured = backend.measured_memory() or grown
        now = time.time()
        loaded = LoadedModel(spec, backend, options, now, load_seconds, estimate, measured, now)
        self._loaded[spec.name] = loaded
        self.events.emit("loaded", spec.name, device=backend.device, seconds=load_seconds)
        return loaded

    def _wrap_load_error(
        self, spec: ModelSpec, backend_class: type[Backend], error: BaseException
    ) -> LLMuxError | None:
        """Our typed error for a load failure, or None to re-raise it as it is."""
        if isinstance(error, (LLMuxError, KeyboardInterrupt, SystemExit)):
            return None
        if isinstance(error, ImportError):
            self.backends.mark_error(spec.backend, f"import failed ({error})")
            return BackendNotInstalled(
                f"The {spec.backend} backend could not import its library ({error}): "
                f"{install_hint(backend_class)}"
            )
        return ModelLoadError(f"Could not load {spec.name!r} with {spec.backend}: {error}")

    def unload(self, name: str) -> None:
        """Unload a loaded model; refuses (ModelBusy) while it is generating."""
        with self._lock:
            loaded = self.get_loaded(name)
            if loaded.busy:
                raise ModelBusy(
                    f"{name!r} is busy generating; interrupt the cell (or wait) and unload again."
                )
            self.events.emit("unloading", name)
            del self._loaded[name]
            _release(loaded.backend)
            del loaded
            gc.collect()
            self.events.emit("unloaded", name)

    def unload_all(self) -> list[str]:
        """Unload every idle model; returns the names unloaded."""
        with self._lock:
            busy = [m.name for m in self._loaded.values() if m.busy]
            if busy:
                raise ModelBusy(f"{', '.join(busy)} busy generating; nothing was unloaded.")
            names = list(self._loaded)
            for name in names:
                self.unload(name)
            return names

    @contextmanager
    def using(self, name: str) -> Iterator[LoadedModel]:
        """Hold ``name`` loaded and marked busy for the duration of a job."""
        with self._lock:
            loaded = self.load(name)
            loaded.busy += 1
        self.events.emit("busy", name)
        try:
            yield loaded
        finally:
            with self._lock:
                loaded.busy -= 1
                loaded.last_used = time.time()
            self.events.emit("idle", name)


def _release(backend: Backend) -> None:
    # Unloading must not fail the caller; the object is dropped anyway.
    with contextlib.suppress(Exception):
        backend.unload()
