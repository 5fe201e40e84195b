"""Which table operation a ``%%llm`` cell asks for (``--map``, ``--filter``, ``--classify``,
``--extract``, ``--reduce``, ``--topk``), and the options that go, or not, with it."""

from __future__ import annotations

from argparse import Namespace
from typing import Any

from IPython.core.error import UsageError

OPERATIONS = ("map", "filter", "classify", "extract", "reduce", "topk")
# Options of a single answer that mean nothing for a table.
NOT_WITH_TABLES = {
    "compare": "--compare",
    "new": "--new",
    "raw": "--raw",
    "format": "-f/--format",
    "tools": "--tools",
    "approve": "--approve",
    "insert": "--insert",
    "cells": "--cells",
}
# Options for every table operation, and those of one operation only.
TABLE_ONLY = {
    "no_cache": "--no-cache",
    "batch_size": "--batch-size",
    "concurrency": "--concurrency",
}
OPERATION_ONLY = {
    "labels": ("--labels", "classify"),
    "by": ("--by", "reduce"),
    "k": ("--k", "topk"),
    "document": ("--document", "topk"),
    "judge": ("--judge", "topk"),
}
WITH_SCHEMA = ("map", "extract")


def table_operation(args: Namespace) -> str | None:
    """The operation asked for (None: a plain answer); UsageError for several at once or for
    an option whose operation is missing."""
    asked = [name for name in OPERATIONS if getattr(args, name) is not None]
    if len(asked) > 1:
        raise UsageError(f"Choose one of {', '.join('--' + name for name in asked)}.")
    operation = asked[0] if asked else None
    stray = [flag for name, (flag, owner) in OPERATION_ONLY.items()
             if getattr(args, name) is not None and owner != operation]  # fmt: skip
    if stray:
        owners = {OPERATION_ONLY[n][1] for n in OPERATION_ONLY if OPERATION_ONLY[n][0] in stray}
        raise UsageError(
            f"{', '.join(stray)} go with {' / '.join('--' + o + ' TABLE' for o in sorted(owners))}."
        )
    if operation is None:
        used = [flag for name, flag in TABLE_ONLY.items() if getattr(args, name)]
        if used:
            raise UsageError(f"{', '.join(used)} go with --map TABLE or an operator (--filter...).")
    return operation


def check_table_options(args: Namespace, operation: str, user_ns: dict[str, Any]) -> None:
    """UsageError for an option that means nothing for ``operation``, or a variable that
    does not exist."""
    used = [flag for name, flag in NOT_WITH_TABLES.items() if getattr(args, name)]
    if args.thread != "default":
        used.append("--thread")
    if args.schema is not None and operation not in WITH_SCHEMA:
        used.append("--schema")
    if used:
        raise UsageError(
            f"--{operation} answers each row on its own: {', '.join(used)} cannot go with it."
        )
    for option, name in ((f"--{operation}", getattr(args, operation)), ("--schema", args.schema)):
        if name is not None and name not in user_ns:
            raise UsageError(f"{option} {name}: no variable {name!r} in the notebook.")
