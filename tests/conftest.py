"""Shared test set-up: every test gets its own registration store; folders set the markers."""

from __future__ import annotations

from pathlib import Path

import pytest

MARKERS = {
    "unit": "unit",
    "integration": "integration",
    "browser": "browser",
    "notebooks": "notebooks",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = Path(str(item.fspath)).parent.name
        if folder in MARKERS:
            item.add_marker(MARKERS[folder])


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Registrations go to a temporary folder, never to the developer's ~/.jupyter."""
    monkeypatch.setenv("LLMUX_CONFIG_DIR", str(tmp_path_factory.mktemp("llmux-config")))
