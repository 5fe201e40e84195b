"""The contract every backend fulfils; backends know nothing of IPython."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import CompletionUnsupported, LLMuxError, UnsupportedTask
from ..hardware.capabilities import DeviceCapabilities, DeviceSupport
from ..hardware.threads import ThreadCounts
from ..models.gguf_split import gguf_parts
from ..models.spec import LoadOptions, ModelSpec
from ..types.batch import BatchAnswer, BatchRequest
from ..types.images import Image, ImageLimit, estimated_image_tokens
from ..types.values import DraftStats, GenerationParams, Message, RequiredMemory, Task
from ..units import parse_flag
from .settings import VERBOSE, Setting, check_settings

if TYPE_CHECKING:
    import numpy as np

    from ..types.audio import Segment, SpeechAudio, SpeechOptions, TranscribeOptions

# What ``generate`` may return when exhausted: token counts it knows better than we do
# (and the DraftStats of speculative decoding under "draft").
TokenCounts = dict[str, Any]
# Estimates without a tokenizer: characters a token (English averages about four; three
# errs on the safe side) and tokens of chat markup around each message.
CHARS_PER_TOKEN = 3
MESSAGE_MARKUP = 5
DEFAULT_CONCURRENCY = 8


class Backend(ABC):
    """One loaded (or loadable) model of one backend kind.

    Subclasses set ``tasks``, ``requires`` (modules that must be importable) and ``extra``
    (the pip extra that installs them), implement ``load`` and the methods of their tasks,
    and are registered with ``@register_backend("name")``.
    """

    name: ClassVar[str] = ""
    tasks: ClassVar[frozenset[Task]] = frozenset()
    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str | None] = None
    # The task a registration gets when the backend does several and none is named.
    default_task: ClassVar[Task | None] = None
    # The kinds of ``LoadOptions.draft`` (speculative decoding) understood: ``Draft.kind``
    # values, i.e. "model" (a draft model of this backend) and DraftMethod names.
    draft_kinds: ClassVar[frozenset[str]] = frozenset()
    # Whether chat messages go through a chat template (``models.chat_template``), and whether
    # named chat formats (``chat_format=``) are understood too.
    uses_chat_templates: ClassVar[bool] = False
    named_chat_formats: ClassVar[bool] = False
    # What the load did that is worth telling the user (e.g. where a conversion was cached).
    load_note: str = ""
    # How one loaded model serves several chat requests at once: "threads" when ``generate``
    # may run in several threads side by side (each call one request, e.g. on a server), None
    # when it serves one at a time; ``one_at_a_time`` then says why (benchmarks show it).
    # Whether ``generate`` honours ``GenerationParams.json_schema`` (constrained decoding).
    json_schemas: ClassVar[bool] = False
    # Whether ``complete`` continues a raw prompt (code completion's fill-in-the-middle).
    raw_completion: ClassVar[bool] = False
    # Whether, asked by ``GenerationParams.logprobs`` under a schema, ``generate`` returns the
    # answer's log-probability (``"logprob"`` in its summary) and ``generate_batch`` puts it
    # on each BatchAnswer. False: they give none, and callers show no confidence.
    answer_logprobs: ClassVar[bool] = False
    # Whether ``generate_with_tools`` lets the model call tools natively (a server's tools).
    native_tools: ClassVar[bool] = False
    concurrent_requests: ClassVar[str | None] = None
    one_at_a_time: ClassVar[str] = "this backend serves one request at a time"
    # The ``--set`` settings understood (``verbose`` besides); None: the backend does not
    # declare them (a plugin), and any key passes unchecked.
    accepted_settings: ClassVar[tuple[Setting, ...] | None] = None

    def __init__(self, spec: ModelSpec, options: LoadOptions) -> None:
        self.spec = spec
        self.options = options
        self.settings: dict[str, Any] = self.checked_settings({**spec.settings, **options.settings})
        self.device = "cpu"

    @classmethod
    def checked_settings(cls, settings: dict[str, Any]) -> dict[str, Any]:
        """``settings`` converted to their declared types (InvalidParameter for an unknown key,
        a wrong type or a value out of range); undeclared backends take them as they are."""
        if cls.accepted_settings is None:
            return settings
        return check_settings((VERBOSE, *cls.accepted_settings), settings, cls.name)

    @classmethod
    def device_support(cls, device: DeviceCapabilities) -> DeviceSupport | None:
        """Whether and how this backend's library can use ``device``, asked of the library
        (it may be imported: this runs when the user asks, never at ``%load_ext``). None: the
        backend does not say."""
        return None

    @property
    def verbose(self) -> bool:
        """The ``verbose`` setting: show what the library itself prints (load notes, logs)."""
        return parse_flag("verbose", self.settings.get("verbose", False))

    def required_memory(self) -> RequiredMemory:
        """Memory needed before loading; by default the size of the model's files."""
        return RequiredMemory(ram=path_size(self.spec.source.resolve()))

    def measured_memory(self) -> RequiredMemory | None:
        """Memory the loaded model holds, if the backend can tell (e.g. tensor bytes, VRAM);
        None lets the manager measure the process's RSS growth during ``load``."""
        return None

    def draft_totals(self) -> DraftStats | None:
        """Tokens drafted and accepted since the load, for a backend that drafts and counts."""
        return None

    def cpu_threads(self) -> ThreadCounts | None:
        """The CPU threads the loaded model decodes and reads prompts with, for a backend that
        chooses them (None: it does not say)."""
        return None

    @abstractmethod
    def load(self) -> None:
        """Load the model; raise ModelLoadError (or SourceNotFound) on failure."""

    def unload(self) -> None:  # noqa: B027 - optional hook, dropping the object is often enough
        """Release what ``load`` took; the manager drops its reference afterwards."""

    def generate(
        self, messages: Sequence[Message], params: GenerationParams, cancel: threading.Event
    ) -> Iterator[str]:
        """Yield text deltas of the reply, stopping promptly once ``cancel`` is set.

        The generator may return a dict with ``prompt_tokens`` and ``completion_tokens``,
        ``draft`` (a DraftStats) when speculative decoding counted its tokens, and ``logprob``
        when asked for it (see ``answer_logprobs``).
        """
        raise self.unsupported(Task.CHAT)

    def complete(
        self, prompt: str, params: GenerationParams, cancel: threading.Event
    ) -> Iterator[str]:
        """Yield text deltas continuing ``prompt`` as it is (no chat template; special tokens
        such as ``<|fim_prefix|>`` in it are the model's own), stopping promptly once
        ``cancel`` is set; returns token counts as ``generate`` does."""
        raise CompletionUnsupported(f"The {self.name} backend cannot continue a raw prompt.")

    def vocabulary_tokens(self, texts: Iterable[str]) -> frozenset[str]:
        """Which of ``texts`` are whole tokens of the model's vocabulary (e.g. fill-in-the-
        middle markers), read without loading the model where the backend can; by default
        none are known."""
        return frozenset()

    def context_window(self) -> int | None:
        """Tokens the loaded model can attend to (prompt and answer together); None: unknown."""
        return None

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """Tokens of ``messages`` as the model's prompt (its chat template applied); by default
        an estimate."""
        return sum(self.count_text(m.content) + MESSAGE_MARKUP for m in messages)

    def count_text(self, text: str) -> int:
        """Tokens of ``text`` alone; by default an estimate that rather counts too many."""
        return len(text) // CHARS_PER_TOKEN + 1

    @cached_property
    def message_markup(self) -> int:
        """Tokens the chat template adds around one message, measured once: what two more
        messages add to a prompt, less their text."""
        one = [Message("user", "a")]
        three = [*one, Message("assistant", "a"), *one]
        added = self.count_tokens(three) - self.count_tokens(one)
        return max(0, -(-added // 2) - self.count_text("a"))

    @classmethod
    def takes_images(cls, spec: ModelSpec) -> bool | None:
        """Whether ``spec``'s model takes images, read from its files or settings without
        loading it (a transformers processor, llama.cpp's mmproj projector); None: only the
        loaded model can tell (a server)."""
        return False

    def takes_images_now(self) -> bool | None:
        """Whether the loaded model takes images; None: unknown (they are sent, and the
        server decides)."""
        return self.takes_images(self.spec)

    def image_limit(self) -> ImageLimit:
        """The size images are fitted to before they are sent: the model's own when known."""
        return ImageLimit()

    def count_image(self, image: Image) -> int:
        """Tokens ``image`` (fitted to ``image_limit``) costs in the prompt; by default an
        estimate that rather counts too many."""
        return estimated_image_tokens(image.width, image.height)

    def template_tools(self) -> bool:
        """Whether the loaded model's chat template describes tools itself (it then gets
        ``GenerationParams.tools``); otherwise the tool loop describes them in the prompt."""
        return False

    def generate_batch(
        self,
        requests: Sequence[BatchRequest],
        cancel: threading.Event,
        *,
        batch_size: int | None = None,
        concurrency: int | None = None,
        free_memory: int | None = None,
    ) -> Iterator[BatchAnswer]:
        """Yield each request's whole answer as it finishes (in any order), stopping once
        ``cancel`` is set; an answer cut short by the cancel is not yielded. A request that
        fails is an answer with its ``error``; the others go on.

        By default through ``generate``: one at a time, or ``concurrency`` (8) at once in
        threads for a backend whose ``concurrent_requests`` is "threads". A backend that
        batches (``batch_size`` rows per step, fitted to ``free_memory`` bytes when not given)
        overrides this.
        """
        if self.concurrent_requests != "threads":
            for request in requests:
                answer = self.answer(request, cancel)
                if answer is None:
                    return
                yield answer
            return
        workers = ThreadPoolExecutor(concurrency or DEFAULT_CONCURRENCY, "llmux-batch")
        pending: set[Future[BatchAnswer | None]] = {
            workers.submit(self.answer, request, cancel) for request in requests
        }
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    answer = future.result()
                    if answer is not None:
                        yield answer
        finally:
            if pending:  # the caller stopped early: the requests still running stop too
                cancel.set()
            workers.shutdown(wait=True, cancel_futures=True)

    def answer(self, request: BatchRequest, cancel: threading.Event) -> BatchAnswer | None:
        """One request's whole answer through ``generate``; None once ``cancel`` is set."""
        if cancel.is_set():
            return None
        pieces: list[str] = []
        stream = self.generate(request.messages, request.params, cancel)
        try:
            while True:
                pieces.append(next(stream))
        except StopIteration as stop:
            counts: TokenCounts = stop.value or {}
        except Exception as error:  # one failed row must not stop the others
            return BatchAnswer(request.key, error=error_message(error))
        if cancel.is_set():
            return None
        return BatchAnswer(
            request.key,
            "".join(pieces),
            counts.get("prompt_tokens", 0),
            counts.get("completion_tokens", len(pieces)),
            logprob=counts.get("logprob"),
        )

    def generate_with_tools(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        tool_choice: Any,
        params: GenerationParams,
        cancel: threading.Event,
    ) -> Iterator[str]:
        """As ``generate``, over OpenAI-shaped messages and tools; the summary also has
        ``text`` (what was yielded) and ``tool_calls`` (dicts with id, name, arguments)."""
        raise UnsupportedTask(f"{self.spec.name!r} ({self.name} backend) has no native tools.")

    def transcribe(
        self, audio: Path | bytes | SpeechAudio, options: TranscribeOptions, cancel: threading.Event
    ) -> Iterator[Segment]:
        """Yield segments as they are decoded, stopping between two once ``cancel`` is set.

        ``audio`` is an existing file, encoded file bytes, or samples with their rate. The
        generator may return a dict with ``language`` and ``duration`` (seconds of audio).
        """
        raise self.unsupported(Task.TRANSCRIPTION)

    def synthesize(
        self, text: str, options: SpeechOptions, cancel: threading.Event
    ) -> Iterator[SpeechAudio]:
        """Yield audio chunks in order (e.g. one per sentence), stopping between two once
        ``cancel`` is set; every chunk has the same sample rate."""
        raise self.unsupported(Task.SPEECH)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One embedding vector per text, as the rows of a float32 array."""
        raise self.unsupported(Task.EMBEDDING)

    def rerank(
        self, query: str, documents: Sequence[str], cancel: threading.Event
    ) -> Iterator[float]:
        """Yield one relevance score per document, in the documents' order (batch by batch),
        stopping between two batches once ``cancel`` is set. Higher is more relevant."""
        raise self.unsupported(Task.RERANK)

    def unsupported(self, task: Task) -> UnsupportedTask:
        """The error for a task this backend cannot do, naming those it can."""
        tasks = ", ".join(sorted(t.value for t in self.tasks))
        return UnsupportedTask(
            f"{self.spec.name!r} ({self.name} backend) does {tasks}, not {task.value}: "
            f"pick a {task.value} model (%llm list)."
        )


def error_message(error: Exception) -> str:
    """What a failed request says: our errors as they are, others with their type."""
    if isinstance(error, LLMuxError):
        return str(error)
    return f"{type(error).__name__}: {str(error).strip() or 'no message'}"


def path_size(path: Path) -> int:
    """Bytes of a file (of every part, for a split GGUF), or of all files under a directory."""
    if path.is_file():
        return sum(part.stat().st_size for part in gguf_parts(path))
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
