"""What the model picker shows, as plain data and themed HTML (no ipywidgets here).

Colours are JupyterLab's ``--jp-*`` CSS variables only, so the picker follows the light and the
dark theme.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable
from dataclasses import dataclass

from ..engine.budgets import BudgetUse
from ..engine.events import ModelEvent
from ..engine.manager import DEFAULT
from ..hardware.devices import Device
from ..types.values import Task
from ..units import format_bytes, format_duration
from .status import ModelStatus
from .tables import Table

# (label, value) pairs for the keep-alive choice; values are what ``llm.load`` accepts.
KEEP_ALIVE_CHOICES: tuple[tuple[str, str], ...] = (
    ("default", DEFAULT),
    ("1 minute", "1m"),
    ("5 minutes", "5m"),
    ("30 minutes", "30m"),
    ("1 hour", "1h"),
    ("until unloaded", "-1"),
    ("unload after use", "0"),
)

# What "Use" makes a model the default of, per task.
_USED_BY = {
    Task.CHAT.value: "%%llm",
    Task.TRANSCRIPTION.value: "transcribe",
    Task.SPEECH.value: "say",
    Task.EMBEDDING.value: "embeddings",
    Task.RERANK.value: "rerank",
}

# Events after which the memory that our models hold has changed.
MEMORY_KINDS = frozenset({"loaded", "unloaded", "evicted", "budgets"})


@dataclass(frozen=True)
class Activity:
    """What a model is going through that the manager does not keep: loading (``progress``
    0-1), generating (``tokens``), a failed load or an eviction (``message``)."""

    kind: str
    progress: float = 0.0
    estimate: int | None = None
    tokens: int = 0
    tokens_per_second: float | None = None
    message: str = ""


def next_activity(event: ModelEvent, current: Activity | None) -> Activity | None:
    """A model's activity after ``event``."""
    detail = event.detail
    if event.kind == "loading":
        return Activity("loading", float(detail.get("progress") or 0.0), detail.get("estimate"))
    if event.kind == "error":
        return Activity("error", message=str(detail.get("message", "")))
    if event.kind == "evicted":
        return Activity("evicted", message=str(detail.get("reason", "")))
    if event.kind == "generating":
        return Activity(
            "generating",
            tokens=int(detail.get("tokens", 0)),
            tokens_per_second=detail.get("tokens_per_second"),
        )
    if event.kind in ("loaded", "unloaded", "idle", "unregistered"):
        return None
    return current


def device_choices(devices: Iterable[Device]) -> list[str]:
    """The device dropdown: auto, cpu, then this host's accelerators."""
    return ["auto", "cpu", *(device.id for device in devices)]


def task_title(task: str) -> str:
    used_by = _USED_BY.get(task)
    hint = f" <span style='{_SMALL}'>Use sets the default for {used_by}</span>" if used_by else ""
    return f"<b>{html.escape(task.capitalize())}</b>{hint}"


def use_tooltip(task: str) -> str:
    return f"Make this the default {task} model ({_USED_BY.get(task, 'llm.use')})"


_SMALL = "font-size:var(--jp-ui-font-size0);color:var(--jp-ui-font-color2)"


def _span(text: str, color: str) -> str:
    return f"<span style='color:var({color})'>{html.escape(text)}</span>"


@dataclass(frozen=True)
class Badge:
    """A model's state line (HTML) and, while it loads, the progress bar's value."""

    html: str
    progress: float | None = None


def badge(status: ModelStatus, activity: Activity | None) -> Badge:
    """not loaded / loading (with progress) / loaded on DEVICE / error with the message."""
    kind = activity.kind if activity is not None else ""
    if activity is not None and kind == "loading":
        about = f" (about {format_bytes(activity.estimate)})" if activity.estimate else ""
        return Badge(_span(f"loading{about}…", "--jp-brand-color1"), activity.progress)
    if not status.loaded:
        if activity is not None and kind == "error":
            return Badge(_span(f"error: {activity.message}", "--jp-error-color1"))
        note = (
            f" (evicted: {activity.message})" if activity is not None and kind == "evicted" else ""
        )
        return Badge(_span("not loaded", "--jp-ui-font-color2") + _small(note))
    parts = [_span(f"loaded on {status.device}", "--jp-success-color1")]
    if status.state == "busy":
        parts.append(_span(_busy_text(activity), "--jp-warn-color1"))
    else:
        parts.append(html.escape(status.state or "idle"))
    parts.append(html.escape(_lifetime(status)))
    memory = f"estimate {format_bytes(status.estimate)}, measured {format_bytes(status.measured)}"
    return Badge(" · ".join(parts) + "<br>" + _small(memory))


def picker_text(statuses: Iterable[ModelStatus]) -> str:
    """The picker as text (its text/plain, for nbconvert, a terminal IPython or a front end
    without ipywidgets): every model's state when it was shown."""
    table = Table(
        ["model", "task", "backend", "state", "default"],
        title="LLMux model picker (its buttons show where ipywidgets do: JupyterLab, "
        "Notebook 7, VS Code, Colab)",
    )
    for status in statuses:
        state = "not loaded"
        if status.loaded:
            state = f"loaded on {status.device} · {status.state or 'idle'} · {_lifetime(status)}"
        default = "yes" if status.is_default else ""
        table.rows.append([status.name, status.task, status.backend, state, default])
    return str(table)


def _busy_text(activity: Activity | None) -> str:
    if activity is None or activity.kind != "generating":
        return "busy"
    speed = activity.tokens_per_second
    return f"generating: {activity.tokens} tokens" + (f", {speed:.0f} tok/s" if speed else "")


def _small(text: str) -> str:
    return f"<span style='{_SMALL}'>{html.escape(text)}</span>" if text else ""


def _lifetime(status: ModelStatus) -> str:
    """How long it stays: a clock time, so the text stays true without a polling loop."""
    if status.pinned:
        return "pinned"
    if status.keep_alive is None:
        return "kept until unloaded"
    if status.expires_at is None:
        return f"keep-alive {format_duration(status.keep_alive)}"
    return "unloads at " + time.strftime("%H:%M:%S", time.localtime(status.expires_at))


def size_text(size: int | None) -> str:
    return "not on disk" if size is None else format_bytes(size)


def about_html(backend: str, size: int | None, images: bool | None = False) -> str:
    """The line under a model's name: its backend, its size on disk, and whether it takes
    images."""
    seen = " · takes images" if images else ""
    return _small(f"{backend} · {size_text(size)}{seen}")


def memory_text(use: BudgetUse) -> str:
    """Used by our models and by other kernels' vs the budget vs the device's total."""
    return (
        f"<b>{html.escape(use.device)}</b> "
        f"<span style='{_SMALL}'>models {format_bytes(use.used)} · other kernels "
        f"{format_bytes(use.others)} · budget {format_bytes(use.budget)} · device "
        f"{format_bytes(use.total)}</span>"
    )


def usage_style(used: int, budget: int) -> str:
    """A bar's button_style-like bar_style: fuller budgets look more alarming."""
    share = used / budget if budget else 1.0
    return "danger" if share >= 0.9 else "warning" if share >= 0.7 else "success"


def error_html(message: str) -> str:
    return (
        "<div style='color:var(--jp-error-color1);background:var(--jp-layout-color2);"
        "border-left:3px solid var(--jp-error-color1);padding:4px 8px;white-space:pre-wrap'>"
        f"{html.escape(message)}</div>"
    )
