"""llama.cpp through llama-cpp-python: GGUF chat models with their own chat template."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import InvalidParameter, ModelLoadError
from ..hardware.capabilities import DeviceCapabilities, DeviceSupport
from ..hardware.devices import detect_devices, resolve_device
from ..models.gguf_info import GGUFInfo, read_gguf_info
from ..models.spec import DRAFT_MODEL, DraftMethod
from ..types.values import DraftStats, GenerationParams, Message, RequiredMemory, Task
from .base import Backend, TokenCounts
from .llamacpp_draft import (
    AdaptiveDraft,
    check_vocabulary,
    draft_memory,
    draft_model_info,
    draft_tokens,
    open_draft,
)
from .registry import register_backend

DEFAULT_CONTEXT = 2048
DEFAULT_BATCH = 512
CPU_OVERHEAD = 8 * 2**20
PASSED_THROUGH = ("n_threads", "n_threads_batch", "chat_format", "n_batch", "flash_attn")
SAMPLING = ("temperature", "top_p", "max_tokens", "seed")


@register_backend("llamacpp")
class LlamaCppBackend(Backend):
    """Settings: ``n_ctx`` (2048), ``n_gpu_layers`` (all on a GPU host, else 0), ``n_batch``,
    ``n_threads``, ``n_threads_batch``, ``chat_format`` (default: the template inside the
    GGUF), ``flash_attn``, ``draft_tokens`` (most tokens guessed per step with a draft, 10).
    ``LoadOptions.draft``: prompt-lookup, or a llamacpp chat model with the same vocabulary."""

    tasks = frozenset({Task.CHAT})
    draft_kinds = frozenset({DRAFT_MODEL, DraftMethod.PROMPT_LOOKUP.value})
    requires = ("llama_cpp",)
    extra = "llamacpp"
    one_at_a_time = (
        "llama-cpp-python runs one generation at a time per model; to measure concurrency, "
        "serve the GGUF (llama-server --parallel N) and register it with --backend openai"
    )
    _gguf_info: GGUFInfo | None = None
    _placement: tuple[str, int] | None = None
    _draft: AdaptiveDraft | None = None

    @classmethod
    def device_support(cls, device: DeviceCapabilities) -> DeviceSupport:
        """llama.cpp's own system info: the CPU features this build uses, and whether it was
        built with GPU offload (CUDA, Metal)."""
        import llama_cpp

        sections = _system_info(llama_cpp.llama_print_system_info().decode(errors="replace"))
        if device.kind == "cpu":
            used = [name for name, value in sections.get("CPU", {}).items() if value == "1"]
            return DeviceSupport(True, f"this build uses {', '.join(used) or 'no SIMD'}")
        backend = {"cuda": "CUDA", "mps": "Metal"}[device.kind]
        if llama_cpp.llama_supports_gpu_offload() and backend in sections:
            return DeviceSupport(True, f"{backend} build, every layer offloaded (n_gpu_layers)")
        flag = "GGML_CUDA" if device.kind == "cuda" else "GGML_METAL"
        return DeviceSupport(
            False,
            f"this build has no {backend}: CMAKE_ARGS=-D{flag}=on pip install llama-cpp-python",
        )

    def gguf_info(self) -> GGUFInfo:
        """The model file's header, read once (it also proves the file is complete)."""
        if self._gguf_info is None:
            self._gguf_info = read_gguf_info(self.spec.source.resolve())
        return self._gguf_info

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
        n_ctx = int(self.settings.get("n_ctx", DEFAULT_CONTEXT))
        weights_and_cache = info.tensor_bytes + info.kv_cache_bytes(n_ctx)
        device, _ = self.placement()
        if device == "cpu":
            needed = RequiredMemory(ram=weights_and_cache + CPU_OVERHEAD)
        else:
            n_batch = int(self.settings.get("n_batch", DEFAULT_BATCH))
            logits = n_batch * info.vocabulary_size * 4
            needed = RequiredMemory(ram=CPU_OVERHEAD, vram=weights_and_cache + logits)
        if self.options.draft is None:
            return needed
        draft_tokens(self.settings)
        extra = draft_memory(
            draft_model_info(self.options.draft, self.name), info, n_ctx, device != "cpu"
        )
        return RequiredMemory(needed.ram + extra.ram, needed.vram + extra.vram)

    def load(self) -> None:
        path = self.spec.source.resolve()
        self.gguf_info()
        device, gpu_layers = self.placement()
        import llama_cpp

        keywords: dict[str, Any] = {
            "model_path": str(path),
            "n_ctx": int(self.settings.get("n_ctx", DEFAULT_CONTEXT)),
            "n_gpu_layers": gpu_layers,
            "verbose": bool(self.settings.get("verbose", False)),
        }
        if device.startswith("cuda:"):
            keywords["main_gpu"] = int(device.partition(":")[2])
        keywords.update({k: self.settings[k] for k in PASSED_THROUGH if k in self.settings})
        try:
            if self.options.draft is not None:
                keywords["draft_model"] = self._draft = self._open_draft(keywords)
            self._llm = llama_cpp.Llama(**keywords)
        except ValueError as error:
            self.unload()
            raise ModelLoadError(
                f"llama.cpp could not load {path.name} or its draft ({error}): the file may be "
                "damaged or made for a newer llama.cpp; check it or update llama-cpp-python."
            ) from None
        if self._draft is not None:
            try:
                check_vocabulary(self._llm, self._draft)
            except InvalidParameter:
                self.unload()
                raise
            self.load_note = f"draft: {self._draft.name}, up to {self._draft.most} tokens a step"

    def _open_draft(self, keywords: dict[str, Any]) -> AdaptiveDraft:
        """The draft for ``LoadOptions.draft``. Checking a few drafted tokens is a decode-sized
        batch: it runs on the decoding threads (llama.cpp's own default for batches), unless
        ``n_threads_batch`` says otherwise."""
        assert self.options.draft is not None
        threads = keywords.get("n_threads") or max((os.cpu_count() or 2) // 2, 1)
        keywords.setdefault("n_threads_batch", threads)
        draft = self.options.draft
        path = draft.model.source.resolve() if draft.model is not None else None
        return open_draft(draft, path, draft_tokens(self.settings), keywords)

    def unload(self) -> None:
        llm = self.__dict__.pop("_llm", None)
        if llm is not None:
            llm.close()
        draft = self.__dict__.pop("_draft", None)
        close = getattr(draft.propose, "close", None) if draft is not None else None
        if close is not None:
            close()

    def draft_totals(self) -> DraftStats | None:
        return self._draft.totals if self._draft is not None else None

    def generate(
        self, messages: Sequence[Message], params: GenerationParams, cancel: threading.Event
    ) -> Iterator[str]:
        keywords = {k: v for k, v in params.as_dict().items() if k in SAMPLING}
        if params.stop:
            keywords["stop"] = list(params.stop)
        chunks = self._llm.create_chat_completion(
            messages=[m.as_dict() for m in messages], stream=True, **keywords
        )
        completion_tokens = 0
        if self._draft is not None:
            self._draft.begin()
        try:
            for chunk in chunks:
                text = chunk["choices"][0]["delta"].get("content")
                if text:
                    completion_tokens += 1
                    yield text
                if cancel.is_set():
                    break
        finally:
            chunks.close()
        counts: TokenCounts = {
            "prompt_tokens": max(0, self._llm.n_tokens - completion_tokens),
            "completion_tokens": completion_tokens,
        }
        if self._draft is not None:
            counts["prompt_tokens"] = self._draft.prompt_tokens or counts["prompt_tokens"]
            counts["draft"] = self._draft.finish()
        return counts


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
