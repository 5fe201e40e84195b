"""Speculative decoding on llama.cpp: ``llm.chat`` with ``--draft prompt-lookup`` vs plain, same
SmolLM2 GGUF, greedy, in one process run, on a copy-heavy prompt (rewrite a 150-word paragraph
with one word changed) and a free-form one. Also raw llama-cpp-python with its own
``LlamaPromptLookupDecoding`` (fixed 10-token guesses) at its best settings with ours: a
decoding thread per physical core, drafts checked on them too, to show what the adaptive
drafting adds (guess length, and a pause while guesses fail). Goals: copy-heavy at least the
library's ratio, free-form at least 0.95 (drafting never costs).

    .venv/bin/python bench/bench_llamacpp_draft.py [--rounds 3] [--draft-tokens 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chat_timing import PROMPT, SMOLLM2_GGUF, Run, best_llama, median, spread, threads_line

PARAGRAPH = (
    "The old lighthouse stood at the edge of the rocky cape, its white tower weathered by a "
    "century of storms. Every evening the keeper climbed the spiral staircase, one hundred and "
    "twelve steps, to light the great lamp that warned passing ships of the hidden reef below. "
    "Fishermen in the village said the light had never failed, not even during the winter of "
    "the great flood, when the sea rose higher than anyone could remember and the waves broke "
    "over the harbour wall. The keeper lived alone with a grey cat and a shelf of books about "
    "distant islands. In the mornings he painted small pictures of the boats returning with "
    "their catch, and in the afternoons he repaired the nets that the fishermen left by his "
    "door. Nobody knew where he had come from, but everyone agreed that the cape would feel "
    "empty without him and his steady, patient light."
)
COPY = (
    'Rewrite the following paragraph exactly, word for word, but replace the word "grey" with '
    f'"black". Output only the paragraph.\n\n{PARAGRAPH}'
)
N_CTX = 2048
MAX_TOKENS = 300


def ours(llm, model: str, prompt: str) -> tuple[Run, str, object]:
    answer = llm.chat(prompt, model=model, temperature=0, max_tokens=MAX_TOKENS, new=True)
    return Run.from_usage(answer.usage.as_dict()), answer.text, answer.draft


def raw(model, prompt: str) -> tuple[Run, str]:
    pieces: list[str] = []
    started = time.perf_counter()
    stream = model.create_chat_completion(
        messages=[{"role": "user", "content": prompt}],
        stream=True,
        temperature=0.0,
        max_tokens=MAX_TOKENS,
    )

    def contents():
        for chunk in stream:
            text = chunk["choices"][0]["delta"].get("content")
            pieces.append(text or "")
            yield text

    return Run.timed(contents(), started), "".join(pieces)


def report(label: str, plain: list[Run], other: list[Run], same: bool, goal: str) -> None:
    plain_tps, other_tps = median(plain, "tokens_per_second"), median(other, "tokens_per_second")
    noise = f"±{spread(plain, 'tokens_per_second'):.0%}/±{spread(other, 'tokens_per_second'):.0%}"
    print(
        f"{label:42} tokens {median(other, 'tokens'):4.0f}  tokens/s plain {plain_tps:6.1f} "
        f"drafted {other_tps:6.1f} ({noise})  ratio {other_tps / plain_tps:.2f} ({goal})  "
        f"identical output: {same}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--draft-tokens", type=int, default=10)
    args = parser.parse_args()

    from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

    with tempfile.TemporaryDirectory() as config:
        os.environ["LLMUX_CONFIG_DIR"] = config
        from llmux_jupyter.api import LLM

        llm = LLM()
        llm.config.repeat_limit = 0  # speed, not quality: a looping answer runs its course
        llm.register("lookup", backend="llamacpp", path=str(SMOLLM2_GGUF))
        plain_llm = llm.load("smollm2", n_ctx=N_CTX).backend._llm
        drafted = llm.load(
            "lookup", n_ctx=N_CTX, draft="prompt-lookup", draft_tokens=args.draft_tokens
        )
        drafted_llm = drafted.backend._llm
        params = drafted_llm.context_params
        library = best_llama(  # our decoding threads check the drafts on both sides
            n_ctx=N_CTX,
            n_threads=params.n_threads,
            n_threads_batch=params.n_threads_batch,
            draft_model=LlamaPromptLookupDecoding(num_pred_tokens=10),
        )
        for prompt in (COPY, PROMPT):  # warm-up
            ours(llm, "smollm2", prompt[:200])
            ours(llm, "lookup", prompt[:200])
        print(
            f"model: {SMOLLM2_GGUF.name}, n_ctx {N_CTX}, {args.rounds} rounds, greedy, "
            f"max_tokens {MAX_TOKENS}, cpus: {os.cpu_count()}, {threads_line(library, drafted_llm)}"
            f" (plain: {plain_llm.context_params.n_threads}), draft_tokens {args.draft_tokens}"
        )
        for label, prompt, goal in (
            ("copy-heavy (150-word rewrite)", COPY, "goal >= library's"),
            ("free-form (short story)", PROMPT, "goal >= 0.95"),
        ):
            plain_runs, lookup_runs, library_runs = [], [], []
            plain_texts: set[str] = set()
            lookup_same = library_same = True
            stats = []
            for _ in range(args.rounds):
                run, plain_text, _ = ours(llm, "smollm2", prompt)
                plain_runs.append(run)
                plain_texts.add(plain_text)
                run, text, draft = ours(llm, "lookup", prompt)
                lookup_runs.append(run)
                lookup_same = lookup_same and text == plain_text
                stats.append(draft)
                run, text = raw(library, prompt)
                library_runs.append(run)
                library_same = library_same and text == plain_text
            same = lookup_same and len(plain_texts) == 1
            report(f"{label}, ours", plain_runs, lookup_runs, same, goal)
            report(f"{label}, library's", plain_runs, library_runs, library_same, "reference")
            print(f"{'':42} {stats[-1]}")
        llm.unload(all=True)


if __name__ == "__main__":
    main()
