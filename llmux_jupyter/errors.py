"""The package's typed errors: each message says what to do next."""

from __future__ import annotations


class LLMuxError(Exception):
    """Base class of every error llmux-jupyter raises on purpose.

    IPython shows these as one line (type and message) instead of a traceback: the message
    already says what to do, and the frames are ours, not the user's.
    """

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self}"]


class UnknownModel(LLMuxError):
    """A model name that is neither built in nor registered."""


class UnknownBackend(LLMuxError):
    """A backend name that no installed backend answers to."""


class BackendNotInstalled(LLMuxError):
    """The backend's library is missing; the message names the pip extra."""


class SourceNotFound(LLMuxError):
    """A model file, package resource or Hugging Face file that cannot be found."""


class ModelLoadError(LLMuxError):
    """The backend could not load the model (corrupt file, wrong format, device error...)."""


class ModelNotLoaded(LLMuxError):
    """An operation that needs a loaded model was asked of one that is not loaded."""


class ModelBusy(LLMuxError):
    """The model is generating; it cannot be unloaded or evicted now."""


class OutOfMemoryBudget(LLMuxError):
    """A model does not fit its device's budget even after evicting every idle model."""


class MemoryHeldElsewhere(OutOfMemoryBudget):
    """A model that would fit this kernel's budget but for the models other kernels on the
    machine hold (the message names their notebooks, models and memory)."""


class UnsupportedTask(LLMuxError):
    """The model's backend cannot do what was asked (e.g. transcribe with a chat model)."""


class CompletionUnsupported(UnsupportedTask):
    """A model that cannot complete code as you type: no fill-in-the-middle tokens in its
    vocabulary, or a backend without raw-prompt completion."""


class InvalidParameter(LLMuxError):
    """A parameter out of range or of the wrong kind."""


class RegistrationError(LLMuxError):
    """A model registration that cannot be stored (bad name, clash with a built-in...)."""


class GenerationError(LLMuxError):
    """The backend failed while producing output."""


class RemoteServerError(LLMuxError):
    """An OpenAI-compatible server could not be reached, timed out or refused a request."""


class InvalidAudio(LLMuxError):
    """Audio that cannot be used: a missing, corrupt or non-audio file, empty samples."""


class CacheError(LLMuxError):
    """A cache entry that cannot be cleared now: a loaded model uses it, or the disk refused."""


class ContextOverflow(LLMuxError):
    """A prompt that does not fit the model's context window (or, with ``--context error``,
    a thread that would need turns left out)."""


class HistoryError(LLMuxError):
    """The history database cannot be opened, read or written (a corrupt file, a read-only
    folder, a full disk), or holds no such exchange or thread."""


class SchemaError(LLMuxError):
    """An answer that does not validate against the schema asked for; ``raw`` keeps its text."""

    def __init__(self, message: str, raw: str = "") -> None:
        super().__init__(message)
        self.raw = raw


class ToolDefinitionError(InvalidParameter):
    """A function that cannot be offered as a tool (no type hints, no docstring...)."""


class InvalidImage(LLMuxError):
    """An image that cannot be used: an unknown type, a missing or corrupt file, an array of
    the wrong shape or dtype, one too big to read."""


class ImagesNotSupported(UnsupportedTask):
    """Images sent to a model that takes only text; the message names the models that do."""


class DescribeError(LLMuxError):
    """A notebook value that could not be described for the model: its ``_repr_llm_()`` or
    the built-in describer of its type raised (the message names the variable)."""
