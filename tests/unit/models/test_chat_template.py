"""Where a chat model's layout comes from: its files (GGUF header, transformers folder) or
its settings, decided before anything loads."""

import json

import numpy as np
import pytest

from llmux_jupyter.errors import InvalidParameter, ModelLoadError
from llmux_jupyter.models.chat_template import (
    ChatSetup,
    chat_setup,
    completion_prompt,
    embedded_template,
)
from llmux_jupyter.types.values import Message

from ...gguf_files import save

TEMPLATE = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
NAMED = [{"name": "tool_use", "template": "tools"}, {"name": "default", "template": TEMPLATE}]


def write_gguf(path, template=None):
    from gguf import GGUFWriter

    writer = GGUFWriter(str(path), "llama")
    if template is not None:
        writer.add_chat_template(template)
    writer.add_tensor("w", np.ones((4,), dtype=np.float32))
    save(writer)
    return path


def test_a_gguf_header_carries_the_template(tmp_path):
    assert embedded_template(write_gguf(tmp_path / "with.gguf", TEMPLATE)) == TEMPLATE
    assert embedded_template(write_gguf(tmp_path / "without.gguf")) is None
    (tmp_path / "weights.bin").write_bytes(b"not a gguf")
    assert embedded_template(tmp_path / "weights.bin") is None


@pytest.mark.parametrize(
    ("files", "found"),
    [
        ({"chat_template.jinja": TEMPLATE}, TEMPLATE),
        ({"tokenizer_config.json": json.dumps({"chat_template": TEMPLATE})}, TEMPLATE),
        ({"chat_template.json": json.dumps({"chat_template": TEMPLATE})}, TEMPLATE),
        ({"tokenizer_config.json": json.dumps({"chat_template": NAMED})}, TEMPLATE),
        ({"tokenizer_config.json": json.dumps({"model_max_length": 8})}, None),
        ({"tokenizer_config.json": "{broken"}, None),
        ({}, None),
    ],
    ids=["jinja", "tokenizer-config", "chat-template-json", "named-list", "none", "bad", "empty"],
)  # fmt: skip
def test_a_transformers_folder_carries_the_template(tmp_path, files, found):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert embedded_template(tmp_path) == found


def test_settings_choose_the_layout(tmp_path):
    bare = write_gguf(tmp_path / "bare.gguf")
    (tmp_path / "t.jinja").write_text(TEMPLATE)
    assert chat_setup("m", {"completion": "yes"}, bare, named_formats=False).completion
    assert chat_setup("m", {"chat_format": "gemma"}, bare, named_formats=True) == ChatSetup(
        "chat_format", chat_format="gemma"
    )
    given = chat_setup("m", {"template": str(tmp_path / "t.jinja")}, bare, named_formats=False)
    assert (given.source, given.template) == ("template", TEMPLATE)
    own = chat_setup("m", {}, write_gguf(tmp_path / "own.gguf", TEMPLATE), named_formats=True)
    assert (own.source, own.template, own.describe()) == (
        "model",
        TEMPLATE,
        "template in the model",
    )


def test_no_template_names_the_fixes_the_backend_has(tmp_path):
    bare = write_gguf(tmp_path / "bare.gguf")
    with pytest.raises(ModelLoadError, match=r"'m' has no chat template.*chat_format=NAME"):
        chat_setup("m", {}, bare, named_formats=True)
    with pytest.raises(ModelLoadError, match="no chat template") as refused:
        chat_setup("m", {"completion": False}, bare, named_formats=False)
    assert "chat_format" not in str(refused.value) and "completion=true" in str(refused.value)


@pytest.mark.parametrize(
    ("settings", "named", "message"),
    [
        ({"completion": True, "template": TEMPLATE}, True, "completion and template exclude"),
        ({"chat_format": "chatml", "template": TEMPLATE}, True, "template and chat_format exclude"),
        ({"chat_format": "chatml"}, False, "this backend has no named chat formats"),
        ({"completion": "maybe"}, True, "completion must be true or false"),
        ({"template": "chatml"}, True, "neither a file nor Jinja text"),
    ],
)
def test_contradicting_settings_are_refused(tmp_path, settings, named, message):
    with pytest.raises(InvalidParameter, match=message):
        chat_setup("m", settings, write_gguf(tmp_path / "m.gguf", TEMPLATE), named_formats=named)


def test_describe_and_completion_prompt():
    assert ChatSetup("chat_format", chat_format="gemma").describe() == "chat_format=gemma"
    assert ChatSetup("completion").describe() == "completion (no template)"
    messages = [Message("system", "Be brief."), Message("user", "Once upon a time")]
    assert completion_prompt(messages) == "Be brief.\n\nOnce upon a time"
