"""GGUF for transformers, converted once: ``from_pretrained(gguf_file=)`` parses the tokenizer
and dequantises every tensor (~30 s for a 135M model on 2 cores). The first load saves the
result with ``save_pretrained`` under ``<llmux cache>/transformers/``; later loads read that
folder in well under a second. The folder name carries a key of the file's path, size and
modification time and of the dtype, so a changed file is converted again. ``%llm du`` lists
these folders with the models they belong to (a changed or unregistered file's are orphans).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..errors import ModelLoadError
from ..models.cache import cache_root
from ..models.disk import FolderCache, register_cache
from ..models.gguf_info import MAGIC, read_gguf_info
from ..models.spec import ModelSpec
from ..types.values import DTYPES
from .hf_files import first_line

FOLDER = "transformers"


def conversion_directory(gguf: Path, dtype: str) -> Path:
    """Where the conversion of ``gguf`` at ``dtype`` lives (whether or not it exists yet)."""
    stat = gguf.stat()
    key = f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{dtype}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_root() / FOLDER / f"{gguf.stem}-{dtype}-{digest}"


def cached_conversion(gguf: Path, dtype: str) -> Path | None:
    directory = conversion_directory(gguf, dtype)
    return directory if (directory / "config.json").is_file() else None


def convert(gguf: Path, dtype: str) -> Path:
    """Dequantise ``gguf`` to ``dtype`` and save it as a transformers folder; returns the folder."""
    read_gguf_info(gguf)  # a truncated or damaged file fails here, clearly
    target = conversion_directory(gguf, dtype)
    target.parent.mkdir(parents=True, exist_ok=True)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # The GGUF loader works in float32 (and warns otherwise); cast afterwards.
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32
        ).to(getattr(torch, dtype))
    except (OSError, ValueError, KeyError) as error:
        raise ModelLoadError(
            f"transformers could not read {gguf.name} ({first_line(error)}): its architecture "
            "may not be supported by transformers' GGUF loader; use the llamacpp backend."
        ) from None
    # save_pretrained refuses a model "quantized with gguf"; its weights are plain floats now.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        try:
            staging.rename(target)
        except OSError:  # another process finished the same conversion first
            if cached_conversion(gguf, dtype) is None:
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def conversion_owners(specs: Sequence[ModelSpec]) -> dict[Path, list[str]]:
    """The conversion folders the registered transformers models from GGUF files would use
    (at every dtype), and which models."""
    owners: dict[Path, list[str]] = {}
    for spec in specs:
        path = spec.source.local_path() if spec.backend == "transformers" else None
        if path is None or not path.is_file():
            continue
        with path.open("rb") as handle:
            if handle.read(len(MAGIC)) != MAGIC:
                continue
        for dtype in DTYPES[1:]:
            owners.setdefault(conversion_directory(path, dtype), []).append(spec.name)
    return owners


register_cache(FolderCache("transformers GGUF conversions", FOLDER, conversion_owners))
