"""A Jupyter server for tests, run as JupyterLab or as Notebook 7, and the few page actions the
browser tests need in either front end."""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import ConsoleMessage, Error, Locator, Page, expect

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EXTENSION = "@llmux/jupyterlab"
# JupyterLab's news popup would cover the page.
ANNOUNCEMENTS = "@jupyterlab/apputils-extension:announcements"
WAIT_MS = 120_000  # generous: a loaded 2-core machine runs the kernel, the server and Chromium
DONE_PROMPT = re.compile(r"\[\d+\]")
# A console error or warning that mentions us, the JupyterLab-only shell token, or a comm the
# page had no handler for (what a kernel-opened comm causes in a front end without our panel).
BAD_CONSOLE = re.compile(r"llmux|ILabShell|comm not found|opening new comm|no such comm", re.I)


@dataclass(frozen=True)
class App:
    """A Jupyter front end: the ``jupyter`` subcommand that serves it and what its page is like."""

    name: str  # the test id and the artifacts' prefix
    config_class: str  # the traitlets class of its server-side options
    notebook_path: str  # the URL of a notebook, relative to the server
    shell: str  # CSS of the shell's main area, there once the page is up
    notebook: str  # CSS of the notebook panel the page shows
    status_bar: bool  # JupyterLab has one; Notebook 7 has none
    panels_in_view_menu: bool  # Notebook 7 offers side panels under View → Left Sidebar

    def url(self, server: JupyterServer, notebook: str, workspace: str) -> str:
        path = self.notebook_path.format(notebook=notebook, workspace=workspace)
        return f"{server.url}/{path}?token={server.token}"


LAB = App(
    name="lab",
    config_class="LabApp",
    notebook_path="lab/workspaces/{workspace}/tree/{notebook}",  # a saved layout per module
    shell="#jp-main-dock-panel",
    notebook="#jp-main-dock-panel .jp-NotebookPanel:not(.lm-mod-hidden)",
    status_bar=True,
    panels_in_view_menu=False,
)
NOTEBOOK = App(
    name="notebook",
    config_class="JupyterNotebookApp",
    notebook_path="notebooks/{notebook}",
    shell="#main-panel",
    notebook="#main-panel .jp-NotebookPanel",
    status_bar=False,
    panels_in_view_menu=True,
)
APPS = (LAB, NOTEBOOK)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def empty_notebook(path: Path) -> None:
    path.write_text(
        json.dumps(
            {
                "cells": [
                    {"cell_type": "code", "execution_count": None, "id": "first",
                     "metadata": {}, "outputs": [], "source": []}
                ],
                "metadata": {
                    "kernelspec": {"name": "python3", "display_name": "Python 3",
                                   "language": "python"}
                },
                "nbformat": 4,
                "nbformat_minor": 5,
            }
        )
    )  # fmt: skip


