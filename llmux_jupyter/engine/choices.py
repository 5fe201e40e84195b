"""The answers an operator may give: a yes/no question's, or a classification's labels (from
a list, a ``typing.Literal`` or an ``Enum``), as the JSON schema the answer is decoded under
and the value each answer's text stands for."""

from __future__ import annotations

import enum
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidParameter


@dataclass(frozen=True)
class Choices:
    """The labels (what the model writes), the schema that allows only them, and ``value``:
    the label's value for the user (an Enum member, True/False, or the label itself)."""

    labels: tuple[str, ...]
    value: Callable[[str], Any]
    title: str = "label"

    @property
    def json_schema(self) -> dict[str, Any]:
        return {"title": self.title, "type": "string", "enum": list(self.labels)}


YES_NO = Choices(("yes", "no"), lambda label: label == "yes", title="yes or no")


def choices_of(labels: Any) -> Choices:
    """The labels of a list (or tuple) of strings, a ``Literal["a", "b"]`` or an Enum class
    (its members' string values, else their names). Fewer than two labels, an empty or
    repeated one is refused."""
    if labels is None:
        raise InvalidParameter(
            "classify needs labels: a list such as ['positive', 'negative'], a Literal or an Enum."
        )
    if isinstance(labels, type) and issubclass(labels, enum.Enum):
        return _enum_choices(labels)
    if typing.get_origin(labels) is typing.Literal:
        return Choices(_checked(typing.get_args(labels)), str)
    if isinstance(labels, (str, bytes)) or not isinstance(labels, Iterable):
        raise InvalidParameter(
            f"labels must be a list of strings, a Literal or an Enum, not {labels!r}: e.g. "
            "labels=['positive', 'negative']."
        )
    return Choices(_checked(list(labels)), str)


def _enum_choices(kind: type[enum.Enum]) -> Choices:
    members = list(kind)
    by_value = all(isinstance(member.value, str) for member in members)
    names = [member.value if by_value else member.name for member in members]
    found = dict(zip(_checked(names), members, strict=True))
    return Choices(tuple(found), found.__getitem__, title=kind.__name__)


def _checked(labels: Iterable[Any]) -> tuple[str, ...]:
    items = list(labels)
    wrong = [item for item in items if not isinstance(item, str) or not item.strip()]
    if wrong:
        raise InvalidParameter(
            f"Every label must be a non-empty string; {wrong[0]!r} is not. Give e.g. "
            "labels=['positive', 'negative']."
        )
    if len(items) < 2:
        raise InvalidParameter(
            f"Give at least two labels to choose from, not {len(items)} ({items!r})."
        )
    repeated = sorted({item for item in items if items.count(item) > 1})
    if repeated:
        raise InvalidParameter(
            f"The labels repeat {', '.join(map(repr, repeated))}: give each label once."
        )
    return tuple(items)
