import pytest

from llmux_jupyter.errors import InvalidParameter
from llmux_jupyter.types.values import GenerationParams, Usage


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"temperature": -0.1}, "temperature must be between 0.0 and 2.0, not -0.1"),
        ({"temperature": float("nan")}, "temperature must be between"),
        ({"top_p": 1.5}, "top_p must be between 0.0 and 1.0"),
        ({"max_tokens": 0}, "max_tokens must be between 1 and 1000000, not 0"),
        ({"seed": -1}, "seed must be between 0"),
        ({"stop": ("",)}, "stop strings must not be empty"),
    ],
)
def test_out_of_range_parameters_are_refused(kwargs, message):
    with pytest.raises(InvalidParameter, match=message):
        GenerationParams(**kwargs)


def test_as_dict_keeps_only_what_was_set():
    params = GenerationParams(temperature=0.0, stop=("\n",))
    assert params.as_dict() == {"temperature": 0.0, "stop": ["\n"]}


def test_tokens_per_second_counts_decode_time_only():
    usage = Usage(completion_tokens=11, time_to_first_token_s=1.0, duration_s=2.0)
    assert usage.tokens_per_second == pytest.approx(10.0)
    assert (
        Usage(completion_tokens=1, time_to_first_token_s=0.1, duration_s=0.1).tokens_per_second
        is None
    )