@dataclass
class JupyterServer:
    """``jupyter lab`` or ``jupyter notebook`` on loopback with a random port and token,
    isolated from ~/.jupyter and from the other tests' LLMux catalog."""

    app: App
    process: subprocess.Popen[bytes]
    url: str
    token: str
    root: Path
    config: Path
    log: Path

    @classmethod
    def start(cls, app: App, base: Path, log: Path) -> JupyterServer:
        root, config, settings, workspaces = (base / n for n in ("root", "config", "s", "w"))
        for folder in (root, config / "labconfig", settings, workspaces):
            folder.mkdir(parents=True)
        port, token = free_port(), secrets.token_hex(16)
        # Its kernels get a model catalog of their own: what the browser tests register
        # stays out of the other tests' catalog.
        env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config),
               "JUPYTERLAB_SETTINGS_DIR": str(settings),
               "JUPYTERLAB_WORKSPACES_DIR": str(workspaces),
               "LLMUX_CONFIG_DIR": str(base / "llmux")}  # fmt: skip
        command = [
            sys.executable, "-m", "jupyter", app.name, "--no-browser", "--ip=127.0.0.1",
            f"--port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            f"--{app.config_class}.expose_app_in_browser=True",  # window.jupyterapp
        ]  # fmt: skip
        if os.geteuid() == 0:
            command.append("--allow-root")
        with log.open("wb") as out:
            process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        server = cls(app, process, f"http://127.0.0.1:{port}", token, root, config, log)
        server.set_disabled()
        server.wait_ready()
        return server

    def set_disabled(self, extensions: dict[str, bool] | None = None) -> None:
        """Disable (True) or enable (False) extensions for the pages opened from now on; the
        news popup stays off. What `jupyter labextension disable --level=user` writes. The
        server merges this file into what it remembers: to enable again, say False."""
        disabled = {ANNOUNCEMENTS: True, **(extensions or {})}
        (self.config / "labconfig" / "page_config.json").write_text(
            json.dumps({"disabledExtensions": disabled})
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + WAIT_MS / 1000
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter {self.app.name} exited: see {self.log}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}") as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"jupyter {self.app.name} did not answer: see {self.log}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class Console:
    """Everything the page logged (console messages and uncaught errors), in order."""

    entries: list[tuple[str, str]] = field(default_factory=list)  # (type, text)
    checked: int = 0

    def listen(self, page: Page) -> None:
        page.on("console", self._on_message)
        page.on("pageerror", self._on_error)

    def _on_message(self, message: ConsoleMessage) -> None:
        self.entries.append((message.type, message.text))

    def _on_error(self, error: Error) -> None:
        self.entries.append(("pageerror", f"{error.message}\n{error.stack or ''}"))

    def new_bad_entries(self) -> list[str]:
        """Errors and warnings that match ``BAD_CONSOLE`` since the last call."""
        new, self.checked = self.entries[self.checked :], len(self.entries)
        return [
            f"{kind}: {text}"
            for kind, text in new
            if kind in ("error", "warning", "pageerror") and BAD_CONSOLE.search(text)
        ]

    def text(self) -> str:
        return "\n".join(f"{kind}: {text}" for kind, text in self.entries)


