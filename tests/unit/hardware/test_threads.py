"""Thread counts for CPU inference, with psutil's view of the host faked: physical cores for
decoding, usable logical CPUs for prompts, the user's settings first."""

from __future__ import annotations

import pytest

from llmux_jupyter.backends.llamacpp import thread_keywords
from llmux_jupyter.hardware import threads
from llmux_jupyter.hardware.threads import CpuCores, ThreadCounts, best_threads, cpu_cores


class FakeProcess:
    def __init__(self, affinity: list[int] | None) -> None:
        self._affinity = affinity

    def cpu_affinity(self) -> list[int]:
        if self._affinity is None:
            raise AttributeError("cpu_affinity")  # as on macOS
        return self._affinity


@pytest.fixture
def host(monkeypatch):
    """Describe a host: ``host(physical, logical, affinity)`` (None: unknown / unsupported)."""

    def describe(physical: int | None, logical: int, affinity: list[int] | None = None) -> None:
        counts = {False: physical, True: logical}
        monkeypatch.setattr(threads.psutil, "cpu_count", lambda logical=True: counts[logical])
        monkeypatch.setattr(threads.psutil, "Process", lambda: FakeProcess(affinity))

    return describe


def test_hyper_threaded_host_decodes_on_its_cores_and_reads_prompts_on_every_cpu(host):
    host(8, 16, list(range(16)))
    assert cpu_cores() == CpuCores(8, 16)
    assert best_threads() == ThreadCounts(8, 16)


def test_two_core_host_without_hyper_threading_uses_both_cores_for_both(host):
    host(2, 2, [0, 1])  # this machine: llama-cpp-python's default would decode on one
    assert best_threads() == ThreadCounts(2, 2)


def test_an_affinity_mask_limits_both_counts(host):
    host(8, 16, [0, 1, 2])  # e.g. taskset -c 0-2
    assert cpu_cores() == CpuCores(8, 3)
    assert best_threads() == ThreadCounts(3, 3)


def test_unknown_physical_cores_are_guessed_as_llama_cpp_does(host):
    host(None, 12, list(range(12)))
    assert best_threads() == ThreadCounts(6, 12)
    host(None, 4, None)  # no affinity either: every logical CPU is usable
    assert cpu_cores() == CpuCores(4, 4)


def test_llama_cpp_keywords_default_to_the_best_counts(host):
    host(4, 8, list(range(8)))
    assert thread_keywords({}, drafting=False) == {"n_threads": 4, "n_threads_batch": 8}


def test_the_users_settings_win_each_on_its_own(host):
    host(4, 8, list(range(8)))
    assert thread_keywords({"n_threads": 1}, drafting=False) == {
        "n_threads": 1,
        "n_threads_batch": 8,
    }
    assert thread_keywords({"n_threads_batch": 3}, drafting=False) == {
        "n_threads": 4,
        "n_threads_batch": 3,
    }


def test_a_draft_checks_its_guesses_on_the_decoding_threads(host):
    host(4, 8, list(range(8)))
    assert thread_keywords({}, drafting=True) == {"n_threads": 4, "n_threads_batch": 4}
    assert thread_keywords({"n_threads": 2}, drafting=True) == {
        "n_threads": 2,
        "n_threads_batch": 2,
    }
    assert thread_keywords({"n_threads_batch": 6}, drafting=True)["n_threads_batch"] == 6


def test_counts_read_as_a_sentence():
    assert str(ThreadCounts(2, 4)) == "2 decoding, 4 for prompts"
