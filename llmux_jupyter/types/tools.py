"""A tool call the model made, as the output, the thread and the provenance keep it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RESULT_CHARS = 200


@dataclass
class ToolCall:
    """One call: what the model asked for and what came back (``result`` is the repr,
    shortened; for a failure, the exception's type and message)."""

    name: str
    arguments: dict[str, Any]
    result: str = ""
    seconds: float = 0.0
    # "ok"; "error" (the tool raised, was not offered, or the arguments did not validate);
    # "declined" (the user said no); "interrupted".
    status: str = "ok"

    def as_dict(self) -> dict[str, Any]:
        """The call as provenance metadata records it."""
        return {
            "name": self.name,
            "arguments": self.arguments,
            "result": self.result,
            "seconds": round(self.seconds, 4),
            "status": self.status,
        }

    def signature(self) -> str:
        """``multiply(a=17, b=23)``"""
        arguments = ", ".join(f"{key}={value!r}" for key, value in self.arguments.items())
        return f"{self.name}({arguments})"


def shortened(text: str, limit: int = RESULT_CHARS) -> str:
    """One line of at most ``limit`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
