"""llama.cpp through llama-cpp-python: GGUF chat models with their own chat template."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..devices import detect_devices, resolve_device
from ..errors import InvalidParameter, ModelLoadError
from ..registry import register_backend
from ..specs import GenerationParams, Message, Task
from .base import Backend, TokenCounts

DEFAULT_CONTEXT = 2048
GGUF_MAGIC = b"GGUF"


@register_backend("llamacpp")
class LlamaCppBackend(Backend):
    """Settings: ``n_ctx`` (2048), ``n_gpu_layers`` (all on a GPU host, else 0),
    ``n_threads``, ``chat_format`` (default: the template inside the GGUF)."""

    tasks = frozenset({Task.CHAT})
    requires = ("llama_cpp",)
    extra = "llamacpp"

    def load(self) -> None:
        path = self.spec.source.resolve()
        check_gguf(path)
        import llama_cpp

        self.device = resolve_device(self.options.device, detect_devices())
        gpu_layers = self._gpu_layers(llama_cpp.llama_supports_gpu_offload())
        keywords: dict[str, Any] = {
            "model_path": str(path),
            "n_ctx": int(self.settings.get("n_ctx", DEFAULT_CONTEXT)),
            "n_gpu_layers": gpu_layers,
            "verbose": bool(self.settings.get("verbose", False)),
        }
        if self.device.startswith("cuda:"):
            keywords["main_gpu"] = int(self.device.partition(":")[2])
        for key in ("n_threads", "chat_format", "n_batch"):
            if key in self.settings:
                keywords[key] = self.settings[key]
        try:
            self._llm = llama_cpp.Llama(**keywords)
        except ValueError as error:
            raise ModelLoadError(
                f"llama.cpp could not load {path.name} ({error}): the file may be damaged "
                "or made for a newer llama.cpp; check it or update llama-cpp-python."
            ) from None

    def _gpu_layers(self, wheel_supports_gpu: bool) -> int:
        if self.device == "cpu":
            return 0
        if not wheel_supports_gpu:
            if self.options.device != "auto":
                raise InvalidParameter(
                    f"--device {self.options.device}: this llama-cpp-python build has no GPU "
                    "support; reinstall it with CMAKE_ARGS=-DGGML_CUDA=on (or use --device cpu)."
                )
            self.device = "cpu"
            return 0
        return int(self.settings.get("n_gpu_layers", -1))

    def unload(self) -> None:
        llm = self.__dict__.pop("_llm", None)
        if llm is not None:
            llm.close()

    def generate(
        self, messages: Sequence[Message], params: GenerationParams, cancel: threading.Event
    ) -> Iterator[str]:
        keywords: dict[str, Any] = {
            key: value
            for key, value in params.as_dict().items()
            if key in ("temperature", "top_p", "max_tokens", "seed")
        }
        if params.stop:
            keywords["stop"] = list(params.stop)
        chunks = self._llm.create_chat_completion(
            messages=[m.as_dict() for m in messages], stream=True, **keywords
        )
        completion_tokens = 0
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
        return counts


def check_gguf(path: Path) -> None:
    """Raise ModelLoadError unless ``path`` is a complete GGUF file."""
    if not path.is_file():
        raise ModelLoadError(f"{path} is not a file: llama.cpp needs a single .gguf file.")
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic != GGUF_MAGIC:
        raise ModelLoadError(
            f"{path.name} is not a GGUF file (it starts with {magic!r}): llama.cpp needs "
            "GGUF; convert the model with llama.cpp's convert_hf_to_gguf.py."
        )
    from gguf import GGUFReader

    try:
        GGUFReader(path)
    except (ValueError, IndexError, OSError) as error:
        raise ModelLoadError(
            f"{path.name} is a damaged or truncated GGUF file ({error}): download it again."
        ) from None
