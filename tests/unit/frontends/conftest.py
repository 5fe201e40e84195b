"""A terminal IPython with the magics on the echo backends."""

from collections.abc import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell

from llmux_jupyter.api import LLM
from llmux_jupyter.frontends.magics import LLMuxMagics


@pytest.fixture
def shell(fake_llm: LLM) -> Iterator[InteractiveShell]:
    """The shell with our magics driving ``fake_llm``; the variables a test sets go after it."""
    shell = InteractiveShell.instance()
    before = set(shell.user_ns)
    shell.register_magics(LLMuxMagics(shell, fake_llm))
    yield shell
    for name in set(shell.user_ns) - before:
        del shell.user_ns[name]
