"""What a transformers vision processor does to images, read from it: the size it resizes
them to (so we never send more pixels than it keeps)."""

from __future__ import annotations

import dataclasses
from typing import Any

from ..types.images import MAX_SIDE, PIXEL_BUDGET_THRESHOLD, ImageLimit


def processor_limit(image_processor: Any) -> ImageLimit:
    """The processor's bound on an image: ``size`` as ``longest_edge`` (Idefics3, SmolVLM),
    ``height``/``width`` (Gemma 3, SigLIP), ``shortest_edge`` (CLIP-like), or a pixel budget
    (Qwen2-VL's ``longest_edge`` counts pixels, as ``max_pixels`` did). Unknown: MAX_SIDE."""
    size = _fields(getattr(image_processor, "size", None))
    max_pixels = size.get("max_pixels") or getattr(image_processor, "max_pixels", None)
    longest = size.get("longest_edge")
    if isinstance(longest, int) and longest > PIXEL_BUDGET_THRESHOLD:
        max_pixels, longest = longest, None
    if max_pixels:
        return ImageLimit(longest=MAX_SIDE, pixels=int(max_pixels))
    if longest:
        return ImageLimit(longest=min(int(longest), MAX_SIDE))
    if size.get("height") and size.get("width"):
        return ImageLimit(longest=min(max(int(size["height"]), int(size["width"])), MAX_SIDE))
    if size.get("shortest_edge"):
        return ImageLimit(longest=MAX_SIDE, shortest=int(size["shortest_edge"]))
    return ImageLimit()


def _fields(size: Any) -> dict[str, Any]:
    """A processor's ``size``: a dict, or transformers 5's SizeDict (a dataclass)."""
    if isinstance(size, dict):
        return size
    if dataclasses.is_dataclass(size) and not isinstance(size, type):
        return dataclasses.asdict(size)
    return {}
