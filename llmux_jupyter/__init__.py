"""llmux-jupyter: run, stream and juggle local models from Jupyter.

``%load_ext llmux_jupyter`` adds ``%%llm`` and ``%llm``; ``from llmux_jupyter import llm``
is the same machinery as a Python API.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from .api import LLM, llm
from .backends.base import Backend
from .backends.registry import register_backend
from .engine.chat import ChatResponse, ChatStream
from .engine.completion import Completion
from .engine.history.log import notebook_origin
from .engine.map import MapResult
from .errors import (
    BackendNotInstalled,
    CacheError,
    CompletionUnsupported,
    GenerationError,
    HistoryError,
    InvalidParameter,
    LLMuxError,
    MemoryHeldElsewhere,
    ModelBusy,
    ModelLoadError,
    ModelNotLoaded,
    OutOfMemoryBudget,
    RegistrationError,
    SchemaError,
    SourceNotFound,
    ToolDefinitionError,
    UnknownBackend,
    UnknownModel,
    UnsupportedTask,
)
from .models.spec import ModelSpec
from .types.tools import ToolCall
from .types.values import GenerationParams, Message, RequiredMemory, Task, Usage

if TYPE_CHECKING:
    from .frontends.picker import ModelPicker

__all__ = [
    "LLM",
    "Backend",
    "BackendNotInstalled",
    "CacheError",
    "ChatResponse",
    "ChatStream",
    "Completion",
    "CompletionUnsupported",
    "GenerationError",
    "GenerationParams",
    "HistoryError",
    "InvalidParameter",
    "LLMuxError",
    "MapResult",
    "MemoryHeldElsewhere",
    "Message",
    "ModelBusy",
    "ModelLoadError",
    "ModelNotLoaded",
    "ModelSpec",
    "OutOfMemoryBudget",
    "RegistrationError",
    "RequiredMemory",
    "SchemaError",
    "SourceNotFound",
    "Task",
    "ToolCall",
    "ToolDefinitionError",
    "UnknownBackend",
    "UnknownModel",
    "UnsupportedTask",
    "Usage",
    "fix",
    "llm",
    "picker",
    "register_backend",
]
__version__ = "0.1.0"


def picker(models: LLM | None = None) -> ModelPicker:
    """The model picker of ``models`` (default: ``llm``): a widget to load, unload, pin and
    choose models, with memory bars per device; it follows every change live.
    ``picker.close()`` stops it. ipywidgets is imported here, not at ``%load_ext``."""
    from .frontends.picker import ModelPicker

    return ModelPicker(llm if models is None else models)


def fix(
    models: LLM | None = None,
    *,
    model: str | None = None,
    thread: str = "default",
    new: bool = False,
    temperature: float | None = None,
    max_tokens: int | None = None,
    seed: int | None = None,
    log: bool = True,
) -> ChatResponse:
    """Explain the notebook's last error, as ``%llm fix`` does, with ``models`` (default:
    ``llm``): the model gets the traceback, the cell that raised it and the values that cell
    uses; its answer streams into the cell and the corrected code it gives is offered as a
    new cell below, not run. A UsageError when no cell has raised yet (or outside IPython).
    ``log=False`` keeps it out of the history."""
    from IPython import get_ipython
    from IPython.core.error import UsageError

    from .frontends.fix import fix_last_error

    shell = get_ipython()
    if shell is None:
        raise UsageError("fix() reads the notebook's last error: call it in a notebook.")
    params = GenerationParams(temperature, None, max_tokens, seed).as_dict()
    chosen = llm if models is None else models
    return fix_last_error(chosen, shell, model=model, thread=thread, new=new, log=log, **params)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext llmux_jupyter``: register the magics, the ``LLMux`` configurable and (in a
    Jupyter kernel) the comm targets of the sidebar and of code completion."""
    from .frontends import completion_comm, sidebar
    from .frontends.history_view import cell_origin
    from .frontends.magics import LLMuxMagics

    llm.history.origin = partial(cell_origin, ipython)
    llm.config.parent = ipython
    llm.config.update_config(ipython.config)
    if llm.config not in ipython.configurables:
        ipython.configurables.append(llm.config)
    llm.manager  # noqa: B018 - reads the free memory the default budgets are a fraction of
    ipython.register_magics(LLMuxMagics(ipython, llm))
    sidebar.register(ipython, llm)
    completion_comm.register(ipython, llm)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext``: remove the magics and the comm targets; loaded models stay until
    unloaded or the kernel ends."""
    from .frontends import completion_comm, sidebar

    sidebar.unregister(ipython)
    llm.history.origin = notebook_origin
    completion_comm.unregister(ipython)
    ipython.magics_manager.magics["line"].pop("llm", None)
    ipython.magics_manager.magics["cell"].pop("llm", None)
    if llm.config in ipython.configurables:
        ipython.configurables.remove(llm.config)
