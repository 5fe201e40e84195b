"""``llm.du()`` and ``llm.clear_cache()`` on real caches: a real transformers conversion of the
SmolLM2 GGUF (owned, refused while loaded, orphaned when the file changes, cleared), and a real
Hugging Face hub cache entry that llama.cpp loads from (cleared by the model's name)."""

from __future__ import annotations

import os
import shutil

import pytest

from llmux_jupyter.api import LLM
from llmux_jupyter.errors import CacheError, SourceNotFound
from llmux_jupyter.models.catalog import Catalog

COMMIT = "0123456789abcdef0123456789abcdef01234567"
MIB = 2**20


@pytest.fixture
def api(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMUX_CACHE_DIR", str(tmp_path / "cache"))
    llm = LLM(Catalog(tmp_path / "models.json"))
    yield llm
    llm.unload(all=True)


def test_a_real_conversion_is_owned_refused_while_loaded_and_cleared_once_orphaned(
    api, tmp_path, smollm2_path
):
    gguf = tmp_path / "copy.gguf"
    shutil.copyfile(smollm2_path, gguf)
    api.register("copy-hf", backend="transformers", path=str(gguf))
    api.load("copy-hf")  # converts the GGUF once, into this test's cache folder
    (entry,) = api.du().entries
    assert entry.cache == "transformers GGUF conversions" and entry.models == ("copy-hf",)
    assert 500 * MIB < entry.size < 540 * MIB  # SmolLM2-135M at float32
    with pytest.raises(CacheError, match="copy-hf is loaded"):
        api.clear_cache("copy-hf")
    assert entry.path.is_dir()
    api.unload("copy-hf")
    os.utime(gguf, ns=(0, gguf.stat().st_mtime_ns + 10**9))  # the file changed
    (orphan,) = api.du().entries
    assert orphan.orphan and orphan.path == entry.path
    done = api.clear_cache(orphans=True)
    assert done.freed_bytes == entry.size and not entry.path.exists()
    assert gguf.is_file() and api.du().entries == []  # the model's own file stays


def test_a_hub_download_is_cleared_by_its_models_name(api, tmp_path, smollm2_path, monkeypatch):
    import huggingface_hub.constants as constants

    repo = tmp_path / "hub" / "models--HuggingFaceTB--SmolLM2-135M-Instruct-GGUF"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    (repo / "blobs").mkdir()
    shutil.copyfile(smollm2_path, repo / "blobs" / "f00d")
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (snapshot / "smollm2.gguf").symlink_to(os.path.relpath(repo / "blobs" / "f00d", snapshot))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    api.register(
        "smol-hub",
        backend="llamacpp",
        hf="HuggingFaceTB/SmolLM2-135M-Instruct-GGUF",
        file="smollm2.gguf",
    )
    assert api.chat("Say hi.", model="smol-hub", max_tokens=4).text
    usage = api.du()
    (entry,) = usage.entries
    assert entry.models == ("smol-hub",) and entry.size == smollm2_path.stat().st_size
    model = next(m for m in usage.models if m.name == "smol-hub")
    assert model.size == entry.size and model.path.name == "smollm2.gguf"
    assert api.clear_cache(all=True).freed == []  # --all leaves a registered model's download
    with pytest.raises(CacheError, match="smol-hub is loaded"):
        api.clear_cache("smol-hub")
    api.unload("smol-hub")
    assert api.clear_cache("smol-hub").freed_bytes == entry.size
    assert not repo.exists() and smollm2_path.is_file()
    with pytest.raises(SourceNotFound):
        api.load("smol-hub")
