"""The model picker, ``llmux_jupyter.picker()`` or ``%llm picker``: an ipywidgets panel that
drives the kernel's multiplexer.

This module is imported only when a picker is created, so ``%load_ext`` never imports
ipywidgets. The panel follows the manager's events, which may come from any thread (a cell,
the keep-alive timer): an event only notes what it touched (a row, the memory bars) and
whichever thread holds the render lock redraws exactly that. A thread never waits for another
to finish drawing, so events that arrive during a redraw are folded into the next pass.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable
from html import escape
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from ..engine.events import ModelEvent
from ..errors import UnknownModel
from ..hardware.devices import detect_devices
from ..models.spec import ModelSpec
from ..types.values import Task
from .picker_view import (
    KEEP_ALIVE_CHOICES,
    MEMORY_KINDS,
    Activity,
    about_html,
    badge,
    device_choices,
    error_html,
    memory_text,
    next_activity,
    picker_text,
    task_title,
    usage_style,
    use_tooltip,
)
from .status import ModelStatus, model_status, model_statuses, source_size

if TYPE_CHECKING:
    from ..api import LLM
    from ..engine.budgets import BudgetUse

log = logging.getLogger(__name__)

# name (with backend and size), state, device, keep-alive, buttons (they wrap when narrow).
# Fixed widths but the state's, so that the columns of every task's grid line up.
COLUMNS = "11em minmax(10em,1fr) 6.5em 9.5em minmax(9em,max-content)"
HEADERS = ("model", "state", "device", "keep-alive", "")
_AUTO = {"width": "auto"}

# Pending redraws: ("row", model), ("task", task), ("memory", ""), ("catalog", "").
Target = tuple[str, str]
# A device's memory: its text, the bars of our models and of other kernels' (of the budget),
# the budget-of-device bar.
MemoryBar = tuple[widgets.HTML, widgets.FloatProgress, widgets.FloatProgress, widgets.FloatProgress]


class ModelRow:
    """The widgets of one model, one grid row; ``show`` brings them up to date.

    Each control carries two CSS classes, its role (``llmux-picker-load``) and its model
    (``llmux-model-NAME``), for themes and browser tests to find it.
    """

    def __init__(self, spec: ModelSpec, size: int | None, devices: list[str]) -> None:
        self.spec = spec
        self.size = size
        self.name = widgets.HTML(f"<b>{escape(spec.name)}</b>", tooltip=spec.description or None)
        self.about = widgets.HTML(about_html(spec.backend, size))
        self.badge = widgets.HTML()
        self.progress = widgets.FloatProgress(
            min=0.0, max=1.0, bar_style="info", layout={"display": "none", "width": "12em"}
        )
        self.device = widgets.Dropdown(options=devices, value="auto", layout=_AUTO)
        self.keep_alive = widgets.Dropdown(options=KEEP_ALIVE_CHOICES, layout=_AUTO)
        self.load = widgets.Button(description="Load", icon="play", layout=_AUTO)
        self.unload = widgets.Button(description="Unload", icon="eject", layout=_AUTO)
        self.pin = widgets.ToggleButton(
            description="Pin", icon="thumb-tack", tooltip="never evict it", layout=_AUTO
        )
        self.use = widgets.Button(layout={"width": "6.5em"})  # "Use" or "Default": same width
        self.model = widgets.VBox([self.name, self.about])
        self.state = widgets.VBox([self.badge, self.progress])
        self.actions = widgets.HBox(
            [self.load, self.unload, self.pin, self.use], layout={"flex_flow": "row wrap"}
        )
        model_class = "llmux-model-" + re.sub(r"[^\w-]", "-", spec.name)
        for role, widget in self._roles():
            widget.add_class(f"llmux-picker-{role}")
            widget.add_class(model_class)

    def _roles(self) -> list[tuple[str, widgets.DOMWidget]]:
        return [("name", self.name), ("about", self.about), ("state", self.state),
                ("badge", self.badge), ("progress", self.progress), ("device", self.device),
                ("keep-alive", self.keep_alive), ("load", self.load), ("unload", self.unload),
                ("pin", self.pin), ("use", self.use)]  # fmt: skip

    @property
    def cells(self) -> list[widgets.Widget]:
        return [self.model, self.state, self.device, self.keep_alive, self.actions]

    def show(self, status: ModelStatus, activity: Activity | None) -> None:
        """Match the model's status; ``activity`` adds loading, generating, error."""
        state = badge(status, activity)
        self.about.value = about_html(status.backend, self.size, status.images)
        loading = state.progress is not None
        self.badge.value = f"<div style='line-height:1.4'>{state.html}</div>"
        self.progress.value = state.progress or 0.0
        self.progress.layout.display = "" if loading else "none"
        self.load.disabled = status.loaded or loading
        self.unload.disabled = not status.loaded
        self.device.disabled = self.keep_alive.disabled = status.loaded or loading
        if status.loaded:
            self.pin.value = status.pinned  # when not loaded, the toggle is a choice for Load
        self.use.description = "Default" if status.is_default else "Use"
        self.use.button_style = "success" if status.is_default else ""
        self.use.disabled = status.is_default
        self.use.tooltip = use_tooltip(status.task)


