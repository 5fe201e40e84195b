"""The model sees the notebook, in a terminal IPython over the scripted backend: described
``{var}`` fields, ``--cells N``, ``--insert``, ``%llm fix``, images, provenance."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import llmux_jupyter
from llmux_jupyter.backends.registry import registry
from llmux_jupyter.engine.chat import ChatResponse
from llmux_jupyter.errors import DescribeError, ImagesNotSupported, InvalidImage
from llmux_jupyter.frontends.insert import (
    CUT,
    NOTHING,
    OFFERED,
    code_of,
    first_code_block,
    offer_code,
)
from llmux_jupyter.frontends.magics import LLMuxMagics
from llmux_jupyter.models.sources import FileSource
from llmux_jupyter.models.spec import ModelSpec
from llmux_jupyter.types.values import Task, Usage

from ..conftest import ScriptedBackend

pytestmark = pytest.mark.unit
CODE_ANSWER = "Use a sum.\n\n```python\ntotal = sum(values)\nprint(total)\n```\n\nDone."


def _forget_errors() -> None:
    for name in ("last_type", "last_value", "last_traceback"):
        sys.__dict__.pop(name, None)


@pytest.fixture
def nb(scripted_llm) -> Iterator[InteractiveShell]:
    """A shell whose cells go to history (as in a notebook), with no error yet."""
    shell = InteractiveShell.instance()
    before = set(shell.user_ns)
    shell.register_magics(LLMuxMagics(shell, scripted_llm))
    shell.rl_next_input = None
    _forget_errors()
    yield shell
    _forget_errors()
    for name in set(shell.user_ns) - before:
        del shell.user_ns[name]


def run(shell: InteractiveShell, code: str) -> None:
    shell.run_cell(code, store_history=True)


def sent(index: int = -1) -> str:
    """The user message of a generation the backend received."""
    return ScriptedBackend.calls[index][1][-1].content


def test_a_dataframe_field_is_described_and_recorded_in_the_provenance(nb, scripted_llm):
    nb.user_ns["df"] = pd.DataFrame({"price": np.arange(120) * 0.5, "city": ["Oslo"] * 120})
    nb.run_cell_magic("llm", "", "How many rows has this table? {df}")
    message = sent()
    assert message.startswith("How many rows has this table? pandas DataFrame: 120 rows × 2 ")
    assert "Columns (dtype): price (float64), city (" in message
    assert "110 rows left out" in message
    inputs = scripted_llm.last.provenance()["inputs"]
    assert inputs["variables"][0]["name"] == "df" and inputs["variables"][0]["kind"] == "DataFrame"
    assert 0 < inputs["variables"][0]["tokens"] <= scripted_llm.config.describe_tokens
    assert scripted_llm.history.search(n=1)[0].details["inputs"] == inputs  # logged too


def test_the_cap_is_a_setting_and_the_loaded_models_tokenizer_counts(nb, scripted_llm):
    scripted_llm.load("scripted")  # EchoBackend counts words: the description is cut to 20
    scripted_llm.config.describe_tokens = 100
    nb.user_ns["text"] = "many words " * 500
    nb.run_cell_magic("llm", "", "{text}")
    described = scripted_llm.last.inputs["variables"][0]
    assert described["cut"] and described["tokens"] == len(sent().split()) <= 100
    assert "characters left out: the 100-token cap" in sent()


def test_plain_conversions_and_history_fields(nb):
    run(nb, "x = 40 + 2")
    run(nb, "x")
    nb.run_cell_magic("llm", "", "{In[1]} gave {Out[2]}; last {_}; {x!r}")
    assert sent() == "x = 40 + 2 gave 42; last 42; 42"


def test_a_failing_describer_sends_nothing_and_keeps_the_thread(nb, scripted_llm):
    class Broken:
        def _repr_llm_(self):
            raise RuntimeError("cannot summarise")

    nb.user_ns["thing"] = Broken()
    nb.run_cell_magic("llm", "-o answer", "keep this")
    turns = list(scripted_llm.threads.get().turns)
    calls = len(ScriptedBackend.calls)
    with pytest.raises(DescribeError, match=r"\{thing\}: its _repr_llm_\(\) failed"):
        nb.run_cell_magic("llm", "-o answer", "about {thing}")
    assert scripted_llm.threads.get().turns == turns and len(ScriptedBackend.calls) == calls
    assert nb.user_ns["answer"] == "keep this"


def test_an_image_to_a_text_model_is_refused_naming_the_variable(nb, scripted_llm):
    from PIL import Image

    nb.user_ns["img"] = Image.new("RGB", (64, 64))
    with pytest.raises(ImagesNotSupported, match=r"'scripted' takes only text") as error:
        nb.run_cell_magic("llm", "", "What is in {img}?")
    assert "the prompt has images (img)" in str(error.value)
    assert "Nothing was sent" in str(error.value) and "PIL" not in str(error.value)
    assert ScriptedBackend.calls == [] and scripted_llm.threads.get().turns == []


class Seeing(ScriptedBackend):
    """The scripted model, taking images."""

    @classmethod
    def takes_images(cls, spec: ModelSpec) -> bool:
        return True


@pytest.fixture
def seeing(scripted_llm, model_file) -> Iterator[str]:
    registry.add("seeing", Seeing)
    spec = ModelSpec("eyes", "seeing", Task.CHAT, FileSource(str(model_file)))
    scripted_llm.manager.catalog.register(spec)
    yield "eyes"
    registry.remove("seeing")


def test_images_go_to_a_model_that_takes_them_where_they_were_written(nb, scripted_llm, seeing):
    from matplotlib.figure import Figure

    figure = Figure()
    figure.add_subplot().plot([1, 2, 3])
    nb.user_ns.update(fig=figure, pixels=np.full((16, 24, 3), 200, dtype=np.uint8))
    nb.run_cell_magic("llm", f"-m {seeing} --image pixels", "Compare {fig} with {pixels}.")
    message = ScriptedBackend.calls[-1][1][-1]
    assert message.content == "Compare  with ."
    assert [image.name for image in message.images] == ["pixels", "fig", "pixels"]
    assert message.image_offsets == (0, 8, 14)
    first, fig, pixels = message.images
    assert message.parts() == [first, "Compare ", fig, " with ", pixels, "."]
    sent = scripted_llm.last.provenance()["images"]
    assert [image["name"] for image in sent] == ["pixels", "fig", "pixels"]
    assert sent[2]["original"] == [24, 16]


def test_an_unreadable_image_is_one_typed_error_naming_it(nb, seeing):
    nb.user_ns["pixels"] = np.full((8, 8, 3), 7.5)  # floats outside 0..1
    with pytest.raises(InvalidImage, match=r"pixels: float pixels must lie in 0\.\.1"):
        nb.run_cell_magic("llm", f"-m {seeing}", "{pixels}")
    assert ScriptedBackend.calls == []


def test_an_image_field_cannot_go_to_compare(nb):
    nb.user_ns["pixels"] = np.zeros((8, 8, 3), dtype=np.uint8)
    with pytest.raises(UsageError, match=r"\{pixels\} is an image, and images go with one answer"):
        nb.run_cell_magic("llm", "--compare scripted,echo", "{pixels}")


def test_cells_sends_the_last_cells_and_their_results(nb, scripted_llm):
    run(nb, "import math")
    run(nb, "values = [1, 2, 3]")
    run(nb, "sum(values)")
    run(nb, "%%llm --cells 2\nWhat does this compute?")
    message = sent()
    first = nb.execution_count - 3
    assert message.startswith("Earlier cells of the notebook, oldest first:")
    assert f"In [{first}]:\n```python\nvalues = [1, 2, 3]\n```" in message
    assert f"In [{first + 1}]:\n```python\nsum(values)\n```\n\nOut [{first + 1}]:\n6" in message
    assert "import math" not in message
    assert message.endswith("\n\nWhat does this compute?")
    cells = scripted_llm.last.inputs["cells"]
    assert [cell["cell"] for cell in cells] == [first, first + 1]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("--cells 0", "give a whole number of at least 1"),
        ("--cells x", "give a whole number of at least 1"),
        ("--map rows --insert", "--insert cannot go with it"),
        ("--compare scripted,echo --insert", "--insert takes one"),
    ],
)
def test_bad_options(nb, line, message):
    nb.user_ns["rows"] = ["a"]
    with pytest.raises(UsageError, match=message):
        nb.run_cell_magic("llm", line, "hi")


def test_insert_offers_the_first_code_block_and_o_keeps_the_whole_answer(nb, capsys):
    ScriptedBackend.replies = [CODE_ANSWER]
    nb.run_cell_magic("llm", "--insert -o answer", "Sum my values")
    assert nb.rl_next_input == "total = sum(values)\nprint(total)"
    assert nb.user_ns["answer"] == CODE_ANSWER
    assert OFFERED in capsys.readouterr().out


def test_insert_of_a_cut_answer_says_to_check_the_code(nb, capsys):
    ScriptedBackend.replies = ["```py\nx = [1,\n  2]\n```"]
    nb.run_cell_magic("llm", "--insert --max-tokens 4", "a list")
    assert nb.rl_next_input == "x = [1,"  # four pieces of four characters: the fence left open
    assert f"{OFFERED}{CUT}" in capsys.readouterr().out


def test_insert_of_a_cut_answer_with_whole_code_does_not_warn(nb, capsys):
    ScriptedBackend.replies = ["```\nx = 1\n```\nMore words than allowed here."]
    nb.run_cell_magic("llm", "--insert --max-tokens 6", "x")
    out = capsys.readouterr().out
    assert nb.rl_next_input == "x = 1" and OFFERED in out and CUT not in out


def test_insert_with_code_format_offers_a_whole_answer_without_a_fence(nb):
    ScriptedBackend.replies = ["x = 1\ny = 2"]
    nb.run_cell_magic("llm", "-f code --insert", "assign")
    assert nb.rl_next_input == "x = 1\ny = 2"


def test_an_interrupted_answer_offers_no_cell(nb):
    response = ChatResponse(CODE_ANSWER, "m", "b", {}, Usage(), "t", interrupted=True)
    assert offer_code(nb, response, "markdown") == "" and nb.rl_next_input is None


def test_insert_without_code_says_so_and_offers_nothing(nb, capsys):
    ScriptedBackend.replies = ["Just words."]
    nb.run_cell_magic("llm", "--insert", "hi")
    assert nb.rl_next_input is None and NOTHING in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "fmt", "code"),
    [
        ("```\nplain\n```", "markdown", "plain"),
        ("~~~py\nx = 1\n~~~", "markdown", "x = 1"),
        ("text\n```python\nopen = 1\n", "markdown", "open = 1"),  # left open: to the end
        ("````md\n```python\ninner\n```\n````", "markdown", "```python\ninner\n```"),
        ("a\n```sql\nselect 1\n```\n```python\nx\n```", "markdown", "select 1"),
        ("no code", "markdown", None),
        ("no code", "code", "no code"),
    ],
)
def test_the_code_offered(answer, fmt, code):
    assert code_of(answer, fmt) == code
    assert first_code_block("") is None


def test_fix_with_no_error_yet_is_a_usage_error(nb):
    with pytest.raises(UsageError, match="No error yet in this kernel"):
        nb.run_line_magic("llm", "fix")
    sys.last_value = UsageError("a magic's message")
    with pytest.raises(UsageError, match="The last error was a magic's usage message"):
        nb.run_line_magic("llm", "fix")


def test_fix_sends_the_error_the_cell_and_its_values_and_offers_the_code(nb, scripted_llm):
    run(nb, "values = [3, 0]")
    run(nb, "def ratio(a, b):\n    return a / b")
    run(nb, "result = ratio(values[0], values[1])")
    failing = nb.execution_count - 1
    ScriptedBackend.replies = [CODE_ANSWER]
    nb.run_line_magic("llm", "fix -o why")
    message = sent()
    assert message.startswith("A cell of my Jupyter notebook raised an error.")
    assert f"In [{failing}]:\n```python\nresult = ratio(values[0], values[1])\n```" in message
    assert "Traceback (most recent call last):" in message
    assert f'File "Cell In[{failing}]", line 1, in <module>' in message
    assert f'File "Cell In[{failing - 1}]", line 2, in ratio' in message
    assert "ZeroDivisionError: division by zero" in message
    assert "interactiveshell.py" not in message  # IPython's own frames left out
    assert "Values the cell uses:\n\nvalues:\nlist of 2 items: [3, 0]" in message
    assert "ratio:" not in message  # functions are code, not values
    assert nb.rl_next_input == "total = sum(values)\nprint(total)"
    assert nb.user_ns["why"] == CODE_ANSWER
    inputs = scripted_llm.last.inputs
    assert inputs["cells"][0]["cell"] == failing
    assert [v["name"] for v in inputs["variables"]] == ["values"]
    assert inputs["error"]["kind"] == "traceback" and inputs["error"]["name"] == "ZeroDivisionError"


def test_fix_explains_a_syntax_error_and_strips_colour_codes(nb):
    run(nb, "x = (1,")
    nb.run_line_magic("llm", "fix")
    message = sent()
    assert "SyntaxError" in message and "x = (1," in message
    sys.last_value = ValueError("\x1b[31mred\x1b[0m text")
    nb.run_line_magic("llm", "fix")
    assert "ValueError: red text" in sent() and "\x1b" not in sent()


def test_fix_is_logged_unless_no_log(nb, scripted_llm):
    run(nb, "1/0")
    nb.run_line_magic("llm", "fix --no-log --thread quiet")
    assert scripted_llm.history.search() == []
    nb.run_line_magic("llm", "fix --thread loud")
    (logged,) = scripted_llm.history.search()
    assert logged.prompt.startswith("A cell of my Jupyter notebook raised an error.")


def test_fix_is_the_same_from_python(nb, scripted_llm):
    run(nb, "1/0")
    ScriptedBackend.replies = [CODE_ANSWER]
    response = llmux_jupyter.fix(scripted_llm, max_tokens=200)
    assert response.text == CODE_ANSWER and "ZeroDivisionError" in sent()
    assert nb.rl_next_input == "total = sum(values)\nprint(total)"
