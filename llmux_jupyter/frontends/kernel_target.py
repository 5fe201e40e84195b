"""A comm target of ours in a Jupyter kernel: made and registered at ``%load_ext``; at
``%unload_ext`` its comms are closed and it is removed. A terminal IPython has no comms:
nothing happens there."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from ..api import LLM


class Target(Protocol):
    """What the comm manager calls for each comm a front end opens, and how it ends."""

    def __call__(self, comm: Any, open_message: dict[str, Any]) -> None: ...
    def close_all(self) -> None: ...


T = TypeVar("T", bound=Target)


class KernelTarget(Generic[T]):
    """The target ``name``, made once per kernel by ``make(ipython, llm)``."""

    def __init__(self, name: str, make: Callable[[Any, LLM], T]) -> None:
        self.name = name
        self.make = make
        self.target: T | None = None

    def register(self, ipython: Any, llm: LLM) -> bool:
        """Register the target (made on the first call); False outside a Jupyter kernel."""
        if getattr(ipython, "kernel", None) is None:
            return False
        from comm import get_comm_manager

        if self.target is None:
            self.target = self.make(ipython, llm)
        get_comm_manager().register_target(self.name, self.target)
        return True

    def unregister(self, ipython: Any) -> None:
        """Close the target's comms and remove it."""
        target = self.target
        if target is None or getattr(ipython, "kernel", None) is None:
            return
        from comm import get_comm_manager

        target.close_all()
        get_comm_manager().unregister_target(self.name, target)
        self.target = None
