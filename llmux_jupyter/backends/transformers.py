"""Hugging Face transformers on torch: chat with causal LMs and image-text-to-text models
(streamed, optionally sped up by a draft model), sentence embeddings from encoders (mean
pooled, normalised) and reranking with cross-encoders (sequence classifiers with one output)."""

from __future__ import annotations

import dataclasses
import gc
import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ContextOverflow, InvalidParameter, ModelLoadError, UnsupportedTask
from ..hardware.capabilities import DeviceCapabilities, DeviceSupport
from ..hardware.devices import detect_devices, resolve_device
from ..models.chat_template import ChatSetup, chat_setup, completion_prompt
from ..models.spec import DRAFT_MODEL, LoadOptions, ModelSpec
from ..types.batch import BatchAnswer, BatchRequest
from ..types.images import Image, ImageLimit
from ..types.values import DTYPES, GenerationParams, Message, RequiredMemory, Task
from ..units import format_bytes
from .base import Backend, TokenCounts, error_message, path_size
from .constrained import GrammarRows, TransformersJSON, hf_tokenizer, json_grammar
from .gguf_conversion import cached_conversion, converted
from .hf_files import ModelFiles, first_line, locate, weights_bytes
from .hf_progress import progress_bars
from .hf_rerank import check_cross_encoder, cross_encoder_scores
from .hf_vision import processor_limit
from .image_parts import hf_message
from .registry import register_backend
from .settings import COMPLETION, TEMPLATE, Setting
from .torch_devices import torch_support

if TYPE_CHECKING:
    import numpy as np

DEFAULT_BATCH_SIZE = 32
DEFAULT_CONTEXT = 2048
# The transformers class that loads a model of each task.
MODEL_CLASSES = {
    Task.CHAT: "AutoModelForCausalLM",
    Task.EMBEDDING: "AutoModel",
    Task.RERANK: "AutoModelForSequenceClassification",
}
VISION_CLASS = "AutoModelForImageTextToText"  # chat models that also take images


@dataclass(frozen=True)
class Placement:
    """Where and in which precision the weights live."""

    device: str
    dtype: str


def choose_dtype(requested: str, device: str, saved: str | None, bf16_supported: bool) -> str:
    """The dtype to load at: ``auto`` is float32 on the CPU (fast there, and what a GGUF is
    dequantised to), else bfloat16 for a bfloat16 model on a GPU that supports it, else float16."""
    if requested not in DTYPES:
        raise InvalidParameter(
            f"Unknown dtype {requested!r}: use auto, float16, bfloat16 or float32."
        )
    if requested != "auto":
        return requested
    if device == "cpu":
        return "float32"
    if device.startswith("cuda") and saved == "bfloat16" and bf16_supported:
        return "bfloat16"
    return "float16"


