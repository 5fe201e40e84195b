"""Code answers become cells: the answer's first fenced code block (or, with ``-f code``, a
whole answer without one) offered as a new cell below through IPython's ``set_next_input``
(JupyterLab and Notebook 7 create the cell, not run; a terminal IPython pre-fills its next
prompt)."""

from __future__ import annotations

from typing import Any

from ..engine.chat import ChatResponse

OFFERED = "↓ the code is offered as a new cell below"
NOTHING = "no code block in the answer: no cell offered"


def first_code_block(markdown: str) -> str | None:
    """The text of the first fenced code block (``` or ~~~, CommonMark's rules; one the
    answer left open runs to its end), or None."""
    from markdown_it import MarkdownIt  # only when an answer is to become a cell

    for token in MarkdownIt("commonmark").parse(markdown):
        if token.type == "fence":
            return token.content.rstrip("\n")
    return None


def code_of(answer: str, fmt: str) -> str | None:
    """The code to offer: the first fenced block, else with ``-f code`` the whole answer."""
    block = first_code_block(answer)
    if block is None and fmt == "code" and answer.strip():
        return answer.strip("\n")
    return block


def offer_code(shell: Any, response: ChatResponse, fmt: str) -> str:
    """Offer the answer's code as a new cell below (an interrupted answer offers none); the
    note the output shows."""
    if response.interrupted:
        return ""
    code = code_of(response.text, fmt)
    if code is None:
        return NOTHING
    shell.set_next_input(code, replace=False)
    return OFFERED
