"""llama.cpp through llama-cpp-python: GGUF chat models (their own chat template, one given,
a named chat format, or plain completion), one file or split in parts."""

from __future__ import annotations

import contextlib
import difflib
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from ..errors import (
    ContextOverflow,
    GenerationError,
    InvalidParameter,
    LLMuxError,
    ModelLoadError,
)
from ..hardware.capabilities import DeviceCapabilities, DeviceSupport
from ..hardware.devices import detect_devices, resolve_device
from ..hardware.threads import ThreadCounts, best_threads
from ..models.chat_template import ChatSetup, chat_setup, completion_prompt
from ..models.gguf_info import GGUFInfo, tokens_in_vocabulary
from ..models.gguf_split import read_model_info
from ..models.spec import DRAFT_MODEL, DraftMethod, ModelSpec
from ..types.batch import BatchAnswer, BatchRequest
from ..types.images import Image
from ..types.values import DraftStats, GenerationParams, Message, RequiredMemory, Task
from . import llamacpp_log
from .base import Backend, TokenCounts, path_size
from .constrained import LlamaCppJSON, json_grammar, llamacpp_tokenizer
from .image_parts import openai_message
from .llamacpp_draft import (
    MAX_DRAFT_TOKENS,
    AdaptiveDraft,
    check_vocabulary,
    draft_memory,
    draft_model_info,
    draft_tokens,
    open_draft,
)
from .llamacpp_parallel import (
    ParallelSequences,
    RowSampling,
    SequenceRow,
    chat_sampler,
    fit_sequences,
    max_sequences,
    window_for,
)
from .llamacpp_vision import Projector, chat_handler, check_layout, projector_path, read_projector
from .registry import register_backend
from .settings import COMPLETION, TEMPLATE, Setting

DEFAULT_CONTEXT = 2048
DEFAULT_BATCH = 512
CPU_OVERHEAD = 8 * 2**20
PASSED_THROUGH = ("n_batch", "flash_attn")
SAMPLING = ("temperature", "top_p", "max_tokens", "seed")
# Map rows decoding at once (parallel sequences) when the map does not say (batch_size).
# Measured on this 2-core machine (bench/bench_map.py, SmolLM2, 32-64 rows x 16 tokens): 8
# sequences took 0.60 of the CPU time of one row at a time, plain and under a schema, with the
# same greedy answers; 16 and 32 gained little more, 4 less.
DEFAULT_SEQUENCES = 8


