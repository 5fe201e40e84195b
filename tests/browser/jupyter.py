"""A JupyterLab server for tests, and the few page actions the browser tests need."""

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
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

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
WAIT_MS = 120_000  # generous: a loaded 2-core machine runs the kernel, the server and Chromium
NOTEBOOK = "#jp-main-dock-panel .jp-NotebookPanel:not(.lm-mod-hidden)"
DONE_PROMPT = re.compile(r"\[\d+\]")


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
class LabServer:
    """``jupyter lab`` on loopback with a random port and token, isolated from ~/.jupyter
    and from the other tests' LLMux catalog."""

    process: subprocess.Popen[bytes]
    url: str
    token: str
    root: Path
    log: Path

    @classmethod
    def start(cls, base: Path, log: Path) -> LabServer:
        root, config, settings, workspaces = (base / n for n in ("root", "config", "s", "w"))
        for folder in (root, config / "labconfig", settings, workspaces):
            folder.mkdir(parents=True)
        # What `jupyter labextension disable --level=user ...announcements` writes: no news popup.
        disabled = {"@jupyterlab/apputils-extension:announcements": True}
        (config / "labconfig" / "page_config.json").write_text(
            json.dumps({"disabledExtensions": disabled})
        )
        port, token = free_port(), secrets.token_hex(16)
        # Its kernels get a model catalog of their own: what the browser tests register
        # stays out of the other tests' catalog.
        env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config),
               "JUPYTERLAB_SETTINGS_DIR": str(settings),
               "JUPYTERLAB_WORKSPACES_DIR": str(workspaces),
               "LLMUX_CONFIG_DIR": str(base / "llmux")}  # fmt: skip
        command = [
            sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
            f"--port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}", f"--LabApp.workspaces_dir={workspaces}",
            "--LabApp.expose_app_in_browser=True",  # window.jupyterapp, to open a raw comm
        ]  # fmt: skip
        if os.geteuid() == 0:
            command.append("--allow-root")
        with log.open("wb") as out:
            process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        server = cls(process, f"http://127.0.0.1:{port}", token, root, log)
        server.wait_ready()
        return server

    def wait_ready(self) -> None:
        deadline = time.monotonic() + WAIT_MS / 1000
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited: see {self.log}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}") as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"jupyter lab did not answer: see {self.log}")

    def lab_url(self, notebook: str, workspace: str) -> str:
        """``notebook`` open in a workspace (JupyterLab's saved layout) of its own."""
        return f"{self.url}/lab/workspaces/{workspace}/tree/{notebook}?token={self.token}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Lab:
    """The JupyterLab page: run cells in the open notebook, use the LLMux sidebar."""

    def __init__(self, page: Page, artifacts: Path) -> None:
        self.page = page
        self.artifacts = artifacts

    def open(self, url: str) -> None:
        self.page.goto(url)
        expect(self.page.locator("#jp-main-dock-panel")).to_be_visible(timeout=WAIT_MS)
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
        return self.page.locator(f"{NOTEBOOK} .jp-Notebook .jp-Cell")

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
        """Open the LLMux panel (a click on its tab, unless already open)."""
        panel = self.page.locator("#llmux-sidebar")
        if not panel.is_visible():
            self.page.locator(".jp-SideBar .lm-TabBar-tab[data-id='llmux-sidebar']").click()
        expect(panel).to_be_visible(timeout=WAIT_MS)
        return panel

    def status_item(self) -> Locator:
        return self.page.locator(".jp-llmux-status")

    def theme(self, name: str) -> None:
        self.page.evaluate(
            "name => window.jupyterapp.commands.execute('apputils:change-theme', {theme: name})",
            name,
        )
        body = self.page.locator("body")
        expect(body).to_have_attribute("data-jp-theme-name", name, timeout=WAIT_MS)
        expect(self.page.locator("#jupyterlab-splash")).to_have_count(0, timeout=WAIT_MS)

    def screenshot(self, name: str, target: Locator | None = None) -> Path:
        path = self.artifacts / f"{name}.png"
        (target or self.page).screenshot(path=str(path))
        return path


def prompt(cell: Locator) -> Locator:
    return cell.locator(".jp-InputPrompt")


def output_text(cell: Locator) -> str:
    return "\n".join(cell.locator(".jp-OutputArea-output").all_inner_texts())


def errors(cell: Locator) -> list[str]:
    """The cell's error outputs, from its model (the page shows stderr the same way)."""
    return cell.evaluate(
        """node => window.jupyterapp.shell.currentWidget.content.widgets
            .find(widget => widget.node === node).model.outputs.toJSON()
            .filter(output => output.output_type === 'error')
            .map(output => `${output.ename}: ${output.evalue}`)"""
    )
