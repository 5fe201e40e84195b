"""Magic lines split with IPython's quoting rules (an apostrophe inside a word and a backslash
before an ordinary character are kept), and every option whose value may hold spaces."""

import pytest
from IPython.core.error import UsageError

from llmux_jupyter.frontends.quoting import split_arguments


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ('--path "My Drive/m.gguf"', ["--path", "My Drive/m.gguf"]),
        ("--path 'My Drive/m.gguf'", ["--path", "My Drive/m.gguf"]),
        (r"--path My\ Drive/m.gguf", ["--path", "My Drive/m.gguf"]),
        ('--set KEY="a b"', ["--set", "KEY=a b"]),
        ("--set \"extra_body={'top_k': 20}\"", ["--set", "extra_body={'top_k': 20}"]),
        ("Don't panic, it's fine", ["Don't", "panic,", "it's", "fine"]),
        ("I'm here and you're there", ["I'm", "here", "and", "you're", "there"]),
        ("'Bob's model.gguf'", ["Bob's model.gguf"]),
        (r"C:\Users\me\model.gguf", [r"C:\Users\me\model.gguf"]),
        (r'"C:\Program Files\m.gguf"', [r"C:\Program Files\m.gguf"]),
        (r"say \"quoted\" \'single\'", ["say", '"quoted"', "'single'"]),
        ('--stop "" --stop "\\n"', ["--stop", "", "--stop", "\\n"]),
        ("  spaced   out  ", ["spaced", "out"]),
    ],
)
def test_words_of_a_line(line, words):
    assert split_arguments(line) == words


def test_an_unclosed_quote_is_a_usage_error():
    with pytest.raises(UsageError, match=r"A quote is not closed in '--system \"be brief'"):
        split_arguments('--system "be brief')


@pytest.fixture
def spaced_file(tmp_path):
    folder = tmp_path / "My Drive" / "Bob's models"
    folder.mkdir(parents=True)
    path = folder / "my model.bin"
    path.write_bytes(b"x" * 10)
    return path


@pytest.mark.parametrize(
    "quote", ['"{}"', "'{}'", "{}"], ids=["double", "single", "backslash-escaped"]
)
def test_register_path_with_spaces(shell, fake_llm, spaced_file, quote):
    escaped = str(spaced_file).replace(" ", "\\ ").replace("'", "\\'")
    path = quote.format(escaped if quote == "{}" else str(spaced_file))
    if quote == "'{}'":
        path = path.replace("Bob's", "Bob'\\''s")  # a shell's way to put ' inside '...'
    shell.run_line_magic("llm", f"register mine --backend echo --path {path}")
    assert fake_llm.manager.catalog.get("mine").source.resolve() == spaced_file


def test_set_values_with_spaces(shell, fake_llm):
    shell.run_line_magic(
        "llm", "load echo --set note=\"a b\" --set 'label=x y' --set \"extra={'top_k': 20}\""
    )
    settings = fake_llm.manager.get_loaded("echo").backend.settings
    assert settings == {"note": "a b", "label": "x y", "extra": {"top_k": 20}}


def test_system_stop_and_output_options_with_spaces(shell, fake_llm):
    shell.run_cell_magic(
        "llm", "--system 'Be very brief.' --stop \"two three\" -o 'answer'", "one two"
    )
    assert shell.user_ns["answer"] == "one two"
    assert fake_llm.threads.get().system == "Be very brief."
    assert fake_llm.last.params["stop"] == ["two three"]


@pytest.mark.parametrize("line", ['-o "my answer"', "-o 'x-y'"])
def test_an_output_name_with_spaces_or_dashes_is_refused(shell, line):
    with pytest.raises(UsageError, match="give a Python variable name"):
        shell.run_cell_magic("llm", line, "hi")
    assert "answer" not in shell.user_ns
