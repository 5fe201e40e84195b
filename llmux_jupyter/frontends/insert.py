"""Code answers become cells: the answer's first fenced code block (or, with ``-f code``, a
whole answer without one) offered as a new cell below through IPython's ``set_next_input``
(JupyterLab and Notebook 7 create the cell, not run; a terminal IPython pre-fills its next
prompt)."""

from __future__ import annotations

from typing import Any

from ..engine.chat import ChatResponse

OFFERED = "↓ the code is offered as a new cell below"
CUT = "; the answer was cut short (--max-tokens): check that the code is whole"
NOTHING = "no code block in the answer: no cell offered"


def first_code_block(markdown: str) -> str | None:
    """The text of the first fenced code block (``` or ~~~, CommonMark's rules; one the
    answer left open runs to its end), or None."""
    found = _first_block(markdown)
    return None if found is None else found[0]


def _first_block(markdown: str) -> tuple[str, bool] | None:
    """The first fenced block's text, and whether its fence was left open."""
    from markdown_it import MarkdownIt  # only when an answer is to become a cell

    lines = markdown.splitlines()
    for token in MarkdownIt("commonmark").parse(markdown):
        if token.type == "fence" and token.map is not None:
            last = lines[token.map[1] - 1].strip() if token.map[1] - 1 > token.map[0] else ""
            closed = last.startswith(token.markup) and not last.strip(token.markup[0])
            return token.content.rstrip(), not closed
    return None


def code_of(answer: str, fmt: str) -> str | None:
    """The code to offer: the first fenced block, else with ``-f code`` the whole answer."""
    found = _code(answer, fmt)
    return None if found is None else found[0]


def _code(answer: str, fmt: str) -> tuple[str, bool] | None:
    """The code to offer, and whether it runs to the end of the answer."""
    found = _first_block(answer)
    if found is None and fmt == "code" and answer.strip():
        return answer.strip("\n"), True
    return found


def offer_code(shell: Any, response: ChatResponse, fmt: str) -> str:
    """Offer the answer's code as a new cell below (an interrupted answer offers none); the
    note the output shows (which warns when the code may have been cut with the answer)."""
    if response.interrupted:
        return ""
    found = _code(response.text, fmt)
    if found is None:
        return NOTHING
    code, to_the_end = found
    shell.set_next_input(code, replace=False)
    cut = to_the_end and response.stop_reason in ("max_tokens", "context_full")
    return OFFERED + (CUT if cut else "")