class ModelPicker(widgets.VBox):
    """Models by task with Load / Unload / Pin / Use, memory bars per device, an error area.

    Stays in sync with the manager through its events; ``close()`` stops listening.
    """

    def __init__(self, llm: LLM, **kwargs: Any) -> None:
        self.llm = llm
        self.rows: dict[str, ModelRow] = {}
        self.error = ""  # the error area's message
        self.error_area = widgets.HTML(layout={"display": "none"})
        self.memory_area = widgets.VBox()
        self.groups_area = widgets.VBox()
        self._groups: dict[str, widgets.VBox] = {}
        self._bars: dict[str, MemoryBar] = {}
        self._devices = device_choices(detect_devices())
        self._activity: dict[str, Activity] = {}
        self._pending: set[Target] = {("catalog", "")}
        self._pending_lock = threading.Lock()
        self._render_lock = threading.Lock()
        self._closed = False
        heading = widgets.HTML("<b>Models</b>")
        memory_heading = widgets.HTML("<b>Memory</b>")
        super().__init__(
            [heading, self.error_area, self.groups_area, memory_heading, self.memory_area],
            **kwargs,
        )
        self.add_class("llmux-picker")
        self.error_area.add_class("llmux-picker-error")
        self.memory_area.add_class("llmux-picker-memory")
        self._unsubscribe = llm.manager.events.subscribe(self._on_event)
        self._drain()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        """The widget view, and a readable text/plain (the models' states) where widgets
        do not show."""
        bundle = super()._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = picker_text(model_statuses(self.llm, sizes=False))
        return bundle

    def close(self) -> None:
        """Stop listening to the manager and close every widget of the panel."""
        self._unsubscribe()
        with self._render_lock:
            self._closed = True
        for widget in [*_tree(self.children), self.layout]:
            widget.close()
        super().close()

    # -- events (any thread) ---------------------------------------------------
    def _on_event(self, event: ModelEvent) -> None:
        with self._pending_lock:
            current = self._activity.pop(event.model, None)
            activity = next_activity(event, current)
            if activity is not None:
                self._activity[event.model] = activity
            self._pending.update(_targets(event))
        self._drain()

    def _redraw(self, *targets: Target) -> None:
        with self._pending_lock:
            self._pending.update(targets)
        self._drain()

    def _drain(self) -> None:
        """Draw what is pending, unless another thread is drawing: it will draw ours too."""
        while self._has_pending():
            if not self._render_lock.acquire(blocking=False):
                return
            try:
                while not self._closed and (batch := self._take_pending()):
                    self._draw(batch)
            finally:
                self._render_lock.release()
            if self._closed:
                return

    def _has_pending(self) -> bool:
        with self._pending_lock:
            return bool(self._pending)

    def _take_pending(self) -> set[Target]:
        with self._pending_lock:
            batch, self._pending = self._pending, set()
            return batch

    # -- drawing (under the render lock) ---------------------------------------
    def _draw(self, batch: set[Target]) -> None:
        if ("catalog", "") in batch:
            self._draw_catalog()
            names: Iterable[str] = list(self.rows)
        else:
            tasks = {value for kind, value in batch if kind == "task"}
            names = {value for kind, value in batch if kind == "row" and value in self.rows}
            names |= {name for name, row in self.rows.items() if row.spec.task.value in tasks}
        for name in names:
            self._draw_row(name)
        if ("memory", "") in batch or ("catalog", "") in batch:
            self._draw_memory()

    def _draw_row(self, name: str) -> None:
        row = self.rows[name]
        try:
            status = model_status(self.llm, name, row.size)
        except UnknownModel:  # unregistered meanwhile: its catalog event removes the row
            return
        with self._pending_lock:
            activity = self._activity.get(name)
        row.show(status, activity)

    def _draw_catalog(self) -> None:
        specs = {spec.name: spec for spec in self.llm.manager.catalog.all()}
        for name in [name for name in self.rows if name not in specs]:
            for widget in _tree(self.rows.pop(name).cells):
                widget.close()
        for name, spec in specs.items():
            old = self.rows.get(name)
            if old is None or old.spec != spec:
                for widget in _tree(old.cells if old else ()):
                    widget.close()
                self.rows[name] = self._new_row(spec)
        tasks = sorted({spec.task.value for spec in specs.values()}, key=_task_order)
        for task in [task for task in self._groups if task not in tasks]:
            for widget in _tree([self._groups.pop(task)]):
                widget.close()
        for task in tasks:
            cells = [widgets.HTML(f"<i>{h}</i>") if h else widgets.Label() for h in HEADERS]
            for row in self.rows.values():
                if row.spec.task.value == task:
                    cells += row.cells
            group = self._groups.get(task)
            if group is None:
                title = widgets.HTML(task_title(task))
                grid = widgets.GridBox(layout=_grid_layout())
                group = self._groups[task] = widgets.VBox([title, grid])
            grid = group.children[1]
            old_headers = grid.children[: len(HEADERS)]
            grid.children = cells
            for widget in old_headers:
                widget.close()
        self.groups_area.children = [self._groups[task] for task in tasks]

    def _new_row(self, spec: ModelSpec) -> ModelRow:
        row = ModelRow(spec, source_size(spec), self._devices)
        name = spec.name
        row.load.on_click(lambda _: self._act("Load", name, lambda: self._load(row)))
        row.unload.on_click(lambda _: self._act("Unload", name, lambda: self.llm.unload(name)))
        row.use.on_click(lambda _: self._act("Use", name, lambda: self.llm.use(name)))
        row.pin.observe(lambda change: self._pin_toggled(name, change["new"]), names="value")
        return row

    def _draw_memory(self) -> None:
        self.llm.manager.refresh_elsewhere_if_changed()  # other kernels' loads since
        uses = self.llm.budgets()
        if [use.device for use in uses] != list(self._bars):
            for widget in _tree(self.memory_area.children):
                widget.close()
            self._bars = {use.device: _memory_bar() for use in uses}
            self.memory_area.children = [widgets.HBox(list(bar)) for bar in self._bars.values()]
        for use in uses:
            _show_memory(self._bars[use.device], use)

    # -- actions (the kernel's main thread, from the front end) ----------------
    def _act(self, verb: str, name: str, action: Callable[[], object]) -> None:
        """Run a button's action; a failure goes to the error area and changes nothing."""
        self._show_error("")
        try:
            action()
        except Exception as error:
            self._show_error(f"{verb} {name}: {type(error).__name__}: {error}")
            self._redraw(("row", name))  # e.g. a toggle the user flipped flips back

    def _load(self, row: ModelRow) -> None:
        self.llm.load(
            row.spec.name,
            device=row.device.value,
            keep_alive=row.keep_alive.value,
            pin=row.pin.value or None,
        )

    def _pin_toggled(self, name: str, pinned: bool) -> None:
        model = next((m for m in self.llm.ps() if m.name == name), None)
        if model is not None and model.pinned != pinned:  # else: a redraw, or a choice for Load
            self._act("Pin" if pinned else "Unpin", name, lambda: self.llm.pin(name, pinned))

    def _show_error(self, message: str) -> None:
        self.error = message
        self.error_area.value = error_html(message) if message else ""
        self.error_area.layout.display = "" if message else "none"


