"""How many CPU threads inference should use, chosen as the fastest engines choose them.

Decoding one token is a chain of matrix-vector products bound by memory bandwidth; a second
hardware thread on the same core adds contention, not speed, so llama.cpp's own tools and
Ollama decode with one thread per physical core. Evaluating a prompt is a batch of matrix
products bound by arithmetic, and there every logical CPU helps (llama-cpp-python's default).
Only the CPUs this process may run on count (its affinity mask, e.g. under ``taskset``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class CpuCores:
    """The processor's physical cores and the logical CPUs this process may run on."""

    physical: int
    logical: int


@dataclass(frozen=True)
class ThreadCounts:
    """Threads of CPU inference: ``decode`` for generating tokens, ``prompt`` for evaluating
    prompts (batches)."""

    decode: int
    prompt: int

    def __str__(self) -> str:
        return f"{self.decode} decoding, {self.prompt} for prompts"


def cpu_cores() -> CpuCores:
    """This host's cores, read now (cheap)."""
    logical = _usable_cpus()
    physical = psutil.cpu_count(logical=False) or _physical_guess(logical)
    return CpuCores(physical, logical)


def best_threads(cores: CpuCores | None = None) -> ThreadCounts:
    """One decoding thread per physical core (never more than the usable CPUs), one prompt
    thread per usable logical CPU."""
    cores = cores or cpu_cores()
    return ThreadCounts(max(1, min(cores.physical, cores.logical)), cores.logical)


def _usable_cpus() -> int:
    """Logical CPUs this process may run on (all of the host's when the OS cannot say)."""
    try:
        return max(1, len(psutil.Process().cpu_affinity() or ()))
    except (AttributeError, psutil.Error):  # no affinity on macOS
        return max(1, psutil.cpu_count(logical=True) or os.cpu_count() or 1)


def _physical_guess(logical: int) -> int:
    """llama.cpp's own guess when the physical cores are unknown: all of up to four logical
    CPUs, half of more (two hardware threads per core)."""
    return logical if logical <= 4 else logical // 2
