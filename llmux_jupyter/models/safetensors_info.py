"""Parameter counts from safetensors headers, without loading tensors or importing torch."""

from __future__ import annotations

import json
import struct
from collections import Counter
from pathlib import Path

# Bytes per element of each safetensors dtype.
DTYPE_BYTES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
}
FLOATS = frozenset({"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2"})
MAX_HEADER = 100_000_000


def tensor_elements(directory: Path) -> Counter[str] | None:
    """Elements per dtype over every ``*.safetensors`` file of a model directory.

    None when the directory has no safetensors file or a header cannot be read.
    """
    files = sorted(directory.glob("*.safetensors"))
    if not files:
        return None
    counts: Counter[str] = Counter()
    for path in files:
        try:
            with path.open("rb") as handle:
                (length,) = struct.unpack("<Q", handle.read(8))
                if length > MAX_HEADER:
                    return None
                header = json.loads(handle.read(length))
        except (OSError, struct.error, ValueError):
            return None
        for name, tensor in header.items():
            if name == "__metadata__":
                continue
            elements = 1
            for dim in tensor["shape"]:
                elements *= dim
            counts[tensor["dtype"]] += elements
    return counts


def weight_bytes(counts: Counter[str], float_bytes: int | None = None) -> int:
    """Bytes of the weights, with floating tensors at ``float_bytes`` each when given."""
    total = 0
    for dtype, elements in counts.items():
        size = float_bytes if float_bytes is not None and dtype in FLOATS else None
        total += elements * (size or DTYPE_BYTES.get(dtype, 4))
    return total
