"""The host memory ledger: one file per kernel, what the others hold, stale entries cleaned."""

import itertools
import json
import os
import time

import psutil
import pytest

from llmux_jupyter.engine.ledger import (
    FOLDER,
    HeldModel,
    HostLedger,
    default_directory,
    held_per_device,
)
from llmux_jupyter.types.values import RequiredMemory

from ..conftest import OtherKernel

SMOL = HeldModel("smollm2", "llamacpp", "cpu", RequiredMemory(ram=300), RequiredMemory(ram=200))
WHISPER = HeldModel(
    "whisper", "faster-whisper", "cuda:0", RequiredMemory(ram=10, vram=100), RequiredMemory()
)


@pytest.fixture
def other(tmp_path):
    kernel = OtherKernel(tmp_path)
    yield kernel
    kernel.stop()


def test_the_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMUX_RUNTIME_DIR", str(tmp_path))
    assert default_directory() == tmp_path / FOLDER
    monkeypatch.delenv("LLMUX_RUNTIME_DIR")
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "rt"))
    assert default_directory() == tmp_path / "rt" / FOLDER


def test_a_kernel_writes_its_entry_and_removes_it_when_nothing_is_loaded(tmp_path, monkeypatch):
    monkeypatch.setenv("JPY_SESSION_NAME", "/home/me/analysis.ipynb")
    ledger = HostLedger(tmp_path)
    ledger.record([SMOL, WHISPER])
    entry = json.loads(ledger.path.read_text())
    assert (entry["pid"], entry["notebook"]) == (os.getpid(), "/home/me/analysis.ipynb")
    assert [m["name"] for m in entry["models"]] == ["smollm2", "whisper"]
    assert ledger.others() == []  # its own entry is not another kernel's
    ledger.record([])
    assert not ledger.path.exists()


def test_the_other_kernels_entries_are_read_with_what_they_hold(tmp_path, other):
    other.hold(SMOL, WHISPER)
    (kernel,) = HostLedger(tmp_path).others()
    assert (kernel.pid, kernel.notebook) == (other.pid, "analysis.ipynb")
    assert kernel.models == (SMOL, WHISPER)
    # the larger of estimate and measurement, per budget
    assert kernel.held == {"cpu": 310, "cuda:0": 100}
    who = f"notebook analysis.ipynb (pid {other.pid})"
    assert kernel.describe("cpu") == f"{who}: smollm2 300 B, whisper 10 B"
    assert kernel.describe("cuda:0") == f"{who}: whisper 100 B"
    assert held_per_device([kernel, kernel]) == {"cpu": 620, "cuda:0": 200}


def test_entries_of_dead_or_reused_pids_are_ignored_and_deleted(tmp_path, other):
    reused = other.hold(SMOL, started=1.0)  # its pid, but a process started at another time
    dead = OtherKernel(tmp_path)
    gone = dead.hold(SMOL)
    dead.stop()
    assert HostLedger(tmp_path).others() == []
    assert not gone.exists() and not reused.exists()


def test_a_zombie_kernel_holds_nothing(tmp_path):
    zombie = OtherKernel(tmp_path)
    entry = zombie.hold(SMOL)
    zombie.process.kill()  # dead, but not reaped: a zombie until wait()
    deadline = time.monotonic() + 30
    while psutil.Process(zombie.pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert HostLedger(tmp_path).others() == []
    assert not entry.exists()
    zombie.stop()


def test_a_file_that_is_not_an_entry_is_ignored(tmp_path, other):
    (tmp_path / "notes.json").write_text("{not json")
    (tmp_path / "12.json").write_text(json.dumps({"pid": 12}))
    other.hold(SMOL)
    assert [kernel.pid for kernel in HostLedger(tmp_path).others()] == [other.pid]


def test_a_missing_folder_means_no_other_kernel(tmp_path):
    ledger = HostLedger(tmp_path / "never-made")
    assert (ledger.others(), ledger.version()) == ([], None)


def test_the_version_changes_whenever_an_entry_changes(tmp_path, other):
    ledger = HostLedger(tmp_path)
    ledger.record([SMOL])
    versions = [ledger.version()]
    path = other.hold(SMOL)
    versions.append(ledger.version())
    other.hold(SMOL, WHISPER)
    versions.append(ledger.version())
    path.unlink()
    versions.append(ledger.version())
    assert all(before != after for before, after in itertools.pairwise(versions))
