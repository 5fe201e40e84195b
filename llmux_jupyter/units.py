"""Sizes, durations and yes/no as people write them: "12GiB", "500 MB", "5m", "-1", "yes"."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import InvalidParameter

_BYTE_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
    "t": 1000**4, "tb": 1000**4,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
}  # fmt: skip
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "ms": 0.001}
_NUMBER_AND_UNIT = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_bytes(text: str | int | float) -> int:
    """'12GiB' -> 12884901888; '500MB' -> 500000000; a plain number is bytes."""
    if isinstance(text, (int, float)):
        value, unit = float(text), ""
    else:
        match = _NUMBER_AND_UNIT.match(text)
        if not match or match.group(2).lower() not in _BYTE_UNITS:
            raise InvalidParameter(f"{text!r} is not a size: write e.g. 12GiB, 800MB or 2.5GB.")
        value, unit = float(match.group(1)), match.group(2).lower()
    if value < 0:
        raise InvalidParameter(f"A size cannot be negative ({text!r}).")
    return int(value * _BYTE_UNITS[unit])


def parse_duration(text: str | int | float | None) -> float | None:
    """Keep-alive like Ollama: '5m' -> 300.0; '0' -> 0.0 (right after use); negative or None
    -> None (forever)."""
    if text is None:
        return None
    if isinstance(text, (int, float)):
        value, unit = float(text), ""
    else:
        match = _NUMBER_AND_UNIT.match(text)
        if not match or match.group(2).lower() not in _DURATION_UNITS:
            raise InvalidParameter(
                f"{text!r} is not a duration: write e.g. 30s, 5m, 1h, 0 (unload right after use) "
                "or -1 (never unload)."
            )
        value, unit = float(match.group(1)), match.group(2).lower()
    return None if value < 0 else value * _DURATION_UNITS[unit]


def format_bytes(count: int | None) -> str:
    """1536 -> '1.5 KiB'; None -> '-'."""
    if count is None:
        return "-"
    if abs(count) < 1024:
        return f"{count} B"
    units = ("KiB", "MiB", "GiB", "TiB")
    value, index = count / 1024, 0
    while abs(value) >= 1024 and index < len(units) - 1:
        value, index = value / 1024, index + 1
    return f"{value:.1f} {units[index]}"


def format_duration(seconds: float | None) -> str:
    """300 -> '5m'; 90 -> '1m30s'; None -> 'forever'."""
    if seconds is None:
        return "forever"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    hours, rest = divmod(whole, 3600)
    return f"{hours}h{rest // 60}m" if rest // 60 else f"{hours}h"


def format_path(path: Path | str) -> str:
    """A path for messages: the home folder shown as ~ (no user name in saved notebooks)."""
    text, home = str(path), os.path.expanduser("~")
    return "~" + text[len(home) :] if home != "/" and text.startswith(home + os.sep) else text


def parse_flag(name: str, value: object) -> bool:
    """A yes/no setting: True/False, or the text true/false/yes/no/on/off/1/0 (--set passes
    text when the value is not a Python literal)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off", ""):
        return False
    raise InvalidParameter(f"{name} must be true or false, not {value!r}.")