class Jupyter:
    """A notebook page in JupyterLab or Notebook 7: run cells, use the LLMux panel."""

    def __init__(self, app: App, page: Page, artifacts: Path) -> None:
        self.app = app
        self.page = page
        self.artifacts = artifacts
        self.console = Console()
        self.console.listen(page)

    def open(self, url: str) -> None:
        self.page.goto(url)
        expect(self.page.locator(self.app.shell)).to_be_visible(timeout=WAIT_MS)
        expect(self.page.locator("#jupyterlab-splash")).to_have_count(0, timeout=WAIT_MS)
        expect(self.cells.first).to_be_visible(timeout=WAIT_MS)
        self.wait_kernel_idle()

    def shut_down_kernels(self) -> None:
        """Every kernel of the server, so that the next module starts from none."""
        self.page.evaluate("() => window.jupyterapp.serviceManager.sessions.shutdownAll()")

    def wait_kernel_idle(self) -> None:
        """Until the current notebook's kernel has started and is idle (a cell run earlier
        is dropped)."""
        self.page.wait_for_function(
            "() => window.jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel"
            "?.status === 'idle'",
            timeout=WAIT_MS,
        )

    @property
    def cells(self) -> Locator:
        return self.page.locator(f"{self.app.notebook} .jp-Notebook .jp-Cell")

    def run(self, code: str) -> Locator:
        """Type ``code`` into the last (empty) cell and Shift+Enter it; returns that cell."""
        cell = self.cells.nth(self.cells.count() - 1)
        cell.locator(".cm-content").click()
        for number, line in enumerate(code.split("\n")):
            if number:
                self.page.keyboard.press("Enter")
            self.page.keyboard.insert_text(line)
        expect(cell.locator(".cm-content")).to_contain_text(code.split("\n")[-1])
        self.page.keyboard.press("Shift+Enter")
        return cell

    def wait_done(self, cell: Locator) -> Locator:
        expect(prompt(cell)).to_have_text(DONE_PROMPT, timeout=WAIT_MS)
        return cell

    def run_done(self, code: str) -> str:
        """Run a cell to the end; returns its output text (an error fails the test)."""
        cell = self.wait_done(self.run(code))
        assert not errors(cell), errors(cell)
        return output_text(cell)

    def kernel_value(self, expression: str) -> str:
        return self.run_done(f"print(repr({expression}))").strip()

    def sidebar(self) -> Locator:
        """Open the LLMux panel the way a user does (unless already open): JupyterLab's side
        bar tab, or Notebook 7's View → Left Sidebar → Show LLMux."""
        panel = self.page.locator("#llmux-sidebar")
        if not panel.is_visible():
            if self.app.panels_in_view_menu:
                self.menu("View", "Left Sidebar", "Show LLMux")
            else:
                self.page.locator(".jp-SideBar .lm-TabBar-tab[data-id='llmux-sidebar']").click()
        expect(panel).to_be_visible(timeout=WAIT_MS)
        return panel

    def menu(self, top: str, *path: str) -> None:
        """Click through the main menu: ``top``, then each submenu entry of ``path``."""
        self.page.locator(".lm-MenuBar-item", has_text=re.compile(f"^{re.escape(top)}$")).click()
        *submenus, entry = path
        for depth, label in enumerate(submenus):
            self._menu_item(depth, label).hover()
        self._menu_item(len(submenus), entry).click()

    def _menu_item(self, depth: int, label: str) -> Locator:
        menu = self.page.locator(".lm-Menu").nth(depth)
        return menu.locator(".lm-Menu-item", has_text=re.compile(f"^{re.escape(label)}$"))

    def expect_status(self, text: re.Pattern[str] | None) -> None:
        """The status-bar item shows ``text`` (None: it is hidden). Notebook 7 has no status
        bar: there is no item at all."""
        item = self.page.locator(".jp-llmux-status")
        if not self.app.status_bar:
            expect(item).to_have_count(0)
        elif text is None:
            expect(item).to_be_hidden(timeout=WAIT_MS)
        else:
            expect(item).to_have_text(text, timeout=WAIT_MS)

    def theme(self, name: str) -> None:
        self.page.evaluate(
            "name => window.jupyterapp.commands.execute('apputils:change-theme', {theme: name})",
            name,
        )
        body = self.page.locator("body")
        expect(body).to_have_attribute("data-jp-theme-name", name, timeout=WAIT_MS)
        expect(self.page.locator("#jupyterlab-splash")).to_have_count(0, timeout=WAIT_MS)

    def screenshot(self, name: str, target: Locator | None = None) -> Path:
        path = self.artifacts / f"{self.app.name}-{name}.png"
        (target or self.page).screenshot(path=str(path))
        return path


def prompt(cell: Locator) -> Locator:
    return cell.locator(".jp-InputPrompt")


def output_text(cell: Locator) -> str:
    return "\n".join(cell.locator(".jp-OutputArea-output").all_inner_texts())


def outputs(cell: Locator) -> list[dict]:
    """The cell's outputs as the notebook stores them (nbformat JSON)."""
    return cell.evaluate(
        """node => window.jupyterapp.shell.currentWidget.content.widgets
            .find(widget => widget.node === node).model.outputs.toJSON()"""
    )


def source_below(cell: Locator) -> str | None:
    """The source of the cell right below ``cell`` in the notebook's model (None: none)."""
    return cell.evaluate(
        """node => {
            const widgets = window.jupyterapp.shell.currentWidget.content.widgets;
            const below = widgets[widgets.findIndex(widget => widget.node === node) + 1];
            return below ? below.model.sharedModel.getSource() : null;
        }"""
    )


def errors(cell: Locator) -> list[str]:
    """The cell's error outputs, from its model (the page shows stderr the same way)."""
    return cell.evaluate(
        """node => window.jupyterapp.shell.currentWidget.content.widgets
            .find(widget => widget.node === node).model.outputs.toJSON()
            .filter(output => output.output_type === 'error')
            .map(output => `${output.ename}: ${output.evalue}`)"""
    )
