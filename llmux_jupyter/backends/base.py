"""The contract every backend fulfils; backends know nothing of IPython."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import UnsupportedTask
from ..hardware.capabilities import DeviceCapabilities, DeviceSupport
from ..models.gguf_split import gguf_parts
from ..models.spec import LoadOptions, ModelSpec
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

    @abstractmethod
    def load(self) -> None:
        """Load the model; raise ModelLoadError (or SourceNotFound) on failure."""

    def unload(self) -> None:  # noqa: B027 - optional hook, dropping the object is often enough
        """Release what ``load`` took; the manager drops its reference afterwards."""

    def generate(
        self, messages: Sequence[Message], params: GenerationParams, cancel: threading.Event
    ) -> Iterator[str]:
        """Yield text deltas of the reply, stopping promptly once ``cancel`` is set.

        The generator may return a dict with ``prompt_tokens`` and ``completion_tokens``, and
        ``draft`` (a DraftStats) when speculative decoding counted its tokens.
        """
        raise self.unsupported(Task.CHAT)

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

    def template_tools(self) -> bool:
        """Whether the loaded model's chat template describes tools itself (it then gets
        ``GenerationParams.tools``); otherwise the tool loop describes them in the prompt."""
        return False

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
        tasks = ", ".join(sorted(t.value for t in self.tasks))
        return UnsupportedTask(
            f"{self.spec.name!r} ({self.name} backend) does {tasks}, not {task.value}: "
            f"pick a {task.value} model (%llm list)."
        )


def path_size(path: Path) -> int:
    """Bytes of a file (of every part, for a split GGUF), or of all files under a directory."""
    if path.is_file():
        return sum(part.stat().st_size for part in gguf_parts(path))
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
