"""A chat message with images in the shape each library takes: OpenAI's content parts
(``image_url`` with a base64 data URL: servers and llama-cpp-python's chat handlers) and
transformers' (``{"type": "image", "image": PIL}`` for a processor's chat template)."""

from __future__ import annotations

from typing import Any

from ..types.images import ImageLimit
from ..types.values import Message


def openai_message(message: Message, limit: ImageLimit) -> dict[str, Any]:
    """``{"role", "content"}``: the text alone, or text and ``image_url`` parts in order, each
    image fitted to ``limit``."""
    if not message.images:
        return message.as_dict()
    content = [
        {"type": "text", "text": part}
        if isinstance(part, str)
        else {"type": "image_url", "image_url": {"url": part.fitted(limit).data_url}}
        for part in message.parts()
    ]
    return {"role": message.role, "content": content}


def hf_message(message: Message, limit: ImageLimit) -> dict[str, Any]:
    """``{"role", "content": [parts]}`` as vision processors' chat templates take it (always a
    list, even for text alone), each image decoded at the size ``limit`` allows."""
    content = [
        {"type": "text", "text": part}
        if isinstance(part, str)
        else {"type": "image", "image": part.fitted(limit).pil()}
        for part in message.parts()
    ]
    return {"role": message.role, "content": content}
