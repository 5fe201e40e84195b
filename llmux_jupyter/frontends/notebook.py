"""What the kernel knows of the notebook, read from IPython: the cells run before this one
(their sources and results), and the last error with the cell that raised it."""

from __future__ import annotations

import ast
import linecache
import re
import sys
import traceback
import types
from dataclasses import dataclass
from typing import Any

from IPython.core.error import UsageError

# Colour codes some libraries put in their messages.
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# An installed library's file in a traceback: the folders before the package say nothing.
LIBRARY_PATH = re.compile(r'(?<=File ")[^"]*[/\\](?:site|dist)-packages[/\\]')
TRACEBACK_FRAMES = 12  # the last frames of a traceback are kept
# Names IPython puts in the namespace for its own use.
IPYTHON_NAMES = frozenset({"In", "Out", "get_ipython", "exit", "quit", "open"})


@dataclass(frozen=True)
class Cell:
    """A cell run earlier: its number, its source as typed, and its result (``Out[n]``)."""

    number: int
    source: str
    result: Any = None
    has_result: bool = False


def earlier_cells(shell: Any, count: int) -> list[Cell]:
    """The last ``count`` cells run before the current one (empty ones skipped), oldest
    first. IPython stores a cell's input before running it: the current cell is the last."""
    history = shell.history_manager
    sources = history.input_hist_raw
    current = len(sources) - 1
    found = []
    for number in range(max(1, current - count), current):
        source = sources[number].strip("\n")
        if source.strip():
            outputs = history.output_hist
            found.append(Cell(number, source, outputs.get(number), number in outputs))
    return found


@dataclass(frozen=True)
class LastError:
    """The last error a cell raised: the exception, its traceback as plain text (IPython's
    own frames left out, cells named ``Cell In[n]``), and the cell that was run."""

    error: BaseException
    traceback: str
    cell: int | None
    source: str


def last_error(shell: Any) -> LastError:
    """The kernel's last error (``sys.last_value``); UsageError when there is none yet."""
    error = getattr(sys, "last_value", None)
    if error is None:
        raise UsageError(
            "No error yet in this kernel: %llm fix explains the last error a cell raised. "
            "Run the cell that fails first."
        )
    if isinstance(error, UsageError):
        raise UsageError(
            "The last error was a magic's usage message, which says what to do itself: "
            "%llm fix explains the errors your code raises."
        )
    names = _cell_names(shell, error)
    first = next(iter(names), None)
    cell = names.get(first) if first else None
    return LastError(error, _plain_traceback(error, names), cell, _source(shell, cell, first))


def _cell_names(shell: Any, error: BaseException) -> dict[str, int]:
    """The cells in the error's traceback, by file name (outermost first): their numbers."""
    files = [frame.filename for frame in traceback.extract_tb(error.__traceback__)]
    if isinstance(error, SyntaxError) and error.filename:
        files.append(error.filename)
    found: dict[str, int] = {}
    for name in files:
        label = shell.compile.format_code_name(name)  # ("Cell", "In[5]") for a cell
        if label is not None and name not in found:
            found[name] = int(label[1][3:-1])
    return found


def _plain_traceback(error: BaseException, cells: dict[str, int]) -> str:
    """The traceback from the first cell's frame on (a cell's syntax error: none of IPython's
    frames), libraries' paths from their package on, without colour codes."""
    found = traceback.TracebackException.from_exception(error, limit=-TRACEBACK_FRAMES)
    frames = list(found.stack)
    start = next((i for i, f in enumerate(frames) if f.filename in cells), None)
    if start is None and isinstance(error, SyntaxError) and found.filename in cells:
        start = len(frames)  # raised while IPython compiled the cell
    found.stack = traceback.StackSummary.from_list(
        [_renamed(frame, cells) for frame in frames[start or 0 :]]
    )
    if isinstance(error, SyntaxError) and found.filename in cells:
        found.filename = f"Cell In[{cells[found.filename]}]"
    text = LIBRARY_PATH.sub("", "".join(found.format()))
    return ANSI.sub("", text).strip("\n")


def _renamed(frame: traceback.FrameSummary, cells: dict[str, int]) -> traceback.FrameSummary:
    if frame.filename not in cells:
        return frame
    return traceback.FrameSummary(
        f"Cell In[{cells[frame.filename]}]", frame.lineno, frame.name, line=frame.line
    )


def _source(shell: Any, number: int | None, filename: str | None) -> str:
    """The cell's source as typed (from the history), else as compiled (from linecache)."""
    sources = shell.history_manager.input_hist_raw
    if number is not None and number < len(sources):
        return sources[number].strip("\n")
    return "".join(linecache.getlines(filename)).strip("\n") if filename else ""


def names_used(shell: Any, source: str) -> list[str]:
    """The notebook variables ``source`` reads, in order of first use: names bound to data
    (modules, functions, classes and IPython's own names left out)."""
    try:
        tree = ast.parse(shell.transform_cell(source))
    except SyntaxError:
        return []
    namespace = shell.user_ns
    reads = [n for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)]
    reads.sort(key=lambda node: (node.lineno, node.col_offset))
    names = dict.fromkeys(node.id for node in reads)
    return [name for name in names if name in namespace and _is_data(name, namespace[name])]


def _is_data(name: str, value: Any) -> bool:
    if name.startswith("_") or name in IPYTHON_NAMES:
        return False
    code = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type)
    return not isinstance(value, code)
