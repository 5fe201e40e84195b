"""Tools and schemas in a real kernel on the real SmolLM2, through llama.cpp and transformers
(constrained decoding with llguidance): a forced call with its arguments checked, a raising
tool, a declined call, typed answers, a cut answer, and bad input."""

from __future__ import annotations

import json

import pytest

from .kernel import Kernel

MODELS = ["smollm2", "smollm2-hf"]
TOOLS = '''
import dataclasses, pydantic
runs = []

def multiply(a: int, b: int) -> int:
    """Multiply two integers.

    Args:
        a: The first factor.
        b: The second factor.
    """
    runs.append((a, b))
    return a * b

class Person(pydantic.BaseModel):
    name: str
    age: int

'''
SETUP = (
    TOOLS
    + '''

def explode(x: int) -> int:
    """Always fails."""
    raise ValueError("boom")

def wait(really: bool) -> str:
    """Wait a while (a flag: SmolLM2 may write a number's digits on and on)."""
    print("waiting", flush=True)
    __import__("time").sleep(120)
    return "done"

def pause(seconds: int) -> str:
    """Pause for a number of seconds.

    Args:
        seconds: How long.
    """
    return f"paused {seconds} s"

def no_hints(a, b):
    """Add."""
    return a + b

@dataclasses.dataclass
class City:
    name: str
    country: str
    population: int

keep = 'precious'
'''
)
ASK = "%%llm -m {model} --temperature 0 --new --thread tools-{model} {options}\n{prompt}"


@pytest.fixture(scope="module")
def tools_kernel(kernel: Kernel) -> Kernel:
    run = kernel.run(SETUP + "%llm load smollm2\n%llm load smollm2-hf")
    assert run.status == "ok", run.error
    return kernel


def call_lines(run) -> list[str]:
    return [
        m["content"]["data"]["text/plain"]
        for m in run.displays
        if m["content"]["data"].get("text/plain", "").startswith("🔧 ")
    ]


def final(run) -> dict:
    return run.displays[-1]["content"]


@pytest.mark.parametrize("model", MODELS)
def test_a_forced_call_multiplies_and_the_answer_follows(tools_kernel, model):
    tools_kernel.run("runs.clear()")
    run = tools_kernel.run(ASK.format(
        model=model, options="--tools multiply --tool-choice multiply --max-tokens 40",
        prompt="What is 17 times 23?",
    ))  # fmt: skip
    assert run.status == "ok", run.error
    assert tools_kernel.value("runs") == [(17, 23)]
    (line,) = call_lines(run)[:1]
    assert line.startswith("🔧 multiply(a=17, b=23) → 391  (")
    provenance = final(run)["metadata"]["llmux"]
    assert provenance["tool_calls"][0]["arguments"] == {"a": 17, "b": 23}
    assert provenance["tool_calls"][0]["result"] == "391"
    assert final(run)["data"]["text/plain"].strip()  # the answer came after the call
    thread = f"llm.threads.get('tools-{model}').turns[-1]"
    assert tools_kernel.value(f"[c.result for c in {thread}.tool_calls][:1]") == ["391"]


def test_a_forced_call_under_a_small_cap_has_whole_arguments(tools_kernel):
    """SmolLM2 asked for "a very long time" writes digits on and on: the grammar ends the
    number (15 digits at most) and the call has its own budget, not --max-tokens 30."""
    run = tools_kernel.run(ASK.format(
        model="smollm2",
        options="--tools pause --tool-choice pause --max-tool-calls 1 --max-tokens 30",
        prompt="Pause for a very, very long time.",
    ))  # fmt: skip
    assert run.status == "ok", run.error
    (call,) = final(run)["metadata"]["llmux"]["tool_calls"]
    assert call["status"] == "ok", call
    assert isinstance(call["arguments"]["seconds"], int)
    assert len(str(call["arguments"]["seconds"])) <= 16


@pytest.mark.parametrize("model", MODELS)
def test_a_raising_tool_is_reported_and_the_cell_completes(tools_kernel, model):
    run = tools_kernel.run(ASK.format(
        model=model, options="--tools explode --tool-choice explode --max-tokens 20",
        prompt="Explode 3.",
    ))  # fmt: skip
    assert run.status == "ok", run.error
    assert "✗ ValueError: boom" in call_lines(run)[0]
    assert final(run)["metadata"]["llmux"]["tool_calls"][0]["status"] == "error"