@register_backend("llamacpp")
class LlamaCppBackend(Backend):
    """Settings: ``n_ctx`` (2048), ``n_gpu_layers`` (all on a GPU host, else 0), ``n_batch``,
    ``n_threads`` (one per physical core), ``n_threads_batch`` (one per logical CPU),
    ``flash_attn``, ``draft_tokens`` (most tokens guessed
    per step with a draft, 10); how messages become the prompt (default: the template inside
    the GGUF): ``chat_format`` (a llama-cpp-python format name: chatml, gemma, ...),
    ``template`` (a .jinja file or the Jinja text) or ``completion`` (true: plain text
    completion); ``verbose`` (true: llama.cpp's own log in the output); ``mmproj`` (the model's
    vision projector GGUF: it then takes images, through llama-cpp-python's multimodal chat
    handlers). ``LoadOptions.draft``: prompt-lookup, or a llamacpp chat model with the same
    vocabulary."""

    tasks = frozenset({Task.CHAT})
    draft_kinds = frozenset({DRAFT_MODEL, DraftMethod.PROMPT_LOOKUP.value})
    requires = ("llama_cpp",)
    extra = "llamacpp"
    uses_chat_templates = named_chat_formats = True
    json_schemas = raw_completion = answer_logprobs = True
    one_at_a_time = (
        "llama-cpp-python runs one generation at a time per model; to measure concurrency, "
        "serve the GGUF (llama-server --parallel N) and register it with --backend openai"
    )
    _gguf_info: GGUFInfo | None = None
    _placement: tuple[str, int] | None = None
    _chat: ChatSetup | None = None
    _draft: AdaptiveDraft | None = None
    _formatter: Any = None  # renders messages as the prompt text, when a template does
    accepted_settings = (
        Setting("n_ctx", int, "context window in tokens (2048)", minimum=256),
        Setting("n_gpu_layers", int, "layers offloaded to the GPU (-1: all)", minimum=-1),
        Setting("n_batch", int, "prompt tokens evaluated per batch (512)", minimum=1),
        Setting("n_threads", int, "decoding threads (one per physical core)", minimum=1),
        Setting(
            "n_threads_batch", int, "prompt-evaluation threads (one per logical CPU)", minimum=1
        ),
        Setting("flash_attn", bool, "use flash attention"),
        Setting(
            "draft_tokens",
            int,
            "most tokens a draft guesses per step (10)",
            minimum=1,
            maximum=MAX_DRAFT_TOKENS,
        ),
        Setting("chat_format", str, "a llama-cpp-python chat format name (chatml, gemma...)"),
        TEMPLATE,
        COMPLETION,
        Setting("mmproj", str, "the model's vision projector GGUF: the model takes images"),
    )
    _projector: Projector | None = None
    _lltokenizer: Any = None  # llguidance's view of the vocabulary, made on the first schema

    @classmethod
    def device_support(cls, device: DeviceCapabilities) -> DeviceSupport:
        """llama.cpp's own system info: the CPU features this build uses, and whether it was
        built with GPU offload (CUDA, Metal)."""
        import llama_cpp

        sections = _system_info(llama_cpp.llama_print_system_info().decode(errors="replace"))
        if device.kind == "cpu":
            used = [name for name, value in sections.get("CPU", {}).items() if value == "1"]
            threads = best_threads(device.cores)
            return DeviceSupport(
                True, f"this build uses {', '.join(used) or 'no SIMD'}; threads: {threads}"
            )
        backend = {"cuda": "CUDA", "mps": "Metal"}[device.kind]
        if llama_cpp.llama_supports_gpu_offload() and backend in sections:
            return DeviceSupport(True, f"{backend} build, every layer offloaded (n_gpu_layers)")
        flag = "GGML_CUDA" if device.kind == "cuda" else "GGML_METAL"
        return DeviceSupport(
            False,
            f"this build has no {backend}: CMAKE_ARGS=-D{flag}=on pip install llama-cpp-python",
        )

    def gguf_info(self) -> GGUFInfo:
        """The model's header (over all parts of a split model), read once; it also proves
        the files are complete."""
        if self._gguf_info is None:
            self._gguf_info = read_model_info(self.spec.source.resolve())
        return self._gguf_info

    def chat_setup(self) -> ChatSetup:
        """How messages become the prompt; a model without a template is refused here."""
        if self._chat is None:
            setup = chat_setup(
                self.spec.name,
                self.settings,
                self.spec.source.resolve(),
                named_formats=self.named_chat_formats,
            )
            if self.settings.get("mmproj"):
                check_layout(setup.chat_format, setup.source == "template", setup.completion)
            elif setup.chat_format is not None:
                _check_chat_format(setup.chat_format)
            self._chat = setup
        return self._chat

    def placement(self) -> tuple[str, int]:
        """(device, n_gpu_layers): every layer on the chosen GPU if this build can offload."""
        if self._placement is None:
            device = resolve_device(self.options.device, detect_devices())
            layers = 0
            if device != "cpu":
                import llama_cpp

                if llama_cpp.llama_supports_gpu_offload():
                    layers = int(self.settings.get("n_gpu_layers", -1))
                elif self.options.device != "auto":
                    raise InvalidParameter(
                        f"--device {self.options.device}: this llama-cpp-python build has no GPU "
                        "support; reinstall it with CMAKE_ARGS=-DGGML_CUDA=on, or use --device cpu."
                    )
                else:
                    device = "cpu"
            self._placement = (device, layers)
            self.device = device
        return self._placement

    def required_memory(self) -> RequiredMemory:
        """Weights + f16 KV cache for ``n_ctx`` + working buffers.

        On the CPU only the touched pages of the compute buffer become resident (measured: a
        few MiB); CUDA allocates all of it, up to one batch of logits.
        """
        info = self.gguf_info()
        self.chat_setup()
        n_ctx = int(self.settings.get("n_ctx", DEFAULT_CONTEXT))
        weights_and_cache = info.tensor_bytes + info.kv_cache_bytes(n_ctx)
        device, _ = self.placement()
        if device == "cpu":
            needed = RequiredMemory(ram=weights_and_cache + CPU_OVERHEAD)
        else:
            n_batch = int(self.settings.get("n_batch", DEFAULT_BATCH))
            logits = n_batch * info.vocabulary_size * 4
            needed = RequiredMemory(ram=CPU_OVERHEAD, vram=weights_and_cache + logits)
        if self.settings.get("mmproj"):
            projector = path_size(projector_path(self.settings["mmproj"]))
            needed = RequiredMemory(needed.ram + projector, needed.vram)
        if self.options.draft is None:
            return needed
        extra = draft_memory(
            draft_model_info(self.options.draft, self.name), info, n_ctx, device != "cpu"
        )
        return RequiredMemory(needed.ram + extra.ram, needed.vram + extra.vram)

    def load(self) -> None:
        path = self.spec.source.resolve()
        self.gguf_info()
        setup = self.chat_setup()
        device, gpu_layers = self.placement()
        import llama_cpp

        keywords: dict[str, Any] = {
            "model_path": str(path),
            "n_ctx": int(self.settings.get("n_ctx", DEFAULT_CONTEXT)),
            "n_gpu_layers": gpu_layers,
            "verbose": self.verbose,
            "chat_format": setup.chat_format,  # None: the template in the GGUF
        }
        if self.settings.get("mmproj"):
            projector = read_projector(projector_path(self.settings["mmproj"]))
            keywords["chat_handler"] = chat_handler(projector, setup.chat_format, self.verbose)
            self._projector = projector
            keywords["chat_format"] = None
        if device.startswith("cuda:"):
            keywords["main_gpu"] = int(device.partition(":")[2])
        keywords.update({k: self.settings[k] for k in PASSED_THROUGH if k in self.settings})
        keywords.update(thread_keywords(self.settings, drafting=self.options.draft is not None))
        llamacpp_log.install()
        with llamacpp_log.scope(self.verbose) as log:
            try:
                if self.options.draft is not None:
                    keywords["draft_model"] = self._draft = self._open_draft(keywords)
                self._llm = llama_cpp.Llama(**keywords)
            except ValueError as error:
                self.unload()
                what = f"{path.name} or its draft" if self.options.draft else path.name
                said = "; ".join(log.errors[-2:]) or str(error)
                raise ModelLoadError(
                    f"llama.cpp could not load {what} ({said}): the file may be damaged or "
                    "made for a newer llama.cpp; check it or update llama-cpp-python."
                ) from None
        if self._draft is not None:
            try:
                check_vocabulary(self._llm, self._draft)
            except InvalidParameter:
                self.unload()
                raise
            self.load_note = f"draft: {self._draft.name}, up to {self._draft.most} tokens a step"
        if setup.source == "template":
            self._formatter = _template_formatter(self._llm, setup.template)
            self._llm.chat_handler = self._formatter.to_chat_handler()
        elif setup.source == "model":
            template = self._llm.metadata.get("tokenizer.chat_template")
            self._formatter = _template_formatter(self._llm, template) if template else None

    @classmethod
    def takes_images(cls, spec: ModelSpec) -> bool:
        """A model registered with a vision projector (``--mmproj FILE``) whose header says
        it has a vision encoder."""
        mmproj = spec.settings.get("mmproj")
        return bool(mmproj) and read_projector(projector_path(mmproj)) is not None

    def takes_images_now(self) -> bool:
        return self._projector is not None

    def count_image(self, image: Image) -> int:
        """The projector's tokens per image, when its header says."""
        known = self._projector.image_tokens if self._projector is not None else None
        return known if known is not None else super().count_image(image)

    def context_window(self) -> int:
        return int(self._llm.n_ctx())

    def count_text(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """The prompt's tokens as llama-cpp-python makes it: the chat template rendered and
        tokenized (a named chat format: the texts and an estimate of their markup)."""
        if self.chat_setup().completion:
            return self.count_text(completion_prompt(messages)) + 1
        if self._formatter is None:
            return super().count_tokens(messages)
        rendered = self._formatter(messages=[m.as_dict() for m in messages])
        prompt = rendered.prompt.encode("utf-8")
        return len(self._llm.tokenize(prompt, add_bos=not rendered.added_special, special=True))

    def _open_draft(self, keywords: dict[str, Any]) -> AdaptiveDraft:
        """The draft for ``LoadOptions.draft``, on the target's threads."""
        assert self.options.draft is not None
        draft = self.options.draft
        path = draft.model.source.resolve() if draft.model is not None else None
        return open_draft(draft, path, draft_tokens(self.settings), keywords)

    def unload(self) -> None:
        self.__dict__.pop("_lltokenizer", None)
        self.__dict__.pop("_projector", None)
        llm = self.__dict__.pop("_llm", None)
        if llm is not None:
            llm.close()
        draft = self.__dict__.pop("_draft", None)
        close = getattr(draft.propose, "close", None) if draft is not None else None
        if close is not None:
            close()

    def draft_totals(self) -> DraftStats | None:
        return self._draft.totals if self._draft is not None else None

    def cpu_threads(self) -> ThreadCounts | None:
        """The threads the loaded context runs on, asked of llama.cpp."""
        import llama_cpp

        context = self._llm.ctx
        return ThreadCounts(
            llama_cpp.llama_n_threads(context), llama_cpp.llama_n_threads_batch(context)
        )

    def generate(
        self, messages: Sequence[Message], params: GenerationParams, cancel: threading.Event
    ) -> Iterator[str]:
        return self._stream(lambda keywords: self._start(messages, keywords), params, cancel)

    def complete(
        self, prompt: str, params: GenerationParams, cancel: threading.Event
    ) -> Iterator[str]:
        """The raw prompt continued (its special tokens parsed); a prompt that shares a prefix
        with the previous one reuses its KV cache (llama-cpp-python's prefix match)."""
        return self._stream(
            lambda keywords: self._llm.create_completion(prompt, stream=True, **keywords),
            params,
            cancel,
        )

    def vocabulary_tokens(self, texts: Iterable[str]) -> frozenset[str]:
        return tokens_in_vocabulary(self.spec.source.resolve(), texts)

    def _stream(
        self,
        start: Callable[[dict[str, Any]], Iterator[Any]],
        params: GenerationParams,
        cancel: threading.Event,
    ) -> Iterator[str]:
        """Text deltas of the chunks ``start(keywords)`` streams, until ``cancel``."""
        keywords: dict[str, Any] = {k: v for k, v in params.as_dict().items() if k in SAMPLING}
        if params.stop:
            keywords["stop"] = list(params.stop)
        if params.json_schema is not None:
            keywords["logits_processor"] = self._json_processor(params.json_schema, params.logprobs)
        if params.tools:
            keywords["tools"] = list(params.tools)
        completion_tokens, finish = 0, None
        with llamacpp_log.scope(verbose=True) if self.verbose else contextlib.nullcontext():
            chunks = start(keywords)
            if self._draft is not None:
                self._draft.begin()
            try:
                for chunk in chunks:
                    choice = chunk["choices"][0]
                    text = choice["text"] if "text" in choice else choice["delta"].get("content")
                    if text:
                        completion_tokens += 1
                        yield text
                    finish = choice.get("finish_reason") or finish
                    if cancel.is_set():
                        break
            except ValueError as error:  # "Requested tokens (N) exceed context window of M"
                raise _generation_error(error) from None
            finally:
                chunks.close()
                _free_sampler(self._llm)
        summary: TokenCounts = {
            "prompt_tokens": max(0, self._llm.n_tokens - completion_tokens),
            "completion_tokens": completion_tokens,
        }
        if self._draft is not None:
            summary["prompt_tokens"] = self._draft.prompt_tokens or summary["prompt_tokens"]
            summary["draft"] = self._draft.finish()
        summary["stop_reason"] = self._stop_reason(finish, cancel, params)
        if params.logprobs and params.json_schema is not None:
            summary["logprob"] = keywords["logits_processor"][0].logprob
        return summary

    def generate_batch(
        self,
        requests: Sequence[BatchRequest],
        cancel: threading.Event,
        *,
        batch_size: int | None = None,
        concurrency: int | None = None,
        free_memory: int | None = None,
    ) -> Iterator[BatchAnswer]:
        """Rows as parallel sequences, ``batch_size`` at once (DEFAULT_SEQUENCES when not
        given; fewer when their KV caches would not fit ``free_memory``), or one after another
        through ``generate`` (``batch_size=1``; also with a draft, tools, a named chat format
        or plain completion), reusing the KV cache of the prefix the prompts share."""
        wanted = batch_size or DEFAULT_SEQUENCES
        if wanted <= 1 or len(requests) <= 1 or not self._parallel(requests):
            yield from super().generate_batch(requests, cancel)
            return
        rows: list[SequenceRow] = []
        failed: list[BatchAnswer] = []
        for request in requests:
            try:
                rows.append(self._sequence_row(request))
            except ContextOverflow as error:  # this row only
                failed.append(BatchAnswer(request.key, error=str(error)))
        window = window_for(rows) if rows else 0
        sequences = fit_sequences(
            wanted, len(rows), self.gguf_info().kv_cache_bytes(window), free_memory,
            most=min(max_sequences(), int(self._llm.context_params.n_batch)),
        )  # fmt: skip
        if sequences <= 1:  # one row after another in the model's own context
            yield from super().generate_batch(requests, cancel)
            return
        yield from failed
        try:
            start = self._row_start(requests[0].params)
        except LLMuxError as error:  # a schema llguidance cannot use: every row says so
            yield from (BatchAnswer(row.key, error=str(error)) for row in rows)
            return
        with llamacpp_log.scope(verbose=True) if self.verbose else contextlib.nullcontext():
            decoder = ParallelSequences(self._llm, sequences, window)
            try:
                yield from decoder.answers(rows, start, cancel)
            finally:
                decoder.close()

    def _parallel(self, requests: Sequence[BatchRequest]) -> bool:
        """Whether these requests can decode as parallel sequences: chat through a Jinja
        template (the GGUF's or one given), no draft, no tools, the same parameters."""
        first = requests[0].params
        return (
            self._draft is None
            and self._formatter is not None
            and not self.chat_setup().completion
            and not first.tools
            and all(r.params == first and r.params.json_schema == first.json_schema
                    for r in requests)
        )  # fmt: skip

    def _sequence_row(self, request: BatchRequest) -> SequenceRow:
        """The request as llama-cpp-python's chat completion makes it: the template rendered
        and tokenized, its stop strings after ours, at most ``max_tokens`` (else up to the
        context) new tokens. ContextOverflow when the prompt fills the context."""
        rendered = self._formatter(messages=[m.as_dict() for m in request.messages])
        prompt = self._llm.tokenize(
            rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True
        )
        n_ctx = self._llm.n_ctx()
        if len(prompt) >= n_ctx:
            raise _generation_error(
                ValueError(f"Requested tokens ({len(prompt)}) exceed context window of {n_ctx}")
            )
        room = n_ctx - len(prompt)
        template_stops = rendered.stop if isinstance(rendered.stop, list) else [rendered.stop]
        return SequenceRow(
            request.key,
            prompt,
            min(request.params.max_tokens or room, room),
            (*request.params.stop, *(s for s in template_stops if s)),
        )

    def _row_start(self, params: GenerationParams) -> Callable[[SequenceRow], RowSampling]:
        """What each row starts with: its sampler chain, and a matcher of its own under the
        schema (the grammar compiled once)."""
        if params.json_schema is None:
            return lambda row: RowSampling(chat_sampler(self._llm, params))
        if self._lltokenizer is None:
            self._lltokenizer = llamacpp_tokenizer(self._llm)
        grammar = json_grammar(params.json_schema, self._lltokenizer)
        return lambda row: RowSampling(
            chat_sampler(self._llm, params),
            LlamaCppJSON(self._lltokenizer, grammar, params.logprobs),
        )

    def template_tools(self) -> bool:
        setup = self.chat_setup()
        if setup.source == "model":
            template = self._llm.metadata.get("tokenizer.chat_template", "")
        else:
            template = setup.template or ""
        return "tools" in template

    def _json_processor(self, schema: dict[str, Any], logprobs: bool = False) -> Any:
        """Decoding under ``schema``: llguidance's mask as a logits processor (which counts
        the answer's log-probability under the mask, with ``logprobs``)."""
        import llama_cpp

        if self._lltokenizer is None:
            self._lltokenizer = llamacpp_tokenizer(self._llm)
        grammar = json_grammar(schema, self._lltokenizer)
        return llama_cpp.LogitsProcessorList([LlamaCppJSON(self._lltokenizer, grammar, logprobs)])

    def _stop_reason(
        self, finish: str | None, cancel: threading.Event, params: GenerationParams
    ) -> str:
        """Ours from llama-cpp-python's finish_reason: "length" is the context running full
        (the last token is sampled, not yet evaluated) or else ``max_tokens``."""
        if cancel.is_set():
            return "interrupted"
        if finish != "length":
            return "stop"
        full = params.max_tokens is None or self._llm.n_tokens >= self._llm.n_ctx() - 1
        return "context_full" if full else "max_tokens"

    def _start(self, messages: Sequence[Message], keywords: dict[str, Any]) -> Iterator[Any]:
        """llama-cpp-python's stream of chunks: a chat completion, or a plain completion of
        the messages' text (``max_tokens`` None: up to the context, as chat does)."""
        if self.chat_setup().completion:
            return self._llm.create_completion(
                completion_prompt(messages), stream=True, **{"max_tokens": None, **keywords}
            )
        limit = self.image_limit()
        return self._llm.create_chat_completion(
            messages=[openai_message(m, limit) for m in messages], stream=True, **keywords
        )


def thread_keywords(settings: dict[str, Any], drafting: bool) -> dict[str, int]:
    """``n_threads`` and ``n_threads_batch`` for ``llama_cpp.Llama``: the settings when given,
    else one decoding thread per physical core and one prompt thread per logical CPU
    (llama-cpp-python's own default, half the logical CPUs, decodes with one thread per core
    on a machine without hyper-threading). With a draft, checking a few guessed tokens is a
    decode-sized batch: it runs on the decoding threads (llama.cpp's own default for
    batches) unless ``n_threads_batch`` says otherwise."""
    best = best_threads()
    decode = int(settings.get("n_threads", best.decode))
    prompt = settings.get("n_threads_batch", decode if drafting else best.prompt)
    return {"n_threads": decode, "n_threads_batch": int(prompt)}


def _check_chat_format(name: str) -> None:
    from llama_cpp import llama_chat_format

    registry = llama_chat_format.LlamaChatCompletionHandlerRegistry()
    try:
        registry.get_chat_completion_handler_by_name(name)
    except llama_chat_format.LlamaChatCompletionHandlerNotFoundException:
        known = sorted(getattr(registry, "_chat_handlers", {}))
        close = difflib.get_close_matches(name, known, n=2)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise InvalidParameter(
            f"chat_format={name!r} is not a llama.cpp chat format.{hint} Known formats: "
            f"{', '.join(known)}."
        ) from None


def _template_formatter(llm: Any, template: str | None) -> Any:
    """llama-cpp-python's formatter of ``template`` (as it makes one for a GGUF's own)."""
    from llama_cpp import llama_chat_format

    eos, bos = llm.token_eos(), llm.token_bos()
    return llama_chat_format.Jinja2ChatFormatter(
        template=template or "",
        eos_token=_token_text(llm, eos),
        bos_token=_token_text(llm, bos),
        stop_token_ids=[eos],
    )


def _free_sampler(llm: Any) -> None:
    """Free the sampler of the generation that just ended. llama-cpp-python makes one per
    generation and drops the last into a reference cycle (its exit stack's callback closes
    over it), so its native buffers (a llama_token_data per vocabulary entry: ~1.7 MB for
    Qwen2.5's 152k tokens) would stay until Python's next full garbage collection: RSS grew
    by that much per completion. The next generation makes a new one."""
    sampler, llm._sampler = getattr(llm, "_sampler", None), None
    if sampler is not None:
        sampler.close()


def _generation_error(error: ValueError) -> LLMuxError:
    """llama-cpp-python's ValueError as ours: mostly a prompt longer than the window."""
    if "context window" in str(error):
        return ContextOverflow(
            f"llama.cpp: {error}. Load the model with a larger window (--set n_ctx=8192), "
            "start afresh with --new, or shorten the input."
        )
    return GenerationError(f"llama.cpp failed while answering ({error}); try again.")


def _token_text(llm: Any, token: int) -> str:
    return "" if token < 0 else llm.detokenize([token], special=True).decode("utf-8", "replace")


def _system_info(info: str) -> dict[str, dict[str, str]]:
    """``CPU : SSE3 = 1 | AVX2 = 1 | CUDA : ARCHS = 860 | ...`` (llama_print_system_info):
    the settings of each section (the CPU, then each GPU backend compiled in)."""
    sections: dict[str, dict[str, str]] = {}
    current = sections.setdefault("", {})
    for item in info.split("|"):
        if ":" in item:
            name, _, item = item.partition(":")
            current = sections.setdefault(name.strip(), {})
        key, equals, value = item.partition("=")
        if equals:
            current[key.strip()] = value.strip()
    return sections
