"""The Python API, ``from llmux_jupyter import llm``: the object the magics and widgets drive."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from .backends.registry import BackendRegistry, BackendStatus, registry
from .config import LLMux
from .engine.bench import DEFAULT_MAX_TOKENS, DEFAULT_PROMPTS, Bench, BenchReport
from .engine.budgets import BudgetUse, DeviceBudget, plan_budgets
from .engine.chat import ChatResponse, ChatStream
from .engine.compare import Comparison
from .engine.completion import (
    DEFAULT_COMPLETION_LINES,
    DEFAULT_COMPLETION_TOKENS,
    Completer,
    Completion,
    CompletionRequest,
)
from .engine.conversation import DEFAULT_THREAD
from .engine.history.log import History
from .engine.history.secrets import SecretFilter
from .engine.ledger import HostLedger, KernelModels, held_per_device
from .engine.manager import DEFAULT, LoadedModel, ModelManager
from .engine.map import MapJob, MapResult
from .engine.operators import (
    ClassifyJob,
    ClassifyResult,
    ExtractJob,
    ExtractResult,
    FilterJob,
    FilterResult,
    MapOptions,
)
from .engine.reduce import ReduceJob, ReduceResult
from .engine.rerank import RerankJob
from .engine.schemas import Schema
from .engine.speech import SpeechStream, TranscriptionStream
from .engine.tool_loop import (
    DEFAULT_MAX_CALLS,
    TOOL_TOKENS,
    Approve,
    Runner,
    ToolChatStream,
    ask_on_stdin,
)
from .engine.tools import tools_of
from .engine.topk import TopKJob, TopKResult
from .errors import CacheError, InvalidParameter, LLMuxError, UnknownBackend
from .hardware.capabilities import DeviceReport, describe_host
from .hardware.memory import DeviceMemory, host_devices
from .models.catalog import Catalog, check_name
from .models.credentials import refuse_secrets, secret_values
from .models.disk import Clearing, DiskUsage, clear, disk_usage, plan_clearing
from .models.sources import FileSource, HuggingFaceSource, RemoteSource, Source
from .models.spec import LoadOptions, ModelSpec
from .types.audio import AudioInput, SpeechAudio, SpeechOptions, TranscribeOptions, Transcript
from .types.images import read_images
from .types.ranking import Reranking
from .types.values import GenerationParams, Task
from .units import parse_duration

if TYPE_CHECKING:
    import numpy as np

    from .backends.openai import ServedModel

# Keywords of the operators: sampling parameters, and the map's own settings.
SAMPLING = ("temperature", "top_p", "max_tokens", "seed", "stop")
MAP_SETTINGS = frozenset({"system", "batch_size", "concurrency", "cache", "variables"})


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
        self._host: list[DeviceMemory] = []
        self._held_elsewhere: dict[str, int] = {}
        self.backend_registry = backends
        self.config = LLMux()
        self.config.observe(
            self._apply_config, names=["memory_budget", "memory_fraction", "keep_alive"]
        )
        self.history = History(enabled=lambda: self.config.log, secrets=self._secret_filter)
        self.threads = self.history.threads
        self.last: ChatResponse | None = None
        self._completer: Completer | None = None
        self.config.observe(self._apply_completion_model, names=["completion_model"])

    @property
    def manager(self) -> ModelManager:
        """The multiplexer, created on first use (``%load_ext`` does it, to read free memory
        and what other kernels' models hold)."""
        if self._manager is None:
            catalog = self._catalog if self._catalog is not None else Catalog()
            ledger = HostLedger()
            self._host = host_devices()
            self._held_elsewhere = held_per_device(ledger.others())
            self._manager = ModelManager(
                catalog,
                self.backend_registry,
                budgets=self._budgets(),
                keep_alive=parse_duration(self.config.keep_alive),
                ledger=ledger,
            )
        return self._manager

    @property
    def completer(self) -> Completer:
        """Code completion as you type (the labextension's inline completer asks it); its model
        is ``LLMux.completion_model``, taken unchecked from config files and checked on use."""
        if self._completer is None:
            self._completer = Completer(self.manager)
            self._completer.model = self.config.completion_model or None
        return self._completer

    def _apply_completion_model(self, change: Any) -> None:
        """``%config LLMux.completion_model = NAME``: refused (and left as it was) unless NAME
        can complete code."""
        if self._completer is None or self._completer.model == (change["new"] or None):
            return
        try:
            self._completer.use(change["new"] or None)
        except LLMuxError:
            self.config.completion_model = change["old"]  # use() of the old name passes
            raise
        self.manager.events.emit("completion", change["new"])

    def _budgets(self) -> dict[str, DeviceBudget]:
        return plan_budgets(
            self._host,
            self.config.memory_budget,
            self.config.memory_fraction,
            self._held_elsewhere,
        )

    def _apply_config(self, change: Any) -> None:
        if self._manager is not None:
            self._manager.budgets = self._budgets()
            self._manager.default_keep_alive = parse_duration(self.config.keep_alive)
            self._manager.events.emit("budgets", "")

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
        schema: Any = None,
        tools: Any = None,
        tool_choice: str = "auto",
        max_tool_calls: int = DEFAULT_MAX_CALLS,
        tool_tokens: int = TOOL_TOKENS,
        approve: bool | Approve = False,
        run_tool: Runner | None = None,
        context: str | None = None,
        images: Any = None,
        image_offsets: Sequence[int] = (),
        log: bool = True,
        inputs: dict[str, Any] | None = None,
    ) -> ChatResponse | ChatStream:
        """Ask a chat model; returns the response, or a ChatStream of deltas when ``stream``.

        ``images`` (one, or a list: PIL images, matplotlib Figures, numpy HxW / HxWx3|4
        arrays, PNG/JPEG bytes, file paths) go with the prompt, before its text, to a model
        that takes images (``%llm list``); each is downscaled to the model's own size.
        ``response.images`` says what was sent. A model that takes only text refuses them
        (ImagesNotSupported), an unreadable image is InvalidImage: nothing is sent.
        ``image_offsets``: where each image sits in the prompt's text (character offsets, in
        order), as ``%%llm`` places ``{img}``; by default all before it.

        ``schema`` (a pydantic model, dataclass, TypedDict or JSON-schema dict): the answer is
        decoded under its JSON schema and ``response.value`` is the validated instance
        (SchemaError, with the text on ``.raw``, if it still does not fit).

        ``tools`` (functions with type hints and a docstring): the model may call them
        (``tool_choice`` auto, required, none or a tool's name; at most ``max_tool_calls``,
        each in at most ``tool_tokens`` tokens, apart from ``max_tokens``) before it answers;
        ``approve`` (True: ask on stdin, or a function of the ToolCall) may decline a call;
        ``run_tool`` runs each call (default: directly).
        ``response.tool_calls`` lists the calls. The stream then yields ToolCall records
        between the text deltas.

        ``context``: "truncate" or "error" when the thread outgrows the model's window
        (default ``LLMux.context_policy``). ``log=False`` keeps this exchange out of the
        history (so out of the thread when it resumes after a restart). ``inputs``: what the
        prompt was made of (the variables described, cells, an error; as ``%%llm`` and
        ``%llm fix`` give them), kept on ``response.inputs``, in its provenance and the history."""
        params = GenerationParams(temperature, top_p, max_tokens, seed, tuple(stop))
        common: dict[str, Any] = {
            "model": model,
            "thread": thread,
            "system": system,
            "new": new,
            "params": params,
            "on_response": partial(self._remember, log=log, inputs=inputs),
            "schema": None if schema is None else Schema.of(schema),
            "context": context or self.config.context_policy,
            "images": [] if images is None else read_images(images),
            "image_offsets": image_offsets,
            "repeat_limit": self.config.repeat_limit,
        }
        if tools is None:
            chat_stream = ChatStream(self.manager, self.threads, prompt, **common)
        else:
            chat_stream = ToolChatStream(
                self.manager,
                self.threads,
                prompt,
                tools=tools_of(tools),
                choice=tool_choice,
                max_calls=max_tool_calls,
                tool_tokens=tool_tokens,
                approve=ask_on_stdin if approve is True else approve or None,
                run=run_tool,
                **common,
            )
        if stream:
            return chat_stream
        for _ in chat_stream:
            pass
        assert chat_stream.response is not None
        return chat_stream.response

    # -- code completion -------------------------------------------------------
    def set_completion_model(self, name: str | None) -> LoadedModel | None:
        """Complete code as you type with ``name`` (a model with fill-in-the-middle tokens,
        e.g. qwen2.5-coder-0.5b), loaded now; None turns completion off. CompletionUnsupported
        (nothing changed) for a model that cannot."""
        if name is None:
            self.config.completion_model = ""
            return None
        self.completer.check_model(name)
        loaded = self.manager.load(name)
        self.config.completion_model = name
        return loaded

    def complete(
        self,
        before: str,
        after: str = "",
        *,
        context: Sequence[str] = (),
        max_tokens: int = DEFAULT_COMPLETION_TOKENS,
        max_lines: int = DEFAULT_COMPLETION_LINES,
    ) -> Completion:
        """What the completion model proposes at the cursor between ``before`` and ``after``
        (the cells above as ``context``), as the inline completer gets it; it cancels a
        completion the front end is waiting for. Records nothing (no thread, no ``last``)."""
        request = CompletionRequest(before, after, tuple(context), max_tokens, max_lines)
        return self.completer.complete(request)

    def _remember(
        self, response: ChatResponse, log: bool, inputs: dict[str, Any] | None = None
    ) -> None:
        response.inputs = inputs
        if response.text or response.error is None:  # a failed backend leaves no answer
            self.last = response
        if log:
            self.history.log_chat(response)

    def _secret_filter(self) -> SecretFilter:
        """The keys of the registered servers, and any secret-looking variable's value."""
        variables = [
            spec.source.api_key_env
            for spec in self.manager.catalog.all()
            if isinstance(spec.source, RemoteSource) and spec.source.api_key_env
        ]
        return SecretFilter(secret_values(variables))

    # -- tables ----------------------------------------------------------------
    def map(
        self,
        template: str,
        data: Any,
        *,
        model: str | None = None,
        schema: Any = None,
        system: str | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
        stop: tuple[str, ...] | list[str] = (),
        batch_size: int | None = None,
        concurrency: int | None = None,
        cache: bool = True,
        progress: bool = True,
        variables: Mapping[str, Any] | None = None,
        stream: bool = False,
        log: bool = True,
    ) -> MapResult | MapJob:
        """The template's answer for every row of ``data`` (a DataFrame, a list of dicts, or a
        list of strings as ``{item}``): ``{column}`` fields from the row, else from
        ``variables``; with a ``schema`` each answer is decoded under it and validated (a
        row that does not validate lands in ``.errors``). Returns a MapResult aligned with the
        rows (``.values``, ``.errors``, ``.usage``, ``.to_pandas()``), or with ``stream`` the
        MapJob yielding rows as they finish. Deterministic requests (temperature 0 or a
        seed) are cached on disk unless ``cache=False``. An interrupt returns the rows
        finished so far, marked interrupted. ``batch_size``: rows decoded at once
        (transformers: rows per batch, fitted to memory; llama.cpp: parallel sequences, 8 by
        default, 1 for one row after another); ``concurrency``: requests in flight to a
        server. The history logs one row for the whole map (unless ``log=False``)."""
        params = GenerationParams(temperature, top_p, max_tokens, seed, tuple(stop))
        job = MapJob(
            self.manager,
            template,
            data,
            model=model,
            system=system,
            params=params,
            variables=variables,
            schema=schema,
            batch_size=batch_size,
            concurrency=concurrency,
            cache=cache,
            on_finish=self.history.log_map if log else None,
        )
        return job if stream else job.run(progress)

    # -- operators over tables -------------------------------------------------
    def filter(
        self,
        data: Any,
        template: str,
        *,
        model: str | None = None,
        job: bool = False,
        progress: bool = True,
        **options: Any,
    ) -> FilterResult | FilterJob:
        """The rows of ``data`` for which the model answers yes to ``template`` (a question or
        statement naming the row's ``{columns}``), each answer decoded under a yes/no schema.
        Returns a FilterResult: ``.kept`` (the rows kept: a DataFrame on the input's index,
        or a list), ``.mask``, ``.confidence`` (per row, where the backend gives
        log-probabilities: llama.cpp, transformers), ``.errors``, ``.usage``,
        ``.to_pandas()``. Greedy and cached unless ``temperature`` says otherwise;
        ``options`` are the map's (system, temperature, top_p, max_tokens, seed,
        batch_size, concurrency, cache, variables, log: the history logs each map with
        its operator unless False). ``job=True``: the job, not yet run
        (``.run(progress)``, ``.cancel()``)."""
        work = FilterJob(self.manager, data, template, self._map_options(model, options))
        return work if job else work.run(progress)

    def classify(
        self,
        data: Any,
        template: str,
        labels: Any = None,
        *,
        model: str | None = None,
        job: bool = False,
        progress: bool = True,
        **options: Any,
    ) -> ClassifyResult | ClassifyJob:
        """One of ``labels`` (a list of strings, a ``Literal`` or an ``Enum``) for every row,
        decoded under an enum schema. Returns a ClassifyResult: ``.values`` (the labels, or
        Enum members), ``.confidence``, ``.counts()``, ``.to_pandas()`` (the table with
        ``label`` and ``confidence`` columns). ``options`` and ``job`` as for filter."""
        map_options = self._map_options(model, options)
        work = ClassifyJob(self.manager, data, template, labels, map_options)
        return work if job else work.run(progress)

    def extract(
        self,
        data: Any,
        template: str,
        schema: Any,
        *,
        model: str | None = None,
        job: bool = False,
        progress: bool = True,
        **options: Any,
    ) -> ExtractResult | ExtractJob:
        """Typed fields for every row: the map under ``schema`` (a pydantic model,
        dataclass, TypedDict or JSON-schema dict). Returns an ExtractResult: ``.values``
        (instances), ``.to_pandas()`` (the table with the fields as columns, nested ones as
        ``outer.inner``). ``options`` and ``job`` as for filter."""
        map_options = self._map_options(model, options)
        work = ExtractJob(self.manager, data, template, schema, map_options)
        return work if job else work.run(progress)

    def reduce(
        self,
        data: Any,
        template: str,
        by: str | None = None,
        *,
        model: str | None = None,
        job: bool = False,
        progress: bool = True,
        **options: Any,
    ) -> ReduceResult | ReduceJob:
        """One answer to ``template`` (a task naming the ``{columns}`` to read) over all rows,
        or one per value of the column ``by``. Rows that do not fit the model's context
        window are folded: a partial answer per prompt that fits, then answers combining
        those, level after level. Returns a ReduceResult: ``.answer`` (or ``.answers`` by
        group), ``.levels``, ``.usage``, ``.to_pandas()``. ``options`` and ``job`` as for
        filter; ``max_tokens`` caps every answer (default: a quarter of the window)."""
        work = ReduceJob(self.manager, data, template, by, self._map_options(model, options))
        return work if job else work.run(progress)

    def topk(
        self,
        data: Any,
        query: str,
        k: int,
        *,
        model: str | None = None,
        document: str | None = None,
        judge: str | None = None,
        candidates: int | None = None,
        job: bool = False,
        progress: bool = True,
        **options: Any,
    ) -> TopKResult | TopKJob:
        """The ``k`` rows most relevant to ``query``, scored by a rerank model or an
        embedding model (``model``; default as for rerank). Each row reads as ``document``
        (a template of its columns; default: its columns' values). With ``judge`` (a chat
        model), the best ``candidates`` rows (2k) are ordered by its verdicts on every pair.
        Returns a TopKResult: ``.rows``, ``.scores``, ``.positions``, ``.to_pandas()``.
        Scores are cached (``cache=False`` skips it); ``options`` are the judge map's."""
        work = TopKJob(
            self.manager,
            data,
            query,
            k,
            model=model,
            document=document,
            judge=judge,
            candidates=candidates,
            options=self._map_options(judge, options),
        )
        return work if job else work.run(progress)

    def _map_options(self, model: str | None, options: dict[str, Any]) -> MapOptions:
        """An operator's map options: the sampling parameters (greedy by default), the map's
        own (system, batch_size, concurrency, cache, variables) and ``log`` (False keeps its
        maps out of the history)."""
        sampling = {name: options.pop(name) for name in SAMPLING if name in options}
        sampling.setdefault("temperature", 0.0)
        sampling["stop"] = tuple(sampling.get("stop", ()))
        log = options.pop("log", True)
        unknown = set(options) - MAP_SETTINGS
        if unknown:
            known = ", ".join(sorted({*SAMPLING, *MAP_SETTINGS, "log"}))
            raise InvalidParameter(
                f"Unknown option {', '.join(sorted(unknown))}: the operators take {known}."
            )
        on_finish = self.history.log_map if log else None
        params = GenerationParams(**sampling)
        return MapOptions(model=model, params=params, on_finish=on_finish, **options)

    # -- measuring and comparing -----------------------------------------------
    def compare(
        self,
        prompt: str,
        models: Sequence[str],
        *,
        system: str | None = None,
        stream: bool = False,
        temperature: float | None = None,
        top_p: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
        stop: tuple[str, ...] | list[str] = (),
        log: bool = True,
    ) -> dict[str, ChatResponse] | Comparison:
        """The same prompt to several chat models, each in a fresh thread (not kept): a dict
        model -> response, or with ``stream`` a Comparison of events as they happen. Remote
        models answer at once, local ones in turn; the first failure is raised at the end.
        Each answer is logged to the history unless ``log=False``."""
        params = GenerationParams(temperature, top_p, max_tokens, seed, tuple(stop))
        comparison = Comparison(
            self.manager,
            prompt,
            list(models),
            system=system,
            params=params,
            on_response=partial(self.history.log_chat, kind="compare") if log else None,
        )
        if stream:
            return comparison
        for _ in comparison:
            pass
        if comparison.errors:
            raise next(iter(comparison.errors.values()))
        return comparison.responses

    def bench(
        self,
        models: str | Sequence[str],
        *,
        prompts: int | Sequence[str] = DEFAULT_PROMPTS,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        concurrency: int | Sequence[int] = 1,
        stream: bool = False,
    ) -> BenchReport | Bench:
        """Benchmark chat models (guidellm's metrics: TTFT, ITL, TPOT, latency, throughput):
        ``prompts`` built-in prompts (or your list) per concurrency level, greedy, at most
        ``max_tokens`` each. Returns the BenchReport, or with ``stream`` the Bench, whose
        iteration yields each request's record as it finishes."""
        names = [models] if isinstance(models, str) else list(models)
        levels = [concurrency] if isinstance(concurrency, int) else list(concurrency)
        bench = Bench(
            self.manager, names, prompts=prompts, max_tokens=max_tokens, concurrency=levels
        )
        if stream:
            return bench
        for _ in bench:
            pass
        return bench.report

    # -- speech ----------------------------------------------------------------
    def transcribe(
        self,
        audio: AudioInput,
        *,
        model: str | None = None,
        language: str | None = None,
        stream: bool = False,
        **options: Any,
    ) -> Transcript | TranscriptionStream:
        """Speech to text from a file path, file bytes, a 16 kHz array or (rate, array);
        ``options`` go to the backend (e.g. beam_size=1). ``stream`` gives the segments."""
        job = TranscriptionStream(
            self.manager, audio, model=model, options=TranscribeOptions(language, options)
        )
        if stream:
            return job
        for _ in job:
            pass
        assert job.transcript is not None
        return job.transcript

    def say(
        self,
        text: str,
        *,
        model: str | None = None,
        voice: str | None = None,
        save: str | None = None,
        stream: bool = False,
        **options: Any,
    ) -> SpeechAudio | SpeechStream:
        """Text to speech as (sample_rate, samples), shown as a player in a notebook; ``voice``
        is a clip to clone (Chatterbox), ``save`` a WAV path. ``stream`` gives the chunks."""
        job = SpeechStream(
            self.manager, text, model=model, options=SpeechOptions(voice, options), save=save
        )
        if stream:
            return job
        for _ in job:
            pass
        assert job.audio is not None
        return job.audio

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

    # -- reranking -------------------------------------------------------------
    def rerank(
        self,
        query: str,
        documents: Sequence[str],
        *,
        model: str | None = None,
        top_n: int | None = None,
        stream: bool = False,
    ) -> Reranking | RerankJob:
        """The documents ordered by relevance to ``query``, best first, with their scores and
        original indices (the ``top_n`` best when given). ``model``: a rerank model
        (cross-encoder, or a server's rerank) or any embedding model (cosine); by default the
        rerank default, else the embedding default. ``stream`` gives the job (scores in
        document order as they come, ``.reranking`` at the end)."""
        job = RerankJob(self.manager, query, documents, model=model, top_n=top_n)
        if stream:
            return job
        for _ in job:
            pass
        assert job.reranking is not None
        return job.reranking

    # -- models ----------------------------------------------------------------
    def models(self) -> list[ModelSpec]:
        """Every model the catalog knows: built in and registered."""
        return self.manager.catalog.all()

    def backends(self) -> list[BackendStatus]:
        """Each backend: its tasks and whether its library is installed."""
        return self.backend_registry.statuses()

    def load(
        self,
        name: str,
        *,
        device: str = "auto",
        pin: bool | None = None,
        keep_alive: str | float | None = DEFAULT,
        dtype: str | None = None,
        draft: str | None = None,
        **settings: Any,
    ) -> LoadedModel:
        """Load a model now (``%%llm`` and friends load on first use otherwise).

        ``keep_alive``: a duration ('10m', seconds), 0 to unload after each use, -1 or None to
        keep it; ``pin=True`` protects it from eviction and keep-alive. ``dtype``
        (transformers) goes with the settings; ``draft`` names a draft model, or a draft method
        such as "prompt-lookup" (llama.cpp), for speculative decoding.
        """
        if dtype is not None:
            settings["dtype"] = dtype
        chosen = self.manager.catalog.draft(draft) if draft is not None else None
        options = LoadOptions(device, settings, chosen)
        return self.manager.load(name, options, pin=pin, keep_alive=keep_alive)

    def pin(self, name: str, pinned: bool = True) -> LoadedModel:
        """Protect a loaded model from eviction and keep-alive (``pinned=False``: stop)."""
        return self.manager.pin(name, pinned)

    def unpin(self, name: str) -> LoadedModel:
        """Let a pinned model be evicted and expire again."""
        return self.manager.pin(name, False)

    def keep_alive(self, name: str, duration: str | float | None) -> LoadedModel:
        """Change a loaded model's keep-alive ('10m', 0, -1...)."""
        return self.manager.set_keep_alive(name, parse_duration(duration))

    def budgets(self) -> list[BudgetUse]:
        """Per device: what our models hold, what other kernels' models hold (as the host
        ledger was last read: at a load, an unload, ``elsewhere()``), the budget that covers
        both, and the device's size."""
        used = self.manager.used()
        others = self.manager.used_elsewhere()
        return [
            BudgetUse(
                device, used.get(device, 0), budget.budget, budget.total, others.get(device, 0)
            )
            for device, budget in self.manager.budgets.items()
        ]

    def elsewhere(self) -> list[KernelModels]:
        """The other kernels on this machine that hold models, read from the host ledger
        now: each one's pid, notebook (when known) and models with their memory."""
        return self.manager.refresh_elsewhere()

    def devices(self) -> list[DeviceReport]:
        """Each device (cpu, cuda:N, mps): its name, memory, our budget, compute capability,
        native number formats, CPU features, and whether and how each backend can use it
        (asked of the libraries, so this imports the installed ones)."""
        budgets = self.manager.budgets
        return [
            DeviceReport(
                device,
                budgets[device.id].budget if device.id in budgets else None,
                self.backend_registry.device_support(device),
            )
            for device in describe_host()
        ]

    # -- disk ------------------------------------------------------------------
    def du(self) -> DiskUsage:
        """Disk used by each model's own files and by each cache entry, with the models an
        entry belongs to (an orphan belongs to none any more). Never touches the network."""
        self.backend_registry.names()  # the backends declare their caches when discovered
        return disk_usage(self.manager.catalog.all())

    def clear_cache(self, *names: str, orphans: bool = False, all: bool = False) -> Clearing:
        """Delete cache entries: the named models' (a Hugging Face download too, when every
        model using it is named), the ``orphans``, or ``all`` of llmux's own caches. A model's
        own files are never deleted; a loaded model's entries are refused (unload it first)."""
        if [bool(names), orphans, all].count(True) != 1:
            raise InvalidParameter("Name the models whose caches to clear, or orphans, or all.")
        for name in names:
            self.manager.catalog.get(name)  # an unknown name is UnknownModel
        plan = plan_clearing(self.du(), names, orphans=orphans, everything=all)
        users = set(names) | {name for entry in plan.freed for name in entry.models}
        loaded = sorted(name for name in users if self.manager.is_loaded(name))
        if loaded:
            raise CacheError(
                f"{', '.join(loaded)} {'is' if len(loaded) == 1 else 'are'} loaded and may read "
                f"its cached files: %llm unload {loaded[0]} first; nothing was deleted."
            )
        clear(plan)
        return plan

    def unload(self, name: str | None = None, *, all: bool = False) -> list[str]:
        """Unload one model, or every model with ``all=True``; returns the names unloaded."""
        if all:
            return self.manager.unload_all()
        if name is None:
            raise InvalidParameter("Name the model to unload, or pass all=True.")
        self.manager.unload(name)
        return [name]

    def ps(self) -> list[LoadedModel]:
        """The loaded models, with their device, memory, state and keep-alive."""
        return self.manager.loaded()

    def use(self, name: str) -> ModelSpec:
        """Make ``name`` the default model of its task (``%%llm`` for a chat model)."""
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
        base_url: str | None = None,
        model: str | None = None,
        api_key_env: str | None = None,
        task: str | None = None,
        description: str = "",
        force: bool = False,
        mmproj: str | None = None,
        **settings: Any,
    ) -> ModelSpec:
        """Add a model from a local ``path``, a Hugging Face repo ``hf`` (``file`` inside it),
        or an OpenAI-compatible server ``base_url`` serving ``model`` (a chat model unless
        ``task`` says otherwise; the key is read from the variable ``api_key_env``). A name in
        use is refused unless ``force``; a loaded model of that name is unloaded first.
        ``mmproj``: a llamacpp model's vision projector GGUF (the model then takes images)."""
        check_name(name)
        refuse_secrets(settings)
        if mmproj is not None:
            settings["mmproj"] = _projector_setting(backend, mmproj)
        source = _source(path, hf, file, revision, base_url, model, api_key_env)
        if task is None and isinstance(source, RemoteSource):
            task = Task.CHAT.value
        chosen_task = self._task_for(backend, task)
        backend_class = self.backend_registry.class_of(backend)
        assert backend_class is not None  # _task_for refused an unknown backend
        spec = ModelSpec(
            name=name,
            backend=backend,
            task=chosen_task,
            source=source,
            settings=backend_class.checked_settings(settings),
            description=description,
        )
        if force:
            self.manager.unload_if_loaded(name)  # ModelBusy while it generates: nothing changes
        self.manager.catalog.register(spec, force=force)
        self.manager.events.emit("registered", name)
        return spec

    def served_models(
        self, name_or_url: str, *, api_key_env: str | None = None
    ) -> list[ServedModel]:
        """What a server lists at ``/v1/models``: a registered remote model's, or a URL's."""
        self.backend_registry.get("openai")  # BackendNotInstalled names the extra
        from .backends.openai import served_models

        if "://" in name_or_url:
            return served_models(name_or_url, api_key_env)
        spec = self.manager.catalog.get(name_or_url)
        if not isinstance(spec.source, RemoteSource):
            raise InvalidParameter(f"{spec.name!r} is a local model, not on a server.")
        source = spec.source
        return served_models(source.base_url, source.api_key_env or api_key_env, spec.settings)

    def unregister(self, name: str) -> None:
        """Forget a registered model (unloaded first if it is loaded)."""
        self.manager.unload_if_loaded(name)
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