def _targets(event: ModelEvent) -> set[Target]:
    if event.kind in ("registered", "unregistered"):
        return {("catalog", "")}
    if event.kind == "default":
        return {("task", str(event.detail.get("task", "")))}
    targets: set[Target] = {("row", event.model)} if event.model else set()
    if event.kind in MEMORY_KINDS:
        targets.add(("memory", ""))
    return targets


def _task_order(task: str) -> tuple[int, str]:
    order = [t.value for t in Task]
    return (order.index(task) if task in order else len(order), task)


def _grid_layout() -> widgets.Layout:
    return widgets.Layout(grid_template_columns=COLUMNS, grid_gap="2px 8px", align_items="center")


def _memory_bar() -> MemoryBar:
    style = {"description_width": "7em"}
    models = widgets.FloatProgress(min=0.0, description="models", style=style)
    others = widgets.FloatProgress(min=0.0, description="other kernels", style=style)
    budget = widgets.FloatProgress(min=0.0, description="budget", bar_style="info", style=style)
    return widgets.HTML(), models, others, budget


def _show_memory(bar: MemoryBar, use: BudgetUse) -> None:
    """Our models' and the other kernels' shares of the budget, and the budget's share of
    the device."""
    text, models, others, budget = bar
    text.value = memory_text(use)
    models.max = others.max = float(max(use.budget, 1))
    models.value = float(min(use.used, use.budget))
    models.bar_style = usage_style(use.used + use.others, use.budget)
    models.tooltip = "memory our models hold, of the budget"
    others.value = float(min(use.others, use.budget))
    others.bar_style = models.bar_style
    others.tooltip = "memory the other kernels' models hold, of the budget (%llm ps --all)"
    budget.max = float(max(use.total, 1))
    budget.value = float(min(use.budget, use.total))
    budget.tooltip = "the budget, of the device's memory"


def _tree(roots: Iterable[widgets.Widget]) -> list[widgets.Widget]:
    """Widgets under ``roots`` (children first), with their layouts and styles."""
    found: list[widgets.Widget] = []
    for widget in roots:
        found += _tree(getattr(widget, "children", ()))
        found += [getattr(widget, part) for part in ("layout", "style") if hasattr(widget, part)]
        found.append(widget)
    return found
