"""%llm register/list/ps and %%llm with a server model, in a real (terminal) IPython shell."""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell

from llmux_jupyter.api import LLM
from llmux_jupyter.errors import InvalidParameter, RemoteServerError
from llmux_jupyter.frontends.magics import LLMuxMagics
from llmux_jupyter.models.catalog import Catalog

from ..fake_openai import FakeOpenAIServer


@pytest.fixture
def server():
    fake = FakeOpenAIServer(models=("fake-model", "other"), hold_after=3)
    yield fake
    fake.close()


@pytest.fixture
def shell(tmp_path):
    llm = LLM(Catalog(tmp_path / "models.json"))
    shell = InteractiveShell.instance()
    shell.register_magics(LLMuxMagics(shell, llm))
    yield shell
    llm.unload(all=True)
    shell.user_ns.pop("answer", None)


def line(shell, text):
    return shell.run_line_magic("llm", text)


def test_register_list_ps_and_a_failure_mid_answer(shell, server, capsys):
    url = server.url.replace("http://", "http://bob:hunter2@")
    line(shell, f"register far --backend openai --base-url {url} --model fake-model "
                "--set timeout=0.5 --set max_retries=0")  # fmt: skip
    registered = capsys.readouterr().out
    assert f"Registered far (openai, chat, fake-model @ {server.url})" in registered
    line(shell, "list")
    listing = capsys.readouterr().out
    assert f"fake-model @ {server.url}  remote" in listing
    line(shell, "list --remote far")
    served = capsys.readouterr().out
    assert f"Served at {server.url}" in served
    assert "fake-model  fake      far" in served and "other" in served
    shell.user_ns["answer"] = "before"
    with pytest.raises(RemoteServerError, match=r"sent nothing for 0\.5 s"):
        shell.run_cell_magic("llm", "-m far -o answer", "Hi")
    assert capsys.readouterr().out == "Hello there,\n"  # the partial answer stays shown
    assert shell.user_ns["answer"] == "before"  # a failed answer changes no variable
    line(shell, "ps")
    ps = capsys.readouterr().out
    assert f"remote {server.url}" in ps and "0 B" in ps
    assert all("hunter2" not in text for text in (registered, listing, served, ps))


def test_list_remote_of_a_local_model_is_refused(shell):
    with pytest.raises(InvalidParameter, match="'smollm2' is a local model, not on a server"):
        line(shell, "list --remote smollm2")
