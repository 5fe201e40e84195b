"""The benchmark's plot: output tokens/s and median TTFT per model and concurrency level, as a
PNG readable on light and dark themes (transparent background, mid-grey text and axes).
matplotlib is imported only when a plot is made (``pip install 'llmux-jupyter[bench]'``)."""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from typing import Any

from ..engine.bench import BenchReport
from ..engine.bench_metrics import LevelSummary

GREY = "#8c8c8c"  # as readable on white as on JupyterLab's dark background
COLOURS = ("#4e8fd6", "#e0913a", "#4fae6b", "#b56fcb", "#d05c5c", "#9a9a3d")
INSTALL_HINT = "pip install 'llmux-jupyter[bench]' for the plot"


class BenchPlot:
    """A PNG that Jupyter shows inline; in a terminal, a line saying what it shows."""

    def __init__(self, png: bytes, description: str) -> None:
        self.png = png
        self.description = description

    def _repr_png_(self) -> bytes:
        return self.png

    def __repr__(self) -> str:
        return f"<plot: {self.description}>"


def _throughput(level: LevelSummary) -> float:
    return level.output_tokens_per_second


def _ttft(level: LevelSummary) -> float:
    ttft = level.time_to_first_token_ms
    return math.nan if ttft is None else ttft.p50


PANELS: tuple[tuple[str, Callable[[LevelSummary], float], str], ...] = (
    ("output tokens/s", _throughput, "{:.1f}"),
    ("TTFT p50 (ms)", _ttft, "{:.0f}"),
)


def bench_plot(report: BenchReport) -> BenchPlot | None:
    """The plot of the report's levels; None without matplotlib or without a level."""
    if not report.levels:
        return None
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    models = list(dict.fromkeys(level.model for level in report.levels))
    levels = sorted({level.concurrency for level in report.levels})
    width = 0.8 / len(levels)
    # Each model's bars side by side, centred on its tick (a skipped level leaves no gap).
    groups = {m: [level for level in report.levels if level.model == m] for m in models}
    place = {
        (level.model, level.concurrency): models.index(m) + (k - (len(group) - 1) / 2) * width
        for m, group in groups.items()
        for k, level in enumerate(group)
    }
    figure = Figure(figsize=(4 + 1.2 * len(models) * len(levels), 3.2), layout="constrained")
    for axes, (title, value, label) in zip(figure.subplots(1, 2), PANELS, strict=True):
        for index, concurrency in enumerate(levels):
            shown = [level for level in report.levels if level.concurrency == concurrency]
            heights = [value(level) for level in shown]
            bars = axes.bar(
                [place[level.model, concurrency] for level in shown],
                heights,
                width * 0.92,
                color=COLOURS[index % len(COLOURS)],
                label=f"concurrency {concurrency}",
            )
            texts = ["" if math.isnan(h) else label.format(h) for h in heights]
            axes.bar_label(bars, labels=texts, color=GREY, fontsize=8, padding=2)
        _grey_axes(axes, title, models)
    if len(levels) > 1:
        handles, names = figure.axes[0].get_legend_handles_labels()
        figure.legend(handles, names, loc="outside lower center", ncols=len(levels),
                      frameon=False, labelcolor=GREY)  # fmt: skip
    png = io.BytesIO()
    figure.savefig(png, format="png", transparent=True, dpi=100)
    return BenchPlot(png.getvalue(), f"output tokens/s and TTFT p50 of {', '.join(models)}")


def _grey_axes(axes: Any, title: str, models: list[str]) -> None:
    """Mid-grey title, ticks and the left and bottom spines; no background."""
    axes.set_title(title, color=GREY, fontsize=10)
    axes.set_xticks(range(len(models)), models)
    axes.tick_params(colors=GREY, labelsize=9)
    axes.set_facecolor("none")
    axes.margins(y=0.15)
    for side, spine in axes.spines.items():
        spine.set_color(GREY)
        spine.set_visible(side in ("left", "bottom"))
