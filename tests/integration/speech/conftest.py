"""Speech fixtures: the real Whisper tiny.en and Piper voice in-process, a spoken clip, and the
Chatterbox environment (its own interpreter, random weights of the real architecture)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmux_jupyter.api import LLM
from llmux_jupyter.models.catalog import Catalog
from llmux_jupyter.types.audio import SpeechAudio

from ..kernel import Kernel, llmux_kernel
from .chatterbox_weights import T3_LAYERS
from .helpers import SENTENCE

ROOT = Path(__file__).resolve().parents[3]
CHATTERBOX_PYTHON = "LLMUX_CHATTERBOX_PYTHON"


@pytest.fixture(scope="session")
def speech_llm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLM]:
    """An in-process LLM whose Whisper and Piper load once for the session."""
    llm = LLM(Catalog(tmp_path_factory.mktemp("speech-config") / "models.json"))
    yield llm
    llm.unload(all=True)


@pytest.fixture(scope="session")
def spoken(speech_llm: LLM) -> SpeechAudio:
    """Piper saying SENTENCE."""
    audio = speech_llm.say(SENTENCE)
    assert isinstance(audio, SpeechAudio)
    return audio


@pytest.fixture(scope="session")
def spoken_wav(spoken: SpeechAudio, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return spoken.save(tmp_path_factory.mktemp("clips") / "sentence.wav")


@pytest.fixture(scope="module")
def speech_kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kernel]:
    """A kernel of its own (the session's chat kernel keeps only what its tests load)."""
    with llmux_kernel(tmp_path_factory.mktemp("speech-kernel-config")) as kernel:
        yield kernel


@pytest.fixture(scope="session")
def chatterbox_python() -> str:
    """The .venv-chatterbox interpreter (``make chatterbox-env``). ``make test`` names it in
    LLMUX_CHATTERBOX_PYTHON, and then it must exist; a bare pytest run without the
    environment skips the Chatterbox tests."""
    configured = os.environ.get(CHATTERBOX_PYTHON)
    python = Path(configured or ROOT / ".venv-chatterbox" / "bin" / "python")
    if not python.exists():
        if configured:
            pytest.fail(f"{CHATTERBOX_PYTHON}={configured} does not exist: run make chatterbox-env")
        pytest.skip("no .venv-chatterbox: run make chatterbox-env (make test does)")
    return str(python.absolute())  # not resolve(): the venv's python is a symlink


@pytest.fixture(scope="session")
def chatterbox_weights(
    chatterbox_python: str, spoken_wav: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """Random weights of the real architecture: ``local/`` for from_local (no built-in voice),
    ``hub/`` with a built-in voice for the from_pretrained test. 1.3 GB, removed afterwards."""
    out = tmp_path_factory.mktemp("chatterbox") / "weights"
    script = Path(__file__).with_name("chatterbox_weights.py")
    subprocess.run(
        [chatterbox_python, str(script), str(out), str(spoken_wav)], check=True, timeout=900
    )
    yield out
    shutil.rmtree(out)


@pytest.fixture(scope="module")
def chatterbox_kernel(
    chatterbox_python: str, chatterbox_weights: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Kernel]:
    """A real kernel on the Chatterbox interpreter, T3 shrunk as the weights were built."""
    with llmux_kernel(
        tmp_path_factory.mktemp("chatterbox-config"),
        "from chatterbox.models.t3.llama_configs import LLAMA_CONFIGS\n"
        f"LLAMA_CONFIGS['Llama_520M']['num_hidden_layers'] = {T3_LAYERS}\n",
        python=chatterbox_python,
        timeout=600,
    ) as kernel:
        yield kernel
