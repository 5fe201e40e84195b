"""Split GGUF models, ``name-00001-of-00003.gguf`` (as llama.cpp's ``gguf-split`` and
``convert_hf_to_gguf.py --split-max-size`` write them): the first part stands for the model,
llama.cpp finds the others next to it, and the header facts add up over the parts."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from ..errors import ModelLoadError, SourceNotFound
from .gguf_info import GGUFInfo, read_gguf_info

_PART = re.compile(r"^(?P<prefix>.+)-(?P<number>\d{5})-of-(?P<count>\d{5})\.gguf$")
SPLIT_COUNT_KEY = "split.count"


def part_names(filename: str) -> list[str]:
    """The file names of every part of a split GGUF named by one part (or just ``filename``)."""
    match = _PART.match(filename)
    if match is None:
        return [filename]
    prefix, count = match["prefix"], int(match["count"])
    return [f"{prefix}-{number:05d}-of-{count:05d}.gguf" for number in range(1, count + 1)]


def gguf_parts(path: Path) -> list[Path]:
    """The files of the model ``path`` names: all parts of a split GGUF, else ``[path]``.

    Raises SourceNotFound for a part other than the first, or when a part is missing.
    """
    names = part_names(path.name)
    if len(names) == 1:
        return [path]
    if path.name != names[0]:
        raise SourceNotFound(
            f"{path.name} is one part of a split GGUF model: use its first part, {names[0]}."
        )
    parts = [path.with_name(name) for name in names]
    missing = [part.name for part in parts if not part.is_file()]
    if missing:
        raise SourceNotFound(
            f"{path.name} is the first of {len(parts)} parts, and {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} missing from {path.parent}: put every "
            "part in that folder."
        )
    return parts


def read_model_info(path: Path) -> GGUFInfo:
    """The header of the GGUF model ``path``; for a split model, the first part's metadata with
    the tensors and sizes of all parts added up (each part is checked to be complete)."""
    parts = gguf_parts(path)
    infos = [read_gguf_info(part) for part in parts]
    first = infos[0]
    if len(infos) == 1:
        return first
    declared = first.metadata.get(SPLIT_COUNT_KEY)
    if declared != len(parts):
        raise ModelLoadError(
            f"{path.name} says the model has {declared} parts, its name says {len(parts)}: "
            "the parts come from different splits; get them again."
        )
    return dataclasses.replace(
        first,
        tensor_count=sum(i.tensor_count for i in infos),
        tensor_bytes=sum(i.tensor_bytes for i in infos),
        tensor_elements=sum(i.tensor_elements for i in infos),
        data_end=sum(i.data_end for i in infos),
        file_size=sum(i.file_size for i in infos),
    )
