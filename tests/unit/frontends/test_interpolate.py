import pytest
from IPython.core.error import UsageError

from llmux_jupyter.frontends.interpolate import interpolate


def test_variables_attributes_and_escapes():
    namespace = {"name": "GPU", "items": ["a", "b"], "x": 3.14159}
    text = "About {name}: {items[1]} {x:.2f} {{literal}}"
    assert interpolate(text, namespace) == "About GPU: b 3.14 {literal}"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{undefined_var}", "no variable 'undefined_var'"),
        ("{}", "needs a variable name"),
        ("{unclosed", "Cannot fill"),
        ("{name.nope}", "Cannot fill"),
    ],
)
def test_bad_fields_are_usage_errors(template, message):
    with pytest.raises(UsageError, match=message):
        interpolate(template, {"name": "x"})
