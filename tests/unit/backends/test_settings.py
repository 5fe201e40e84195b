import pytest

from llmux_jupyter.backends.registry import registry
from llmux_jupyter.backends.settings import Setting, check_settings
from llmux_jupyter.errors import InvalidParameter

ACCEPTED = (
    Setting("n_ctx", int, "context window", minimum=256),
    Setting("flash_attn", bool, "flash attention"),
    Setting("timeout", float, "seconds", minimum=0.001),
    Setting("dtype", str, "precision", choices=("auto", "float16")),
    Setting("extra_body", dict, "request fields"),
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"n_ctx": 4096}, {"n_ctx": 4096}),
        ({"n_ctx": "4096"}, {"n_ctx": 4096}),  # llm.load(n_ctx="4096")
        ({"flash_attn": "yes", "timeout": 5}, {"flash_attn": True, "timeout": 5.0}),
        (
            {"dtype": "float16", "extra_body": {"k": 1}},
            {"dtype": "float16", "extra_body": {"k": 1}},
        ),
    ],
)
def test_values_are_converted_to_their_declared_types(given, expected):
    checked = check_settings(ACCEPTED, given, "test")
    assert checked == expected
    assert [type(v) for v in checked.values()] == [type(v) for v in expected.values()]


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"n_ctx": "abc"}, "n_ctx='abc': give a whole number"),
        ({"n_ctx": 4096.5}, "give a whole number"),
        ({"n_ctx": True}, "give a whole number"),
        ({"n_ctx": 64}, "n_ctx=64: give at least 256"),
        ({"flash_attn": "maybe"}, "flash_attn must be true or false"),
        ({"timeout": 0}, "at least 0.001"),
        ({"dtype": "int4"}, "one of auto, float16"),
        ({"extra_body": "x"}, "give a dict"),
        ({"n_cxt": 1}, "no such setting. Did you mean n_ctx\\? It accepts: dtype, extra_body"),
    ],
)
def test_wrong_type_range_or_key_is_invalid_parameter(given, message):
    with pytest.raises(InvalidParameter, match=message):
        check_settings(ACCEPTED, given, "test")


BUILTIN = ("llamacpp", "transformers", "openai", "faster-whisper", "piper", "chatterbox")


@pytest.mark.parametrize("name", BUILTIN)
def test_every_builtin_backend_declares_its_settings(name):
    cls = registry.class_of(name)
    assert cls is not None
    assert cls.accepted_settings
