"""llama.cpp multimodal models: a GGUF and its ``mmproj`` projector, through llama-cpp-python's
multimodal chat handlers (libmtmd). The projector's header says it has a vision encoder and
how many tokens an image becomes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidParameter, ModelLoadError
from ..models.gguf_info import read_gguf_info

# llama-cpp-python's handler for each vision chat format it names (as its own server maps
# them); without one, MTMDChatHandler lays the messages out with the GGUF's own template.
HANDLERS = {
    "llava-1-5": "Llava15ChatHandler",
    "obsidian": "ObsidianChatHandler",
    "llava-1-6": "Llava16ChatHandler",
    "moondream": "MoondreamChatHandler",
    "nanollava": "NanoLlavaChatHandler",
    "llama-3-vision-alpha": "Llama3VisionAlphaChatHandler",
    "minicpm-v-2.6": "MiniCPMv26ChatHandler",
    "qwen2.5-vl": "Qwen25VLChatHandler",
    "gemma4": "Gemma4ChatHandler",
}
TEMPLATE_HANDLER = "MTMDChatHandler"


@dataclass(frozen=True)
class Projector:
    """An mmproj file and what its header says about images."""

    path: Path
    image_size: int | None = None
    patch_size: int | None = None
    scale_factor: int = 1

    @property
    def image_tokens(self) -> int | None:
        """Tokens one image becomes: its patches, merged by the projector's scale factor
        (one tile; models that tile large images use more)."""
        if not self.image_size or not self.patch_size:
            return None
        return max(1, (self.image_size // self.patch_size) ** 2 // self.scale_factor**2)


def projector_path(value: Any) -> Path:
    """The ``mmproj`` setting as an existing file (InvalidParameter if it is not)."""
    path = Path(str(value)).expanduser()
    if not value or not path.is_file():
        raise InvalidParameter(f"--mmproj {value!r}: no such projector file.")
    return path


def read_projector(path: Path) -> Projector:
    """The projector's header; ModelLoadError for a GGUF without a vision encoder."""
    metadata = read_gguf_info(path).metadata
    if not metadata.get("clip.has_vision_encoder"):
        raise ModelLoadError(
            f"{path.name} is not a vision projector (its header has no clip vision encoder): "
            "give the model's mmproj GGUF with --mmproj."
        )
    return Projector(
        path,
        _int(metadata.get("clip.vision.image_size")),
        _int(metadata.get("clip.vision.patch_size")),
        _int(metadata.get("clip.vision.projector.scale_factor")) or 1,
    )


def check_layout(chat_format: str | None, template: bool, completion: bool) -> None:
    """With a projector the layout is the GGUF's own template or a vision chat format."""
    if completion or template or (chat_format and chat_format not in HANDLERS):
        raise InvalidParameter(
            "A model with --mmproj lays out its messages with the GGUF's own chat template, or "
            f"with a vision chat format ({', '.join(HANDLERS)}): drop completion, template and "
            "other chat formats."
        )


def chat_handler(projector: Projector, chat_format: str | None, verbose: bool) -> Any:
    """llama-cpp-python's multimodal handler for ``chat_format`` (None: the GGUF's template)."""
    from llama_cpp import llama_chat_format

    handler = getattr(llama_chat_format, HANDLERS.get(chat_format or "", TEMPLATE_HANDLER))
    return handler(clip_model_path=str(projector.path), verbose=verbose)


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and value > 0 else None
