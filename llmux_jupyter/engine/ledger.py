"""The host's memory ledger: which models every llmux kernel on this machine holds, so that a
kernel planning a load sees the memory the others' models take.

Each kernel keeps one small JSON file, ``<runtime dir>/llmux-memory/<pid>.json`` (the Jupyter
runtime dir, or ``$LLMUX_RUNTIME_DIR``): its pid and start time, its notebook (the
``JPY_SESSION_NAME`` a Jupyter server gives a notebook's kernel) and each loaded model's
device, estimated and measured memory. Only that kernel writes it, whole (temporary, then
rename), when a model loads, unloads or is evicted; it is removed when its last model goes
and when the kernel exits.

Kernels read the folder when they load a model (and for ``%llm ps``, the picker and the
sidebar), never while a model generates. An entry whose process is gone, a zombie, or whose
pid now belongs to a process started later is ignored and its file deleted.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import time
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from ..models.files import write_atomically
from ..types.values import RequiredMemory
from ..units import format_bytes
from .budgets import charges

FOLDER = "llmux-memory"
VERSION = 1
# psutil's start times of one process agree to well within this (they are read from /proc).
_SAME_START_S = 1.0


def default_directory() -> Path:
    """``$LLMUX_RUNTIME_DIR/llmux-memory``, else ``<jupyter runtime dir>/llmux-memory``."""
    configured = os.environ.get("LLMUX_RUNTIME_DIR")
    if configured:
        return Path(configured).expanduser() / FOLDER
    from jupyter_core.paths import jupyter_runtime_dir

    return Path(jupyter_runtime_dir()) / FOLDER


@dataclass(frozen=True)
class HeldModel:
    """A loaded model as the ledger records it."""

    name: str
    backend: str
    device: str
    estimate: RequiredMemory
    measured: RequiredMemory

    @property
    def held(self) -> dict[str, int]:
        """Bytes per budget (cpu, cuda:N): the larger of the estimate and the measurement."""
        estimated = charges(self.device, self.estimate)
        measured = charges(self.device, self.measured)
        return {
            device: max(estimated.get(device, 0), measured.get(device, 0))
            for device in sorted({*estimated, *measured})
        }


@dataclass(frozen=True)
class KernelModels:
    """Another kernel's loaded models; ``notebook`` is its notebook's path when known."""

    pid: int
    notebook: str | None
    models: tuple[HeldModel, ...]
    updated: float

    @property
    def held(self) -> dict[str, int]:
        """Bytes its models hold, per budget."""
        return held_per_device([self])

    def describe(self, device: str | None = None) -> str:
        """'notebook analysis.ipynb (pid 4242): smollm2 180.0 MiB' (models on ``device``)."""
        who = f"notebook {self.notebook}" if self.notebook else "a kernel"
        models = [
            f"{model.name} {format_bytes(sum(model.held.values()))}"
            if device is None
            else f"{model.name} {format_bytes(model.held[device])}"
            for model in self.models
            if device is None or model.held.get(device)
        ]
        return f"{who} (pid {self.pid}): {', '.join(models)}"


def held_per_device(kernels: Iterable[KernelModels]) -> dict[str, int]:
    """Bytes the kernels' models hold, per budget."""
    totals: dict[str, int] = {}
    for kernel in kernels:
        for model in kernel.models:
            for device, amount in model.held.items():
                totals[device] = totals.get(device, 0) + amount
    return totals


class HostLedger:
    """This kernel's entry in the ledger, and the other kernels' entries."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory if directory is not None else default_directory()
        self.pid = os.getpid()
        self.started = psutil.Process(self.pid).create_time()
        self.notebook = os.environ.get("JPY_SESSION_NAME") or None
        self._exit_hook = False

    @property
    def path(self) -> Path:
        return self.directory / f"{self.pid}.json"

    def record(self, models: Sequence[HeldModel]) -> None:
        """Write this kernel's entry (remove it when ``models`` is empty); raises OSError."""
        if os.getpid() != self.pid:  # a forked child is not the kernel
            return
        if not models:
            self.forget()
            return
        entry = {
            "version": VERSION,
            "pid": self.pid,
            "started": self.started,
            "notebook": self.notebook,
            "updated": time.time(),
            "models": [asdict(model) for model in models],
        }
        write_atomically(self.path, json.dumps(entry, indent=1), durable=False)
        if not self._exit_hook:
            atexit.register(self.forget)
            self._exit_hook = True

    def forget(self) -> None:
        """Remove this kernel's entry."""
        if os.getpid() == self.pid:
            with contextlib.suppress(OSError):
                self.path.unlink(missing_ok=True)

    def others(self) -> list[KernelModels]:
        """The other live kernels' entries; the files of kernels that are gone are deleted."""
        try:
            paths = sorted(self.directory.glob("*.json"), key=lambda path: path.name)
        except OSError:
            return []
        found = []
        for path in paths:
            entry = _read(path)
            if entry is None:  # not one of ours, or unreadable: never trusted
                continue
            kernel, started = entry
            if kernel.pid == self.pid:
                continue
            if _alive(kernel.pid, started):
                found.append(kernel)
            else:
                with contextlib.suppress(OSError):
                    path.unlink()
        return found

    def version(self) -> Hashable:
        """Changes whenever an entry is written, replaced or removed: each file's name, inode
        and modification time (one ``scandir``, no file read)."""
        try:
            with os.scandir(self.directory) as entries:
                return frozenset(
                    (entry.name, entry.inode(), entry.stat().st_mtime_ns)
                    for entry in entries
                    if entry.name.endswith(".json")
                )
        except OSError:
            return None


def _read(path: Path) -> tuple[KernelModels, float] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        models = tuple(
            HeldModel(
                str(model["name"]),
                str(model["backend"]),
                str(model["device"]),
                RequiredMemory(**model["estimate"]),
                RequiredMemory(**model["measured"]),
            )
            for model in data["models"]
        )
        kernel = KernelModels(int(data["pid"]), data.get("notebook"), models, data["updated"])
        return kernel, float(data["started"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _alive(pid: int, started: float) -> bool:
    """Whether process ``pid`` is the one that started at ``started`` and still runs."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return abs(process.create_time() - started) < _SAME_START_S
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True
