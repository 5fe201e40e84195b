"""What ``llm.map`` runs over: the rows of a table, and the prompt each row's values make.

A table is a pandas DataFrame (its index labels the rows), a list of dicts, or a list of
strings (each the field ``{item}``). The template's ``{fields}`` are checked against the
columns (then the given variables) and every prompt is rendered before anything runs.
"""

from __future__ import annotations

import string
from collections import ChainMap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidParameter
from ..types.kinds import is_dataframe

ITEM = "item"
_FORMATTER = string.Formatter()


@dataclass(frozen=True)
class Table:
    """The rows as dicts of column -> value, with their labels (a DataFrame's index, else
    positions) and the index's name."""

    rows: list[dict[str, Any]]
    labels: list[Any]
    columns: tuple[str, ...]
    index_name: Any = None


def as_table(data: Any) -> Table:
    """A DataFrame, a list of dicts or a list of strings as a Table; anything else, or no
    rows, is refused."""
    if is_dataframe(data):
        if data.columns.has_duplicates:
            raise InvalidParameter("The DataFrame has duplicate column names: rename them first.")
        rows = data.to_dict(orient="records")
        return Table(rows, list(data.index), tuple(map(str, data.columns)), data.index.name)
    if isinstance(data, (str, bytes, Mapping)) or not isinstance(data, Sequence):
        raise InvalidParameter(
            f"map() takes a pandas DataFrame, a list of dicts or a list of strings, not "
            f"{type(data).__name__}."
        )
    items = list(data)
    if items and all(isinstance(item, str) for item in items):
        return Table([{ITEM: item} for item in items], list(range(len(items))), (ITEM,))
    if items and all(isinstance(item, Mapping) for item in items):
        columns = tuple(dict.fromkeys(str(key) for item in items for key in item))
        rows = [{str(key): value for key, value in item.items()} for item in items]
        return Table(rows, list(range(len(items))), columns)
    if not items:
        raise InvalidParameter("The table is empty: give at least one row to map over.")
    raise InvalidParameter(
        "map() takes a list of dicts (one per row) or a list of strings (each {item}), not a "
        "list mixing " + ", ".join(sorted({type(item).__name__ for item in items})) + "."
    )


def render_prompts(
    template: str, table: Table, variables: Mapping[str, Any] | None = None
) -> list[str]:
    """Each row's prompt: ``{column}`` from the row, else ``{name}`` from ``variables``;
    ``{{``/``}}`` are literal braces. A field nothing provides is refused, naming it."""
    check_fields(template, table, variables)
    known = {**(variables or {})}
    prompts = []
    for label, row in zip(table.labels, table.rows, strict=True):
        try:
            prompts.append(_FORMATTER.vformat(template, (), ChainMap(row, known)))
        except (KeyError, IndexError, AttributeError, ValueError, TypeError) as error:
            raise InvalidParameter(
                f"Cannot fill the template for row {label!r} ({type(error).__name__}: "
                f"{error}); nothing was run."
            ) from None
    return prompts


def check_fields(template: str, table: Table, variables: Mapping[str, Any] | None) -> None:
    """InvalidParameter for no rows, an empty template, or a field naming neither a column
    nor a variable."""
    check_rows(table)
    if not template.strip():
        raise InvalidParameter("The template is empty: write the prompt, with {column} fields.")
    for name in template_fields(template):
        if name not in table.columns and name not in (variables or {}):
            columns = ", ".join(table.columns)
            raise InvalidParameter(
                f"{{{name}}} in the template: no column or variable is called {name!r}. The "
                f"columns are: {columns}. Write {{{{ and }}}} for literal braces."
            )


def template_fields(template: str) -> list[str]:
    """The names the template's fields start with (``{a.b}`` and ``{a[0]}`` need ``a``)."""
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError as error:
        raise InvalidParameter(
            f"The template's braces do not pair up ({error}): write {{{{ and }}}} for literal "
            "braces."
        ) from None
    names = []
    for _, field, _, _ in parsed:
        if field is None:
            continue
        name = field.split(".", 1)[0].split("[", 1)[0]
        if not name or name.isdigit():
            raise InvalidParameter(
                "A {} field in the template needs a column name, like {text}; write {{}} for "
                "literal braces."
            )
        names.append(name)
    return list(dict.fromkeys(names))


def require_column(
    template: str, table: Table, variables: Mapping[str, Any] | None = None
) -> list[str]:
    """The table's columns the template names; InvalidParameter if it names none (every row
    would get the same prompt), or a field that nothing provides."""
    check_fields(template, table, variables)
    named = [name for name in template_fields(template) if name in table.columns]
    if not named:
        raise InvalidParameter(
            f"The template names no column, so every row would get the same prompt: write a "
            f"column in braces, e.g. {{{table.columns[0]}}}. The columns are: "
            f"{', '.join(table.columns)}."
        )
    return named


def row_text(row: Mapping[str, Any], columns: Sequence[str]) -> str:
    """A row as one text: the value of its only column, else ``column: value`` lines."""
    if len(columns) == 1:
        return str(row.get(columns[0], ""))
    return "\n".join(f"{column}: {row.get(column, '')}" for column in columns)


def check_rows(table: Table) -> None:
    if not table.rows:
        raise InvalidParameter("The table is empty: give at least one row to map over.")
