"""Notebook functions as tools: a JSON schema of the arguments from the signature, type hints
and docstring (pydantic and docstring-parser, imported when a tool is made), and a call with
validated arguments. Only the functions the user names are ever called."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_type_hints

from ..errors import BackendNotInstalled, InvalidParameter, ToolDefinitionError

EXTRA_HINT = "pip install 'llmux-jupyter[tools]'"


@dataclass(frozen=True)
class Tool:
    """A function the model may call: its name, what it does, its arguments' JSON schema."""

    name: str
    description: str
    parameters: dict[str, Any]
    function: Callable[..., Any]
    _model: Any  # the pydantic model of the arguments

    @classmethod
    def of(cls, function: Any, label: str | None = None) -> Tool:
        """The tool of a function with type hints on every parameter and a docstring;
        ``label`` names the value in the error when it is not one (e.g. the variable)."""
        if isinstance(function, Tool):
            return function
        if not inspect.isfunction(function) and not inspect.ismethod(function):
            raise ToolDefinitionError(_not_a_function(label or _shown(function), function))
        name = function.__name__
        if not inspect.getdoc(function):
            raise ToolDefinitionError(
                f"{name} has no docstring: add one saying what it does (and an Args: section "
                "describing each parameter) so the model knows when to call it."
            )
        docstring = _parse_docstring(inspect.getdoc(function) or "")
        model = _arguments_model(function, docstring.params)
        description = "\n\n".join(
            part for part in (docstring.short_description, docstring.long_description) if part
        )
        return cls(name, description, model.model_json_schema(), function, model)

    def validate(self, arguments: Any) -> dict[str, Any]:
        """The arguments as the function's types (InvalidParameter if they do not fit)."""
        import pydantic

        try:
            validated = self._model.model_validate(arguments)
        except pydantic.ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first.get("loc", ())) or "arguments"
            raise InvalidParameter(f"{where}: {first.get('msg', error)}") from None
        return {key: getattr(validated, key) for key in type(validated).model_fields}

    def openai(self) -> dict[str, Any]:
        """The tool as OpenAI's chat API describes one."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


def tools_of(functions: Any, labels: list[str] | None = None) -> list[Tool]:
    """Tools of a function or a list of functions (names must be unique); ``labels`` name
    the values in errors (default: the values themselves)."""
    items = list(functions) if isinstance(functions, (list, tuple)) else [functions]
    names_for = labels or [None] * len(items)
    tools = [Tool.of(item, label) for item, label in zip(items, names_for, strict=True)]
    names = [tool.name for tool in tools]
    if not tools:
        raise ToolDefinitionError("No tools given: name at least one function.")
    if len(set(names)) < len(names):
        raise ToolDefinitionError(f"Two tools have the same name: {', '.join(names)}.")
    return tools


def _parse_docstring(text: str) -> Any:
    try:
        import docstring_parser
    except ImportError:
        raise BackendNotInstalled(f"Tools need docstring-parser: {EXTRA_HINT}") from None
    return docstring_parser.parse(text)


def _arguments_model(function: Callable[..., Any], documented: list[Any]) -> Any:
    """A pydantic model with one field per parameter (its hint, default and description)."""
    try:
        import pydantic
    except ImportError:
        raise BackendNotInstalled(f"Tools need pydantic: {EXTRA_HINT}") from None
    name = function.__name__
    try:
        hints = get_type_hints(function)
    except Exception as error:  # a hint naming something undefined
        raise ToolDefinitionError(f"{name}'s type hints cannot be read ({error}).") from None
    descriptions = {param.arg_name: param.description for param in documented}
    fields: dict[str, Any] = {}
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise ToolDefinitionError(
                f"{name} takes *{parameter.name}: a tool needs named parameters only."
            )
        if parameter.name not in hints:
            raise ToolDefinitionError(
                f"{name}'s parameter {parameter.name!r} has no type hint: add one (e.g. "
                f"{parameter.name}: int) so the model knows what to pass."
            )
        default = ... if parameter.default is parameter.empty else parameter.default
        field = pydantic.Field(default, description=descriptions.get(parameter.name))
        fields[parameter.name] = (hints[parameter.name], field)
    try:
        config = pydantic.ConfigDict(extra="forbid")  # no arguments the function lacks
        model = pydantic.create_model(name, __config__=config, **fields)
        model.model_json_schema()
    except Exception as error:  # a hint pydantic cannot describe as JSON
        raise ToolDefinitionError(
            f"{name}'s parameters cannot be described as JSON ({str(error).splitlines()[0]}): "
            "use JSON-friendly types (str, int, float, bool, lists, dicts, pydantic models)."
        ) from None
    return model


def _shown(value: Any) -> str:
    return getattr(value, "__name__", None) or repr(value)[:60]


def _not_a_function(label: str, value: Any) -> str:
    """Why ``value`` (called ``label``) cannot be a tool: what it is instead."""
    if not callable(value):
        kind = type(value).__name__
        article = "an" if kind[0].lower() in "aeiou" else "a"
        return f"{label} is {article} {kind}, not a function: give functions defined in Python."
    kind = "class" if isinstance(value, type) else "built-in" if inspect.isbuiltin(value) else ""
    return (
        f"{label} is a {kind or type(value).__name__}, not a Python function with type hints: "
        "wrap it in a function defined in the notebook."
    )
