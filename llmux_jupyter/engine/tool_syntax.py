"""Tool calls written in a chat template's own syntax, for models whose template knows tools:
Qwen's ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``, the same object bare, or
in a ```json fence (Qwen2.5-Coder writes all three)."""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from typing import Any

OPENERS = ("<tool_call>", "```", "{", "[")
_TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)
_FENCED = re.compile(r"```(?:json)?\s*(.*?)\s*(?:```|$)", re.S)
_CUT = re.compile(r'\{\s*"name"\s*:\s*"([^"]+)"(?:\s*,\s*"(?:arguments|parameters)"\s*:)?\s*')


def may_be_call(text: str) -> bool:
    """Whether an answer that begins with ``text`` may still turn out to be a tool call (the
    tool loop holds it back until it knows)."""
    start = text.lstrip()
    return not start or any(start.startswith(o) or o.startswith(start) for o in OPENERS)


def written_calls(text: str, names: Collection[str]) -> list[dict[str, str]] | None:
    """The calls ``text`` consists of, as ``{"name", "arguments"}`` with the arguments as
    JSON text (a cut call keeps its raw text, which the loop reports), or None when the text
    is an answer. A name that is not offered still counts as a call when it has arguments:
    the model meant a call, and hears that the tool does not exist."""
    body = text.strip()
    if body.startswith("<tool_call>"):
        blocks = _TAGGED.findall(body)
    elif body.startswith("```"):
        blocks = _FENCED.findall(body)[:1]
    else:
        blocks = [body]
    calls = []
    for block in blocks:
        try:
            value = json.loads(block)
        except ValueError:
            cut = _cut_call(block, names)
            if cut is None:
                return None
            calls.append(cut)
            continue
        for item in value if isinstance(value, list) else [value]:
            call = _as_call(item, names)
            if call is None:
                return None
            calls.append(call)
    return calls or None


def _as_call(item: Any, names: Collection[str]) -> dict[str, str] | None:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        return None
    arguments = item.get("arguments", item.get("parameters"))
    if arguments is None and item["name"] not in names:
        return None
    if isinstance(arguments, str):  # OpenAI's wire form: the arguments as JSON text
        return {"name": item["name"], "arguments": arguments}
    return {"name": item["name"], "arguments": json.dumps(arguments or {})}


def _cut_call(block: str, names: Collection[str]) -> dict[str, str] | None:
    """A call whose JSON was cut short (the budget ran out): its name and raw arguments."""
    match = _CUT.match(block)
    if match is None or match.group(1) not in names:
        return None
    return {"name": match.group(1), "arguments": block[match.end() :]}
