"""How a chat model's messages become its prompt, decided from its files and settings before
anything loads: the model's own chat template, a template given with ``template=``, a
backend's named format (``chat_format=``, llama.cpp), or none (``completion=true``: the
messages' text, continued). A model with none of these is refused, naming the fixes."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidParameter, ModelLoadError
from ..types.values import Message
from ..units import parse_flag
from .gguf_info import MAGIC, read_gguf_info

GGUF_TEMPLATE_KEY = "tokenizer.chat_template"


@dataclass(frozen=True)
class ChatSetup:
    """``source`` is "model", "template", "chat_format" or "completion"."""

    source: str
    template: str | None = None
    chat_format: str | None = None

    @property
    def completion(self) -> bool:
        return self.source == "completion"

    def describe(self) -> str:
        """A few words for listings: where the chat layout comes from."""
        if self.source == "chat_format":
            return f"chat_format={self.chat_format}"
        return {
            "model": "template in the model",
            "template": "template given",
            "completion": "completion (no template)",
        }[self.source]


def chat_setup(
    name: str, settings: Mapping[str, Any], path: Path, *, named_formats: bool
) -> ChatSetup:
    """The setup a chat model will use; raise ModelLoadError for a model without a template
    and nothing given instead, InvalidParameter for settings that contradict each other.

    ``named_formats``: whether the backend knows named chat formats (``chat_format=``).
    """
    completion = parse_flag("completion", settings.get("completion", False))
    template, chat_format = settings.get("template"), settings.get("chat_format")
    chosen = [k for k, v in (("completion", completion), ("template", template),
                             ("chat_format", chat_format)) if v]  # fmt: skip
    if len(chosen) > 1:
        raise InvalidParameter(
            f"{' and '.join(chosen)} exclude each other: set one of them for {name!r}."
        )
    if chat_format and not named_formats:
        raise InvalidParameter(
            f"chat_format={chat_format!r}: this backend has no named chat formats; give the "
            "template itself with --set template=FILE.jinja (or the Jinja text)."
        )
    if completion:
        return ChatSetup("completion")
    if chat_format:
        return ChatSetup("chat_format", chat_format=str(chat_format))
    if template:
        return ChatSetup("template", template=read_template(template))
    embedded = embedded_template(path)
    if embedded:
        return ChatSetup("model", template=embedded)
    raise ModelLoadError(missing_template_message(name, named_formats))


def missing_template_message(name: str, named_formats: bool) -> str:
    formats = (
        " name a llama.cpp chat format with --set chat_format=NAME (chatml, gemma, llama-3, "
        "mistral-instruct, ...),"
        if named_formats
        else ""
    )
    return (
        f"{name!r} has no chat template, so chat messages cannot be laid out for it (a base "
        "model?). Give it one with --set template=FILE.jinja (or the Jinja text),"
        f"{formats} or use it for plain text completion with --set completion=true "
        "(with %llm load, or in %llm register)."
    )


def read_template(value: Any) -> str:
    """A chat template given as a .jinja file or as Jinja text."""
    text = str(value)
    if "{%" in text or "{{" in text:
        return text
    path = Path(text).expanduser()
    if path.is_file():
        return path.read_text(encoding="utf-8")
    raise InvalidParameter(
        f"template={text!r} is neither a file nor Jinja text (which contains {{% or {{{{)."
    )


def embedded_template(path: Path) -> str | None:
    """The chat template a model's files carry: a GGUF header's, or a transformers folder's
    (``chat_template.jinja``, ``chat_template.json`` or ``tokenizer_config.json``)."""
    if path.is_file():
        with path.open("rb") as handle:
            if handle.read(len(MAGIC)) != MAGIC:
                return None
        value = read_gguf_info(path).metadata.get(GGUF_TEMPLATE_KEY)
        return value if isinstance(value, str) and value.strip() else None
    jinja = path / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    for config in ("chat_template.json", "tokenizer_config.json"):
        value = json_object(path / config).get("chat_template")
        if isinstance(value, list):  # [{"name": "default", "template": ...}, ...]
            value = next((t.get("template") for t in value if t.get("name") == "default"), None)
        if isinstance(value, str) and value.strip():
            return value
    return None


def completion_prompt(messages: Sequence[Message]) -> str:
    """The text a model without a chat layout continues: the messages' contents."""
    return "\n\n".join(m.content for m in messages)


def json_object(path: Path) -> dict[str, Any]:
    """A JSON file's object; {} when it is missing, unreadable or not an object."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
