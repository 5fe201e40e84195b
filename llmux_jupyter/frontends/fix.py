"""``%llm fix`` and ``llmux_jupyter.fix()``: the model is shown the kernel's last error, the
cell that raised it and the values that cell uses; it explains the error as a streamed
answer, and the corrected code in its answer is offered as a new cell below (not run)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..engine.chat import ChatResponse
from ..engine.conversation import DEFAULT_THREAD
from ..engine.describe import Counter, Description, describe
from ..errors import DescribeError
from ..types.images import is_image
from .answer import finish_answer, stream_answer
from .insert import offer_code
from .notebook import last_error, names_used
from .prompt import CellInput, Prompt, token_counter

if TYPE_CHECKING:
    from ..api import LLM

REQUEST = (
    "A cell of my Jupyter notebook raised an error. Explain the cause in a few sentences, "
    "then give the whole corrected cell in one ```python code block."
)
# The cell's values share one describe_tokens cap, but each gets at least this many tokens.
LEAST_PER_VALUE = 100


def fix_prompt(shell: Any, cap: int, count: Counter) -> Prompt:
    """The request, the cell that raised, the traceback and the values the cell uses (which
    share ``cap`` tokens); UsageError when the kernel has had no error."""
    found = last_error(shell)
    parts = [REQUEST]
    prompt = Prompt("")
    if found.source:
        label = f"In [{found.cell}]" if found.cell is not None else "The cell"
        source = describe(label, found.source, cap, count)
        parts.append(f"{label}:\n```python\n{source.text}\n```")
        prompt.cells = [CellInput(found.cell or 0, source.tokens, source.cut)]
    error = replace(
        describe(type(found.error).__name__, found.traceback, cap, count), kind="traceback"
    )
    parts.append(f"The error:\n```\n{error.text}\n```")
    names = names_used(shell, found.source)
    share = max(LEAST_PER_VALUE, cap // max(1, len(names)))
    values = [_value(name, shell.user_ns[name], share, count) for name in names]
    if values:
        parts.append("Values the cell uses:\n\n" + "\n\n".join(text for text, _ in values))
    prompt.variables = [described for _, described in values if described is not None]
    prompt.error = error
    prompt.text = "\n\n".join(parts)
    return prompt


def _value(name: str, value: Any, cap: int, count: Counter) -> tuple[str, Description | None]:
    """``name`` and its description; an image or a describer that fails is named, not sent
    (the error is what the user asks about, not a refusal)."""
    if is_image(value):
        return f"{name}: an image, not sent", None
    try:
        described = describe(name, value, cap, count)
    except DescribeError as error:
        return f"{name}: could not be described ({error.__cause__!r})", None
    return f"{name}:\n{described.text}", described


def fix_last_error(
    llm: LLM,
    shell: Any,
    *,
    model: str | None = None,
    thread: str = DEFAULT_THREAD,
    new: bool = False,
    output: str | None = None,
    **params: Any,
) -> ChatResponse:
    """Stream the model's explanation of the last error into the cell, offer its code as a
    new cell, store the answer's text in the notebook variable ``output``; an interrupt
    keeps the partial answer and then stops the queued cells (KeyboardInterrupt). ``params``
    go to ``llm.chat`` (sampling, ``log``)."""
    prompt = fix_prompt(shell, llm.config.describe_tokens, token_counter(llm, model))
    stream = llm.chat(
        prompt.text,
        model=model,
        thread=thread,
        new=new,
        stream=True,
        inputs=prompt.inputs(),
        **params,
    )
    shown, response = stream_answer(stream, "markdown", llm.config.max_updates_per_second)
    note = offer_code(shell, response, "markdown")
    finish_answer(shown, response, note=note)
    if output:
        shell.user_ns[output] = response.text
    if response.interrupted:
        raise KeyboardInterrupt
    return response
