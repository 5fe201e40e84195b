"""The multiplexer: one per kernel. Loads models on first use and keeps them while they are used;
unloads them when asked, when their keep-alive runs out, or (least recently used first) when a
new model needs their memory. Every change is published on ``events``, and what the kernel holds
on the host's memory ledger, where the other kernels' loads see it (and we see theirs)."""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import time
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..backends.base import Backend
from ..backends.registry import BackendRegistry, install_hint, registry
from ..errors import (
    BackendNotInstalled,
    InvalidParameter,
    LLMuxError,
    MemoryHeldElsewhere,
    ModelBusy,
    ModelLoadError,
    ModelNotLoaded,
    OutOfMemoryBudget,
)
from ..hardware.memory import host_devices, process_rss, return_freed_memory
from ..hardware.threads import ThreadCounts
from ..models.catalog import Catalog
from ..models.spec import LoadOptions, ModelSpec
from ..types.values import DraftStats, RequiredMemory, Task
from ..units import format_bytes, format_duration, parse_duration
from .budgets import DeviceBudget, charges, plan_budgets
from .events import EventBus
from .ledger import HeldModel, HostLedger, KernelModels, held_per_device
from .load_output import quiet_load
from .timers import DeadlineTimer

DEFAULT_KEEP_ALIVE = 300.0
DEFAULT = "default"

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """A model in memory and what we know about it. Once unloaded (by a command, keep-alive
    or eviction, possibly on another thread) ``backend`` is None; what the load was (device,
    note, times) stays readable."""

    spec: ModelSpec
    backend: Backend
    options: LoadOptions
    loaded_at: float
    load_seconds: float
    estimate: RequiredMemory
    measured: RequiredMemory
    last_used: float
    keep_alive: float | None = DEFAULT_KEEP_ALIVE
    pinned: bool = False
    busy: int = 0
    device: str = field(init=False)  # where it was loaded
    load_note: str = field(init=False)  # what the backend said about the load, or ''
    threads: ThreadCounts | None = field(init=False)  # its CPU threads, when it has them

    def __post_init__(self) -> None:
        self.device = self.backend.device
        self.load_note = self.backend.load_note
        self.threads = self.backend.cpu_threads()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def unloaded(self) -> bool:
        return self.backend is None

    def draft_totals(self) -> DraftStats | None:
        """Speculative decoding's counts since the load (None without a draft, or unloaded)."""
        backend = self.backend  # read once: another thread may unload it meanwhile
        return None if backend is None else backend.draft_totals()

    @property
    def state(self) -> str:
        return "busy" if self.busy else "idle"

    @property
    def expires_at(self) -> float | None:
        """When keep-alive unloads it; None while busy, pinned or kept forever."""
        if self.busy or self.pinned or self.keep_alive is None:
            return None
        return self.last_used + self.keep_alive

    @property
    def charges(self) -> dict[str, int]:
        """The budgets this model is counted against, and by how much."""
        return charges(self.device, self.estimate)


