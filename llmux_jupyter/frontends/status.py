"""One JSON-ready picture of the multiplexer, shared by the picker widget and the sidebar."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ..backends.base import Backend, path_size
from ..errors import LLMuxError, ModelLoadError
from ..models.chat_template import chat_setup
from ..models.sources import RemoteSource
from ..types.values import Task

if TYPE_CHECKING:
    from ..api import LLM
    from ..engine.ledger import KernelModels
    from ..engine.manager import LoadedModel
    from ..models.spec import ModelSpec


@dataclass(frozen=True)
class ModelStatus:
    """A catalog model and, when loaded, its state in memory (times are Unix seconds)."""

    name: str
    backend: str
    task: str
    source: str
    size: int | None
    loaded: bool
    is_default: bool
    remote: bool = False
    device: str | None = None
    state: str | None = None
    estimate: int | None = None
    measured: int | None = None
    pinned: bool = False
    keep_alive: float | None = None
    expires_at: float | None = None
    loaded_at: float | None = None
    last_used: float | None = None
    images: bool | None = False  # takes images (None: unknown until loaded, e.g. a server)


def model_statuses(llm: LLM, *, sizes: bool = True) -> list[ModelStatus]:
    """Every known model, loaded or not; ``sizes=False`` skips resolving sources (a Hugging
    Face source not in the cache would download)."""
    manager = llm.manager
    loaded = {model.name: model for model in manager.loaded()}
    defaults = set(manager.defaults().values())
    return [
        _status(
            spec,
            source_size(spec) if sizes else None,
            loaded.get(spec.name),
            spec.name in defaults,
            manager.takes_images(spec.name),
        )
        for spec in manager.catalog.all()
    ]


def model_status(llm: LLM, name: str, size: int | None) -> ModelStatus:
    """One model's status now; ``size`` comes from the caller (reading it may touch disks)."""
    manager = llm.manager
    spec = manager.catalog.get(name)
    model = next((m for m in manager.loaded() if m.name == name), None)
    default = manager.default_for(spec.task) == name
    return _status(spec, size, model, default, manager.takes_images(name))


def _status(
    spec: ModelSpec,
    size: int | None,
    model: LoadedModel | None,
    is_default: bool,
    images: bool | None,
) -> ModelStatus:
    common = {
        "name": spec.name, "backend": spec.backend, "task": spec.task.value,
        "source": spec.source.describe(), "size": size, "is_default": is_default,
        "remote": isinstance(spec.source, RemoteSource), "images": images,
    }  # fmt: skip
    if model is None:
        return ModelStatus(**common, loaded=False)
    return ModelStatus(
        **common, loaded=True, device=model.device, state=model.state,
        estimate=model.estimate.total, measured=model.measured.total, pinned=model.pinned,
        keep_alive=model.keep_alive, expires_at=model.expires_at,
        loaded_at=model.loaded_at, last_used=model.last_used,
    )  # fmt: skip


def source_size(spec: ModelSpec) -> int | None:
    """Bytes of the model's files, or None when they are not on this machine (nothing is
    downloaded or joined to find out; a source may declare its size)."""
    path = spec.source.local_path()
    return spec.source.known_size() if path is None else path_size(path)


def images_text(status: ModelStatus) -> str:
    """Whether a chat model takes images, in a word ('-' for other tasks)."""
    if status.task != Task.CHAT.value:
        return "-"
    return {True: "yes", False: "no", None: "ask server" if status.remote else "?"}[status.images]


def chat_layout(spec: ModelSpec, backend: type[Backend] | None) -> str:
    """How a chat model's messages become its prompt, in a few words ('-' for other tasks);
    read from files already on this machine."""
    if spec.task is not Task.CHAT or backend is None:
        return "-"
    if not backend.uses_chat_templates:
        return "the backend's own"
    path = spec.source.local_path()
    if path is None:
        return (
            "? (read at its first load)"
            if spec.source.is_available()
            else "? (not on this machine)"
        )
    try:
        setup = chat_setup(spec.name, spec.settings, path, named_formats=backend.named_chat_formats)
    except ModelLoadError:
        return "NONE: needs --set template=, chat_format= or completion=true"
    except LLMuxError as error:
        return f"error: {error}"
    return setup.describe()


def snapshot(llm: LLM, *, sizes: bool = True) -> dict[str, Any]:
    """Models, per-device memory (ours and the other kernels'), the other kernels' models (as
    the host ledger was last read) and defaults, as plain JSON types."""
    return {
        "time": time.time(),
        "models": [asdict(status) for status in model_statuses(llm, sizes=sizes)],
        "devices": [asdict(use) for use in llm.budgets()],
        "elsewhere": [_kernel_models(kernel) for kernel in llm.manager.elsewhere],
        "defaults": {task.value: name for task, name in llm.manager.defaults().items()},
    }


def _kernel_models(kernel: KernelModels) -> dict[str, Any]:
    return {
        "pid": kernel.pid,
        "notebook": kernel.notebook,
        "models": [
            {"name": model.name, "device": model.device, "held": sum(model.held.values())}
            for model in kernel.models
        ],
    }


def completion_status(llm: LLM) -> str:
    """A line on code completion: its model, that model's state and FIM markers, or how to
    turn it on."""
    name = llm.completer.model
    if name is None:
        return (
            "Code completion is off: %llm complete --model NAME turns it on (a code model with "
            "fill-in-the-middle tokens, e.g. qwen2.5-coder-0.5b)."
        )
    try:
        fim = llm.completer.check_model(name)
    except LLMuxError as error:
        return f"Code completion with {name} cannot work: {error}"
    manager = llm.manager
    state = manager.get_loaded(name).state if manager.is_loaded(name) else "loads on first use"
    return (
        f"Code completion with {name} ({state}; fill-in-the-middle as {fim.prefix} … "
        f"{fim.suffix} … {fim.middle}): ghost text as you type in JupyterLab and Notebook 7, "
        "Tab accepts; %llm complete off stops it."
    )
