"""RemoteSource, API keys by variable name, and remote registrations (no network)."""

from __future__ import annotations

import json

import pytest

from llmux_jupyter.api import LLM
from llmux_jupyter.errors import InvalidParameter, SourceNotFound
from llmux_jupyter.models.catalog import Catalog
from llmux_jupyter.models.credentials import api_key, keys_file, refuse_secrets
from llmux_jupyter.models.sources import RemoteSource, source_from_dict
from llmux_jupyter.types.values import Task

SECRET_URL = "https://alice:pa55word@gpu-box.lan:8443/v1/"


def test_round_trips_and_never_shows_url_credentials():
    source = RemoteSource(SECRET_URL, "llama-70b", "CLUSTER_KEY")
    assert source_from_dict(source.to_dict()) == source
    assert source.describe() == "llama-70b @ https://gpu-box.lan:8443/v1"
    for shown in (source.describe(), repr(source), source.public_url):
        assert "pa55word" not in shown and "alice" not in shown
    assert source.is_available()  # resolving never touches the network...
    with pytest.raises(SourceNotFound, match="register it with --backend openai"):
        source.resolve()  # ...and a local-file backend is told what to use instead


@pytest.mark.parametrize(
    ("url", "model", "variable", "message"),
    [
        ("gpu-box:8000/v1", "m", None, "is not a server URL"),
        ("ftp://gpu-box/v1", "m", None, "is not a server URL"),
        ("http://gpu-box/v1?token=abc", "m", None, "no \\?query"),
        ("http://gpu-box/v1", "", None, "Name the served model with --model"),
        ("http://gpu-box/v1", "m", "sk-live-123 456", "give the NAME of an environment variable"),
    ],
)
def test_bad_remote_sources_are_refused(url, model, variable, message):
    with pytest.raises(InvalidParameter, match=message):
        RemoteSource(url, model, variable)


def test_key_comes_from_the_environment_then_the_keys_file(monkeypatch):
    assert api_key(None) is None
    monkeypatch.setenv("LLMUX_T_KEY", "from-env")
    assert api_key("LLMUX_T_KEY") == "from-env"
    monkeypatch.delenv("LLMUX_T_KEY")
    with pytest.raises(InvalidParameter, match="LLMUX_T_KEY is set neither") as missing:
        api_key("LLMUX_T_KEY")
    assert str(keys_file()) in str(missing.value)
    path = keys_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# my servers\nOTHER=x\nLLMUX_T_KEY = from-file\n")
    path.chmod(0o644)
    with pytest.raises(InvalidParameter, match="chmod 600"):
        api_key("LLMUX_T_KEY")
    path.chmod(0o600)
    assert api_key("LLMUX_T_KEY") == "from-file"


def test_settings_that_look_like_secrets_are_refused():
    refuse_secrets({"timeout": 5, "max_retries": 0, "n_keep": 1})
    for name in ("api_key", "token", "hf_token", "password", "client_secret"):
        with pytest.raises(InvalidParameter, match="--api-key-env") as refused:
            refuse_secrets({name: "sk-live-123"})
        assert "sk-live-123" not in str(refused.value)


def test_register_a_server_model_stores_only_the_variable_name(tmp_path, monkeypatch):
    monkeypatch.setenv("CLUSTER_KEY", "sk-live-123")
    llm = LLM(Catalog(tmp_path / "models.json"))
    spec = llm.register(
        "big", backend="openai", base_url=SECRET_URL, model="llama-70b", api_key_env="CLUSTER_KEY"
    )
    assert spec.task is Task.CHAT  # a server model is a chat model unless task= says otherwise
    stored = (tmp_path / "models.json").read_text()
    assert "CLUSTER_KEY" in stored and "sk-live-123" not in stored
    assert json.loads(stored)["models"][0]["source"]["kind"] == "remote"
    assert Catalog(tmp_path / "models.json").get("big") == spec
    whisper = llm.register(
        "stt", backend="openai", base_url=SECRET_URL, model="whisper-1", task="speech-to-text"
    )
    assert whisper.task is Task.TRANSCRIPTION


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"base_url": "http://h/v1", "model": "m", "path": "/x"}, "exactly one of"),
        ({"model": "m"}, "exactly one of"),
        ({"hf": "org/repo", "model": "m"}, "go with base_url"),
        ({"base_url": "http://h/v1", "model": "m", "api_key": "sk-live-123"}, "plain text"),
    ],
)
def test_bad_remote_registrations_change_nothing(tmp_path, arguments, message):
    llm = LLM(Catalog(tmp_path / "models.json"))
    with pytest.raises(InvalidParameter, match=message):
        llm.register("x", backend="openai", **arguments)
    assert not (tmp_path / "models.json").exists()
