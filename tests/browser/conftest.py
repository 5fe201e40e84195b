"""Browser fixtures: a Jupyter server per front end (JupyterLab, Notebook 7), one headless
Chromium, one notebook page per module and front end.

A module runs in every front end of its ``APPS`` (default: all of ``jupyter.APPS``); its tests
take the ``jupyter`` page and run in file order on it, once per front end. A module's
``NOTEBOOK`` names its notebook, its ``DISABLED`` the extensions its page loads without.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, sync_playwright

from .jupyter import (
    APPS,
    CHROMIUM,
    CHROMIUM_ARGS,
    EXTENSION,
    WAIT_MS,
    App,
    Jupyter,
    JupyterServer,
    empty_notebook,
)

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
NOTEBOOKS = (
    "llmux.ipynb",
    "other.ipynb",
    "picker.ipynb",
    "plain.ipynb",
    "compare.ipynb",
    "insert.ipynb",
    "completion.ipynb",
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``app``: each front end the module runs in, one server per front end for the session."""
    if "app" in metafunc.fixturenames:
        apps = getattr(metafunc.module, "APPS", APPS)
        metafunc.parametrize("app", apps, ids=[app.name for app in apps], scope="session")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """``test-artifacts/``, without the screenshots of an earlier run."""
    ARTIFACTS.mkdir(exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    return ARTIFACTS


@pytest.fixture(scope="session")
def jupyter_server(
    app: App, artifacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[JupyterServer]:
    installed = Path(sys.prefix) / "share/jupyter/labextensions" / EXTENSION / "package.json"
    if not installed.exists():
        pytest.fail(f"{EXTENSION} is not installed in {sys.prefix}: run `make setup`.")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium).")
    base = tmp_path_factory.mktemp(app.name)
    server = JupyterServer.start(app, base, artifacts / f"jupyter-{app.name}.log")
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


@pytest.fixture(scope="session")
def browser_context(jupyter_server: JupyterServer, browser: Browser) -> Iterator[BrowserContext]:
    """One browser profile per front end: its pages share the HTTP cache, so a module's page
    does not download and compile the front end's scripts again."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    yield context
    context.close()


@pytest.fixture(scope="module")
def jupyter(
    request: pytest.FixtureRequest, jupyter_server: JupyterServer, browser_context: BrowserContext
) -> Iterator[Jupyter]:
    """A fresh notebook page (the module's ``NOTEBOOK``, else the first) in the front end of
    ``jupyter_server``, without the module's ``DISABLED`` extensions; the module's tests share
    it, in order. The page's console is saved to ``test-artifacts/console-APP-MODULE.log``."""
    app = jupyter_server.app
    disabled = getattr(request.module, "DISABLED", ())
    page = browser_context.new_page()
    page.set_default_timeout(WAIT_MS)
    jupyter = Jupyter(app, page, ARTIFACTS)
    notebook = getattr(request.module, "NOTEBOOK", NOTEBOOKS[0])
    module = request.module.__name__.rpartition(".")[2]
    try:
        jupyter_server.set_disabled(dict.fromkeys(disabled, True))
        jupyter.open(app.url(jupyter_server, notebook, workspace=module))
        yield jupyter
        jupyter.shut_down_kernels()
    finally:
        jupyter_server.set_disabled(dict.fromkeys(disabled, False))
        (ARTIFACTS / f"console-{app.name}-{module}.log").write_text(jupyter.console.text())
        page.close()


@pytest.fixture(autouse=True)
def _console_stays_clean(jupyter: Jupyter) -> Iterator[None]:
    """Every test (its page's load included, for the first): no console error or warning that
    mentions llmux, ILabShell or a comm that was not found."""
    yield
    bad = jupyter.console.new_bad_entries()
    assert not bad, "\n".join(bad)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


FAILED = pytest.StashKey[bool]()


@pytest.fixture(autouse=True)
def _screenshot_on_failure(request: pytest.FixtureRequest, jupyter: Jupyter) -> Iterator[None]:
    yield
    if request.node.stash.get(FAILED, False):
        jupyter.screenshot(f"failed-{request.node.name}")
