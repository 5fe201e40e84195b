"""Schemas from types and JSON-schema dicts, answers validated into instances, and
``llm.chat(schema=...)`` over a scripted backend."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pydantic
import pytest
from typing_extensions import TypedDict

from llmux_jupyter.engine.schemas import Schema
from llmux_jupyter.errors import InvalidParameter, SchemaError, UnsupportedTask

from ..conftest import ScriptedBackend

pytestmark = pytest.mark.unit


class Person(pydantic.BaseModel):
    name: str
    age: int


@dataclass
class City:
    name: str
    population: int


class Point(TypedDict):
    x: float
    y: float


PERSON_DICT = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


@pytest.mark.parametrize(
    ("target", "text", "expected"),
    [
        (Person, '{"name": "Ada", "age": 36}', Person(name="Ada", age=36)),
        (City, '{"name": "Oslo", "population": 709000}', City("Oslo", 709000)),
        (Point, '{"x": 1.5, "y": -2}', {"x": 1.5, "y": -2.0}),
        (PERSON_DICT, '{"name": "Ada", "age": 36}', {"name": "Ada", "age": 36}),
    ],
)
def test_each_kind_of_schema_parses_into_its_value(target, text, expected):
    schema = Schema.of(target)
    assert schema.json_schema["type"] == "object"
    assert set(schema.json_schema["properties"]) == set(expected if isinstance(expected, dict)
                                                        else vars(expected))  # fmt: skip
    value = schema.parse(text)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("target", "text", "where"),
    [
        (Person, '{"name": "Ada", "age": "old"}', "Person: age: Input should be"),
        (City, '{"name": "Oslo", "population": "many"}', "City: population: Input should"),
        (PERSON_DICT, '{"name": "Ada", "age": "old"}', "schema: age: 'old' is not of type"),
    ],
)
def test_an_answer_that_does_not_fit_is_a_schema_error_with_the_raw_text(target, text, where):
    with pytest.raises(SchemaError, match=f"does not fit {where}") as caught:
        Schema.of(target).parse(text)
    assert caught.value.raw == text


def test_a_cut_answer_says_to_raise_max_tokens():
    with pytest.raises(SchemaError, match="raise --max-tokens") as caught:
        Schema.of(Person).parse('{"name": "A', cut=True)
    assert caught.value.raw == '{"name": "A'


@pytest.mark.parametrize("target", [42, "Person", int, object, Person(name="a", age=1)])
def test_what_is_not_a_schema_is_refused(target):
    with pytest.raises(InvalidParameter, match="not a schema: give a pydantic model"):
        Schema.of(target)


def test_a_type_pydantic_cannot_describe_is_refused_with_its_reason():
    import typing

    class Old(typing.TypedDict):  # pydantic wants typing_extensions' before Python 3.12
        x: int

    class Opaque(pydantic.BaseModel, arbitrary_types_allowed=True):
        thing: object.__class__  # a type field: no JSON schema

    for target in (Opaque,) + ((Old,) if sys.version_info < (3, 12) else ()):
        with pytest.raises(InvalidParameter, match="cannot be described as a JSON schema"):
            Schema.of(target)


def test_an_invalid_json_schema_dict_is_refused():
    with pytest.raises(InvalidParameter, match="Not a valid JSON schema"):
        Schema.of({"type": "thing"})


def test_chat_with_a_schema_decodes_under_it_and_returns_the_value(scripted_llm):
    ScriptedBackend.replies = ['{"name": "Ada", "age": 36}']
    response = scripted_llm.chat("Who?", schema=Person)
    assert response.value == Person(name="Ada", age=36)
    assert ScriptedBackend.calls[0][0] == Person.model_json_schema()
    assert response.provenance()["schema"] == "Person"
    assert "json_schema" not in response.params


def test_chat_with_a_schema_cut_by_max_tokens_raises_and_keeps_the_thread(scripted_llm):
    ScriptedBackend.replies = ['{"name": "Ada", "age": 36}']
    with pytest.raises(SchemaError, match="raise --max-tokens") as caught:
        scripted_llm.chat("Who?", schema=Person, max_tokens=2)
    assert caught.value.raw == '{"name":'
    assert scripted_llm.last is not None and scripted_llm.last.value is None


def test_a_backend_without_schemas_says_so(scripted_llm):
    with pytest.raises(UnsupportedTask, match="cannot decode under a schema"):
        scripted_llm.chat("Who?", model="echo", schema=Person)
