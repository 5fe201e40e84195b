"""Memory readings of this process, and byte formatting."""

from __future__ import annotations

import psutil


def process_rss() -> int:
    """Resident set size of this process, in bytes."""
    return int(psutil.Process().memory_info().rss)


def format_bytes(count: int | None) -> str:
    """1536 -> '1.5 KiB'; None -> '-'."""
    if count is None:
        return "-"
    if abs(count) < 1024:
        return f"{count} B"
    units = ("KiB", "MiB", "GiB", "TiB")
    value, index = count / 1024, 0
    while abs(value) >= 1024 and index < len(units) - 1:
        value, index = value / 1024, index + 1
    return f"{value:.1f} {units[index]}"
