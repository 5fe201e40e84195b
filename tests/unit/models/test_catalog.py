import json

import pytest

from llmux_jupyter.errors import RegistrationError, UnknownModel
from llmux_jupyter.models.catalog import BUILTIN_MODELS, Catalog, default_store_path
from llmux_jupyter.models.sources import FileSource, HuggingFaceSource
from llmux_jupyter.models.spec import ModelSpec
from llmux_jupyter.types.values import Task


def spec(name="mine", source=None):
    return ModelSpec(
        name,
        "llamacpp",
        Task.CHAT,
        source or FileSource("/models/x.gguf"),
        settings={"n_ctx": 4096},
    )


def test_registrations_persist_across_instances(tmp_path):
    store = tmp_path / "models.json"
    Catalog(store).register(spec(source=HuggingFaceSource("org/repo", "m.gguf", "main")))
    reloaded = Catalog(store).get("mine")
    assert reloaded == spec(source=HuggingFaceSource("org/repo", "m.gguf", "main"))
    assert json.loads(store.read_text())["version"] == 1


def test_unregister_removes_from_the_store(tmp_path):
    store = tmp_path / "models.json"
    Catalog(store).register(spec())
    Catalog(store).unregister("mine")
    assert "mine" not in Catalog(store).names()


def test_builtin_names_cannot_be_taken_or_removed(tmp_path):
    catalog = Catalog(tmp_path / "m.json")
    with pytest.raises(RegistrationError, match="built-in"):
        catalog.register(spec(name="smollm2"))
    with pytest.raises(RegistrationError, match="built in"):
        catalog.unregister("smollm2")
    assert not (tmp_path / "m.json").exists()


def test_bad_names_are_refused(tmp_path):
    with pytest.raises(RegistrationError, match="not a usable model name"):
        Catalog(tmp_path / "m.json").register(spec(name="has space"))


def test_unknown_model_suggests_close_names(tmp_path):
    with pytest.raises(UnknownModel, match="Did you mean smollm2"):
        Catalog(tmp_path / "m.json").get("smolm2")


def test_a_corrupt_store_says_which_file(tmp_path):
    store = tmp_path / "models.json"
    store.write_text("{not json")
    with pytest.raises(RegistrationError, match=str(store)):
        Catalog(store)


def test_default_store_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMUX_CONFIG_DIR", str(tmp_path))
    assert default_store_path() == tmp_path / "models.json"
    monkeypatch.delenv("LLMUX_CONFIG_DIR")
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "jcfg"))
    assert default_store_path() == tmp_path / "jcfg" / "llmux" / "models.json"


def test_builtins_include_the_embedded_chat_model():
    assert {m.name: m.task for m in BUILTIN_MODELS}["smollm2"] is Task.CHAT
