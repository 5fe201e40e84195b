"""Browser fixtures: one JupyterLab server, one headless Chromium, one notebook page per module."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from .lab import CHROMIUM, CHROMIUM_ARGS, EXTENSION, WAIT_MS, Lab, LabServer, empty_notebook

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
NOTEBOOKS = ("llmux.ipynb", "other.ipynb", "picker.ipynb")


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    installed = Path(sys.prefix) / "share/jupyter/labextensions" / EXTENSION / "package.json"
    if not installed.exists():
        pytest.fail(f"{EXTENSION} is not installed in {sys.prefix}: run `make setup`.")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium).")
    ARTIFACTS.mkdir(exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    server = LabServer.start(tmp_path_factory.mktemp("lab"), ARTIFACTS / "jupyterlab.log")
    for name in NOTEBOOKS:
        empty_notebook(server.root / name)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def lab(request: pytest.FixtureRequest, lab_server: LabServer, browser: Browser) -> Iterator[Lab]:
    """JupyterLab open on a fresh notebook (the module's ``NOTEBOOK``, else the first); the
    module's tests share it, in order."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    lab = Lab(page, ARTIFACTS)
    notebook = getattr(request.module, "NOTEBOOK", NOTEBOOKS[0])
    module = request.module.__name__.rpartition(".")[2]
    lab.open(lab_server.lab_url(notebook, workspace=module))
    yield lab
    lab.shut_down_kernels()
    (ARTIFACTS / f"console-{module}.log").write_text("\n".join(console))
    context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


FAILED = pytest.StashKey[bool]()


@pytest.fixture(autouse=True)
def _screenshot_on_failure(request: pytest.FixtureRequest, lab: Lab) -> Iterator[None]:
    yield
    if request.node.stash.get(FAILED, False):
        lab.screenshot(f"failed-{request.node.name}")
