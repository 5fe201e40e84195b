"""Where converted GGUF files are cached, and when a conversion counts as done."""

import os
import re
import threading
import time

import pytest

from llmux_jupyter.backends import gguf_conversion
from llmux_jupyter.backends.gguf_conversion import (
    cached_conversion,
    conversion_directory,
    converted,
)
from llmux_jupyter.models.cache import cache_root
from llmux_jupyter.models.files import SEAL, seal_folder


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


def test_only_a_sealed_conversion_counts(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMUX_CACHE_DIR", str(tmp_path / "cache"))
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    target = conversion_directory(model, "float32")
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")
    assert cached_conversion(model, "float32") is None  # not sealed: a killed writer's
    seal_folder(target)
    assert cached_conversion(model, "float32") == target
    (target / "config.json").write_text("")  # damaged since
    assert cached_conversion(model, "float32") is None


@pytest.fixture
def fake_conversion(monkeypatch, tmp_path):
    """``_convert`` replaced by one that writes a sealed folder after ``pause`` seconds and
    counts its calls."""
    monkeypatch.setenv("LLMUX_CACHE_DIR", str(tmp_path / "cache"))
    calls = []

    def convert(gguf, dtype, target):
        calls.append(target)
        time.sleep(0.3)
        staging = target.with_name(f".{target.name}.staging")
        staging.mkdir(parents=True)
        (staging / "model.safetensors").write_bytes(b"w" * 64)
        seal_folder(staging)
        staging.rename(target)
        return target

    monkeypatch.setattr(gguf_conversion, "_convert", convert)
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    return model, calls


def test_two_loads_at_once_convert_once(fake_conversion):
    model, calls = fake_conversion
    start = threading.Barrier(2)
    results = []

    def load():
        start.wait()
        results.append(converted(model, "float32"))

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert {folder for folder, _ in results} == {conversion_directory(model, "float32")}
    hows = sorted(how for _, how in results)
    assert hows[0] == "converted and cached"
    assert re.fullmatch(r"converted by another kernel \(this one waited \d+s\) and cached", hows[1])
    assert converted(model, "float32")[1] == "cached"


def test_what_a_killed_conversion_left_is_removed_and_converted_again(fake_conversion):
    model, calls = fake_conversion
    target = conversion_directory(model, "float32")
    leftover = target.with_name(f".{target.name}.k1ll3d")
    leftover.mkdir(parents=True)
    (leftover / "model.safetensors").write_bytes(b"half")
    target.mkdir()
    (target / "config.json").write_text("{}")  # unsealed: e.g. from an older llmux
    folder, how = converted(model, "float32")
    assert (folder, how, len(calls)) == (target, "converted and cached", 1)
    assert not leftover.exists()
    assert sorted(p.name for p in target.iterdir()) == [SEAL, "model.safetensors"]
