"""Typed answers: a pydantic model, dataclass, TypedDict or JSON-schema dict as a JSON schema
the backends decode under, and the answer's text validated back into an instance.

pydantic and jsonschema are imported when a schema is made (the ``tools`` extra), never at
``%load_ext``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from ..errors import BackendNotInstalled, InvalidParameter, SchemaError

EXTRA_HINT = "pip install 'llmux-jupyter[tools]'"


@dataclass(frozen=True)
class Schema:
    """What the answer must be: ``json_schema`` for the backend, ``parse`` for the answer."""

    target: Any  # the user's type, or the JSON-schema dict itself
    json_schema: dict[str, Any]
    name: str

    @classmethod
    def of(cls, target: Any) -> Schema:
        """The schema of a pydantic model, a dataclass, a TypedDict or a JSON-schema dict."""
        if isinstance(target, Schema):
            return target
        if isinstance(target, dict):
            _check_json_schema(target)
            return cls(target, target, str(target.get("title", "schema")))
        if not _is_type(target):
            raise InvalidParameter(
                f"{_shown(target)} is not a schema: give a pydantic model, a dataclass, a "
                "TypedDict or a JSON-schema dict."
            )
        try:
            schema = _adapter(target).json_schema()
        except BackendNotInstalled:
            raise
        except Exception as error:  # pydantic's errors name the field it cannot describe
            raise InvalidParameter(
                f"{target.__name__} cannot be described as a JSON schema ({_first_line(error)}): "
                "use JSON-friendly field types (str, int, float, bool, lists, nested models)."
            ) from None
        return cls(target, schema, target.__name__)

    def parse(self, text: str, cut: bool = False) -> Any:
        """The validated value of an answer: an instance of the type, or the dict for a
        JSON-schema dict. Raises SchemaError (with the text as ``raw``) if it does not fit;
        ``cut``: the answer was cut by the token cap (the message says so)."""
        if isinstance(self.target, dict):
            why = _dict_problem(self.target, text)
        else:
            why = _model_problem(self.target, text)
        if isinstance(why, _Problem):
            hint = " (the token cap cut it short: raise --max-tokens)" if cut else ""
            raise SchemaError(
                f"The answer does not fit {self.name}: {why.text}{hint}. Its text is on the "
                "error's .raw.",
                text,
            )
        return why


def _is_type(target: Any) -> bool:
    return isinstance(target, type) and (
        dataclasses.is_dataclass(target) or _is_typeddict(target) or _is_pydantic_model(target)
    )


def _is_typeddict(target: type) -> bool:
    """typing's or typing_extensions' TypedDict (``typing.is_typeddict`` knows only its own
    before Python 3.12)."""
    return issubclass(target, dict) and hasattr(target, "__required_keys__")


def _is_pydantic_model(target: type) -> bool:
    return any(
        base.__module__.startswith("pydantic") and base.__name__ == "BaseModel"
        for base in target.__mro__
    )


def _adapter(target: type) -> Any:
    try:
        import pydantic
    except ImportError:
        raise BackendNotInstalled(f"Schemas need pydantic: {EXTRA_HINT}") from None
    return pydantic.TypeAdapter(target)


def _check_json_schema(schema: dict[str, Any]) -> None:
    validator = _validator_class(schema)
    import jsonschema

    try:
        validator.check_schema(schema)
    except jsonschema.SchemaError as error:
        raise InvalidParameter(f"Not a valid JSON schema: {error.message}.") from None


def _validator_class(schema: dict[str, Any]) -> Any:
    try:
        import jsonschema
    except ImportError:
        raise BackendNotInstalled(f"JSON-schema dicts need jsonschema: {EXTRA_HINT}") from None
    return jsonschema.validators.validator_for(schema)


@dataclass(frozen=True)
class _Problem:
    text: str


def _model_problem(target: type, text: str) -> Any:
    """The validated instance, or the first _Problem pydantic found."""
    import pydantic

    try:
        return _adapter(target).validate_json(text)
    except pydantic.ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        return _Problem(f"{where + ': ' if where else ''}{first.get('msg', error)}")


def _dict_problem(schema: dict[str, Any], text: str) -> Any:
    """The parsed value, or the first _Problem against the JSON schema."""
    try:
        value = json.loads(text)
    except ValueError as error:
        return _Problem(f"not JSON ({error})")
    problem = next(iter(_validator_class(schema)(schema).iter_errors(value)), None)
    if problem is None:
        return value
    where = ".".join(str(part) for part in problem.absolute_path)
    return _Problem(f"{where + ': ' if where else ''}{problem.message}")


def _shown(target: Any) -> str:
    return getattr(target, "__name__", None) or repr(target)[:60]


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
