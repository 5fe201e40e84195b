"""GGUF for transformers, converted once: ``from_pretrained(gguf_file=)`` parses the tokenizer
and dequantises every tensor (~8 s for a 135M model on 2 cores). The first load saves the
result with ``save_pretrained`` under ``<llmux cache>/transformers/``; later loads read that
folder in well under a second. The folder name carries a key of the file's path, size and
modification time and of the dtype, so a changed file is converted again. ``%llm du`` lists
these folders with the models they belong to (a changed or unregistered file's are orphans).

Every kernel of the user shares the cache. One converts a given file at a given dtype at a
time (a file lock under ``<llmux cache>/locks``); another that wants it waits, then uses the
result. A conversion is written to a temporary folder, sealed (every file's size recorded,
``models.files.seal_folder``) and renamed into place last: a kernel killed half-way leaves no
folder a later load would trust, and that load removes what it left and converts again.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

from ..errors import ModelLoadError
from ..models.cache import cache_root
from ..models.disk import FolderCache, register_cache
from ..models.files import file_lock, is_sealed, seal_folder
from ..models.gguf_info import MAGIC, read_gguf_info
from ..models.spec import ModelSpec
from ..types.values import DTYPES
from ..units import format_duration
from .hf_files import first_line

FOLDER = "transformers"
LOCKS = "locks"


def conversion_directory(gguf: Path, dtype: str) -> Path:
    """Where the conversion of ``gguf`` at ``dtype`` lives (whether or not it exists yet)."""
    stat = gguf.stat()
    key = f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{dtype}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_root() / FOLDER / f"{gguf.stem}-{dtype}-{digest}"


def cached_conversion(gguf: Path, dtype: str) -> Path | None:
    """The finished conversion of ``gguf`` at ``dtype``, if one is cached (sealed, whole)."""
    directory = conversion_directory(gguf, dtype)
    return directory if is_sealed(directory) else None


def converted(gguf: Path, dtype: str) -> tuple[Path, str]:
    """The conversion of ``gguf`` at ``dtype``, made now unless cached, and how it was had:
    'cached', 'converted and cached', or 'converted by another kernel (this one waited Ns)
    and cached' (one kernel converts; the others wait for its lock, then use its result)."""
    found = cached_conversion(gguf, dtype)
    if found is not None:
        return found, "cached"
    target = conversion_directory(gguf, dtype)
    started = time.monotonic()
    with file_lock(cache_root() / LOCKS / f"{target.name}.lock"):
        found = cached_conversion(gguf, dtype)
        if found is not None:
            waited = format_duration(time.monotonic() - started)
            return found, f"converted by another kernel (this one waited {waited}) and cached"
        _remove_leftovers(target)
        return _convert(gguf, dtype, target), "converted and cached"


def _convert(gguf: Path, dtype: str, target: Path) -> Path:
    """Dequantise ``gguf`` to ``dtype`` and save it as a sealed transformers folder at
    ``target`` (which must not exist); returns ``target``. Call it holding the lock."""
    read_gguf_info(gguf)  # a truncated or damaged file fails here, clearly
    target.parent.mkdir(parents=True, exist_ok=True)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        with _each_gguf_parsed_once():
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
        seal_folder(staging)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


@contextlib.contextmanager
def _each_gguf_parsed_once() -> Iterator[None]:
    """transformers' GGUF loader parses the file once for the config, once for the tokenizer
    and once for the weights (~4 s each for SmolLM2's 49k-token vocabulary), and rebuilds
    gguf's tensor-name map for each of the model's ~400 modules: within one conversion, the
    first parse and map serve every later call (20 s -> 8 s for SmolLM2-135M on 2 cores)."""
    import gguf

    parsed: dict[tuple[str, str], Any] = {}
    parse = gguf.GGUFReader

    def parsed_once(path: str | Path, mode: str = "r") -> Any:
        key = (str(path), mode)
        if key not in parsed:
            parsed[key] = parse(path, mode)
        return parsed[key]

    name_map = functools.cache(gguf.get_tensor_name_map)
    with (
        mock.patch.object(gguf, "GGUFReader", parsed_once),
        mock.patch.object(gguf, "get_tensor_name_map", name_map),
    ):
        yield


def _remove_leftovers(target: Path) -> None:
    """What killed conversions left: their temporary folders, and an unsealed ``target``
    (a folder from an older llmux, or damaged since). Only the lock's holder calls this."""
    for path in target.parent.glob(f".{target.name}.*"):
        shutil.rmtree(path, ignore_errors=True)
    if target.exists():
        shutil.rmtree(target)


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