@pytest.mark.parametrize("model", MODELS)
def test_a_declined_call_never_runs(tools_kernel, model):
    tools_kernel.run("runs.clear()")
    prompts = []
    run = tools_kernel.run(
        ASK.format(
            model=model,
            options="--tools multiply --tool-choice multiply --approve --max-tokens 20",
            prompt="What is 17 times 23?",
        ),
        stdin=lambda prompt: prompts.append(prompt) or "n",
    )
    assert run.status == "ok", run.error
    assert prompts == ["Run multiply(a=17, b=23)? [y/N] "]
    assert tools_kernel.value("runs") == []
    assert "⊘ declined: the user declined this call" in call_lines(run)[0]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize(
    ("schema", "prompt", "types"),
    [
        ("Person", "Ada Lovelace was 36 years old. Give her name and age.", "(str, int)"),
        ("City", "Oslo is the capital of Norway, with 709000 people.", "(str, str, int)"),
    ],
)
def test_a_schema_answer_is_a_typed_instance(tools_kernel, model, schema, prompt, types):
    run = tools_kernel.run(ASK.format(
        model=model, options=f"--schema {schema} -o typed --max-tokens 60", prompt=prompt
    ))  # fmt: skip
    assert run.status == "ok", run.error
    assert tools_kernel.value("type(typed).__name__") == schema
    fields = "[getattr(typed, f) for f in (type(typed).model_fields if hasattr(type(typed), "
    fields += "'model_fields') else [f.name for f in dataclasses.fields(typed)])]"
    assert tools_kernel.value(f"tuple(type(v).__name__ for v in {fields})") == tuple(
        name for name in types.strip("()").split(", ")
    )
    shown = final(run)
    assert json.loads(shown["data"]["text/plain"]) == tools_kernel.value(
        "dataclasses.asdict(typed) if dataclasses.is_dataclass(typed) else typed.model_dump()"
    )
    assert shown["metadata"]["llmux"]["schema"] == schema


@pytest.mark.parametrize("model", MODELS)
def test_a_cut_schema_answer_is_a_schema_error_with_the_raw_text(tools_kernel, model):
    run = tools_kernel.run(ASK.format(
        model=model, options="--schema Person -o cut --max-tokens 3", prompt="Ada is 36."
    ))  # fmt: skip
    assert run.status == "error" and run.error["ename"] == "SchemaError", run.error
    assert "raise --max-tokens" in run.error["evalue"]
    raw = tools_kernel.value("__import__('sys').last_value.raw")
    assert raw.startswith("{") and len(raw) < 40
    assert tools_kernel.value("keep") == "precious"


def test_the_interrupt_during_a_tool_stops_everything_and_keeps_the_model(tools_kernel):
    def interrupt_once_waiting(message) -> None:
        if message["msg_type"] == "stream" and "waiting" in message["content"]["text"]:
            tools_kernel.interrupt()

    run = tools_kernel.run(
        "%%llm -m smollm2 --tools wait --tool-choice wait --max-tokens 20 --new\nWait.",
        on_message=interrupt_once_waiting,
    )
    assert run.status == "error" and run.error["ename"] == "KeyboardInterrupt", run.error
    assert call_lines(run)[0].endswith("⏹ interrupted by the user")
    assert final(run)["metadata"]["llmux"]["interrupted"] is True
    assert "smollm2" in tools_kernel.value("[m.name for m in llm.ps()]")
    assert tools_kernel.value("keep") == "precious"


BAD = [
    ("--tools not_a_name", "no function of that name"),
    ("--tools 42", "--tools 42: no function"),
    ("--tools no_hints", "parameter 'a' has no type hint"),
    ("--schema NotAType", "--schema NotAType: no notebook variable"),
    ("--tools multiply --tool-choice unknown", "tool choice 'unknown'"),
    ("--tool-choice multiply", "--tool-choice needs --tools"),
]


@pytest.mark.parametrize(("options", "message"), BAD)
def test_bad_tool_and_schema_options_are_usage_errors(tools_kernel, options, message):
    run = tools_kernel.run(f"%%llm --max-tokens 5 {options}\nhi")
    assert run.status == "error"
    # IPython prints usage errors as one line on stderr, no traceback.
    assert "UsageError: " in run.stderr and message in run.stderr, run.stderr
    assert run.error is None or "Traceback" not in "".join(run.error["traceback"])
    assert tools_kernel.value("keep") == "precious"


def test_a_schema_that_is_not_a_type_is_a_typed_error(tools_kernel):
    run = tools_kernel.run("%%llm --schema keep --max-tokens 5\nhi")
    assert run.status == "error" and run.error["ename"] == "InvalidParameter", run.error
    assert "'precious' is not a schema" in run.error["evalue"]
    assert len(run.error["traceback"]) == 1, "typed errors render as one line"
