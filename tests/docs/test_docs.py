"""The documentation site: it builds with warnings as errors, and its reference pages are
generated from the code, so an option, setting or error added in code cannot be missing."""

from __future__ import annotations

import argparse
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS / "_ext"))

import llmux_reference  # noqa: E402

from llmux_jupyter.backends.registry import registry  # noqa: E402
from llmux_jupyter.config import LLMux  # noqa: E402
from llmux_jupyter.frontends.arguments import (  # noqa: E402
    cell_parser,
    command_parser,
    say_cell_parser,
)


def sphinx_build(source: Path, target: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-E", "-W", "--keep-going", "-q", "-b", "html",
         str(source), str(target)],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )  # fmt: skip


def test_the_site_builds_without_a_warning(tmp_path: Path) -> None:
    built = sphinx_build(DOCS, tmp_path)
    assert built.returncode == 0, built.stderr
    magics = (tmp_path / "reference" / "magics.html").read_text()
    assert "--max-tokens" in magics and "%llm register" in magics
    assert (tmp_path / "tutorials" / "notebooks" / "01-quickstart.html").is_file()
    api = (tmp_path / "reference" / "api.html").read_text()
    assert "llmux_jupyter.LLM.chat" in api


def parsers() -> dict[str, argparse.ArgumentParser]:
    _, commands = command_parser()
    found = {"%%llm": cell_parser(), "%%llm say": say_cell_parser()}
    found.update({f"%llm {name}": parser for name, parser in commands.items()})
    assert [llmux_reference.magic_name(parser) for parser in found.values()] == list(found)
    return found


@pytest.mark.parametrize("title", list(parsers()))
def test_the_magic_reference_lists_every_option_the_parser_accepts(title: str) -> None:
    text = llmux_reference.magics_markdown()
    section = text.split(f"### `{title}`\n", 1)[1].split("\n### ", 1)[0]
    for action in parsers()[title]._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        for name in action.option_strings or [action.metavar or action.dest]:
            assert f"`{name}`" in section, f"{title}: {name} is not in the reference"


def test_the_settings_reference_lists_every_declared_setting() -> None:
    text = llmux_reference.settings_markdown()
    for name in llmux_reference.BUILTIN_BACKENDS:
        for setting in registry.class_of(name).accepted_settings:
            assert f"| {name} | `{setting.name}` |" in text


def test_the_config_reference_lists_every_setting() -> None:
    text = llmux_reference.config_markdown()
    for name in LLMux.class_traits(config=True):
        assert f"`LLMux.{name}`" in text


def test_a_public_name_without_a_docstring_fails_the_build(tmp_path: Path) -> None:
    """The docstring check itself, on a tiny project whose module has one undocumented
    function."""
    (tmp_path / "undocumented_module.py").write_text(
        textwrap.dedent(
            '''
            """A module."""

            def documented():
                """Has one."""

            def bare():
                pass
            '''
        )
    )
    source = tmp_path / "source"
    source.mkdir()
    (source / "conf.py").write_text(
        f"import sys\nsys.path[:0] = [{str(tmp_path)!r}, {str(DOCS / '_ext')!r}]\n"
        "extensions = ['sphinx.ext.autodoc', 'llmux_reference']\n"
    )
    (source / "index.rst").write_text(
        "API\n===\n\n.. automodule:: undocumented_module\n   :members:\n   :undoc-members:\n"
    )
    built = sphinx_build(source, tmp_path / "html")
    assert built.returncode != 0
    assert "function undocumented_module.bare has no docstring" in built.stderr
