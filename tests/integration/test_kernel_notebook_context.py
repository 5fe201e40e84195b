"""The model sees the notebook, in a real kernel on the real SmolLM2 (llama.cpp): what the
backend is given for ``{df}``, a ``_repr_llm_`` object, a failing describer and an image;
``%llm fix`` and ``--insert`` answers offered as new cells (the execute reply's
``set_next_input`` payload)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llmux_jupyter.frontends.insert import first_code_block

from .kernel import Kernel, streamed_answer

CAP = 200
# The backend's generate, wrapped to keep the messages of every request it gets.
SPY = """
%llm load smollm2
_backend = llm.manager.get_loaded('smollm2').backend
_prompts = []
def _spy(messages, params, cancel, _generate=_backend.generate):
    _prompts.append([m.content for m in messages])
    return _generate(messages, params, cancel)
_backend.generate = _spy
"""
UNSPY = "del _backend.generate, _backend, _prompts, _spy"
FORGET_ERRORS = (
    "import sys\nfor _name in ('last_type', 'last_value', 'last_traceback', 'last_exc'):\n"
    "    sys.__dict__.pop(_name, None)"
)


@pytest.fixture
def spied(kernel: Kernel) -> Iterator[Kernel]:
    """The shared kernel with the backend's requests recorded (``_prompts``) and the cap at
    CAP tokens; both undone afterwards."""
    run = kernel.run(f"{SPY}\n%config LLMux.describe_tokens = {CAP}")
    assert run.status == "ok", run.error
    yield kernel
    run = kernel.run(f"{UNSPY}\n%config LLMux.describe_tokens = 500")
    assert run.status == "ok", run.error


def payload(run) -> list[dict]:
    return [p for p in run.reply["content"]["payload"] if p["source"] == "set_next_input"]


def test_a_dataframe_goes_as_shape_dtypes_and_rows_within_the_cap(spied):
    run = spied.run(
        "import numpy as np, pandas as pd\n"
        "df = pd.DataFrame({'price': np.linspace(1, 60, 120), 'qty': np.arange(120),\n"
        "                   'city': ['Oslo', 'Lima', 'Pune'] * 40})"
    )
    assert run.status == "ok", run.error
    run = spied.run(
        "%%llm --thread df --new --temperature 0 --max-tokens 8\n"
        "How many rows has this table?\n{df}"
    )
    assert run.status == "ok", run.error
    final = run.displays[-1]["content"]
    message = spied.value("_prompts[-1][-1]")
    question, _, described = message.partition("\n")
    assert question == "How many rows has this table?"
    assert described.startswith("pandas DataFrame: 120 rows × 3 columns\n")
    assert "Columns (dtype): price (float64), qty (int64), city (" in described
    assert "rows left out" in described and "| 119 |" in described
    tokens = spied.value(f"_backend.count_text({described!r})")
    assert tokens <= CAP
    variables = final["metadata"]["llmux"]["inputs"]["variables"]
    assert variables == [{"name": "df", "kind": "DataFrame", "tokens": tokens, "cut": True}]


def test_an_object_describes_itself_with_repr_llm(spied):
    run = spied.run(
        "class Sensor:\n"
        "    def _repr_llm_(self):\n"
        "        return 'Sensor 7: 21.5 degrees, battery low'\n"
        "sensor = Sensor()"
    )
    assert run.status == "ok", run.error
    run = spied.run(
        "%%llm --thread sensor --new --temperature 0 --max-tokens 8\nSummarise: {sensor}"
    )
    assert run.status == "ok", run.error
    assert spied.value("_prompts[-1][-1]") == "Summarise: Sensor 7: 21.5 degrees, battery low"


def test_a_failing_describer_or_an_image_sends_nothing_and_keeps_the_thread(spied):
    setup = spied.run(
        "from PIL import Image\n"
        "img = Image.new('RGB', (64, 64), 'red')\n"
        "class Broken:\n"
        "    def _repr_llm_(self):\n"
        "        raise RuntimeError('sensor offline')\n"
        "broken = Broken()"
    )
    assert setup.status == "ok", setup.error
    setup = spied.run("%%llm --thread kept --new --temperature 0 --max-tokens 5\nSay hi.")
    assert setup.status == "ok", setup.error
    before = spied.value("(len(_prompts), len(llm.threads.get('kept').turns))")
    cases = [
        ("Describe {broken}", "DescribeError", "{broken}: its _repr_llm_() failed"),
        ("What is in {img}?", "ImagesNotSupported", "the prompt has images (img)"),
    ]
    for body, ename, message in cases:
        run = spied.run(f"%%llm --thread kept --max-tokens 5\n{body}")
        assert run.status == "error" and run.error["ename"] == ename, run.error
        assert message in run.error["evalue"] and "nothing was sent" in run.error["evalue"].lower()
        assert "<PIL" not in run.shown_text
    assert "'smollm2' takes only text" in run.error["evalue"]
    assert spied.value("(len(_prompts), len(llm.threads.get('kept').turns))") == before


def test_fix_without_an_error_is_a_usage_error(kernel):
    run = kernel.run(f"{FORGET_ERRORS}\n%llm fix")
    # IPython prints usage errors as one line on stderr, no traceback.
    assert run.status == "error" and run.error is None
    assert run.stderr.startswith("UsageError: No error yet in this kernel"), run.stderr


def test_fix_streams_an_explanation_and_offers_the_code_as_a_new_cell(kernel):
    failed = kernel.run("numbers = [4, 0]\nratio = numbers[0] / numbers[1]")
    assert failed.status == "error" and failed.error["ename"] == "ZeroDivisionError"
    run = kernel.run("%llm fix --thread fix --new --temperature 0 --max-tokens 120 -o why")
    final = streamed_answer(run)
    inputs = final["metadata"]["llmux"]["inputs"]
    assert inputs["error"]["name"] == "ZeroDivisionError"
    assert [v["name"] for v in inputs["variables"]] == ["numbers"]
    sent = kernel.value("llm.threads.get('fix').turns[-1].user")
    assert "ratio = numbers[0] / numbers[1]" in sent and "ZeroDivisionError" in sent
    assert "numbers:\nlist of 2 items: [4, 0]" in sent
    answer = kernel.value("why")
    (offered,) = payload(run)
    assert offered["replace"] is False
    assert offered["text"] == first_code_block(answer) != ""


def test_insert_offers_exactly_the_first_code_block(kernel):
    run = kernel.run(
        "%%llm --insert -o answer --thread insert --new --temperature 0 --max-tokens 120\n"
        "Write a Python function that adds two numbers, in a ```python code block."
    )
    assert run.status == "ok", run.error
    answer = kernel.value("answer")
    (offered,) = payload(run)
    assert offered["text"] == first_code_block(answer)
    assert "def " in offered["text"] and "```" not in offered["text"]
    assert answer.count("```") >= 2  # -o keeps the whole answer, fences and all
