"""What a model library prints while loading goes to logging; warnings still show, once."""

from __future__ import annotations

import logging
import warnings

import pytest

from llmux_jupyter.api import LLM
from llmux_jupyter.backends.registry import registry
from llmux_jupyter.engine import load_output
from llmux_jupyter.errors import InvalidParameter
from llmux_jupyter.models.catalog import Catalog

from ..conftest import EchoBackend


class ChattyBackend(EchoBackend):
    """Prints, writes to stderr and warns while it loads, as model libraries do."""

    def load(self) -> None:
        print("loaded PerthNet (Implicit) at step 250,000")
        import sys

        sys.stderr.write("progress 10%\rprogress 100%\n")
        warnings.warn("this checkpoint is old\nmore detail", UserWarning, stacklevel=1)
        super().load()


@pytest.fixture
def llm(tmp_path, model_file, monkeypatch):
    monkeypatch.setattr(load_output, "_shown_warnings", set())  # a kernel of its own
    registry.add("chatty", ChattyBackend)
    ChattyBackend.loads = 0
    api = LLM(Catalog(tmp_path / "models.json", builtins=[]))
    api.register("talker", backend="chatty", path=str(model_file))
    yield api
    registry.remove("chatty")


def test_prints_are_logged_and_a_warning_is_shown_once(llm, capsys, caplog):
    caplog.set_level(logging.INFO, logger="llmux_jupyter.native")
    llm.load("talker")
    out, err = capsys.readouterr()
    assert out == "" and err == "UserWarning: this checkpoint is old\n"
    logged = [(r.name, r.getMessage()) for r in caplog.records]
    assert logged == [
        ("llmux_jupyter.native.chatty", "loaded PerthNet (Implicit) at step 250,000"),
        ("llmux_jupyter.native.chatty", "progress 10%"),
        ("llmux_jupyter.native.chatty", "progress 100%"),
    ]
    llm.unload("talker")
    llm.load("talker")
    assert capsys.readouterr() == ("", "")  # the same warning is not shown again


def test_verbose_lets_it_all_through(llm, capsys):
    with pytest.warns(UserWarning, match="this checkpoint is old"):
        llm.load("talker", verbose="true")
    out, err = capsys.readouterr()
    assert "loaded PerthNet" in out and "progress 100%" in err


def test_a_bad_verbose_value_is_refused_before_loading(llm):
    with pytest.raises(InvalidParameter, match="verbose must be true or false, not 'loud'"):
        llm.load("talker", verbose="loud")
    assert llm.ps() == [] and ChattyBackend.loads == 0
