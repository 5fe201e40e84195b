"""The prompt a ``%%llm`` cell sends: its ``{fields}`` filled with described values, the
earlier cells it asks for (``--cells N``) before it, and what went in, for the provenance.
Values are counted with the model's tokenizer when the model is loaded, else estimated."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..engine.describe import Counter, Description, describe, estimate_tokens
from ..errors import ImagesNotSupported, ModelNotLoaded
from ..types.kinds import image_kind, is_image, is_ndarray
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
    models: list[str | None],
    *,
    raw: bool = False,
    cells: int | None = None,
) -> Prompt:
    """The prompt of ``body`` for ``models`` (None: the default chat model): its fields
    described from the notebook's namespace (unless ``raw``), after the last ``cells`` cells.
    ImagesNotSupported, before anything is sent, when a field is an image and a model takes
    text only."""
    cap, count = llm.config.describe_tokens, token_counter(llm, models[0])
    filled = Filled(body) if raw else fill(body, shell.user_ns, cap, count)
    for model in models:
        refuse_images(llm, filled.images, model)
    prompt = Prompt(filled.text, filled.described)
    if cells is not None:
        context, prompt.cells = cells_context(shell, cells, cap, count)
        prompt.text = f"{context}\n\n{prompt.text}"
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
            parts.append(f"Out [{cell.number}]: an image ({image_kind(cell.result)}), not sent")
        elif cell.has_result:
            result = describe(f"Out[{cell.number}]", cell.result, cap, count)
            parts.append(f"Out [{cell.number}]:\n{result.text}")
            tokens, cut = tokens + result.tokens, cut or result.cut
        used.append(CellInput(cell.number, tokens, cut))
    if not used:
        parts.append("(none: no cell ran before this one)")
    return "\n\n".join(parts), used


def refuse_images(llm: LLM, images: list[tuple[str, Any]], model: str | None) -> None:
    """ImagesNotSupported, naming the first image's field and the models that take images,
    when there are images and ``model`` takes text only."""
    if not images:
        return
    name = model or llm.manager.default_for(Task.CHAT)
    spec = llm.manager.catalog.get(name)
    backend = llm.backend_registry.class_of(spec.backend)
    if backend is not None and backend.takes_images(spec):
        return
    field_name, value = images[0]
    takers = image_models(llm)
    others = (
        f"Models that take images: {', '.join(takers)}."
        if takers
        else "No registered or loaded model takes images (see %llm list)."
    )
    data = f" If it is data, not a picture, write {{{field_name}!r}}." if is_ndarray(value) else ""
    raise ImagesNotSupported(
        f"{{{field_name}}} is an image ({image_kind(value)}) and {name} takes text only: "
        f"nothing was sent. {others}{data}"
    )


def image_models(llm: LLM) -> list[str]:
    """The registered (or built-in) models that take images."""
    found = []
    for spec in llm.models():
        backend = llm.backend_registry.class_of(spec.backend)
        if backend is not None and backend.takes_images(spec):
            found.append(spec.name)
    return found


def spoken_text(namespace: dict[str, Any], body: str, raw: bool) -> str:
    """The text of a ``%%llm say`` cell (its fields as ``str()``: a text is spoken whole); an
    image cannot be spoken."""
    if raw:
        return body
    filled = fill(body, namespace, None)
    if filled.images:
        field_name, value = filled.images[0]
        raise ImagesNotSupported(
            f"{{{field_name}}} is an image ({image_kind(value)}): it cannot be spoken."
        )
    return filled.text
