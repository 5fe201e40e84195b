"""GGUF files made from a real one with the ``gguf`` package (as its ``gguf_new_metadata``
script copies a model): the same weights without some metadata keys (e.g. the chat
template), or split in parts the way llama.cpp's ``gguf-split`` names them."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

CHAT_TEMPLATE = "tokenizer.chat_template"
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def save(writer: Any) -> None:
    """Write a ``gguf.GGUFWriter``'s header, metadata and tensors, and close it."""
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def copy_gguf(
    source: Path, target: Path, *, drop: Collection[str] = (), split_max_tensors: int = 0
) -> list[Path]:
    """Copy ``source`` to ``target`` without the metadata keys ``drop``; with
    ``split_max_tensors`` the copy is split (``target-00001-of-0000N.gguf``, ...). Returns the
    files written."""
    import gguf

    reader = gguf.GGUFReader(source)
    architecture = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
    writer = gguf.GGUFWriter(target, architecture, split_max_tensors=split_max_tensors)
    for field in reader.fields.values():
        skipped = field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF.")
        if skipped or field.name in drop:
            continue
        kind = field.types[0]
        item_kind = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=item_kind)
    for tensor in reader.tensors:
        writer.add_tensor_info(
            tensor.name, tensor.data.shape, tensor.data.dtype, tensor.data.nbytes,
            tensor.tensor_type,
        )  # fmt: skip
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for tensor in reader.tensors:
        writer.write_tensor_data(tensor.data)
    writer.close()
    if split_max_tensors:
        return sorted(target.parent.glob(f"{target.stem}-*-of-*.gguf"))
    return [target]


# The same layout on one line (newlines come from Jinja's '\n'), to pass in a magic's line.
CHATML_ONE_LINE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] ~ '\\n' ~ m['content'] }}<|im_end|>"
    "{{ '\\n' }}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant{{ '\\n' }}"
    "{% endif %}"
)


def write_projector(target: Path, vision: bool = True) -> Path:
    """A vision projector's GGUF header (as llama.cpp's mmproj files carry it: SigLIP 384
    pixels, 16-pixel patches, pixel shuffle by 4) with one small tensor: enough for our header
    reading and for llama-cpp-python's handlers to be made, not for libmtmd to encode images."""
    import gguf
    import numpy

    writer = gguf.GGUFWriter(target, "clip")
    writer.add_bool("clip.has_vision_encoder", vision)
    writer.add_uint32("clip.vision.image_size", 384)
    writer.add_uint32("clip.vision.patch_size", 16)
    writer.add_uint32("clip.vision.projector.scale_factor", 4)
    writer.add_tensor("v.patch_embd.weight", numpy.zeros((4, 4), dtype=numpy.float32))
    save(writer)
    return target
