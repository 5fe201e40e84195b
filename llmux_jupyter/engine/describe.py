"""Notebook values described for a model, within a token cap (``{var}`` in a cell).

The protocol: an object whose class has a ``_repr_llm_()`` method returning text is described
by it, so any library can opt in. Otherwise the built-in describers: a pandas DataFrame or
Series (shape, dtypes, the first and last rows as a Markdown table), a numpy array (shape,
dtype, min/max/mean, a few values), dicts, lists, tuples and sets (compact JSON), exceptions
(type and message), bytes (length and the first bytes), and ``str()`` for everything else.

Every description is held to a cap in tokens: a describer first tries less detail (fewer
rows, fewer values), then the text is cut, and what was left out is said in the text. Nothing
here imports pandas or numpy: their values are recognised by class name.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import DescribeError
from ..types.kinds import is_dataframe, is_ndarray, is_series

Counter = Callable[[str], int]
# Longer texts are cut to cap x this many characters before they are counted: no token of a
# real tokenizer is that long, so nothing that could fit is lost, and a 10 MB string is never
# tokenized.
MAX_CHARS_PER_TOKEN = 16
TABLE_ROWS = (5, 3, 1, 0)  # rows shown at each end of a table, most detail first
TABLE_COLUMNS = 12  # columns of a table's Markdown rows; the dtypes line names more
DTYPE_COLUMNS = 60  # columns named in the dtypes line
CELL_CHARS = 40  # characters of one table cell
ARRAY_EDGE_ITEMS = (3, 2, 1)  # values shown at each end of every axis of an array
STRING_CHARS = 200  # characters of a string inside a dict or list
JSON_DEPTH = 20  # nesting shown in a dict or list
PROTOCOL = "_repr_llm_"


def estimate_tokens(text: str) -> int:
    """Tokens of ``text`` without a tokenizer, erring high: every character that is not an
    ASCII letter counts as a token (digits, punctuation, spaces; a non-ASCII character as
    two, as byte-level tokenizers often split them), and ASCII letters one token per three.
    Small tokenizers such as SmolLM2's give every digit a token of its own."""
    letters = len(re.findall(r"[A-Za-z]", text))
    non_ascii = len(text) - len(text.encode("ascii", "ignore"))
    return len(text) - letters + non_ascii + -(-letters // 3)


@dataclass(frozen=True)
class Description:
    """What the model is given for one value: ``text``, its ``tokens`` as counted, and
    whether the cap left something out (``cut``)."""

    name: str
    kind: str
    text: str
    tokens: int
    cut: bool

    def as_dict(self) -> dict[str, Any]:
        """For the provenance metadata."""
        return {"name": self.name, "kind": self.kind, "tokens": self.tokens, "cut": self.cut}


def describe(name: str, value: Any, cap: int, count: Counter = estimate_tokens) -> Description:
    """``value`` (the notebook's ``name``) described in at most ``cap`` tokens as ``count``
    counts them; DescribeError, naming ``name``, when its describer raises."""
    kind, candidates = _describer(value)
    text, tokens, cut = fit_to_cap(_checked(name, kind, candidates(value, cap)), cap, count)
    return Description(name, kind, text, tokens, cut)


def fit_to_cap(candidates: Iterable[str], cap: int, count: Counter) -> tuple[str, int, bool]:
    """The first of ``candidates`` (most detailed first) within ``cap`` tokens, else the last
    one cut to fit with a note saying how much was left out: (text, tokens, cut)."""
    last = ""
    for number, text in enumerate(candidates):
        last = text
        if len(text) <= cap * MAX_CHARS_PER_TOKEN:
            tokens = count(text)
            if tokens <= cap:
                return text, tokens, number > 0
    text, tokens = _cut(last, cap, count)
    return text, tokens, True


def _checked(name: str, kind: str, texts: Iterator[Any]) -> Iterator[str]:
    """``texts`` as they come; DescribeError naming ``name`` if the describer raises or its
    ``_repr_llm_()`` gives something else than text."""
    how = f"its {PROTOCOL}()" if kind == PROTOCOL else f"the {kind} describer"
    try:
        for text in texts:
            if not isinstance(text, str):
                raise DescribeError(
                    f"{{{name}}}: {how} returned {type(text).__name__}, not text. Nothing was sent."
                )
            yield text
    except DescribeError:
        raise
    except Exception as error:
        raise DescribeError(
            f"{{{name}}}: {how} failed ({type(error).__name__}: {error}). Nothing was sent: "
            f"write {{{name}!s}} or {{{name}!r}} for Python's plain text of it."
        ) from error


def _cut(text: str, cap: int, count: Counter) -> tuple[str, int]:
    """The start of ``text`` (at a line's end when one is near) and a note, in ``cap``
    tokens."""
    keep = min(len(text), cap * MAX_CHARS_PER_TOKEN)
    while True:
        piece = text[:keep]
        newline = piece.rfind("\n")
        if newline > keep * 0.8:
            piece = piece[:newline]
        note = (
            f"\n[… {len(text) - len(piece):,} more characters left out: the {cap:,}-token cap "
            "(LLMux.describe_tokens)]"
        )
        tokens = count(piece + note)
        if tokens <= cap or not piece:
            return piece + note, tokens
        keep = min(len(piece) - 1, int(len(piece) * cap / tokens * 0.9))


# -- the describers: each yields candidate texts, most detailed first -------------------------
Candidates = Callable[[Any, int], Iterator[Any]]


def _describer(value: Any) -> tuple[str, Candidates]:
    if callable(getattr(type(value), PROTOCOL, None)):
        return PROTOCOL, _protocol
    if is_dataframe(value):
        return "DataFrame", _dataframe
    if is_series(value):
        return "Series", _series
    if is_ndarray(value):
        return "ndarray", _ndarray
    if isinstance(value, BaseException):
        return "exception", _exception
    if isinstance(value, str):
        return "str", _string
    if isinstance(value, (bytes, bytearray)):
        return "bytes", _bytes
    if isinstance(value, (Mapping, list, tuple, set, frozenset)):
        return type(value).__name__, _containers
    return "str()", _plain


def _protocol(value: Any, cap: int) -> Iterator[Any]:
    yield getattr(type(value), PROTOCOL)(value)


def _string(value: str, cap: int) -> Iterator[str]:
    yield value


def _plain(value: Any, cap: int) -> Iterator[str]:
    yield str(value)


def _bytes(value: bytes | bytearray, cap: int) -> Iterator[str]:
    shown = bytes(value[:cap])
    more = f" … {len(value) - cap:,} more bytes" if len(value) > cap else ""
    yield f"{len(value):,} bytes: {shown!r}{more}"


def _exception(error: BaseException, cap: int) -> Iterator[str]:
    lines = [f"{_qualified(type(error))}: {error}", *getattr(error, "__notes__", ())]
    cause = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    if cause is not None:
        lines.append(f"(raised while handling {_qualified(type(cause))}: {cause})")
    yield "\n".join(lines)


def _qualified(cls: type) -> str:
    """``ZeroDivisionError``, ``json.decoder.JSONDecodeError``."""
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


# -- tables -------------------------------------------------------------------------------------
def _dataframe(frame: Any, cap: int) -> Iterator[str]:
    rows, columns = frame.shape
    named = frame.dtypes.iloc[:DTYPE_COLUMNS].items()
    dtypes = [f"{name} ({dtype})" for name, dtype in named]
    more = f", … {columns - DTYPE_COLUMNS:,} more" if columns > DTYPE_COLUMNS else ""
    header = [
        f"pandas DataFrame: {rows:,} rows × {columns:,} columns",
        _index_line(frame.index),
        f"Columns (dtype): {', '.join(dtypes)}{more}" if columns else "No columns.",
    ]
    wide = f" (the first {TABLE_COLUMNS} of {columns:,} columns)" if columns > TABLE_COLUMNS else ""
    for table in _tables(frame, "rows", wide):
        yield "\n".join([*header, *table])


def _series(series: Any, cap: int) -> Iterator[str]:
    name = "" if series.name is None else f" {str(series.name)!r}"
    header = [
        f"pandas Series{name}: {len(series):,} values, dtype {series.dtype}",
        _index_line(series.index),
    ]
    frame = series.to_frame(name="value" if series.name is None else series.name)
    for table in _tables(frame, "values", ""):
        yield "\n".join([*header, *table])


def _index_line(index: Any) -> str:
    names = [str(n) for n in index.names if n is not None]
    named = f" ({', '.join(names)})" if names else ""
    span = f", from {_cell(index[0])} to {_cell(index[-1])}" if len(index) else ""
    return f"Index: {type(index).__name__}{named}{span}"


def _tables(frame: Any, what: str, wide: str) -> Iterator[list[str]]:
    """The first and last rows of ``frame`` as Markdown tables of fewer and fewer rows (each
    under a line that says which rows these are). Only those rows are read from the frame,
    once."""
    total, most = len(frame), TABLE_ROWS[0]
    if total == 0:
        yield [f"No {what}."]
        return
    shown = frame.iloc[:most, :TABLE_COLUMNS]
    first = [list(row) for row in shown.itertuples(name=None)]
    rest = frame.iloc[max(most, total - most) :, :TABLE_COLUMNS]
    last = [list(row) for row in rest.itertuples(name=None)]
    width = len(shown.columns) + 1
    head = [_markdown_row(["", *map(str, shown.columns)]), "|---" * width + "|"]
    for ends in TABLE_ROWS:
        if ends == 0:
            yield [f"({total:,} {what} left out to fit the cap)"]
        elif total <= 2 * ends:
            yield [f"All {total:,} {what}{wide}:", *head, *map(_markdown_row, first + last)]
        else:
            rows = [*first[:ends], ["…"] * width, *last[-ends:]]
            left = total - 2 * ends
            title = f"First {ends} and last {ends} {what}{wide}; {left:,} {what} left out:"
            yield [title, *head, *map(_markdown_row, rows)]


def _markdown_row(cells: list[Any]) -> str:
    return "| " + " | ".join(_cell(cell) for cell in cells) + " |"


def _cell(value: Any) -> str:
    """One value as a short line: floats to 6 significant digits, a MultiIndex label's parts
    each so."""
    if isinstance(value, tuple):
        return "(" + ", ".join(_cell(part) for part in value) + ")"
    if isinstance(value, float) or getattr(getattr(value, "dtype", None), "kind", "") == "f":
        text = f"{value:.6g}"
    else:
        text = str(value)
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"


# -- arrays -------------------------------------------------------------------------------------
def _ndarray(array: Any, cap: int) -> Iterator[str]:
    import numpy as np  # an array exists: numpy is imported already

    header = f"numpy array: shape {array.shape}, dtype {array.dtype}"
    summary = _array_summary(array)
    for edge in ARRAY_EDGE_ITEMS:
        values = np.array2string(
            array, threshold=2 * edge, edgeitems=edge, precision=6, max_line_width=120
        )
        yield "\n".join(filter(None, [header, summary, f"values: {values}"]))


def _array_summary(array: Any) -> str:
    """For an array of several values: min, max and mean if numeric (NaN left out and
    counted), the number of True values if boolean, the range of dates; else ''."""
    import numpy as np

    kind = array.dtype.kind
    if array.size <= 1 or kind not in "biufmM":
        return ""
    if kind == "b":
        return f"{int(np.count_nonzero(array)):,} of {array.size:,} True"
    if kind in "mM":
        return f"min {array.min()}, max {array.max()}"
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high, mean = np.nanmin(array), np.nanmax(array), np.nanmean(array)
    nans = int(np.count_nonzero(np.isnan(array))) if kind == "f" else 0
    found = f"min {low:.6g}, max {high:.6g}, mean {mean:.6g}"
    return found + (f" ({nans:,} NaN left out)" if nans else "")


# -- dicts, lists, tuples, sets -----------------------------------------------------------------
def _containers(value: Any, cap: int) -> Iterator[str]:
    what = "keys" if isinstance(value, Mapping) else "items"
    header = f"{type(value).__name__} of {len(value):,} {what}: "
    for budget in (4 * cap, 2 * cap, cap, cap // 2, cap // 4):
        pruned = _Pruner(budget).prune(value, 0)
        yield header + json.dumps(pruned, ensure_ascii=False, default=str)


class _Pruner:
    """A JSON-able copy of nested containers that stops adding items once about ``budget``
    characters are used (saying how many it left out); a container inside itself becomes
    "<recursion>", and deeper than JSON_DEPTH "…"."""

    def __init__(self, budget: int) -> None:
        self.left = budget
        self.path: set[int] = set()

    def prune(self, value: Any, depth: int) -> Any:
        if value is None or isinstance(value, (bool, int, float)):
            self.left -= len(str(value)) + 2
            return value
        if not isinstance(value, (str, Mapping, list, tuple, set, frozenset)):
            value = str(value)
        if isinstance(value, str):
            text = value if len(value) <= STRING_CHARS else value[: STRING_CHARS - 1] + "…"
            self.left -= len(text) + 4
            return text
        if id(value) in self.path:
            return "<recursion>"
        if depth >= JSON_DEPTH:
            return "…"
        self.path.add(id(value))
        try:
            if isinstance(value, Mapping):
                return self._mapping(value, depth)
            return self._sequence(value, depth)
        finally:
            self.path.discard(id(value))

    def _mapping(self, mapping: Mapping[Any, Any], depth: int) -> dict[str, Any]:
        pruned: dict[str, Any] = {}
        for number, (key, item) in enumerate(mapping.items()):
            if self.left <= 0:
                pruned["…"] = f"{len(mapping) - number:,} more keys"
                break
            text = str(key)
            self.left -= len(text) + 4
            pruned[text] = self.prune(item, depth + 1)
        return pruned

    def _sequence(self, items: Any, depth: int) -> list[Any]:
        pruned: list[Any] = []
        for number, item in enumerate(items):
            if self.left <= 0:
                pruned.append(f"… {len(items) - number:,} more items")
                break
            pruned.append(self.prune(item, depth + 1))
        return pruned
