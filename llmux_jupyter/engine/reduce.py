"""``llm.reduce``: one answer over many rows (one per group with ``by``).

The template is the task; its ``{column}`` fields say which columns the model reads (they
read as the columns' names in the task). The rows go, numbered, into as few prompts as the
model's context window holds with room for the answer. When a group needs more than one,
each prompt's answer is a partial answer, and the partial answers are combined the same way,
level after level, until one prompt holds them all: a hierarchical fold. Each level is one
map over every group's prompts, so the cache, progress bars, per-row errors and the
interrupt work as in ``llm.map``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ContextOverflow, InvalidParameter
from ..types.values import Message, Task
from .context import answer_room
from .jobs import task_model
from .manager import ModelManager
from .map import MapResult, MapUsage, outcome
from .map_table import ITEM, Table, as_table, render_prompts, require_column, row_text
from .operators import MapOptions, OperatorJob

ROWS_HEADING = "Rows:"
PARTS_HEADING = "Partial answers to the task below, each from a part of the rows:"
COMBINE = "Combine them into one answer to this task: "
# Tokens a numbered line adds to its text ("12. ", the line break) and that counting the
# parts apart may miss where they join.
LINE_MARGIN = 4


@dataclass
class ReduceResult:
    """The answers by group (the key None without ``by``; None where the group failed or was
    not reached), the ``levels`` of prompts each group took (1: its rows fitted one prompt),
    its ``rows``, ``errors`` by group, the ``usage`` of all levels' maps together and
    ``maps`` (one MapResult per level)."""

    model: str
    answers: dict[Any, str | None]
    levels: dict[Any, int]
    rows: dict[Any, int]
    errors: dict[Any, str] = field(default_factory=dict)
    usage: MapUsage = field(default_factory=lambda: MapUsage(0))
    interrupted: bool = False
    by: str | None = None
    maps: list[MapResult] = field(default_factory=list)

    @property
    def answer(self) -> str | None:
        """The answer, when there are no groups."""
        if self.by is not None:
            raise InvalidParameter(f"This reduce has a group per {self.by}: read .answers.")
        return self.answers[None]

    @property
    def depth(self) -> int:
        """The most levels any group took."""
        return max(self.levels.values(), default=0)

    def to_pandas(self) -> Any:
        """One row per group (indexed by the ``by`` column's values): answer, rows, levels
        and error."""
        import pandas

        groups = list(self.answers)
        index = pandas.Index(groups, name=self.by)
        return pandas.DataFrame(
            {
                "answer": [self.answers[g] for g in groups],
                "rows": [self.rows[g] for g in groups],
                "levels": [self.levels.get(g, 0) for g in groups],
                "error": [self.errors.get(g) for g in groups],
            },
            index=index,
        )

    def summary(self) -> str:
        rows = sum(self.rows.values())
        groups = f" in {len(self.rows)} groups" if self.by is not None else ""
        levels = "level" if self.depth == 1 else "levels"
        parts = [
            f"reduce {self.model}: {rows} rows{groups}, {self.depth} {levels} of "
            f"{self.usage.rows} prompts in {self.usage.seconds:.2f} s"
        ]
        return "; ".join(parts + outcome(self.usage.cached, len(self.errors), self.interrupted))

    def __repr__(self) -> str:
        return f"<ReduceResult {self.summary()}>"


def pack(costs: Sequence[int], room: int) -> list[range]:
    """Consecutive items into as few chunks as keep each chunk's total cost within ``room``,
    in order (chunk ``k`` holds the items at ``chunks[k]``); an item costing more than
    ``room`` gets a chunk of its own."""
    chunks: list[range] = []
    start, total = 0, 0
    for position, cost in enumerate(costs):
        if total + cost > room and position > start:
            chunks.append(range(start, position))
            start, total = position, 0
        total += cost
    chunks.append(range(start, len(costs)))
    return chunks


def numbered(items: Sequence[str]) -> str:
    """``1. first`` ... one item a line (an item's own line breaks indented under it)."""
    return "\n".join(
        f"{n}. " + text.strip().replace("\n", "\n   ") for n, text in enumerate(items, 1)
    )


@dataclass
class _Group:
    """A group's items still to fold (rows' texts, then partial answers) and its levels."""

    items: list[str]
    labels: list[Any]  # the rows' labels, for errors about one row
    levels: int = 0


class ReduceJob(OperatorJob[ReduceResult]):
    """Fold each group's rows into one answer, level by level (see the module's doc)."""

    def __init__(
        self,
        manager: ModelManager,
        data: Any,
        template: str,
        by: str | None,
        options: MapOptions,
    ) -> None:
        super().__init__()
        table = as_table(data)
        columns = require_column(template, table, options.variables)
        self.by = _checked_by(by, table)
        names = Table([{name: name for name in table.columns}], [0], table.columns)
        self.task = render_prompts(template, names, options.variables)[0]
        self.model = task_model(manager, options.model, Task.CHAT)
        self._manager = manager
        self._options = options
        self._groups = _groups(table, columns, self.by)

    def _run(self, progress: bool) -> ReduceResult:
        result = ReduceResult(
            self.model,
            answers=dict.fromkeys(self._groups),
            levels={},
            rows={key: len(group.items) for key, group in self._groups.items()},
            by=self.by,
        )
        pending = dict(self._groups)
        options = self._options
        while pending and not self.cancel_event.is_set():
            plans, options = self._plan(pending, result, options)
            prompts = [prompt for plan in plans.values() for prompt in plan]
            if not prompts:
                break
            kind = f"reduce level {len(result.maps) + 1}"
            found = self._map(
                options.job(self._manager, f"{{{ITEM}}}", prompts, kind=kind), progress
            )
            result.maps.append(found)
            result.usage = result.usage + found.usage
            pending = self._advance(plans, pending, found, result)
        unfinished = [k for k, a in result.answers.items() if a is None and k not in result.errors]
        result.interrupted = self.cancel_event.is_set() and bool(unfinished)
        return result

    def _plan(
        self, pending: dict[Any, _Group], result: ReduceResult, options: MapOptions
    ) -> tuple[dict[Any, list[str]], MapOptions]:
        """Each pending group's prompts at its next level (a group that cannot be packed
        fails), and the options with the answer capped to the room kept for it."""
        plans: dict[Any, list[str]] = {}
        with self._manager.using(self.model) as loaded:
            backend = loaded.backend
            window = backend.context_window()
            cap = options.params.max_tokens
            if window is not None:
                cap = answer_room(window, cap)
                options = dataclasses.replace(
                    options, params=dataclasses.replace(options.params, max_tokens=cap)
                )
            for key, group in list(pending.items()):
                try:
                    plans[key] = self._prompts(backend, group, window, cap)
                except ContextOverflow as error:
                    result.errors[key] = str(error)
                    del pending[key]
        return plans, options

    def _prompts(
        self, backend: Any, group: _Group, window: int | None, cap: int | None
    ) -> list[str]:
        """The group's items in as few prompts as fit the window with ``cap`` tokens left."""
        if window is None:  # the backend does not know its window: one prompt
            return [self._prompt(group.items, group.levels)]
        frame = backend.count_tokens(self._messages(self._prompt([], group.levels)))
        room = window - (cap or 0) - frame
        costs = [backend.count_text(item) + LINE_MARGIN for item in group.items]
        too_long = next((i for i, cost in enumerate(costs) if cost > room), None)
        if too_long is not None:
            what = "A partial answer" if group.levels else f"Row {group.labels[too_long]!r}"
            raise ContextOverflow(
                f"{what} alone needs {costs[too_long]:,} tokens and a prompt of this model "
                f"has room for {max(room, 0):,} beside the task and the answer: shorten it, "
                "lower max_tokens, or load the model with a larger window (--set n_ctx=8192)."
            )
        chunks = pack(costs, room)
        if group.levels and len(chunks) == len(group.items) > 1:
            raise ContextOverflow(
                f"The partial answers do not fit two to a prompt of {window:,} tokens: lower "
                "max_tokens or load the model with a larger window (--set n_ctx=8192)."
            )
        return [self._prompt([group.items[i] for i in chunk], group.levels) for chunk in chunks]

    def _prompt(self, items: list[str], levels: int) -> str:
        if levels == 0:
            return f"{ROWS_HEADING}\n{numbered(items)}\n\n{self.task}"
        return f"{PARTS_HEADING}\n{numbered(items)}\n\n{COMBINE}{self.task}"

    def _messages(self, prompt: str) -> list[Message]:
        system = self._options.system
        return [*([Message("system", system)] if system else []), Message("user", prompt)]

    def _advance(
        self,
        plans: dict[Any, list[str]],
        pending: dict[Any, _Group],
        found: MapResult,
        result: ReduceResult,
    ) -> dict[Any, _Group]:
        """Groups whose one prompt was answered are done; the others go on with their partial
        answers; a group with a failed or unanswered prompt stops."""
        following: dict[Any, _Group] = {}
        position = 0
        for key, prompts in plans.items():
            answers = found.values[position : position + len(prompts)]
            failures = [found.row_error(i) for i in range(position, position + len(prompts))]
            position += len(prompts)
            group = pending[key]
            levels = group.levels + 1
            error = next((failure for failure in failures if failure), None)
            if error is not None:
                result.errors[key] = f"level {levels}: {error}"
            elif any(answer is None for answer in answers):
                continue  # interrupted before this group's prompts were all answered
            elif len(answers) == 1:
                result.answers[key], result.levels[key] = answers[0], levels
            else:
                following[key] = _Group(list(answers), group.labels, levels)
        return following


def _checked_by(by: Any, table: Table) -> str | None:
    if by is None:
        return None
    if not isinstance(by, str) or by not in table.columns:
        raise InvalidParameter(
            f"by={by!r}: name one column to group by; the columns are: {', '.join(table.columns)}."
        )
    return by


def _groups(table: Table, columns: list[str], by: str | None) -> dict[Any, _Group]:
    """The rows' texts by group, in the order groups first appear."""
    groups: dict[Any, _Group] = {}
    for label, row in zip(table.labels, table.rows, strict=True):
        key = row[by] if by is not None else None
        if not isinstance(key, Hashable):
            raise InvalidParameter(f"by={by!r}: row {label!r} has an unhashable {key!r}.")
        group = groups.setdefault(key, _Group([], []))
        group.items.append(row_text(row, columns))
        group.labels.append(label)
    return groups
