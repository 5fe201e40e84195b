"""What a transformers model source holds: a model directory (``config.json`` + weights) or a
GGUF file, and how many bytes its weights take at a given dtype (read from file headers)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelLoadError
from ..models.chat_template import json_object
from ..models.gguf_info import MAGIC, read_gguf_info
from ..models.gguf_split import part_names
from ..models.safetensors_info import tensor_elements, weight_bytes
from .base import path_size

DTYPE_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4}


@dataclass(frozen=True)
class ModelFiles:
    """A located model: ``path`` is a model directory, or a GGUF file when ``gguf``."""

    path: Path
    gguf: bool

    def saved_dtype(self) -> str | None:
        """The dtype a model directory's config declares (None for GGUF or when absent)."""
        if self.gguf:
            return None
        config = json_object(self.path / "config.json")
        text = config.get("text_config")
        value = config.get("dtype") or config.get("torch_dtype")
        if value is None and isinstance(text, dict):  # a vision model's language half
            value = text.get("dtype") or text.get("torch_dtype")
        return value if isinstance(value, str) else None

    def takes_images(self) -> bool:
        """Whether the folder holds an image-text-to-text model: a vision tower in its config,
        or an image processor saved beside it (a GGUF file: never)."""
        if self.gguf:
            return False
        if "vision_config" in json_object(self.path / "config.json"):
            return True
        preprocessor = json_object(self.path / "preprocessor_config.json")
        if "image_processor_type" in preprocessor or "image_mean" in preprocessor:
            return True
        return "image_processor" in json_object(self.path / "processor_config.json")


def locate(path: Path) -> ModelFiles:
    """Check that ``path`` is something transformers can load; raise ModelLoadError if not."""
    if path.is_dir():
        if (path / "config.json").is_file():
            return ModelFiles(path, gguf=False)
        ggufs = sorted(p.name for p in path.glob("*.gguf"))
        hint = (
            f" It holds GGUF files ({', '.join(ggufs[:3])}): register one of them "
            "(--path DIR/FILE.gguf, or --hf ORG/REPO --file FILE.gguf)."
            if ggufs
            else " Point to the folder save_pretrained wrote, or to a .gguf file."
        )
        raise ModelLoadError(f"{path} has no config.json, so it is not a transformers model.{hint}")
    with path.open("rb") as handle:
        if handle.read(len(MAGIC)) == MAGIC:
            if len(part_names(path.name)) > 1:
                raise ModelLoadError(
                    f"{path.name} is a split GGUF, and transformers reads GGUF files whole: "
                    "merge the parts (llama.cpp's `llama-gguf-split --merge FIRST-PART OUT.gguf`)"
                    ", or use the llamacpp backend."
                )
            return ModelFiles(path, gguf=True)
    raise ModelLoadError(
        f"{path.name} is neither a transformers model folder (config.json + weights) nor a "
        "GGUF file: point to one of those."
    )


def weights_bytes(files: ModelFiles, dtype: str, converted: Path | None = None) -> int:
    """Bytes the weights take once loaded at ``dtype``.

    From safetensors headers when there are some (``converted``: a GGUF's cached conversion),
    else from the GGUF header's parameter count, else the size of the files.
    """
    directory = converted if files.gguf else files.path
    counts = tensor_elements(directory) if directory is not None else None
    if counts:
        return weight_bytes(counts, DTYPE_BYTES[dtype])
    if files.gguf:
        return read_gguf_info(files.path).tensor_elements * DTYPE_BYTES[dtype]
    return path_size(files.path)


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (library errors can run to many lines)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
