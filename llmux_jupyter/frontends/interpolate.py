"""``{var}`` in a cell, filled from the user's namespace; ``{{`` and ``}}`` are literal braces.

A bare field, ``{df}``, ``{Out[3]}`` or ``{items[0]}``, is described for the model within a
token cap (``engine.describe``). A conversion or a format spec keeps Python's own meaning:
``{df!s}`` is ``str(df)``, ``{df!r}`` its ``repr``, ``{x:.2f}`` a formatted number. An image
(``types.images.is_image``) is not text: it is set aside in ``Filled.images`` with its place
in the text, where the model is shown it.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from IPython.core.error import UsageError

from ..engine.describe import Counter, Description, describe, estimate_tokens
from ..types.images import is_image

# Where an image stands in the text while the fields are filled (characters no one types).
_IMAGE_MARK = re.compile("\ue010(\\d+)\ue011")


@dataclass
class Filled:
    """A template with its fields filled: the text, what each described field cost, and the
    images found (field name and value, in the order written) with their places in the text
    (character offsets)."""

    text: str
    described: list[Description] = field(default_factory=list)
    images: list[tuple[str, Any]] = field(default_factory=list)
    image_offsets: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _Field:
    """A field's value on its way from ``get_field`` to ``format_field``."""

    name: str
    value: Any


class _NotebookFormatter(string.Formatter):
    def __init__(self, namespace: Mapping[str, Any], cap: int | None, count: Counter) -> None:
        self.namespace = namespace
        self.cap = cap
        self.count = count
        self.filled = Filled("")
        self._described: dict[str, Description] = {}

    def get_value(self, key: int | str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        if isinstance(key, int) or not key:
            raise UsageError(
                "{} in the cell needs a variable name, like {text}; write {{}} for literal "
                "braces or pass --raw."
            )
        if key not in self.namespace:
            raise UsageError(
                f"{{{key}}} in the cell: there is no variable {key!r} in the notebook. Define "
                "it first, write {{ and }} for literal braces, or pass --raw to send the cell "
                "as it is."
            )
        return self.namespace[key]

    def get_field(
        self, field_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> tuple[_Field, Any]:
        try:
            value, first = super().get_field(field_name, args, kwargs)
        except (LookupError, AttributeError, TypeError) as error:
            raise UsageError(
                f"{{{field_name}}} in the cell: {type(error).__name__}: {error}. Write {{{{ and "
                "}} for literal braces, or pass --raw to send the cell as it is."
            ) from None
        return _Field(field_name, value), first

    def convert_field(self, value: _Field, conversion: str | None) -> Any:
        if conversion is None:
            return value
        return super().convert_field(value.value, conversion)  # Python's own: !s, !r, !a

    def format_field(self, value: Any, format_spec: str) -> str:
        if not isinstance(value, _Field):  # converted with !s, !r or !a
            return super().format_field(value, format_spec)
        if format_spec or (self.cap is None and not is_image(value.value)):
            return super().format_field(value.value, format_spec)
        if is_image(value.value):
            self.filled.images.append((value.name, value.value))
            return f"\ue010{len(self.filled.images) - 1}\ue011"
        assert self.cap is not None
        if value.name not in self._described:
            found = describe(value.name, value.value, self.cap, self.count)
            self._described[value.name] = found
            self.filled.described.append(found)
        return self._described[value.name].text


def fill(
    template: str,
    namespace: Mapping[str, Any],
    cap: int | None,
    count: Counter = estimate_tokens,
) -> Filled:
    """Fill ``{name}``, ``{name.attr}``, ``{name[0]}``, conversions and format specs from
    ``namespace``; each bare field is described in at most ``cap`` tokens (as ``count``
    counts them), or with ``cap`` None is its ``str()`` as in Python (images are set aside
    either way). A missing name or a malformed field is a UsageError."""
    formatter = _NotebookFormatter(namespace, cap, count)
    try:
        marked = formatter.vformat(template, (), {})
    except (ValueError, TypeError) as error:
        raise UsageError(
            f"Cannot fill the {{...}} fields of the cell ({error}). Write {{{{ and }}}} for "
            "literal braces, or pass --raw to send the cell as it is."
        ) from None
    filled, parts, start = formatter.filled, [], 0
    for mark in _IMAGE_MARK.finditer(marked):
        parts.append(marked[start : mark.start()])
        filled.image_offsets.append(sum(map(len, parts)))
        start = mark.end()
    filled.text = "".join([*parts, marked[start:]])
    return filled
