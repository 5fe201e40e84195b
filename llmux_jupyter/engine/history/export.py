"""A logged thread written out: Markdown to read, JSON Lines (one message a line, as the
model sees them) to feed elsewhere."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...errors import InvalidParameter
from ..conversation import with_results
from .records import Exchange

FORMATS = (".md", ".jsonl")


def export_format(path: Path) -> str:
    """The format a file name asks for (InvalidParameter for any other)."""
    if path.suffix.lower() not in FORMATS:
        raise InvalidParameter(
            f"{path.name}: export to a .md (Markdown) or .jsonl (one message a line) file."
        )
    return path.suffix.lower()


def messages(exchanges: Sequence[Exchange]) -> list[dict[str, Any]]:
    """The thread's messages with their ids, times and models: the system prompt (the last
    one in effect), then each turn's question (with the results of its tool calls, as the
    thread sends them) and answer."""
    lines: list[dict[str, Any]] = []
    system = exchanges[-1].system if exchanges else None
    if system:
        lines.append({"role": "system", "content": system})
    for exchange in exchanges:
        calls = [call["name"] for call in exchange.tool_calls]
        when = _iso(exchange.created)
        user = with_results(exchange.prompt, exchange.turn().tool_calls)
        lines.append({"role": "user", "content": user, "id": exchange.id, "created": when})
        answer: dict[str, Any] = {
            "role": "assistant",
            "content": exchange.answer,
            "id": exchange.id,
            "created": when,
            "model": exchange.model,
        }
        if calls:
            answer["tool_calls"] = calls
        if exchange.status == "interrupted":
            answer["interrupted"] = True
        lines.append(answer)
    return lines


def jsonl(lines: Sequence[dict[str, Any]]) -> str:
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)


def markdown(thread: str, notebook: str, lines: Sequence[dict[str, Any]]) -> str:
    """The thread's messages as a Markdown document: a heading, the system prompt, each
    turn."""
    parts = [f"# Thread `{thread}`", ""]
    if notebook:
        parts += [f"Notebook: `{notebook}`", ""]
    for line in lines:
        if line["role"] == "system":
            parts += [f"> **System:** {line['content']}", ""]
        elif line["role"] == "user":
            heading = f"## #{line['id']} · {line['created']}"
            parts += [heading, "", "**You:**", "", line["content"], ""]
        else:
            note = " (interrupted)" if line.get("interrupted") else ""
            parts += [f"**{line['model']}**{note}:", "", line["content"], ""]
    return "\n".join(parts)


def write_export(path: Path, thread: str, exchanges: Sequence[Exchange]) -> int:
    """Write the thread to ``path`` (.md or .jsonl); returns the number of messages."""
    kind = export_format(path)
    lines = messages(exchanges)
    notebook = exchanges[-1].notebook if exchanges else ""
    text = markdown(thread, notebook, lines) if kind == ".md" else jsonl(lines)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return len(lines)


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))
