"""Raw llama-cpp-python streaming chat vs ``%%llm`` in a real kernel, same model, prompt and seed.

One process run: this script streams with llama-cpp-python itself at its best settings (a
decoding thread per physical core, a prompt thread per logical CPU), then drives a real
ipykernel (over ZMQ, as JupyterLab does) through ``%%llm`` with the model loaded by default,
alternating for several rounds, and prints medians and ratios (goal >= 0.97). Also:
``%load_ext llmux_jupyter`` wall time in a fresh process.

    .venv/bin/python bench/bench_llamacpp_chat.py [--rounds 3] [--max-tokens 128]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from chat_timing import PROMPT, SMOLLM2_GGUF, Run, best_llama, compare, median

from tests.integration.kernel import Kernel

# What the kernel's model decodes and reads prompts with, as "decoding/prompts".
THREADS = (
    "from llmux_jupyter import llm as _llm\n"
    "_threads = _llm.manager.get_loaded('smollm2').backend.cpu_threads()\n"
    "print(f'{_threads.decode}/{_threads.prompt}')"
)


def raw_llamacpp(llm, max_tokens: int, seed: int, prompt: str = PROMPT) -> Run:
    started = time.perf_counter()
    stream = llm.create_chat_completion(
        messages=[{"role": "user", "content": prompt}],
        stream=True,
        temperature=0.0,
        seed=seed,
        max_tokens=max_tokens,
    )
    return Run.timed((chunk["choices"][0]["delta"].get("content") for chunk in stream), started)


@dataclass
class MagicRun:
    run: Run
    frontend_ttft_s: float
    display_messages: int
    display_bytes: int


def through_magic(kernel: Kernel, max_tokens: int, seed: int) -> MagicRun:
    first_display: list[float] = []

    def on_message(message) -> None:
        if message["msg_type"] == "display_data" and not first_display:
            first_display.append(time.perf_counter())

    started = time.perf_counter()
    run = kernel.run(
        f"%%llm --new --temperature 0 --seed {seed} --max-tokens {max_tokens}\n{PROMPT}",
        on_message=on_message,
    )
    assert run.status == "ok", run.error
    usage = run.displays[-1]["content"]["metadata"]["llmux"]["usage"]
    sent_bytes = sum(len(json.dumps(m["content"])) for m in run.displays)
    return MagicRun(
        Run.from_usage(usage), first_display[0] - started, len(run.displays), sent_bytes
    )


def load_ext_seconds() -> tuple[float, list[str]]:
    code = (
        "import sys, time\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "shell = InteractiveShell.instance()\n"
        "started = time.perf_counter()\n"
        "shell.run_line_magic('load_ext', 'llmux_jupyter')\n"
        "elapsed = time.perf_counter() - started\n"
        "heavy = [m for m in ('torch', 'llama_cpp', 'transformers', 'faster_whisper', 'piper',"
        " 'numpy', 'gguf', 'huggingface_hub') if m in sys.modules]\n"
        "print(elapsed, ','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seconds, _, heavy = out.stdout.strip().partition(" ")
    return float(seconds), [m for m in heavy.split(",") if m]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()

    raw_model = best_llama()
    with tempfile.TemporaryDirectory() as config:
        kernel = Kernel(env={"LLMUX_CONFIG_DIR": config})
        try:
            assert kernel.run("%load_ext llmux_jupyter\n%llm load smollm2").status == "ok"
            ours = kernel.run(THREADS).stdout.strip()
            raw_model.create_chat_completion(  # warm-up, both sides
                messages=[{"role": "user", "content": "hi"}], max_tokens=4
            )
            through_magic(kernel, 4, 0)
            raw_runs: list[Run] = []
            magic: list[MagicRun] = []
            for round_number in range(args.rounds):
                raw_runs.append(raw_llamacpp(raw_model, args.max_tokens, round_number))
                magic.append(through_magic(kernel, args.max_tokens, round_number))
        finally:
            kernel.shutdown()
    load_times, heavy = zip(*(load_ext_seconds() for _ in range(3)), strict=False)

    magic_runs = [m.run for m in magic]
    params = raw_model.context_params
    print(
        f"model: {SMOLLM2_GGUF.name}, {args.rounds} rounds, max_tokens={args.max_tokens}, "
        f"cpus: {os.cpu_count()}, threads (decoding/prompts): raw "
        f"{params.n_threads}/{params.n_threads_batch}, %%llm {ours}"
    )
    compare("llama-cpp-python vs %%llm", raw_runs, magic_runs, ttft_goal_ms=20)
    raw_ttft = median(raw_runs, "ttft_s")
    frontend_ttft = statistics.median(m.frontend_ttft_s for m in magic)
    print(
        f"TTFT seen by the frontend (execute request -> first display message): "
        f"{frontend_ttft * 1000:.1f} ms, {(frontend_ttft - raw_ttft) * 1000:+.1f} ms vs raw"
    )
    print(
        f"display messages per answer: "
        f"{statistics.median(m.display_messages for m in magic):.0f}, bytes sent: "
        f"{statistics.median(m.display_bytes for m in magic):.0f}"
    )
    print(
        f"%load_ext llmux_jupyter: {statistics.median(load_times) * 1000:.0f} ms "
        f"(goal < 300 ms); heavy modules imported: {sorted(set(heavy[0])) or 'none'}"
    )


if __name__ == "__main__":
    main()
