"""A real IPython shell (terminal flavour) with the magics driving the echo backend."""

import pytest
from IPython.core.interactiveshell import InteractiveShell

from llmux_jupyter.frontends.magics import LLMuxMagics


@pytest.fixture
def shell(fake_llm):
    shell = InteractiveShell.instance()
    shell.register_magics(LLMuxMagics(shell, fake_llm))
    yield shell
    shell.user_ns.pop("answer", None)
