"""A transformers ``generate`` call in a worker thread, streamed as text and stoppable per token.

``TextIteratorStreamer`` hands decoded text from the worker to the caller; a stopping criterion
checks the caller's cancel event (and our own finish event) after every token, so a cancel or
a closed stream ends ``generate`` within one token, and the worker is always joined.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ..errors import GenerationError
from .hf_files import first_line
from .stops import StopTrimmer

THREAD_NAME = "llmux-transformers-generate"


class StopOnEvents:
    """A transformers stopping criterion: true for every sequence once any event is set."""

    def __init__(self, *events: threading.Event) -> None:
        self.events = events

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        stop = any(event.is_set() for event in self.events)
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


class _Worker(threading.Thread):
    """Runs ``model.generate``; keeps the number of new tokens, or the error."""

    def __init__(self, model: Any, keywords: dict[str, Any], seed: int | None, device: str):
        super().__init__(name=THREAD_NAME, daemon=True)
        self.model = model
        self.keywords = keywords
        self.seed = seed
        self.device = device
        self.new_tokens = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        import torch

        prompt_tokens = self.keywords["input_ids"].shape[-1]
        try:
            with seeded(torch, self.seed, self.device):
                output = self.model.generate(**self.keywords)
            self.new_tokens = int(output.shape[-1] - prompt_tokens)
        except BaseException as error:
            self.error = error
            self.keywords["streamer"].end()  # release the reader, which waits for text
        finally:
            self.model = self.keywords = None  # type: ignore[assignment]


def stream_generate(
    model: Any,
    tokenizer: Any,
    keywords: dict[str, Any],
    cancel: threading.Event,
    stops: Sequence[str] = (),
    seed: int | None = None,
) -> Generator[str, None, int]:
    """Yield the text of ``model.generate(**keywords)`` as it comes; return the new-token count.

    Stops within one token when ``cancel`` is set, when a stop string appears (the text
    stops before it), or when the caller closes the generator; the worker thread is joined
    before this returns or raises.
    """
    from transformers import TextIteratorStreamer

    finish = threading.Event()
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    worker = _Worker(
        model,
        {**keywords, "streamer": streamer, "stopping_criteria": [StopOnEvents(cancel, finish)]},
        seed,
        str(model.device),
    )
    trimmer = StopTrimmer(stops)
    worker.start()
    try:
        for text in streamer:
            shown = trimmer.feed(text)
            if shown:
                yield shown
            if trimmer.stopped or cancel.is_set():
                break
        else:
            tail = trimmer.flush()
            if tail and worker.error is None:
                yield tail
    finally:
        finish.set()
        worker.join()
    if worker.error is not None:
        raise GenerationError(
            f"transformers failed while generating ({type(worker.error).__name__}: "
            f"{first_line(worker.error)})."
        ) from worker.error
    return worker.new_tokens


@contextmanager
def seeded(torch: Any, seed: int | None, device: str) -> Iterator[None]:
    """Seed torch for one generation without disturbing the notebook's own random state."""
    if seed is None:
        yield
        return
    kind, _, index = device.partition(":")
    if kind == "cpu":
        fork = torch.random.fork_rng(devices=[])
    else:
        fork = torch.random.fork_rng(devices=[int(index or 0)], device_type=kind)
    with fork:
        torch.manual_seed(seed)
        yield
