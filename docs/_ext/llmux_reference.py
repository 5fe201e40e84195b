"""Reference pages generated from the code, so they cannot drift from it.

Directives (for MyST pages, in ``{name}`` fences):

- ``llmux-magics``: every ``%%llm`` option and every ``%llm`` command with its options, read
  from the magics' own argument parsers (``llmux_jupyter.frontends.arguments``);
- ``llmux-backend-settings``: each built-in backend's ``--set`` settings, from their
  declarations (``Backend.accepted_settings``);
- ``llmux-config``: the ``%config LLMux.*`` settings, from the traitlets;
- ``llmux-errors``: the typed errors, from ``llmux_jupyter.errors``.

It also warns (an error under ``-W``) about a public name documented without a docstring.
"""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Iterable
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

# The backends that ship with llmux (plugins are documented by their authors).
BUILTIN_BACKENDS = ("llamacpp", "transformers", "openai", "faster-whisper", "piper", "chatterbox")


def cell(text: str) -> str:
    """``text`` safe inside a Markdown table cell."""
    return " ".join(str(text).split()).replace("\\|", "|").replace("|", "\\|")


def option_rows(parser: argparse.ArgumentParser) -> list[str]:
    """A Markdown table of the parser's arguments (positional first, as argparse lists them)."""
    rows = ["| argument | value | what |", "|---|---|---|"]
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        rows.append(
            f"| {cell(argument_names(action))} | {cell(value_of(action))} | "
            f"{cell(help_of(action))} |"
        )
    return rows if len(rows) > 2 else []


def argument_names(action: argparse.Action) -> str:
    if action.option_strings:
        return ", ".join(f"`{name}`" for name in action.option_strings)
    return f"`{action.metavar or action.dest}`"


def value_of(action: argparse.Action) -> str:
    if action.nargs == 0:
        return "(flag)"
    if action.choices is not None:
        return ", ".join(f"`{choice}`" for choice in action.choices)
    metavar = action.metavar or action.dest.upper()
    repeat = {"+": " …", "*": " …"}.get(str(action.nargs), "")
    if isinstance(action, argparse._AppendAction):
        repeat = " (repeatable)"
    return f"`{metavar}`{repeat}"


def help_of(action: argparse.Action) -> str:
    text = (action.help or "").replace("%%", "%")
    default = action.default
    if (
        action.nargs != 0
        and default not in (None, [], "", argparse.SUPPRESS)
        and "default" not in text
        and f"({default})" not in text
    ):
        text += f" (default: `{default}`)"
    return text


def magics_markdown() -> str:
    """The whole magic reference: ``%%llm``, ``%%llm say`` and each ``%llm`` command."""
    from llmux_jupyter.frontends.arguments import cell_parser, command_parser, say_cell_parser

    sections = []
    _, commands = command_parser()
    for parser in (cell_parser(), say_cell_parser(), *commands.values()):
        sections.append(parser_section(magic_name(parser), parser))
    return "\n\n".join(sections)


def magic_name(parser: argparse.ArgumentParser) -> str:
    """``%llm load``, ``%%llm``: IPython's help formatter writes one ``%`` before the prog."""
    return f"%{parser.prog}"


def parser_section(title: str, parser: argparse.ArgumentParser) -> str:
    usage = parser.format_usage().replace("usage: ", "").lstrip(": ")
    lines = [
        f"### `{title}`",
        "",
        (parser.description or "").replace("%%", "%"),
        "",
        "```text",
        " ".join(usage.split()),
        "```",
        "",
    ]
    lines += option_rows(parser)
    return "\n".join(lines)


def settings_markdown() -> str:
    """Each built-in backend's declared ``--set`` settings."""
    from llmux_jupyter.backends.registry import registry

    rows = ["| backend | setting | accepts | what |", "|---|---|---|---|"]
    for name in BUILTIN_BACKENDS:
        backend = registry.class_of(name)
        if backend is None or backend.accepted_settings is None:
            raise RuntimeError(f"the {name} backend declares no settings")
        for setting in backend.accepted_settings:
            rows.append(
                f"| {name} | `{setting.name}` | {cell(setting.accepts)} | {cell(setting.help)} |"
            )
    return "\n".join(rows)


def config_markdown() -> str:
    """The ``%config LLMux.<name>`` settings: name, default, help."""
    from llmux_jupyter.config import LLMux

    rows = ["| setting | default | what |", "|---|---|---|"]
    for name, trait in sorted(LLMux.class_traits(config=True).items()):
        rows.append(f"| `LLMux.{name}` | `{trait.default_value!r}` | {cell(trait.help)} |")
    return "\n".join(rows)


def errors_markdown() -> str:
    """Every typed error, with its base class and docstring."""
    from llmux_jupyter import errors

    rows = ["| error | is a | raised when |", "|---|---|---|"]
    for error in error_classes(errors):
        base = error.__mro__[1].__name__
        rows.append(f"| `{error.__name__}` | `{base}` | {cell(inspect.getdoc(error) or '')} |")
    return "\n".join(rows)


def error_classes(module: Any) -> list[type[Exception]]:
    """The LLMuxError subclasses defined in ``module``, base first, in source order."""
    found = [
        value
        for value in vars(module).values()
        if inspect.isclass(value)
        and issubclass(value, module.LLMuxError)
        and value.__module__ == module.__name__
    ]
    return sorted(found, key=lambda error: inspect.getsourcelines(error)[1])


class MarkdownDirective(SphinxDirective):
    """Parses the Markdown its ``render`` returns, in place."""

    render: Any = None

    def run(self) -> list[nodes.Node]:
        return self.parse_text_to_nodes(type(self).render())


def directive(render: Any) -> type[MarkdownDirective]:
    return type(render.__name__, (MarkdownDirective,), {"render": staticmethod(render)})


def warn_missing_docstring(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: Iterable[str]
) -> None:
    """A public class, function, method or property without a docstring fails the build."""
    public = not name.rpartition(".")[2].startswith("_")
    kinds = ("class", "function", "method", "property")
    if what in kinds and public and not any(line.strip() for line in lines):
        logger.warning("%s %s has no docstring", what, name, type="llmux", subtype="docstring")


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("llmux-magics", directive(magics_markdown))
    app.add_directive("llmux-backend-settings", directive(settings_markdown))
    app.add_directive("llmux-config", directive(config_markdown))
    app.add_directive("llmux-errors", directive(errors_markdown))
    app.connect("autodoc-process-docstring", warn_missing_docstring)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
