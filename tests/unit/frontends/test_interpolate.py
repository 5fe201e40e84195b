import numpy as np
import pandas as pd
import pytest
from IPython.core.error import UsageError

from llmux_jupyter.errors import DescribeError
from llmux_jupyter.frontends.interpolate import fill


def test_variables_attributes_and_escapes():
    namespace = {"name": "GPU", "items": ["a", "b"], "x": 3.14159}
    text = "About {name}: {items[1]} {x:.2f} {{literal}}"
    assert fill(text, namespace, 100).text == "About GPU: b 3.14 {literal}"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{undefined_var}", "no variable 'undefined_var'"),
        ("{}", "needs a variable name"),
        ("{0}", "needs a variable name"),
        ("{unclosed", "Cannot fill"),
        ("{name.nope}", "AttributeError"),
        ("{Out[99]}", "KeyError: 99"),
        ("{name:%%}", "Cannot fill"),
    ],
)
def test_bad_fields_are_usage_errors(template, message):
    with pytest.raises(UsageError, match=message):
        fill(template, {"name": "x", "Out": {}}, 100)


def test_a_bare_field_is_described_and_counted_once():
    frame = pd.DataFrame({"a": range(120), "b": ["x"] * 120})
    filled = fill("{df} and again {df}", {"df": frame}, 300)
    assert filled.text.count("pandas DataFrame: 120 rows × 2 columns") == 2
    assert [d.name for d in filled.described] == ["df"]
    assert filled.described[0].kind == "DataFrame" and filled.described[0].tokens <= 300


def test_conversions_keep_pythons_meaning():
    frame = pd.DataFrame({"a": [1, 2]})
    filled = fill("{df!s}|{df!r}|{n!a}", {"df": frame, "n": "né"}, 100)
    assert filled.text == f"{frame!s}|{frame!r}|{'né'!a}"
    assert filled.described == []


def test_in_out_and_underscore_fields():
    namespace = {"In": ["", "x = 1", "x + 1"], "Out": {2: 2}, "_": 2}
    assert fill("{In[1]} / {Out[2]} / {_}", namespace, 50).text == "x = 1 / 2 / 2"


def test_images_are_set_aside_with_their_places_not_stringified():
    from PIL import Image

    picture = Image.new("RGB", (64, 64))
    pixels = np.zeros((32, 32, 3), dtype=np.uint8)
    filled = fill("look {img} and {px}: {n}", {"img": picture, "px": pixels, "n": 7}, 100)
    assert filled.text == "look  and : 7"
    assert [name for name, _ in filled.images] == ["img", "px"]
    assert filled.image_offsets == [5, 10]
    assert filled.images[0][1] is picture


def test_without_a_cap_fields_are_their_str_but_images_still_set_aside():
    from PIL import Image

    long = "word " * 5000
    filled = fill("{text} {img}", {"text": long, "img": Image.new("L", (8, 8))}, None)
    assert filled.text == f"{long} " and filled.image_offsets == [len(long) + 1]
    assert filled.described == [] and len(filled.images) == 1


def test_a_failing_describer_is_one_typed_error_naming_the_field():
    class Broken:
        def _repr_llm_(self):
            raise RuntimeError("no luck")

    with pytest.raises(DescribeError, match=r"\{thing\}: its _repr_llm_\(\) failed"):
        fill("about {thing}", {"thing": Broken()}, 100)
