"""Recognising values of libraries the user may have (pandas, numpy, PIL, matplotlib) without
importing them: a value can only be one of theirs if its library is imported already."""

from __future__ import annotations

import sys
from typing import Any


def instance_of(value: Any, module: str, name: str) -> bool:
    """``isinstance(value, module.name)`` if ``module`` is imported (never imports it):
    ``instance_of(df, "pandas", "DataFrame")``."""
    loaded = sys.modules.get(module)
    kind = getattr(loaded, name, None) if loaded is not None else None
    return isinstance(kind, type) and isinstance(value, kind)


def is_dataframe(value: Any) -> bool:
    return instance_of(value, "pandas", "DataFrame")


def is_series(value: Any) -> bool:
    return instance_of(value, "pandas", "Series")


def is_ndarray(value: Any) -> bool:
    return instance_of(value, "numpy", "ndarray")
