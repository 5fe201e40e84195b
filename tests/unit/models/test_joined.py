"""A model file in parts across packages: joined once, checked, safe under two processes and a
join killed half-way."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from llmux_jupyter.errors import SourceNotFound
from llmux_jupyter.models.disk import disk_usage
from llmux_jupyter.models.joined import JoinedPackageSource
from llmux_jupyter.models.sources import source_from_dict
from llmux_jupyter.models.spec import ModelSpec
from llmux_jupyter.types.values import Task

PARTS = [b"GGUF" + b"a" * 1000, b"b" * 777, b"c" * 5]


@pytest.fixture
def part_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Three installed packages ``fakeparts_part1..3`` holding ``data/partNN.bin``."""
    site = tmp_path / "site"
    for number, content in enumerate(PARTS, 1):
        package = site / f"fakeparts_part{number}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data" / f"part{number:02d}.bin").write_bytes(content)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("LLMUX_CACHE_DIR", str(tmp_path / "cache"))
    return site


def joined_source(sha256: str | None = None, count: int = 3) -> JoinedPackageSource:
    whole = b"".join(PARTS[:count])
    return JoinedPackageSource(
        distributions=tuple(f"fakeparts-part{n}" for n in range(1, count + 1)),
        resources=tuple(f"data/part{n:02d}.bin" for n in range(1, count + 1)),
        filename="fake.gguf",
        size=len(whole),
        sha256=sha256 or hashlib.sha256(whole).hexdigest(),
    )


def test_the_parts_are_joined_in_order_once(part_packages: Path) -> None:
    source = joined_source()
    assert source.is_available() and source.local_path() is None  # listing never joins
    assert source.known_size() == sum(map(len, PARTS)) and not source.folder.exists()
    path = source.resolve()
    assert source.local_path() == path
    assert path.read_bytes() == b"".join(PARTS)
    stamp = path.stat().st_mtime_ns
    assert source.resolve() == path
    assert path.stat().st_mtime_ns == stamp  # not joined again


def test_a_wrong_hash_is_refused_and_nothing_is_kept(part_packages: Path) -> None:
    source = joined_source(sha256="0" * 64)
    with pytest.raises(SourceNotFound, match="SHA-256"):
        source.resolve()
    assert not source.target.exists()
    assert list(source.folder.iterdir()) == [source.folder / "fake.gguf.lock"]


def test_a_missing_part_package_names_what_to_install(part_packages: Path) -> None:
    source = JoinedPackageSource(
        distributions=("fakeparts-part1", "fakeparts-part9"),
        resources=("data/part01.bin", "data/part09.bin"),
        filename="fake.gguf",
        size=1,
        sha256="0" * 64,
    )
    with pytest.raises(SourceNotFound, match=r"fakeparts-part9 is not installed: pip install"):
        source.resolve()
    assert source.local_path() is None and not source.is_available()


def test_a_file_left_by_a_killed_join_is_not_trusted(part_packages: Path) -> None:
    """A kernel killed after the rename but before the marker, or with a half-written file:
    the next resolve joins again."""
    source = joined_source()
    source.folder.mkdir(parents=True)
    source.target.write_bytes(b"GGUF half")
    (source.folder / ".fake.gguf.x.part").write_bytes(b"GGUF half")
    assert source.resolve().read_bytes() == b"".join(PARTS)


def test_two_processes_join_once(part_packages: Path, tmp_path: Path) -> None:
    """Two real processes resolve at once: one joins, the other waits on the lock and uses it."""
    log = tmp_path / "joins.log"
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(part_packages)!r})
        from llmux_jupyter.models import joined
        from tests.unit.models.test_joined import joined_source
        original = joined.JoinedPackageSource._join
        def counted(self, parts):
            with open({str(log)!r}, "a") as handle:
                handle.write("join\\n")
            time.sleep(1.0)  # hold the lock long enough for the other process to wait
            original(self, parts)
        joined.JoinedPackageSource._join = counted
        print(joined_source().resolve())
        """
    )
    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": str(root)}
    processes = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env, cwd=root)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=120)[0].decode().strip() for process in processes]
    assert [process.returncode for process in processes] == [0, 0]
    assert outputs[0] == outputs[1] == str(joined_source().target)
    assert log.read_text() == "join\n"
    assert joined_source().target.read_bytes() == b"".join(PARTS)


def test_the_source_round_trips_through_a_dict(part_packages: Path) -> None:
    source = joined_source()
    assert source_from_dict(source.to_dict()) == source


def test_du_counts_the_joined_file_under_its_cache(part_packages: Path) -> None:
    spec = ModelSpec("fake", "llamacpp", Task.CHAT, joined_source(), builtin=True)
    spec.source.resolve()
    usage = disk_usage([spec])
    entry = next(e for e in usage.entries if e.cache == "joined model files")
    assert entry.models == ("fake",)
    assert entry.size >= sum(map(len, PARTS))
    assert usage.model_bytes == 0  # counted once, as the cache entry


def test_map_answers_are_keyed_by_the_content_not_the_joined_file(part_packages: Path) -> None:
    """Before and after the join (and after a re-join) the model is the same bytes."""
    from llmux_jupyter.engine.map_cache import model_identity

    spec = ModelSpec("fake", "llamacpp", Task.CHAT, joined_source(), builtin=True)
    before = model_identity(spec)
    spec.source.resolve()
    assert model_identity(spec) == before
    assert before["content"] == f"sha256:{spec.source.sha256}"
