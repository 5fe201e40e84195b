"""Tables that render as themed HTML in JupyterLab and as aligned text in a terminal."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

_STYLE = (
    "border-collapse:collapse;font-family:var(--jp-ui-font-family);"
    "font-size:var(--jp-ui-font-size1);color:var(--jp-ui-font-color1)"
)
_CELL = "padding:2px 10px;text-align:left;border-bottom:1px solid var(--jp-border-color2)"


@dataclass
class Table:
    """Rows of strings under named columns, with an optional title."""

    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    title: str = ""
    empty: str = "(none)"

    def _repr_html_(self) -> str:
        head = "".join(f'<th style="{_CELL}">{html.escape(c)}</th>' for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f'<td style="{_CELL}">{html.escape(v)}</td>' for v in row) + "</tr>"
            for row in self.rows
        )
        if not self.rows:
            body = f'<tr><td style="{_CELL}" colspan="{len(self.columns)}">{self.empty}</td></tr>'
        title = f"<caption style='text-align:left'><b>{html.escape(self.title)}</b></caption>"
        return (
            f'<table class="llmux-table" style="{_STYLE}">{title if self.title else ""}'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        )

    def __str__(self) -> str:
        widths = [
            max([len(c), *(len(row[i]) for row in self.rows)]) for i, c in enumerate(self.columns)
        ]
        lines = [self.title] if self.title else []
        lines.append(
            "  ".join(c.ljust(w) for c, w in zip(self.columns, widths, strict=True)).rstrip()
        )
        lines.append("  ".join("-" * w for w in widths))
        lines += [
            "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
            for row in self.rows
        ]
        if not self.rows:
            lines.append(self.empty)
        return "\n".join(lines)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))
