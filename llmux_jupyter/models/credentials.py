"""API keys of remote servers, found by the NAME of a variable; the key itself is never stored.

A key is read from the kernel's environment, or else from ``keys.env`` next to the model
registrations (``NAME=key`` lines; it must be readable by its owner only, as for ssh keys).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import InvalidParameter
from ..units import format_path
from .catalog import default_store_path

KEYS_FILE = "keys.env"
SECRET_WORDS = frozenset({"key", "token", "password", "secret"})


def keys_file() -> Path:
    """``<config dir>/llmux/keys.env`` (the folder of ``models.json``)."""
    return default_store_path().parent / KEYS_FILE


def api_key(variable: str | None) -> str | None:
    """The key held by ``variable`` (None when no variable is named); raise if it is unset."""
    if variable is None:
        return None
    value = os.environ.get(variable) or _read_keys_file(keys_file()).get(variable)
    if not value:
        raise InvalidParameter(
            f"The API key variable {variable} is set neither in the kernel's environment nor "
            f"in {format_path(keys_file())}: export it before starting Jupyter, or add a line "
            f"{variable}=... to that file (chmod 600)."
        )
    return value


def refuse_secrets(settings: Mapping[str, Any]) -> None:
    """Settings are saved and shown in plain text: refuse any that looks like a credential."""
    for name in settings:
        if SECRET_WORDS & set(name.lower().split("_")):
            raise InvalidParameter(
                f"--set {name}=...: settings are saved and shown in plain text. Put the key in an "
                "environment variable and give its name with --api-key-env."
            )


def secret_values(variables: Iterable[str] = ()) -> dict[str, str]:
    """Values that must never be written or shown, by variable name: those of the key
    ``variables`` (from the environment or keys.env, all of whose keys count) and of every
    environment variable whose name says it holds a secret (OPENAI_API_KEY, HF_TOKEN...)."""
    wanted = set(variables)
    try:
        found = _read_keys_file(keys_file(), check_mode=False)
    except OSError:
        found = {}
    for name, value in os.environ.items():
        if name in wanted or SECRET_WORDS & set(name.lower().split("_")):
            found[name] = value
    return {name: value for name, value in found.items() if value}


def _read_keys_file(path: Path, check_mode: bool = True) -> dict[str, str]:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return {}
    if check_mode and os.name == "posix" and mode & 0o077:
        shown = format_path(path)
        raise InvalidParameter(f"{shown} holds API keys but others may read it: chmod 600 {shown}")
    keys: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, equals, value = line.partition("=")
        if equals and not name.lstrip().startswith("#"):
            keys[name.strip()] = value.strip()
    return keys