def _projector_setting(backend: str, mmproj: str) -> str:
    """The ``mmproj`` setting: the projector's absolute path, after checking its header."""
    if backend != "llamacpp":
        raise InvalidParameter(
            f"mmproj= is a llama.cpp vision projector: it goes with --backend llamacpp, not "
            f"{backend} (a transformers vision model carries its own processor)."
        )
    from .backends.llamacpp_vision import projector_path, read_projector

    path = projector_path(mmproj).resolve()
    read_projector(path)
    return str(path)


def _source(
    path: str | None,
    hf: str | None,
    file: str | None,
    revision: str | None,
    base_url: str | None,
    model: str | None,
    api_key_env: str | None,
) -> Source:
    if [path, hf, base_url].count(None) != 2:
        raise InvalidParameter(
            "Give exactly one of path= (a local file), hf= (org/repo) or base_url= (a server)."
        )
    if base_url is not None:
        return RemoteSource(base_url, model or "", api_key_env)
    if model is not None or api_key_env is not None:
        raise InvalidParameter("model= and api_key_env= go with base_url= (a server).")
    if path is not None:
        source = FileSource(path)
        source.resolve()  # a missing path is refused now, not at first use
        return source
    assert hf is not None
    if hf.count("/") != 1:
        raise InvalidParameter(f"hf={hf!r}: a Hugging Face repo id looks like org/name.")
    return HuggingFaceSource(hf, file, revision)


llm = LLM()
