"""The settings a backend accepts (``--set KEY=VALUE``), declared with their types and ranges,
and checked (and converted) before anything loads."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidParameter
from ..units import parse_flag

_KINDS = {int: "a whole number", float: "a number", str: "text"}
_KINDS[dict] = "a dict, e.g. {'key': 1}"


@dataclass(frozen=True)
class Setting:
    """One backend setting: its name, the Python type its value takes, an optional range or
    choices, and a short help line (the README's settings table)."""

    name: str
    type: type
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()

    def convert(self, value: Any) -> Any:
        """``value`` as this setting's type, or InvalidParameter saying what is expected."""
        converted = self._as_type(value)
        if self.choices and str(converted).lower() not in self.choices:
            self._refuse(value, f"one of {', '.join(self.choices)}")
        if self.minimum is not None and converted < self.minimum:
            self._refuse(value, f"at least {self.minimum:g}")
        if self.maximum is not None and converted > self.maximum:
            self._refuse(value, f"at most {self.maximum:g}")
        return converted

    def _as_type(self, value: Any) -> Any:
        if self.type is bool:
            return parse_flag(self.name, value)
        if self.type in (int, float):
            try:
                number = self.type(value) if isinstance(value, str) else value
            except ValueError:
                number = None
            whole = isinstance(number, int) and not isinstance(number, bool)
            if whole or (self.type is float and isinstance(number, float)):
                return self.type(number)
        elif isinstance(value, self.type):
            return value
        self._refuse(value, _KINDS.get(self.type, self.type.__name__))

    def _refuse(self, value: Any, expected: str) -> None:
        raise InvalidParameter(f"--set {self.name}={value!r}: give {expected}. ({self.help})")

    @property
    def accepts(self) -> str:
        """What values are accepted, as the README's table says it."""
        if self.choices:
            return " \\| ".join(self.choices)
        kind = {bool: "bool", int: "int", float: "float", str: "str", dict: "dict"}[self.type]
        bounds = [
            f"≥ {self.minimum:g}" if self.minimum is not None else "",
            f"≤ {self.maximum:g}" if self.maximum is not None else "",
        ]
        return " ".join([kind, *filter(None, bounds)])


def check_settings(
    accepted: Iterable[Setting], settings: Mapping[str, Any], backend: str
) -> dict[str, Any]:
    """``settings`` converted to their declared types; an unknown key (the known ones listed),
    a wrong type or a value out of range is InvalidParameter."""
    by_name = {setting.name: setting for setting in accepted}
    checked: dict[str, Any] = {}
    for key, value in settings.items():
        if key not in by_name:
            close = difflib.get_close_matches(key, by_name, n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            raise InvalidParameter(
                f"--set {key}: the {backend} backend has no such setting.{hint} "
                f"It accepts: {', '.join(sorted(by_name))}."
            )
        checked[key] = by_name[key].convert(value)
    return checked


VERBOSE = Setting("verbose", bool, "show the library's own log and load notes")
TEMPLATE = Setting("template", str, "a chat template: Jinja text or a .jinja file")
COMPLETION = Setting("completion", bool, "plain text completion, no chat template")
CONTEXT_WINDOW = Setting("context_window", int, "the model's context in tokens", minimum=1)
