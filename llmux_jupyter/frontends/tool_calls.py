"""The compact block a tool call shows in a cell's output, as it happens."""

from __future__ import annotations

from argparse import Namespace
from typing import Any

from IPython.core.error import UsageError
from IPython.display import display

from ..engine.tool_loop import TOOL_TOKENS, check_choice
from ..engine.tools import tools_of
from ..errors import InvalidParameter
from ..types.tools import ToolCall, shortened
from .interrupts import interrupts_raise

SHOWN_CHARS = 120
MARKS = {"ok": "→", "error": "✗", "declined": "⊘ declined:", "interrupted": "⏹"}


def call_line(call: ToolCall) -> str:
    """``🔧 multiply(a=17, b=23) → 391  (0.01 s)``"""
    timing = f"  ({call.seconds:.2f} s)" if call.status in ("ok", "error") else ""
    return (
        f"🔧 {shortened(call.signature(), SHOWN_CHARS)} {MARKS[call.status]} "
        + shortened(call.result, SHOWN_CHARS)
        + timing
    )


def show_call(call: ToolCall) -> None:
    display({"text/plain": call_line(call)}, raw=True)


def tool_options(args: Namespace, user_ns: dict[str, Any]) -> dict[str, Any]:
    """``llm.chat``'s tool keywords from ``%%llm --tools ...``; bad input is a UsageError."""
    if args.tools is None:
        for option, given in (("--tool-choice", args.tool_choice != "auto"),
                              ("--tool-tokens", args.tool_tokens != TOOL_TOKENS),
                              ("--approve", args.approve)):  # fmt: skip
            if given:
                raise UsageError(f"{option} needs --tools F,G: the functions to offer.")
        return {}
    functions: list[Any] = []
    labels: list[str] = []
    for name in args.tools:
        if not name.isidentifier() or name not in user_ns:
            raise UsageError(f"--tools {name}: no function of that name in the notebook.")
        value = user_ns[name]
        if isinstance(value, (list, tuple)):
            functions.extend(value)
            labels.extend(f"{name}[{index}]" for index in range(len(value)))
        else:
            functions.append(value)
            labels.append(name)
    try:
        tools = tools_of(functions, labels)
        check_choice(args.tool_choice, tools)
    except InvalidParameter as error:  # what the functions lack, or an unknown choice
        raise UsageError(str(error)) from None
    if args.max_tool_calls < 0:
        raise UsageError(f"--max-tool-calls {args.max_tool_calls}: give 0 or more.")
    if args.tool_tokens < 1:
        raise UsageError(f"--tool-tokens {args.tool_tokens}: give 1 or more.")
    return {
        "tools": tools,
        "tool_choice": args.tool_choice,
        "max_tool_calls": args.max_tool_calls,
        "tool_tokens": args.tool_tokens,
        "approve": args.approve,
        "run_tool": interrupts_raise,
    }
