"""The prompt a ``%%llm`` cell sends: its ``{fields}`` filled with described values (images
read, with their places in the text), the earlier cells it asks for (``--cells N``) before
it, and what went in, for the provenance. Values are counted with the model's tokenizer when
the model is loaded, else estimated."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..engine.describe import Counter, Description, describe, estimate_tokens
from ..errors import ImagesNotSupported, ModelNotLoaded
from ..types.images import Image, is_image, read_image
from ..types.values import Task
from .interpolate import Filled, fill
from .notebook import earlier_cells

if TYPE_CHECKING:
    from ..api import LLM


@dataclass(frozen=True)
class CellInput:
    """An earlier cell sent with the prompt: its number and the tokens of its source and
    result."""

    number: int
    tokens: int
    cut: bool

    def as_dict(self) -> dict[str, Any]:
        return {"cell": self.number, "tokens": self.tokens, "cut": self.cut}


@dataclass
class Prompt:
    """The text to send and what went into it."""

    text: str
    variables: list[Description] = field(default_factory=list)
    cells: list[CellInput] = field(default_factory=list)
    error: Description | None = None  # the traceback %llm fix sends
    images: list[Image] = field(default_factory=list)  # {var} images, in the order written
    image_offsets: list[int] = field(default_factory=list)  # their places in ``text``

    def inputs(self) -> dict[str, Any] | None:
        """For the provenance metadata: the variables, cells and error sent, with their
        tokens."""
        found: dict[str, Any] = {
            "variables": [variable.as_dict() for variable in self.variables],
            "cells": [cell.as_dict() for cell in self.cells],
        }
        if self.error is not None:
            found["error"] = self.error.as_dict()
        return {key: value for key, value in found.items() if value} or None


def token_counter(llm: LLM, model: str | None) -> Counter:
    """The loaded model's own count of a text's tokens, else ``estimate_tokens``."""
    try:
        name = model or llm.manager.default_for(Task.CHAT)
        return llm.manager.get_loaded(name).backend.count_text
    except ModelNotLoaded:
        return estimate_tokens


def cell_prompt(
    llm: LLM,
    shell: Any,
    body: str,
    model: str | None,
    *,
    raw: bool = False,
    cells: int | None = None,
) -> Prompt:
    """The prompt of ``body`` for ``model`` (None: the default chat model): its fields
    described from the notebook's namespace (unless ``raw``; an image read, InvalidImage
    naming it if it cannot be), after the last ``cells`` cells."""
    cap, count = llm.config.describe_tokens, token_counter(llm, model)
    filled = Filled(body) if raw else fill(body, shell.user_ns, cap, count)
    images = [read_image(value, name) for name, value in filled.images]
    prompt = Prompt(filled.text, filled.described, images=images)
    prompt.image_offsets = list(filled.image_offsets)
    if cells is not None:
        context, prompt.cells = cells_context(shell, cells, cap, count)
        prompt.text = f"{context}\n\n{prompt.text}"
        prompt.image_offsets = [offset + len(context) + 2 for offset in filled.image_offsets]
    return prompt


def cells_context(shell: Any, number: int, cap: int, count: Counter) -> tuple[str, list[CellInput]]:
    """The last ``number`` cells as text (each source and result within ``cap`` tokens) and
    what each cost."""
    parts, used = ["Earlier cells of the notebook, oldest first:"], []
    for cell in earlier_cells(shell, number):
        source = describe(f"In[{cell.number}]", cell.source, cap, count)
        parts.append(f"In [{cell.number}]:\n```python\n{source.text}\n```")
        tokens, cut = source.tokens, source.cut
        if cell.has_result and is_image(cell.result):
            parts.append(f"Out [{cell.number}]: an image, not sent")
        elif cell.has_result:
            result = describe(f"Out[{cell.number}]", cell.result, cap, count)
            parts.append(f"Out [{cell.number}]:\n{result.text}")
            tokens, cut = tokens + result.tokens, cut or result.cut
        used.append(CellInput(cell.number, tokens, cut))
    if not used:
        parts.append("(none: no cell ran before this one)")
    return "\n\n".join(parts), used


def spoken_text(namespace: dict[str, Any], body: str, raw: bool) -> str:
    """The text of a ``%%llm say`` cell (its fields as ``str()``: a text is spoken whole); an
    image cannot be spoken."""
    if raw:
        return body
    filled = fill(body, namespace, None)
    if filled.images:
        raise ImagesNotSupported(f"{{{filled.images[0][0]}}} is an image: it cannot be spoken.")
    return filled.text
