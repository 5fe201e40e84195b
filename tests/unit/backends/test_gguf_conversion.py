"""Where converted GGUF files are cached, and when a conversion counts as done."""

import os

from llmux_jupyter.backends.gguf_conversion import cached_conversion, conversion_directory
from llmux_jupyter.models.cache import cache_root


def test_cache_root_prefers_llmux_then_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMUX_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine"
    monkeypatch.delenv("LLMUX_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "llmux"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "llmux"


def test_the_key_follows_the_file_and_the_dtype(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMUX_CACHE_DIR", str(tmp_path / "cache"))
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + b"\0" * 10)
    first = conversion_directory(model, "float32")
    assert first.parent == tmp_path / "cache" / "transformers"
    assert first.name.startswith("m-float32-")
    assert conversion_directory(model, "float32") == first
    assert conversion_directory(model, "float16") != first
    os.utime(model, ns=(1, 1))  # a replaced file is converted again
    assert conversion_directory(model, "float32") != first


def test_only_a_finished_conversion_counts(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMUX_CACHE_DIR", str(tmp_path / "cache"))
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    target = conversion_directory(model, "float32")
    target.mkdir(parents=True)
    assert cached_conversion(model, "float32") is None
    (target / "config.json").write_text("{}")
    assert cached_conversion(model, "float32") == target