class ModelManager:
    """Loads, shares and unloads the kernel's models under per-device memory budgets."""

    def __init__(
        self,
        catalog: Catalog,
        backends: BackendRegistry = registry,
        events: EventBus | None = None,
        budgets: dict[str, DeviceBudget] | None = None,
        keep_alive: float | None = DEFAULT_KEEP_ALIVE,
        ledger: HostLedger | None = None,
    ) -> None:
        self.catalog = catalog
        self.backends = backends
        self.events = events if events is not None else EventBus()
        self.budgets = budgets if budgets is not None else plan_budgets(host_devices())
        self.default_keep_alive = keep_alive
        self.ledger = ledger
        # The other kernels' models, as the ledger listed them when last read.
        self.elsewhere: list[KernelModels] = []
        self._elsewhere_version: Hashable = None
        self._loaded: dict[str, LoadedModel] = {}
        self._defaults: dict[Task, str] = {}
        self._lock = threading.RLock()
        self._timer = DeadlineTimer(self._expire)

    # -- queries ---------------------------------------------------------------
    def loaded(self) -> list[LoadedModel]:
        with self._lock:
            return list(self._loaded.values())

    def is_loaded(self, name: str) -> bool:
        with self._lock:
            return name in self._loaded

    def get_loaded(self, name: str) -> LoadedModel:
        with self._lock:
            if name not in self._loaded:
                self.catalog.get(name)  # an unknown name gets UnknownModel, not ModelNotLoaded
                raise ModelNotLoaded(f"{name!r} is not loaded (see %llm ps).")
            return self._loaded[name]

    def takes_images(self, name: str) -> bool | None:
        """Whether the model takes images: the loaded model's answer, else what its files
        and settings say (None: unknown until loaded, or unreadable files)."""
        with self._lock:
            loaded = self._loaded.get(name)
        if loaded is not None:
            return loaded.backend.takes_images_now()
        spec = self.catalog.get(name)
        backend = self.backends.class_of(spec.backend)
        if backend is None or spec.task is not Task.CHAT:
            return False
        try:
            return backend.takes_images(spec)
        except (LLMuxError, OSError):  # files missing or unreadable: loading will say
            return None

    def image_models(self) -> list[str]:
        """The chat models known to take images."""
        return [
            spec.name
            for spec in self.catalog.all()
            if spec.task is Task.CHAT and self.takes_images(spec.name)
        ]

    def used(self) -> dict[str, int]:
        """Bytes our models hold per budget (their estimates)."""
        with self._lock:
            totals: dict[str, int] = {}
            for model in self._loaded.values():
                for device, amount in model.charges.items():
                    totals[device] = totals.get(device, 0) + amount
            return totals

    def used_elsewhere(self) -> dict[str, int]:
        """Bytes other kernels' models hold per budget (as the ledger was last read)."""
        return held_per_device(self.elsewhere)

    def refresh_elsewhere(self) -> list[KernelModels]:
        """Read the other kernels' entries from the host ledger now."""
        if self.ledger is not None:
            version = self.ledger.version()
            self.elsewhere = self.ledger.others()
            self._elsewhere_version = version
        return self.elsewhere

    def refresh_elsewhere_if_changed(self) -> bool:
        """Read the ledger again if an entry changed since (one ``scandir``); whether it had."""
        if self.ledger is None or self.ledger.version() == self._elsewhere_version:
            return False
        self.refresh_elsewhere()
        return True

    def defaults(self) -> dict[Task, str]:
        """The default model of each task that has one."""
        found = {}
        for task in Task:
            with contextlib.suppress(ModelNotLoaded):
                found[task] = self.default_for(task)
        return found

    def default_for(self, task: Task) -> str:
        """The model ``%%llm`` (or transcribe/say) uses when none is named."""
        if task in self._defaults:
            return self._defaults[task]
        specs = [spec for spec in self.catalog.all() if spec.task is task]
        for spec in sorted(specs, key=lambda s: (not s.builtin, self.catalog.builtin_rank(s.name))):
            return spec.name
        raise ModelNotLoaded(f"No {task.value} model is known: add one with %llm register.")

    # -- settings --------------------------------------------------------------
    def use(self, name: str) -> ModelSpec:
        """Make ``name`` the default model of its task."""
        spec = self.catalog.get(name)
        self._defaults[spec.task] = name
        self.events.emit("default", name, task=spec.task.value)
        return spec

    def pin(self, name: str, pinned: bool = True) -> LoadedModel:
        """A pinned model is never evicted and ignores keep-alive (unpinning an idle model
        whose keep-alive is 0 unloads it: check ``unloaded``)."""
        return self._change(name, pinned=pinned)

    def set_keep_alive(self, name: str, seconds: float | None) -> LoadedModel:
        """Seconds an idle model stays loaded (None: forever; 0: unload as soon as idle, so
        now if it is idle: check ``unloaded``)."""
        return self._change(name, keep_alive=seconds)

    def _change(self, name: str, unload_idle: bool = True, **fields: Any) -> LoadedModel:
        """Set a loaded model's fields, tell the listeners, and restart its keep-alive clock;
        an idle model whose keep-alive is now 0 is unloaded at once, unless ``unload_idle``
        is False (then its next use unloads it)."""
        with self._lock:
            model = self.get_loaded(name)
            for field_name, value in fields.items():
                setattr(model, field_name, value)
            self.events.emit("changed", name, **fields)
            if unload_idle or model.keep_alive != 0:
                self._after_use(model)
            return model

    # -- loading and unloading -------------------------------------------------
    def load(
        self,
        name: str,
        options: LoadOptions | None = None,
        *,
        pin: bool | None = None,
        keep_alive: str | float | None = DEFAULT,
    ) -> LoadedModel:
        """Load ``name`` (or return it if already loaded with the same options).

        ``keep_alive``: 'default' (the manager's), seconds or a duration like '10m', 0 to
        unload right after each use, None or negative to keep it until unloaded.
        """
        seconds = self.default_keep_alive if keep_alive == DEFAULT else parse_duration(keep_alive)
        with self._lock:
            current = self._loaded.get(name)
            if current is not None and (options is None or self._same_load(current, options)):
                changes: dict[str, Any] = {} if pin is None else {"pinned": pin}
                if keep_alive != DEFAULT:
                    changes["keep_alive"] = seconds
                if changes:  # as a new load would: keep-alive 0 unloads after the next use
                    self._change(name, unload_idle=False, **changes)
                return current
            spec = self.catalog.get(name)
            backend, estimate = self._prepare(spec, options or LoadOptions())
            if current is None:
                model = self._load_new(backend, estimate, pin, seconds)
            else:  # other options: swap, and bring the old load back if the new one fails
                previous = (current.options, current.pinned, current.keep_alive)
                del current  # so unloading really drops the old backend
                self.unload(name)
                try:
                    model = self._load_new(backend, estimate, pin, seconds)
                except BaseException:
                    with contextlib.suppress(Exception):
                        self._load_new(*self._prepare(spec, previous[0]), *previous[1:])
                    raise
            if model.keep_alive != 0:  # keep-alive 0 unloads after the first use, not now
                self._after_use(model)
            return model

    def _same_load(self, loaded: LoadedModel, options: LoadOptions) -> bool:
        """Whether ``options`` load ``loaded`` as it is: the same device and draft, and
        settings equal once converted to their declared types (``n_ctx="4096"`` is 4096)."""
        if options == loaded.options:
            return True
        if (options.device, options.draft) != (loaded.options.device, loaded.options.draft):
            return False
        backend_class = type(loaded.backend)
        try:
            wanted = backend_class.checked_settings(options.settings)
        except LLMuxError:  # a bad value: the load that follows says what is wrong
            return False
        return wanted == backend_class.checked_settings(loaded.options.settings)

    def _prepare(self, spec: ModelSpec, options: LoadOptions) -> tuple[Backend, RequiredMemory]:
        """The backend object and its estimate; this checks device and settings, loads nothing."""
        try:
            backend_class = self.backends.get(spec.backend)
            draft = options.draft
            if draft is not None and draft.kind not in backend_class.draft_kinds:
                takes = ", ".join(sorted(backend_class.draft_kinds)) or "no drafts"
                raise InvalidParameter(
                    f"--draft {draft.name}: the {spec.backend} backend cannot use a draft "
                    f"{'model' if draft.model else 'method'} like this one for speculative "
                    f"decoding (it takes: {takes}). Drop --draft."
                )
            backend = backend_class(spec, options)
            backend.verbose  # noqa: B018 - a bad value is refused before anything loads
            return backend, backend.required_memory()
        except LLMuxError as error:  # refused before loading: nothing to give back
            self.events.emit("error", spec.name, message=str(error))
            raise

    def _load_new(
        self, backend: Backend, estimate: RequiredMemory, pin: bool | None, keep_alive: float | None
    ) -> LoadedModel:
        spec, options = backend.spec, backend.options
        try:
            self._make_room(spec.name, charges(backend.device, estimate))
        except LLMuxError as error:
            self.events.emit("error", spec.name, message=str(error))
            raise
        self.events.emit("loading", spec.name, estimate=estimate.total, progress=0.0)
        ram_before = process_rss()
        started = time.perf_counter()
        try:
            with quiet_load(spec.backend, backend.verbose):
                backend.load()
        except BaseException as error:
            backend_class = type(backend)
            _release(backend)
            del backend
            gc.collect()
            return_freed_memory()
            wrapped = self._wrap_load_error(spec, backend_class, error)
            self.events.emit("error", spec.name, message=str(wrapped or error))
            if wrapped is None:
                raise
            raise wrapped from error
        load_seconds = time.perf_counter() - started
        grown = RequiredMemory(ram=max(0, process_rss() - ram_before))
        measured = backend.measured_memory() or grown
        now = time.time()
        model = LoadedModel(spec, backend, options, now, load_seconds, estimate, measured, now)
        model.pinned, model.keep_alive = bool(pin), keep_alive  # before anyone hears "loaded"
        self._loaded[spec.name] = model
        self._publish()
        self.events.emit("loaded", spec.name, device=backend.device, seconds=load_seconds)
        return model

    def _make_room(self, name: str, needed: dict[str, int]) -> None:
        """Evict least recently used idle, unpinned models until ``needed`` fits every budget
        beside what other kernels hold (read from the ledger now); refuse, changing nothing,
        if it cannot fit even then."""
        elsewhere = held_per_device(self.refresh_elsewhere())
        victims = sorted(
            (m for m in self._loaded.values() if not m.busy and not m.pinned and m.name != name),
            key=lambda m: m.last_used,
        )
        for device, amount in needed.items():
            budget = self.budgets.get(device)
            if budget is None:
                continue
            used = self.used().get(device, 0)
            kept = used - sum(m.charges.get(device, 0) for m in victims)
            if kept + amount > budget.budget:
                raise OutOfMemoryBudget(
                    self._refusal(name, device, amount, budget, used + elsewhere.get(device, 0))
                )
            if kept + amount + elsewhere.get(device, 0) > budget.budget:
                raise MemoryHeldElsewhere(self._refusal_elsewhere(name, device, amount, budget))
        for victim in victims:
            over = self._over_budget(needed, elsewhere)
            if not over:
                break
            if any(victim.charges.get(device) for device in over):
                reason = f"memory: {name} needs {format_bytes(needed[over[0]])} on {over[0]}"
                self._remove(victim, "evicted", reason=reason)

    def _over_budget(self, needed: dict[str, int], elsewhere: dict[str, int]) -> list[str]:
        used = self.used()
        return [
            device
            for device, amount in needed.items()
            if device in self.budgets
            and used.get(device, 0) + elsewhere.get(device, 0) + amount
            > self.budgets[device].budget
        ]

    def _refusal(self, name: str, device: str, amount: int, budget: DeviceBudget, used: int) -> str:
        holders = (
            ", ".join(
                f"{m.name} {format_bytes(m.charges.get(device, 0))}"
                + (" busy" if m.busy else "")
                + (" pinned" if m.pinned else "")
                for m in sorted(self._loaded.values(), key=lambda m: m.name)
                if m.charges.get(device)
            )
            or "nothing of ours"
        )
        others = [kernel for kernel in self.elsewhere if kernel.held.get(device)]
        held = (
            f"; other kernels hold {', '.join(kernel.describe(device) for kernel in others)}"
            if others
            else ""
        )
        return (
            f"{name} needs {format_bytes(amount)} on {device}, but only "
            f"{format_bytes(max(0, budget.budget - used))} of the {format_bytes(budget.budget)} "
            f"budget is free and busy or pinned models hold the rest ({holders}{held}). Unload "
            "or unpin a model, load with less context (--set n_ctx=...), or raise the budget: "
            "%config LLMux.memory_budget = '...'"
        )

    def _refusal_elsewhere(self, name: str, device: str, amount: int, budget: DeviceBudget) -> str:
        others = [kernel for kernel in self.elsewhere if kernel.held.get(device)]
        held = sum(kernel.held[device] for kernel in others)
        return (
            f"{name} needs {format_bytes(amount)} on {device}, but other kernels on this "
            f"machine hold {format_bytes(held)} of the {format_bytes(budget.budget)} budget: "
            f"{'; '.join(kernel.describe(device) for kernel in others)}. Unload a model there "
            "(%llm unload NAME in that notebook), choose a smaller model, or raise the budget: "
            "%config LLMux.memory_budget = '...'"
        )

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
            model = self.get_loaded(name)
            if model.busy:
                raise ModelBusy(
                    f"{name!r} is busy generating; interrupt the cell (or wait) and unload again."
                )
            self.events.emit("unloading", name)
            self._remove(model, "unloaded")

    def unload_if_loaded(self, name: str) -> bool:
        """Unload ``name`` if it is loaded, in one step (keep-alive may unload it meanwhile);
        whether it was. ModelBusy while it generates."""
        with self._lock:
            if name not in self._loaded:
                return False
            self.unload(name)
            return True

    def unload_all(self) -> list[str]:
        """Unload every model (none if any is busy); returns the names unloaded."""
        with self._lock:
            busy = [m.name for m in self._loaded.values() if m.busy]
            if busy:
                raise ModelBusy(f"{', '.join(busy)} busy generating; nothing was unloaded.")
            names = list(self._loaded)
            for name in names:
                self.unload(name)
            return names

    def _remove(self, model: LoadedModel, kind: str, **detail: object) -> None:
        del self._loaded[model.name]
        _release(model.backend)
        model.backend = None  # type: ignore[assignment]  # drop the weights now
        gc.collect()
        return_freed_memory()
        self._publish()
        self.events.emit(kind, model.name, **detail)

    def _publish(self) -> None:
        """Write what we hold to the host ledger. It only informs the other kernels: a
        ledger that cannot be written is logged, and the load or unload stands."""
        if self.ledger is None:
            return
        held = [
            HeldModel(m.name, m.spec.backend, m.device, m.estimate, m.measured)
            for m in self._loaded.values()
        ]
        try:
            self.ledger.record(held)
        except OSError as error:
            log.warning("llmux: cannot write the memory ledger %s: %s", self.ledger.path, error)

    @contextmanager
    def using(self, name: str) -> Iterator[LoadedModel]:
        """Hold ``name`` loaded and marked busy for the duration of a job."""
        with self._lock:
            model = self.load(name)
            model.busy += 1
        self.events.emit("busy", name)
        try:
            yield model
        finally:
            with self._lock:
                model.busy -= 1
                model.last_used = time.time()
            self.events.emit("idle", name)
            with self._lock:
                self._after_use(model)

    # -- keep-alive ------------------------------------------------------------
    def _after_use(self, model: LoadedModel) -> None:
        """Unload at once if keep-alive is 0, else arm the timer for its expiry."""
        when = model.expires_at
        if when is None or self._loaded.get(model.name) is not model:
            return
        if model.keep_alive == 0:
            self._remove(model, "evicted", reason="keep-alive 0: unloaded after use")
        else:
            self._timer.schedule(model.name, when)

    def _expire(self, name: str) -> None:
        """Timer thread: unload ``name`` if its keep-alive really ran out (keep-alive 0 is
        not a deadline: the end of the next use unloads it)."""
        with self._lock:
            model = self._loaded.get(name)
            when = model.expires_at if model is not None else None
            if model is None or when is None or model.keep_alive == 0:
                return
            if when > time.time():
                self._timer.schedule(name, when)
                return
            reason = f"keep-alive {format_duration(model.keep_alive)} expired"
            self._remove(model, "evicted", reason=reason)


def _release(backend: Backend) -> None:
    # Unloading must not fail the caller; the object is dropped anyway.
    with contextlib.suppress(Exception):
        backend.unload()
