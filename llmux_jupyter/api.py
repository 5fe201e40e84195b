"""The Python API, ``from llmux_jupyter import llm``: the object the magics and widgets drive."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .catalog import Catalog
from .chat import ChatResponse, ChatStream
from .config import LLMux
from .conversation import DEFAULT_THREAD, Threads
from .errors import InvalidParameter, UnknownBackend
from .manager import LoadedModel, ModelManager
from .registry import BackendRegistry, BackendStatus, registry
from .sources import FileSource, HuggingFaceSource, Source
from .specs import GenerationParams, LoadOptions, ModelSpec, Task

if TYPE_CHECKING:
    import numpy as np


class LLM:
    """This kernel's models, conversations and defaults.

    >>> from llmux_jupyter import llm
    >>> print(llm.chat("Say hi", max_tokens=8))          # whole answer
    >>> for delta in llm.chat("Count to 5", stream=True):  # streaming
    ...     print(delta, end="")
    """

    def __init__(self, catalog: Catalog | None = None, backends: BackendRegistry = registry):
        self._catalog = catalog
        self._manager: ModelManager | None = None
        self.backend_registry = backends
        self.threads = Threads()
        self.config = LLMux()
        self.last: ChatResponse | None = None

    @property
    def manager(self) -> ModelManager:
        """The multiplexer, created on first use (so importing stays cheap)."""
        if self._manager is None:
            catalog = self._catalog if self._catalog is not None else Catalog()
            self._manager = ModelManager(catalog, self.backend_registry)
        return self._manager

    # -- chat ------------------------------------------------------------------
    def chat(
        self,
        prompt: str,
        *,
        model: str | None = None,
        system: str | None = None,
        thread: str = DEFAULT_THREAD,
        new: bool = False,
        stream: bool = False,
        temperature: float | None = None,
        top_p: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
        stop: tuple[str, ...] | list[str] = (),
    ) -> ChatResponse | ChatStream:
        """Ask a chat model; returns the response, or a ChatStream of deltas when ``stream``."""
        params = GenerationParams(temperature, top_p, max_tokens, seed, tuple(stop))
        chat_stream = ChatStream(
            self.manager,
            self.threads,
            prompt,
            model=model,
            thread=thread,
            system=system,
            new=new,
            params=params,
            on_response=self._remember,
        )
        if stream:
            return chat_stream
        for _ in chat_stream:
            pass
        assert chat_stream.response is not None
        return chat_stream.response

    def _remember(self, response: ChatResponse) -> None:
        self.last = response

    # -- embeddings ------------------------------------------------------------
    def embed(self, texts: str | Sequence[str], *, model: str | None = None) -> np.ndarray:
        """Embedding vectors: one row per text (a single string gives one vector)."""
        single = isinstance(texts, str)
        batch = [texts] if single else list(texts)
        if not batch or not all(isinstance(t, str) for t in batch):
            raise InvalidParameter("embed() needs a string or a non-empty list of strings.")
        name = model or self.manager.default_for(Task.EMBEDDING)
        spec = self.manager.catalog.get(name)
        if spec.task is not Task.EMBEDDING:
            raise InvalidParameter(
                f"{name!r} is a {spec.task.value} model, not an embedding model: pick one with "
                "model= (see %llm list --task embedding)."
            )
        with self.manager.using(name) as loaded:
            vectors = loaded.backend.embed(batch)
        return vectors[0] if single else vectors

    # -- models ----------------------------------------------------------------
    def models(self) -> list[ModelSpec]:
        return self.manager.catalog.all()

    def backends(self) -> list[BackendStatus]:
        return self.backend_registry.statuses()

    def load(
        self,
        name: str,
        *,
        device: str = "auto",
        dtype: str | None = None,
        draft: str | None = None,
        **settings: Any,
    ) -> LoadedModel:
        """Load now; ``dtype`` (transformers) goes with the settings, ``draft`` names a draft
        model for speculative decoding."""
        if dtype is not None:
            settings["dtype"] = dtype
        draft_spec = self.manager.catalog.get(draft) if draft is not None else None
        return self.manager.load(name, LoadOptions(device, settings, draft_spec))

    def unload(self, name: str | None = None, *, all: bool = False) -> list[str]:
        """Unload one model, or every model with ``all=True``; returns the names unloaded."""
        if all:
            return self.manager.unload_all()
        if name is None:
            raise InvalidParameter("Name the model to unload, or pass all=True.")
        self.manager.unload(name)
        return [name]

    def ps(self) -> list[LoadedModel]:
        return self.manager.loaded()

    def use(self, name: str) -> ModelSpec:
        return self.manager.use(name)

    def register(
        self,
        name: str,
        *,
        backend: str,
        path: str | None = None,
        hf: str | None = None,
        file: str | None = None,
        revision: str | None = None,
        task: str | None = None,
        description: str = "",
        **settings: Any,
    ) -> ModelSpec:
        """Add a model from a local ``path`` or a Hugging Face repo ``hf`` (``file`` inside it)."""
        spec = ModelSpec(
            name=name,
            backend=backend,
            task=self._task_for(backend, task),
            source=_source(path, hf, file, revision),
            settings=settings,
            description=description,
        )
        self.manager.catalog.register(spec)
        self.manager.events.emit("registered", name)
        return spec

    def unregister(self, name: str) -> None:
        if self.manager.is_loaded(name):
            self.manager.unload(name)
        self.manager.catalog.unregister(name)
        self.manager.events.emit("unregistered", name)

    def _task_for(self, backend: str, task: str | None) -> Task:
        if backend not in self.backend_registry.names():
            known = ", ".join(self.backend_registry.names())
            raise UnknownBackend(f"No backend named {backend!r}. Known backends: {known}.")
        tasks = self.backend_registry.task_set(backend)
        if task is not None:
            try:
                chosen = Task(task)
            except ValueError:
                choices = ", ".join(t.value for t in Task)
                raise InvalidParameter(f"Unknown task {task!r}: use one of {choices}.") from None
            if chosen not in tasks:
                raise InvalidParameter(f"The {backend} backend cannot do {chosen.value}.")
            return chosen
        if len(tasks) != 1:
            default = self.backend_registry.default_task(backend)
            if default is not None:
                return default
            choices = ", ".join(sorted(t.value for t in tasks))
            raise InvalidParameter(f"The {backend} backend does {choices}: say which with task=.")
        return next(iter(tasks))


def _source(path: str | None, hf: str | None, file: str | None, revision: str | None) -> Source:
    if (path is None) == (hf is None):
        raise InvalidParameter("Give exactly one of path= (a local file) or hf= (org/repo).")
    if path is not None:
        source = FileSource(path)
        source.resolve()  # a missing path is refused now, not at first use
        return source
    assert hf is not None
    if hf.count("/") != 1:
        raise InvalidParameter(f"hf={hf!r}: a Hugging Face repo id looks like org/name.")
    return HuggingFaceSource(hf, file, revision)


llm = LLM()
