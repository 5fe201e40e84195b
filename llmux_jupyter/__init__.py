"""llmux-jupyter: run, stream and juggle local models from Jupyter.

``%load_ext llmux_jupyter`` adds ``%%llm`` and ``%llm``; ``from llmux_jupyter import llm``
is the same machinery as a Python API.
"""

from __future__ import annotations

from typing import Any

from .api import LLM, llm
from .backends.base import Backend
from .chat import ChatResponse, ChatStream
from .errors import (
    BackendNotInstalled,
    GenerationError,
    InvalidParameter,
    LLMuxError,
    ModelBusy,
    ModelLoadError,
    ModelNotLoaded,
    OutOfMemoryBudget,
    RegistrationError,
    SourceNotFound,
    UnknownBackend,
    UnknownModel,
    UnsupportedTask,
)
from .registry import register_backend
from .specs import GenerationParams, Message, ModelSpec, RequiredMemory, Task, Usage

__all__ = [
    "LLM",
    "Backend",
    "BackendNotInstalled",
    "ChatResponse",
    "ChatStream",
    "GenerationError",
    "GenerationParams",
    "InvalidParameter",
    "LLMuxError",
    "Message",
    "ModelBusy",
    "ModelLoadError",
    "ModelNotLoaded",
    "ModelSpec",
    "OutOfMemoryBudget",
    "RegistrationError",
    "RequiredMemory",
    "SourceNotFound",
    "Task",
    "UnknownBackend",
    "UnknownModel",
    "UnsupportedTask",
    "Usage",
    "llm",
    "register_backend",
]
__version__ = "0.1.0"


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext llmux_jupyter``: register the magics, the ``LLMux`` configurable and (in a
    Jupyter kernel) the sidebar's comm target."""
    from . import comm
    from .magics import LLMuxMagics

    llm.config.parent = ipython
    llm.config.update_config(ipython.config)
    if llm.config not in ipython.configurables:
        ipython.configurables.append(llm.config)
    llm.manager  # noqa: B018 - reads the free memory the default budgets are a fraction of
    ipython.register_magics(LLMuxMagics(ipython, llm))
    comm.register(ipython, llm)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext``: remove the magics and the sidebar's comm target; loaded models stay
    until unloaded or the kernel ends."""
    from . import comm

    comm.unregister(ipython)
    ipython.magics_manager.magics["line"].pop("llm", None)
    ipython.magics_manager.magics["cell"].pop("llm", None)
    if llm.config in ipython.configurables:
        ipython.configurables.remove(llm.config)
