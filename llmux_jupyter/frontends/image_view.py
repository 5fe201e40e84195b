"""Images in a ``%%llm`` cell: ``--image PATH_OR_VAR`` read from the notebook, and a strip of
thumbnails of what was sent (updated with the sizes the model got once it answered)."""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import InvalidImage
from ..types.images import Image, SentImage, read_image
from .render import Bundle

THUMBNAIL_HEIGHT_PX = 96


def option_images(entries: Sequence[str], namespace: Mapping[str, Any]) -> list[Image]:
    """Each ``--image`` entry read: a notebook variable of that name, else a file."""
    images = []
    for entry in entries:
        if entry.isidentifier() and entry in namespace:
            value: Any = namespace[entry]
        elif entry.isidentifier() and not os.path.exists(entry):
            raise InvalidImage(f"--image {entry}: neither an image file nor a notebook variable.")
        else:
            value = entry
        images.append(read_image(value, entry))
    return images


def thumbnails(images: Sequence[Image], sent: Sequence[SentImage] = ()) -> Bundle:
    """HTML thumbnails with their names and sizes (``sent``: and the size each was sent at),
    and a plain-text line for front ends without HTML."""
    figures, lines = [], []
    for index, image in enumerate(images):
        size = f"{image.original[0]}×{image.original[1]}"
        if index < len(sent):
            width, height = sent[index].sent
            size += f" → sent {width}×{height}, {sent[index].tokens:,} tokens"
        source = base64.b64encode(image.thumbnail()).decode("ascii")
        name = html.escape(image.name)
        figures.append(
            "<figure style='margin:0'>"
            f"<img src='data:image/png;base64,{source}' alt='{name}' style='max-height:"
            f"{THUMBNAIL_HEIGHT_PX}px;border:1px solid var(--jp-border-color2)'/>"
            "<figcaption style='font-size:var(--jp-ui-font-size0);"
            f"color:var(--jp-ui-font-color2)'>{name} · {html.escape(size)}</figcaption>"
            "</figure>"
        )
        lines.append(f"{image.name} ({size})")
    strip = (
        "<div class='llmux-images' style='display:flex;flex-wrap:wrap;gap:8px;margin:2px 0'>"
        f"{''.join(figures)}</div>"
    )
    return {"text/html": strip, "text/plain": f"[images: {', '.join(lines)}]"}


class ThumbnailStrip:
    """The thumbnails shown above the answer, updated in place once the sizes sent are known."""

    def __init__(self, images: Sequence[Image]) -> None:
        from IPython.display import DisplayHandle

        self.images = list(images)
        self._handle = DisplayHandle()
        self._handle.display(thumbnails(self.images), raw=True)

    def sent(self, sent: Sequence[SentImage]) -> None:
        metadata = {"llmux": {"images": [image.as_dict() for image in sent]}}
        self._handle.update(thumbnails(self.images, sent), raw=True, metadata=metadata)
