"""What a GGUF file's header says: metadata, tensor bytes, and whether the file is complete.

``gguf.GGUFReader`` builds a numpy view per vocabulary string and takes ~5-10 s on a 135M
model's header; this reader walks the same layout with the ``gguf`` package's constants,
skipping string arrays, in milliseconds.
"""

from __future__ import annotations

import functools
import mmap
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelLoadError

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
_SCALARS = {
    0: "B",
    1: "b",
    2: "H",
    3: "h",
    4: "I",
    5: "i",
    6: "f",
    7: "?",
    10: "Q",
    11: "q",
    12: "d",
}
_STRING, _ARRAY = 8, 9
VOCABULARY_KEY = "tokenizer.ggml.tokens"


@dataclass(frozen=True)
class GGUFInfo:
    """The parts of a GGUF header that loading and memory estimates need."""

    version: int
    metadata: dict[str, Any]
    tensor_count: int
    tensor_bytes: int
    data_end: int
    file_size: int
    tensor_elements: int = 0

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", ""))

    def arch_value(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(f"{self.architecture}.{key}", default)

    def kv_cache_bytes(self, n_ctx: int, bytes_per_value: int = 2) -> int:
        """Bytes of the K and V caches for ``n_ctx`` tokens (f16 by default)."""
        layers = int(self.arch_value("block_count", 0))
        embedding = int(self.arch_value("embedding_length", 0))
        heads = _first(self.arch_value("attention.head_count", 1))
        kv_heads = _first(self.arch_value("attention.head_count_kv", heads))
        key_length = int(self.arch_value("attention.key_length", embedding // max(heads, 1)))
        value_length = int(self.arch_value("attention.value_length", key_length))
        return n_ctx * layers * kv_heads * (key_length + value_length) * bytes_per_value

    @property
    def vocabulary_size(self) -> int:
        return int(self.metadata.get("tokenizer.ggml.tokens", 0))


def _first(value: Any) -> int:
    return int(value[0] if isinstance(value, list) else value)


def read_gguf_info(path: Path) -> GGUFInfo:
    """Parse the header of ``path``; raise ModelLoadError if it is not a complete GGUF file.

    Headers are kept per file version (path, size, modification time): the estimate, the
    chat-template check and ``%llm list`` read the same header (~40 ms for SmolLM2).
    """
    if not path.is_file():
        raise ModelLoadError(f"{path} is not a file: llama.cpp needs a single .gguf file.")
    stat = path.stat()
    return _read_version(path.resolve(), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _read_version(path: Path, size: int, modified_ns: int) -> GGUFInfo:
    with path.open("rb") as handle:
        magic = handle.read(4)
        if magic != MAGIC:
            raise ModelLoadError(
                f"{path.name} is not a GGUF file (it starts with {magic!r}): llama.cpp needs "
                "GGUF; convert the model with llama.cpp's convert_hf_to_gguf.py."
            )
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            try:
                info = _parse(data)
            except (struct.error, ValueError, IndexError, UnicodeDecodeError) as error:
                raise ModelLoadError(
                    f"{path.name} is a damaged or truncated GGUF file ({error}): get it again."
                ) from None
    if info.data_end > info.file_size:
        raise ModelLoadError(
            f"{path.name} is truncated: its tensors need {info.data_end} bytes but the file has "
            f"{info.file_size}. Download or copy it again."
        )
    return info


def _parse(data: mmap.mmap) -> GGUFInfo:
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    reader = _Reader(data)
    reader.position = len(MAGIC)
    version = reader.scalar("I")
    tensor_count, kv_count = reader.scalar("Q"), reader.scalar("Q")
    metadata = {}
    for _ in range(kv_count):
        key = reader.string()
        metadata[key] = reader.value(reader.scalar("I"))
    tensor_bytes = tensor_elements = 0
    data_size = 0
    for _ in range(tensor_count):
        reader.string()
        dims = [reader.scalar("Q") for _ in range(reader.scalar("I"))]
        block_size, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(reader.scalar("I"))]
        offset = reader.scalar("Q")
        elements = 1
        for dim in dims:
            elements *= dim
        size = elements // block_size * type_size
        tensor_bytes += size
        tensor_elements += elements
        data_size = max(data_size, offset + size)
    alignment = int(metadata.get("general.alignment", DEFAULT_ALIGNMENT))
    data_start = -(-reader.position // alignment) * alignment
    return GGUFInfo(
        version,
        metadata,
        tensor_count,
        tensor_bytes,
        data_start + data_size,
        len(data),
        tensor_elements,
    )


def tokens_in_vocabulary(path: Path, texts: Iterable[str]) -> frozenset[str]:
    """Which of ``texts`` are whole tokens of the GGUF's vocabulary (``tokenizer.ggml.tokens``),
    e.g. a code model's fill-in-the-middle markers; read once per file version."""
    read_gguf_info(path)  # a damaged or truncated file gets its ModelLoadError here
    stat = path.stat()
    return _tokens_among(path.resolve(), stat.st_size, stat.st_mtime_ns, frozenset(texts))


@functools.lru_cache(maxsize=32)
def _tokens_among(
    path: Path, size: int, modified_ns: int, wanted: frozenset[str]
) -> frozenset[str]:
    targets = {text.encode("utf-8"): text for text in wanted}
    lengths = {len(target) for target in targets}
    found: set[str] = set()
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        reader = _Reader(data)
        reader.position = len(MAGIC) + struct.calcsize("<IQ")  # the version, the tensor count
        for _ in range(reader.scalar("Q")):
            key, kind = reader.string(), reader.scalar("I")
            if key != VOCABULARY_KEY or kind != _ARRAY:
                reader.value(kind)
                continue
            if reader.scalar("I") != _STRING:
                break
            for _ in range(reader.scalar("Q")):
                length = reader.scalar("Q")
                if length in lengths:
                    token = data[reader.position : reader.position + length]
                    if token in targets:
                        found.add(targets[token])
                reader.position += length
            break
    return frozenset(found)


class _Reader:
    """Sequential little-endian reads from a buffer."""

    def __init__(self, data: mmap.mmap) -> None:
        self.data = data
        self.position = 0

    def scalar(self, code: str) -> Any:
        (value,) = struct.unpack_from("<" + code, self.data, self.position)
        self.position += struct.calcsize(code)
        return value

    def string(self) -> str:
        length = self.scalar("Q")
        end = self.position + length
        if end > len(self.data):
            raise ValueError("a string runs past the end of the file")
        text = self.data[self.position : end].decode("utf-8")
        self.position = end
        return text

    def skip_string(self) -> None:
        length = self.scalar("Q")
        self.position += length

    def value(self, kind: int) -> Any:
        if kind in _SCALARS:
            return self.scalar(_SCALARS[kind])
        if kind == _STRING:
            return self.string()
        if kind != _ARRAY:
            raise ValueError(f"unknown GGUF value type {kind}")
        item_kind, count = self.scalar("I"), self.scalar("Q")
        if item_kind == _STRING:  # vocabularies: only their length matters here
            for _ in range(count):
                self.skip_string()
            return count
        if item_kind in _SCALARS:
            code = _SCALARS[item_kind]
            values = struct.unpack_from(f"<{count}{code}", self.data, self.position)
            self.position += struct.calcsize(code) * count
            return list(values) if count <= 1024 else count
        return [self.value(item_kind) for _ in range(count)]