@register_backend("transformers")
class TransformersBackend(Backend):
    """Settings: ``dtype`` (auto | float16 | bfloat16 | float32), ``template`` (a chat template,
    Jinja text or a .jinja file, for a model without one), ``completion`` (true: continue the
    conversation's text, no chat template), ``n_ctx`` (context cap; default the model's),
    ``batch_size`` (texts per embedding or reranking batch, 32). ``LoadOptions.draft``: a
    transformers chat model with the same tokenizer, used for speculative decoding. A chat
    model folder with a vision tower or an image processor loads with AutoProcessor and
    AutoModelForImageTextToText and takes images."""

    tasks = frozenset({Task.CHAT, Task.EMBEDDING, Task.RERANK})
    default_task = Task.CHAT
    draft_kinds = frozenset({DRAFT_MODEL})
    requires = ("torch", "transformers")
    extra = "transformers"
    uses_chat_templates = True
    json_schemas = answer_logprobs = True
    one_at_a_time = "concurrency > 1 needs batched generation (llm.map batches its rows)"
    _files: ModelFiles | None = None
    _placement: Placement | None = None
    _chat: ChatSetup | None = None
    _draft: TransformersBackend | None = None
    _processor: Any = None  # a vision model's AutoProcessor (images and text)
    _image_tokens: dict[tuple[int, int], int] | None = None  # an image's cost, by its size
    accepted_settings = (
        Setting("dtype", str, "weight precision (auto: float32 on the CPU)", choices=DTYPES),
        TEMPLATE,
        COMPLETION,
        Setting("n_ctx", int, "context cap in tokens (default: the model's)", minimum=1),
        Setting("batch_size", int, "texts per embedding or reranking batch (32)", minimum=1),
    )
    _lltokenizer: Any = None  # llguidance's view of the vocabulary, made on the first schema

    @classmethod
    def device_support(cls, device: DeviceCapabilities) -> DeviceSupport:
        return torch_support(device)

    # -- before loading ----------------------------------------------------------
    @classmethod
    def takes_images(cls, spec: ModelSpec) -> bool | None:
        """A model folder with a vision tower or an image processor; None when the files are
        not on this machine yet."""
        path = spec.source.local_path()
        if path is None:
            return None
        return spec.task is Task.CHAT and locate(path).takes_images()

    def files(self) -> ModelFiles:
        if self._files is None:
            self._files = locate(self.spec.source.resolve())
        return self._files

    def chat_setup(self) -> ChatSetup:
        """How messages become the prompt, from the files and settings (no loading)."""
        if self._chat is None:
            self._chat = chat_setup(
                self.spec.name,
                self.settings,
                self.files().path,
                named_formats=self.named_chat_formats,
            )
        return self._chat

    def placement(self) -> Placement:
        """Device and dtype; they, the other settings and (for chat) the chat template are
        checked before anything loads or converts."""
        if self._placement is None:
            import torch  # noqa: F401 - device detection asks torch when it is imported

            requested = str(self.settings.get("dtype", "auto")).lower()
            device = resolve_device(self.options.device, detect_devices())
            dtype = choose_dtype(requested, device, self.files().saved_dtype(), _bf16(device))
            self._check_settings()
            self._placement = Placement(device, dtype)
            self.device = device
        return self._placement

    def required_memory(self) -> RequiredMemory:
        """The weights at the chosen dtype (from safetensors or GGUF headers), plus the draft's."""
        placement = self.placement()
        files = self.files()
        converted = cached_conversion(files.path, placement.dtype) if files.gguf else None
        total = weights_bytes(files, placement.dtype, converted)
        draft = self.draft_backend()
        if draft is not None:
            total += draft.required_memory().total
        return (
            RequiredMemory(ram=total) if placement.device == "cpu" else RequiredMemory(vram=total)
        )

    def draft_backend(self) -> TransformersBackend | None:
        """The draft model's backend (not loaded yet), on our device and by default our dtype."""
        draft = self.options.draft.model if self.options.draft is not None else None
        if draft is None:
            return None
        if self._draft is None:
            if self.spec.task is not Task.CHAT:
                raise InvalidParameter(
                    f"--draft {draft.name}: draft models speed up chat models, and "
                    f"{self.spec.name!r} does {self.spec.task.value}."
                )
            if draft.backend != self.name or draft.task is not Task.CHAT:
                raise InvalidParameter(
                    f"--draft {draft.name}: a draft model must be a {self.name} chat model "
                    f"({draft.name!r} is {draft.backend}, {draft.task.value})."
                )
            dtype = draft.settings.get("dtype", self.placement().dtype)
            options = LoadOptions(self.placement().device, {"dtype": dtype, "completion": True})
            self._draft = TransformersBackend(draft, options)
        return self._draft

    def _check_settings(self) -> None:
        if self.spec.task is Task.CHAT:
            self.chat_setup()

    # -- loading -----------------------------------------------------------------
    def load(self) -> None:
        placement = self.placement()
        directory = self._weights_directory(placement.dtype)
        import torch
        import transformers
        from transformers import AutoTokenizer

        vision = self.spec.task is Task.CHAT and locate(directory).takes_images()
        class_name = VISION_CLASS if vision else MODEL_CLASSES[self.spec.task]
        model_class = getattr(transformers, class_name)
        try:
            with progress_bars(self.verbose):
                if vision:
                    self._processor = transformers.AutoProcessor.from_pretrained(directory)
                    self._tokenizer = self._processor.tokenizer
                    self._image_tokens = {}
                else:
                    self._tokenizer = AutoTokenizer.from_pretrained(directory)
                model = model_class.from_pretrained(
                    directory, dtype=getattr(torch, placement.dtype), device_map=placement.device
                )
        except (OSError, ValueError) as error:
            raise ModelLoadError(
                f"transformers could not load {directory} ({first_line(error)}): check that "
                "the folder holds the model's config, weights and tokenizer files."
            ) from None
        self._model = model.eval()
        if self.spec.task is Task.RERANK:
            check_cross_encoder(self._model, self.spec.name)
        if self.spec.task is Task.CHAT:
            self._prepare_chat()
            self._load_draft()

    def measured_memory(self) -> RequiredMemory:
        """Bytes of the tensors the model (and its draft) hold, on their device.

        Weights loaded from safetensors may be memory-mapped, so the process's RSS grows only
        as pages are first read: the tensors say more than the RSS right after loading.
        """
        total = _tensor_bytes(self._model)
        if self._draft is not None:
            total += _tensor_bytes(self._draft._model)
        return RequiredMemory(ram=total) if self.device == "cpu" else RequiredMemory(vram=total)

    def _weights_directory(self, dtype: str) -> Path:
        files = self.files()
        if not files.gguf:
            return files.path
        if self.spec.task is not Task.CHAT:
            raise ModelLoadError(
                f"{files.path.name}: {self.spec.task.value} needs a transformers model folder, "
                "not a GGUF file."
            )
        directory, state = converted(files.path, dtype)
        self.load_note = (
            f"GGUF {state} as {dtype} in {directory} ({format_bytes(path_size(directory))})"
        )
        return directory

    def _prepare_chat(self) -> None:
        template = self.chat_setup().template
        if template is not None:
            self._tokenizer.chat_template = template
            if self._processor is not None:
                self._processor.chat_template = template

    def _load_draft(self) -> None:
        draft = self.draft_backend()
        if draft is None:
            return
        draft.load()
        ours, theirs = self._tokenizer, draft._tokenizer
        if theirs.get_vocab() != ours.get_vocab():
            draft.unload()
            raise InvalidParameter(
                f"--draft {draft.spec.name}: its tokenizer differs from {self.spec.name!r}'s "
                f"({len(theirs)} vs {len(ours)} tokens), and speculative decoding needs the "
                "same one. Pick a smaller model of the same family."
            )
        self.load_note = "; ".join(filter(None, [self.load_note, f"draft: {draft.spec.name}"]))

    def unload(self) -> None:
        draft = self.__dict__.pop("_draft", None)
        if draft is not None:
            draft.unload()
        for attribute in ("_model", "_tokenizer", "_lltokenizer", "_processor", "_image_tokens"):
            self.__dict__.pop(attribute, None)
        gc.collect()
        _empty_accelerator_cache(self.device)

    # -- chat --------------------------------------------------------------------
    def generate(
        self, messages: Sequence[Message], params: GenerationParams, cancel: threading.Event
    ) -> Iterator[str]:
        from .hf_streaming import stream_generate

        inputs = self._encode(messages, params.tools)
        prompt_tokens = int(inputs["input_ids"].shape[-1])
        keywords = {**inputs, **self._generation_keywords(params, prompt_tokens)}
        new_tokens = yield from stream_generate(
            self._model, self._tokenizer, keywords, cancel, params.stop, params.seed
        )
        counts: TokenCounts = {"prompt_tokens": prompt_tokens, "completion_tokens": new_tokens}
        if params.logprobs and params.json_schema is not None:
            counts["logprob"] = keywords["logits_processor"][0].logprobs[0]
        if prompt_tokens + new_tokens >= self.context_window() and not cancel.is_set():
            counts["stop_reason"] = "context_full"
        return counts

    def context_window(self) -> int:
        """``n_ctx``, else the model's ``max_position_embeddings`` (a vision model's language
        half's), else the tokenizer's limit."""
        limit = getattr(self._tokenizer, "model_max_length", 0)
        config = self._model.config.get_text_config()
        known = getattr(config, "max_position_embeddings", 0) or (
            limit if 0 < limit < 10**7 else DEFAULT_CONTEXT
        )
        return int(self.settings.get("n_ctx") or known)

    def count_text(self, text: str) -> int:
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """The prompt's tokens: the chat template applied and tokenized, as ``generate`` does."""
        if self._processor is not None:
            return int(self._encode(messages)["input_ids"].shape[-1])
        if self.chat_setup().completion:
            return len(self._tokenizer(completion_prompt(messages))["input_ids"])
        ids = self._tokenizer.apply_chat_template(
            [m.as_dict() for m in messages], add_generation_prompt=True, tokenize=True
        )
        return len(ids["input_ids"] if hasattr(ids, "keys") else ids)

    def template_tools(self) -> bool:
        owner = self._processor if self._processor is not None else self._tokenizer
        return "tools" in (owner.chat_template or "")

    # -- images ------------------------------------------------------------------
    def takes_images_now(self) -> bool:
        """A vision model loaded with its processor (not as plain text completion)."""
        return self._processor is not None and not self.chat_setup().completion

    def image_limit(self) -> ImageLimit:
        """The size the model's image processor resizes to."""
        if self._processor is None:
            return super().image_limit()
        return processor_limit(self._processor.image_processor)

    def count_image(self, image: Image) -> int:
        """The model's own count: what the image adds to a prompt through the processor (by
        size, counted once)."""
        if self._processor is None or self._image_tokens is None:
            return super().count_image(image)
        if image.size not in self._image_tokens:
            alone = self.count_tokens([Message("user", "", (image,))])
            self._image_tokens[image.size] = alone - self.count_tokens([Message("user", "")])
        return self._image_tokens[image.size]

    def generate_batch(
        self,
        requests: Sequence[BatchRequest],
        cancel: threading.Event,
        *,
        batch_size: int | None = None,
        concurrency: int | None = None,
        free_memory: int | None = None,
    ) -> Iterator[BatchAnswer]:
        """Batched generation, prompts of similar length together, ``batch_size`` rows at a
        time (by default as many as fit ``free_memory``, at most 32). Greedy requests, under a
        schema or not, decode with continuous batching (a finished row's slot is refilled from
        the queue); others (sampling, a model our loop does not support) run ``generate`` per
        batch, left padded. A row whose prompt exceeds the context fails alone. With a draft model
        (which transformers runs one sequence at a time): one row after another."""
        if self._draft is not None:
            yield from super().generate_batch(requests, cancel)
            return
        from . import hf_continuous
        from .hf_batch import Row, batches, fit_batch_size, row_bytes

        groups: dict[str, tuple[GenerationParams, list[Row]]] = {}  # rows by their parameters
        for request in requests:
            ids = self._encode(request.messages)["input_ids"][0].tolist()
            try:
                self._generation_keywords(_unconstrained(request.params), len(ids))
            except (InvalidParameter, ContextOverflow) as error:  # this row only
                yield BatchAnswer(request.key, error=str(error))
                continue
            groups.setdefault(repr(request.params), (request.params, []))[1].append(
                Row(request.key, ids)
            )
        dtype_bytes = self._model.dtype.itemsize
        for params, rows in groups.values():
            longest = max(len(row.ids) for row in rows)
            new_tokens = self._generation_keywords(_unconstrained(params), longest)
            tokens = longest + new_tokens["max_new_tokens"]
            per_row = row_bytes(self._model.config.get_text_config(), dtype_bytes, tokens)
            size = batch_size or fit_batch_size(len(rows), per_row, free_memory)
            if hf_continuous.supported(self._model, new_tokens):
                yield from self._continuous_answers(params, rows, size, cancel)
            else:
                yield from self._batch_answers(params, batches(rows, size), cancel)
            if cancel.is_set():
                return

    def _continuous_answers(
        self, params: GenerationParams, rows: list[Any], size: int, cancel: threading.Event
    ) -> Iterator[BatchAnswer]:
        """Greedy rows by continuous batching, each under the schema if there is one."""
        from .hf_continuous import continuous_answers

        try:
            grammar = self._grammar_rows(params.json_schema, size, params.logprobs)
        except Exception as error:  # e.g. a schema llguidance cannot read: the rows fail
            yield from (BatchAnswer(row.key, error=error_message(error)) for row in rows)
            return
        unconstrained = _unconstrained(params)
        limits = [
            self._generation_keywords(unconstrained, len(row.ids))["max_new_tokens"] for row in rows
        ]
        yield from continuous_answers(
            self._model, self._tokenizer, rows, size=size, max_new_tokens=limits,
            pad_token_id=self._pad_token_id(), stops=params.stop, cancel=cancel, grammar=grammar,
        )  # fmt: skip

    def _batch_answers(
        self, params: GenerationParams, batches: Iterator[list[Any]], cancel: threading.Event
    ) -> Iterator[BatchAnswer]:
        """One ``generate`` per batch of rows, left padded; a failing batch's rows fail."""
        from .hf_batch import generate_rows

        for batch in batches:
            if cancel.is_set():
                return
            prompt = max(len(row.ids) for row in batch)
            keywords = self._generation_keywords(_unconstrained(params), prompt)
            try:
                if params.json_schema is not None:  # one matcher per row of the batch
                    keywords["logits_processor"] = self.json_processors(
                        params.json_schema, rows=len(batch), logprobs=params.logprobs
                    )
                answers = generate_rows(
                    self._model, self._tokenizer, batch, keywords, cancel, params.stop,
                    params.seed,
                )  # fmt: skip
            except Exception as error:  # the batch's rows fail, not the map
                failure = error_message(error)
                yield from (BatchAnswer(row.key, error=failure) for row in batch)
                continue
            if answers is None:
                return
            processor = keywords.get("logits_processor", [None])[0]
            logprobs = getattr(processor, "logprobs", None) or [None] * len(batch)
            for row, (text, count), logprob in zip(batch, answers, logprobs, strict=True):
                yield BatchAnswer(row.key, text, len(row.ids), count, logprob=logprob)

    def _encode(
        self, messages: Sequence[Message], tools: Sequence[dict[str, Any]] = ()
    ) -> dict[str, Any]:
        if self._processor is not None and not self.chat_setup().completion:
            limit = self.image_limit()
            encoded = self._processor.apply_chat_template(
                [hf_message(m, limit) for m in messages],
                tools=list(tools) or None,
                add_generation_prompt=True,
                tokenize=True,
                return_dict=True,
                return_tensors="pt",
            )
            return {key: self._on_model(value) for key, value in encoded.items()}
        if self.chat_setup().completion:
            encoded = self._tokenizer(completion_prompt(messages), return_tensors="pt")
        else:
            encoded = self._tokenizer.apply_chat_template(
                [m.as_dict() for m in messages],
                tools=list(tools) or None,
                add_generation_prompt=True,
                return_dict=True,
                return_tensors="pt",
            )
        return {key: value.to(self._model.device) for key, value in encoded.items()}

    def _on_model(self, tensor: Any) -> Any:
        """A processor's tensor on the model's device; pixels in the model's dtype."""
        if tensor.is_floating_point():
            return tensor.to(self._model.device, self._model.dtype)
        return tensor.to(self._model.device)

    def _generation_keywords(self, params: GenerationParams, prompt_tokens: int) -> dict[str, Any]:
        context = self.context_window()
        if prompt_tokens >= context:
            raise ContextOverflow(
                f"The prompt is {prompt_tokens:,} tokens and the model's context window is "
                f"{context:,}: start afresh with --new, shorten the input, or raise n_ctx if "
                "the model allows it."
            )
        keywords: dict[str, Any] = {
            "max_new_tokens": min(params.max_tokens or context, context - prompt_tokens),
            "pad_token_id": self._pad_token_id(),
        }
        if params.temperature == 0:
            keywords.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        elif params.temperature is not None or params.top_p is not None:
            keywords["do_sample"] = True
            if params.temperature is not None:
                keywords["temperature"] = params.temperature
            if params.top_p is not None:
                keywords["top_p"] = params.top_p
        if self._draft is not None:
            keywords["assistant_model"] = self._draft._model
        if params.json_schema is not None:
            keywords["logits_processor"] = self.json_processors(
                params.json_schema, rows=1, logprobs=params.logprobs
            )
        return keywords

    def json_processors(self, schema: dict[str, Any], rows: int, logprobs: bool = False) -> Any:
        """Decoding a batch of ``rows`` under ``schema``: llguidance's mask per row (and
        each row's answer log-probability under it, with ``logprobs``)."""
        from transformers import LogitsProcessorList

        grammar = self._json_grammar(schema)
        return LogitsProcessorList([TransformersJSON(self._lltokenizer, grammar, rows, logprobs)])

    def _grammar_rows(
        self, schema: dict[str, Any] | None, size: int, logprobs: bool = False
    ) -> GrammarRows | None:
        """Masks under ``schema`` for a continuous batch of up to ``size`` rows."""
        if schema is None:
            return None
        grammar = self._json_grammar(schema)  # makes the llguidance tokenizer on first use
        return GrammarRows(self._lltokenizer, grammar, size, logprobs)

    def _json_grammar(self, schema: dict[str, Any]) -> str:
        """``schema`` as llguidance's grammar over this model's vocabulary."""
        if self._draft is not None:
            raise UnsupportedTask(
                f"{self.spec.name!r} drafts with {self._draft.spec.name}: a schema needs a "
                "model loaded without --draft (speculative decoding checks several tokens at "
                "once, the schema's mask one)."
            )
        if self._lltokenizer is None:
            vocabulary = self._model.config.get_text_config().vocab_size
            self._lltokenizer = hf_tokenizer(self._tokenizer, vocabulary)
        return json_grammar(schema, self._lltokenizer)

    def _pad_token_id(self) -> int | None:
        """Set explicitly so generate does not warn about it on every call."""
        generation = self._model.generation_config
        for value in (
            generation.pad_token_id,
            self._tokenizer.pad_token_id,
            generation.eos_token_id,
        ):
            value = value[0] if isinstance(value, list) else value
            if value is not None:
                return int(value)
        return None

    # -- embeddings --------------------------------------------------------------
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Mean of the last hidden states over each text's tokens, L2-normalised."""
        import torch

        batch_size = int(self.settings.get("batch_size", DEFAULT_BATCH_SIZE))
        rows = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                encoded = self._tokenizer(
                    list(texts[start : start + batch_size]),
                    padding=True,
                    truncation=True,
                    max_length=self._max_length(),
                    return_tensors="pt",
                ).to(self._model.device)
                hidden = self._model(**encoded).last_hidden_state
                mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                rows.append(torch.nn.functional.normalize(pooled.float(), dim=-1).cpu())
        return torch.cat(rows).numpy()

    # -- reranking ---------------------------------------------------------------
    def rerank(
        self, query: str, documents: Sequence[str], cancel: threading.Event
    ) -> Iterator[float]:
        """Cross-encoder scores (sigmoid of the one output), batch by batch."""
        return cross_encoder_scores(
            self._model,
            self._tokenizer,
            query,
            documents,
            batch_size=int(self.settings.get("batch_size", DEFAULT_BATCH_SIZE)),
            max_length=self._max_length(),
            cancel=cancel,
        )

    def _max_length(self) -> int:
        """sentence-transformers' max_seq_length when the folder says it, else the model's."""
        limit = int(getattr(self._model.config, "max_position_embeddings", 512))
        path = self.files().path / "sentence_bert_config.json"
        if path.is_file():
            limit = min(limit, int(json.loads(path.read_text()).get("max_seq_length", limit)))
        return min(limit, int(self._tokenizer.model_max_length))


def _unconstrained(params: GenerationParams) -> GenerationParams:
    """``params`` without the schema (whose decoding is set up per batch)."""
    return dataclasses.replace(params, json_schema=None)


def _tensor_bytes(model: Any) -> int:
    """Bytes of a module's parameters and buffers, counting shared (tied) storage once."""
    storages = {}
    for tensor in [*model.parameters(), *model.buffers()]:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
    return sum(storages.values())


def _bf16(device: str) -> bool:
    import torch

    return (
        device.startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    )


def _empty_accelerator_cache(device: str) -> None:
    """Give cached accelerator memory back to the driver after the tensors are gone."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif device == "mps" and torch.backends.mps.is_available():
        torch.mps.empty_cache()
