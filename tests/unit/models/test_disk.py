"""``llm.du()``, ``llm.clear_cache()`` and their magics over a cache folder made in the test:
conversions of a registered and of a changed GGUF, a shared cache plugged in with one
declaration, a Hugging Face hub cache shared by two models, and a user's model kept inside."""

from __future__ import annotations

import os

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from llmux_jupyter.backends.gguf_conversion import conversion_directory
from llmux_jupyter.errors import CacheError, InvalidParameter, UnknownModel
from llmux_jupyter.frontends.magics import LLMuxMagics
from llmux_jupyter.models import disk
from llmux_jupyter.models.disk import FolderCache

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def setup(fake_llm, tmp_path, monkeypatch):
    """The fake API with a cache folder holding one entry of every kind."""
    import huggingface_hub.constants as constants

    cache = tmp_path / "cache"
    monkeypatch.setenv("LLMUX_CACHE_DIR", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    # llm.map's "map results" (engine.map_cache) is declared already: one line plugs a cache in
    assert "map results" in [known.name for known in disk.CACHES]
    echo = FolderCache("echo cache", "echo", lambda specs: {cache / "echo" / "e1": ["echo"]})
    monkeypatch.setattr(disk, "CACHES", [*disk.CACHES, echo])

    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 2044)
    fake_llm.register("tiny-hf", backend="transformers", path=str(gguf))
    current = conversion_directory(gguf, "float32")
    stale = current.with_name("tiny-float32-0000000000000000")  # the file has changed since
    for folder, size in ((current, 3000), (stale, 5000), (cache / "echo" / "e1", 700)):
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"x" * size)
    (cache / "map").mkdir()
    (cache / "map" / "results.sqlite").write_bytes(b"x" * 400)
    mine = cache / "transformers" / "my-own-model"  # a user registered a folder in the cache
    mine.mkdir()
    (mine / "config.json").write_bytes(b"x" * 100)
    fake_llm.register("mine", backend="transformers", path=str(mine))

    blob = _hub_repo(tmp_path / "hub", "org/weights", "w.gguf", 900)
    fake_llm.register("hub-a", backend="llamacpp", hf="org/weights", file="w.gguf")
    fake_llm.register("hub-b", backend="llamacpp", hf="org/weights", file="w.gguf", n_ctx=512)
    return {"cache": cache, "current": current, "stale": stale, "mine": mine, "blob": blob}


def _hub_repo(hub, repo_id, filename, size):
    repo = hub / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    (repo / "blobs").mkdir()
    blob = repo / "blobs" / "abc123"
    blob.write_bytes(b"x" * size)
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    os.symlink(os.path.relpath(blob, snapshot), snapshot / filename)
    return blob


def entries(usage):
    return {entry.path.name: entry for entry in usage.entries}


def test_du_lists_models_caches_owners_and_orphans(fake_llm, setup):
    usage = fake_llm.du()
    found = entries(usage)
    assert found[setup["current"].name].models == ("tiny-hf",)
    assert found[setup["stale"].name].orphan and found[setup["stale"].name].size == 5000
    assert found["results.sqlite"].shared and not found["results.sqlite"].orphan
    assert found["my-own-model"].models == ("mine",) and found["my-own-model"].keeps
    hub = found["models--org--weights"]
    assert hub.models == ("hub-a", "hub-b") and hub.named_only and hub.size == 900
    assert usage.orphan_bytes == 5000 and usage.cached_for("tiny-hf") == 3000
    models = {model.name: model for model in usage.models}
    assert models["hub-a"].size == 900 and models["hub-a"].path.name == "w.gguf"
    assert models["echo"].size == 1000 and models["tiny-hf"].size == 2048
    assert usage.model_bytes == 1000 + 2048 + 100  # echo, broken, flaky share one file


def test_clear_orphans_deletes_only_what_no_model_owns(fake_llm, setup):
    done = fake_llm.clear_cache(orphans=True)
    assert [entry.path for entry in done.freed] == [setup["stale"]] and done.freed_bytes == 5000
    assert not setup["stale"].exists() and setup["current"].exists() and setup["mine"].exists()


def test_clear_by_name_and_the_hub_download_shared_by_two_models(fake_llm, setup):
    done = fake_llm.clear_cache("tiny-hf", "hub-a")
    assert [entry.path for entry in done.freed] == [setup["current"]]
    assert [(e.path.name, why) for e, why in done.kept] == [
        ("models--org--weights", "hub-b use it too: name them as well")
    ]
    assert setup["blob"].exists()
    done = fake_llm.clear_cache("hub-a", "hub-b")
    assert [entry.path.name for entry in done.freed] == ["models--org--weights"]
    assert not setup["blob"].exists() and "models--org--weights" not in entries(fake_llm.du())


def test_clear_all_spares_the_hub_and_a_users_own_files(fake_llm, setup):
    done = fake_llm.clear_cache(all=True)
    freed = sorted(entry.path.name for entry in done.freed)
    assert freed == sorted(["e1", "results.sqlite", setup["current"].name, setup["stale"].name])
    assert [entry.path.name for entry, _ in done.kept] == ["my-own-model"]
    assert setup["mine"].exists() and setup["blob"].exists()
    assert sorted(entries(fake_llm.du())) == ["models--org--weights", "my-own-model"]


def test_a_loaded_models_cache_is_refused_and_nothing_is_deleted(fake_llm, setup):
    fake_llm.load("echo")
    for call in (lambda: fake_llm.clear_cache("echo"), lambda: fake_llm.clear_cache(all=True)):
        with pytest.raises(CacheError, match=r"echo is loaded .* nothing was deleted"):
            call()
    assert len(fake_llm.du().entries) == 6 and fake_llm.ps()[0].name == "echo"


@pytest.mark.parametrize(
    ("names", "options", "error", "message"),
    [
        ((), {}, InvalidParameter, "Name the models"),
        (("echo",), {"orphans": True}, InvalidParameter, "or orphans, or all"),
        (("nope",), {}, UnknownModel, "No model named 'nope'"),
    ],
)
def test_bad_clear_requests(fake_llm, setup, names, options, error, message):
    with pytest.raises(error, match=message):
        fake_llm.clear_cache(*names, **options)
    assert len(fake_llm.du().entries) == 6


@pytest.fixture
def shell(fake_llm):
    shell = InteractiveShell.instance()
    shell.register_magics(LLMuxMagics(shell, fake_llm))
    return shell


def test_du_and_cache_clear_magics(shell, setup, capsys):
    shell.run_line_magic("llm", "du")
    out = capsys.readouterr().out
    assert "Caches: 9.9 KiB, of which orphaned 4.9 KiB" in out
    assert "orphan" in out and "shared" in out and "hub-a, hub-b" in out
    assert "holds mine's own files: never cleared" in out
    assert "cleared only by naming its models" in out
    shell.run_line_magic("llm", "cache clear --orphans")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Freed 4.9 KiB."
    assert out[1].endswith(f"transformers GGUF conversions: {setup['stale']} (orphan)")
    shell.run_line_magic("llm", "cache clear --orphans")
    assert capsys.readouterr().out == "Nothing to clear.\n"
    shell.run_line_magic("llm", "cache clear hub-a")
    assert "kept " in capsys.readouterr().out
    for line in ("cache clear", "cache clear echo --all", "cache purge echo"):
        with pytest.raises(UsageError):
            shell.run_line_magic("llm", line)
