"""The describers, each with its cap and odd inputs; counted by the estimate and by a counter
of words (a stand-in tokenizer that records what it was asked to count)."""

import datetime
import json

import numpy as np
import pandas as pd
import pytest

from llmux_jupyter.engine.describe import (
    MAX_CHARS_PER_TOKEN,
    describe,
    estimate_tokens,
    fit_to_cap,
)
from llmux_jupyter.errors import DescribeError


class Words:
    """Counts whitespace-separated words; remembers the longest text it was given."""

    def __init__(self) -> None:
        self.longest = 0

    def __call__(self, text: str) -> int:
        self.longest = max(self.longest, len(text))
        return len(text.split())


def frame(rows: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "price": np.arange(rows) * 1.5,
            "name": [f"item {i}" for i in range(rows)],
            "when": pd.date_range("2024-01-01", periods=rows),
        }
    )


# -- the protocol ----------------------------------------------------------------------------
class Described:
    def __init__(self, text):
        self.text = text

    def _repr_llm_(self):
        return self.text


def test_repr_llm_is_used_and_capped():
    found = describe("thing", Described("a short summary"), 100)
    assert (found.kind, found.text, found.cut) == ("_repr_llm_", "a short summary", False)
    long = describe("thing", Described("word " * 1000), 100)
    assert long.cut and long.tokens <= 100 and "left out" in long.text


def test_repr_llm_is_looked_up_on_the_class_not_through_getattr():
    class Anything:  # answers every attribute, like a mock or a proxy
        def __getattr__(self, name):
            return lambda: 42

        def __str__(self):
            return "anything"

    assert describe("x", Anything(), 100).text == "anything"


@pytest.mark.parametrize(
    ("thing", "message"),
    [
        (Described(42), r"\{x\}: its _repr_llm_\(\) returned int, not text"),
        (Described(None), "returned NoneType"),
    ],
)
def test_repr_llm_must_return_text(thing, message):
    with pytest.raises(DescribeError, match=message):
        describe("x", thing, 100)


def test_a_describer_that_raises_names_the_variable_and_keeps_the_cause():
    class Broken:
        def __str__(self):
            raise ValueError("bad state")

    with pytest.raises(DescribeError, match=r"\{obj\}: the str\(\) describer failed") as error:
        describe("obj", Broken(), 100)
    assert isinstance(error.value.__cause__, ValueError)
    assert "{obj!r}" in str(error.value)


# -- tables ----------------------------------------------------------------------------------
def test_dataframe_shape_dtypes_first_and_last_rows():
    found = describe("df", frame(120), 2000)
    lines = found.text.splitlines()
    assert lines[0] == "pandas DataFrame: 120 rows × 3 columns"
    assert lines[1] == "Index: RangeIndex, from 0 to 119"
    assert lines[2].startswith("Columns (dtype): price (float64), name (")
    assert "when (datetime64" in lines[2]
    assert lines[3] == "First 5 and last 5 rows; 110 rows left out:"
    assert lines[4] == "|  | price | name | when |"
    assert lines[6] == "| 0 | 0 | item 0 | 2024-01-01 00:00:00 |"
    assert lines[11] == "| … | … | … | … |"
    assert lines[-1] == "| 119 | 178.5 | item 119 | 2024-04-29 00:00:00 |"
    assert not found.cut and found.tokens == estimate_tokens(found.text)


def test_dataframe_shows_fewer_rows_to_fit_the_cap():
    generous = describe("df", frame(120), 2000)
    tight = describe("df", frame(120), 250)
    assert tight.cut and tight.tokens <= 250 < generous.tokens
    assert "First 1 and last 1 rows; 118 rows left out:" in tight.text
    assert tight.text.startswith("pandas DataFrame: 120 rows × 3 columns")


def test_small_dataframe_shows_all_rows():
    found = describe("df", frame(4), 1000)
    assert "All 4 rows:" in found.text and "left out" not in found.text


def test_empty_dataframes():
    assert describe("df", pd.DataFrame(), 100).text.splitlines() == [
        "pandas DataFrame: 0 rows × 0 columns",
        "Index: RangeIndex",
        "No columns.",
        "No rows.",
    ]
    no_rows = describe("df", frame(0), 200).text
    assert "0 rows × 3 columns" in no_rows and no_rows.endswith("No rows.")


def test_multiindex_rows_and_columns():
    rows = pd.MultiIndex.from_product([["a", "b"], [2023, 2024]], names=["city", "year"])
    columns = pd.MultiIndex.from_tuples([("sales", "q1"), ("sales", "q2")])
    data = pd.DataFrame(np.arange(8).reshape(4, 2), index=rows, columns=columns)
    text = describe("df", data, 1000).text
    assert "Index: MultiIndex (city, year), from (a, 2023) to (b, 2024)" in text
    assert "('sales', 'q1') (int64)" in text
    assert "| (a, 2024) | 2 | 3 |" in text


def test_wide_dataframe_shows_the_first_columns_and_says_so():
    data = pd.DataFrame(np.zeros((3, 200)), columns=[f"c{i}" for i in range(200)])
    text = describe("df", data, 4000).text
    assert "… 140 more" in text
    assert "(the first 12 of 200 columns)" in text
    assert text.splitlines()[4].count("|") == 14  # the index and 12 columns


def test_cells_are_short_single_lines_with_pipes_escaped():
    data = pd.DataFrame({"text": ["a|b\nc", "x" * 100]})
    text = describe("df", data, 1000).text
    assert "| a\\|b c |" in text
    assert "| " + "x" * 39 + "… |" in text


def test_series():
    series = pd.Series(np.arange(50.0), name="price")
    text = describe("s", series, 1000).text
    assert text.startswith("pandas Series 'price': 50 values, dtype float64")
    assert "First 5 and last 5 values; 40 values left out:" in text
    assert "|  | price |" in text
    assert "value" in describe("s", pd.Series([1, 2]), 1000).text


def test_a_large_frame_is_never_stringified_whole():
    data = pd.DataFrame({"a": np.arange(1_000_000), "b": ["x"] * 1_000_000})
    count = Words()
    found = describe("df", data, 500, count)
    assert "1,000,000 rows" in found.text and count.longest < 2000


# -- arrays ----------------------------------------------------------------------------------
def test_array_shape_dtype_statistics_and_a_few_values():
    text = describe("a", np.arange(1000.0).reshape(100, 10), 500).text
    lines = text.splitlines()
    assert lines[0] == "numpy array: shape (100, 10), dtype float64"
    assert lines[1] == "min 0, max 999, mean 499.5"
    assert lines[2].startswith("values: [[  0.   1.   2. ...   7.   8.   9.]")
    assert "..." in text and len(text) < 500


def test_zero_d_empty_nan_bool_and_text_arrays():
    assert describe("a", np.array(5), 100).text == ("numpy array: shape (), dtype int64\nvalues: 5")
    assert describe("a", np.array([]), 100).text == (
        "numpy array: shape (0,), dtype float64\nvalues: []"
    )
    nan = describe("a", np.array([1.0, np.nan, 3.0]), 100).text
    assert "min 1, max 3, mean 2 (1 NaN left out)" in nan
    all_nan = describe("a", np.array([np.nan, np.nan]), 100).text
    assert "min nan, max nan, mean nan (2 NaN left out)" in all_nan
    assert "2 of 3 True" in describe("a", np.array([True, False, True]), 100).text
    words = describe("a", np.array(["x", "y"]), 100).text
    assert words == "numpy array: shape (2,), dtype <U1\nvalues: ['x' 'y']"
    dates = np.array(["2024-01-01", "2024-03-01"], dtype="datetime64[D]")
    assert "min 2024-01-01, max 2024-03-01" in describe("a", dates, 100).text


def test_array_fewer_values_to_fit_the_cap():
    data = np.random.default_rng(0).random((50, 50))
    found = describe("a", data, 100)
    assert found.tokens <= 100 and found.cut
    assert found.text.startswith("numpy array: shape (50, 50), dtype float64")


# -- dicts, lists ----------------------------------------------------------------------------
def test_containers_as_compact_json():
    found = describe("d", {"a": 1, 2: [1.5, None, True], "when": datetime.date(2024, 1, 2)}, 100)
    header, _, body = found.text.partition(": ")
    assert header == "dict of 3 keys"
    assert json.loads(body) == {"a": 1, "2": [1.5, None, True], "when": "2024-01-02"}
    assert describe("t", (1, 2), 100).text == "tuple of 2 items: [1, 2]"
    assert describe("s", {3}, 100).text == "set of 1 items: [3]"


def test_long_containers_are_cut_with_a_note_and_stay_json():
    found = describe("l", list(range(100_000)), 200)
    header, _, body = found.text.partition(": ")
    items = json.loads(body)
    assert header == "list of 100,000 items"
    assert items[-1].startswith("… ") and items[-1].endswith("more items")
    assert items[:3] == [0, 1, 2] and found.tokens <= 200
    keys = describe("d", {f"k{i}": i for i in range(10_000)}, 200).text
    assert json.loads(keys.partition(": ")[2])["…"].endswith("more keys")


def test_recursive_and_deep_containers():
    looped = [1, 2]
    looped.append(looped)
    assert describe("l", looped, 100).text == 'list of 3 items: [1, 2, "<recursion>"]'
    mapping = {"name": "root"}
    mapping["self"] = mapping
    assert '"self": "<recursion>"' in describe("d", mapping, 100).text
    deep = current = []
    for _ in range(5000):
        current.append([])
        current = current[0]
    assert '"…"' in describe("deep", deep, 200).text


def test_long_strings_inside_containers_are_shortened():
    text = describe("l", ["y" * 10_000], 2000).text
    assert "y" * 199 + "…" in text and "y" * 201 not in text


# -- exceptions, strings, the rest -----------------------------------------------------------
def test_exceptions_type_message_notes_and_cause():
    try:
        try:
            {}["missing"]
        except KeyError as cause:
            raise ValueError("bad input") from cause
    except ValueError as error:
        error.add_note("while parsing row 3")
        found = describe("e", error, 100)
    assert found.kind == "exception"
    assert found.text == (
        "ValueError: bad input\nwhile parsing row 3\n(raised while handling KeyError: 'missing')"
    )
    assert describe("e", json.JSONDecodeError("x", "", 0), 100).text.startswith(
        "json.decoder.JSONDecodeError: x"
    )


def test_a_ten_megabyte_string_is_cut_without_counting_it_whole():
    text = "lorem ipsum " * 900_000
    count = Words()
    found = describe("text", text, 300, count)
    assert found.cut and found.tokens <= 300
    assert found.text.startswith("lorem ipsum")
    assert found.text.endswith("characters left out: the 300-token cap (LLMux.describe_tokens)]")
    assert count.longest <= 300 * MAX_CHARS_PER_TOKEN + 100


def test_short_strings_and_plain_values_are_themselves():
    assert describe("s", "hello", 100).text == "hello"
    assert describe("n", 3.5, 100).text == "3.5"
    assert describe("n", None, 100).kind == "str()"


def test_bytes_show_their_length_and_first_bytes():
    assert describe("b", b"abc", 100).text == "3 bytes: b'abc'"
    found = describe("b", bytearray(b"\x00\x01" * 5000), 200, Words())
    shown = repr(b"\x00\x01" * 100)
    assert found.text == f"10,000 bytes: {shown} … 9,800 more bytes"


def test_the_cut_keeps_whole_lines_when_it_can():
    text = "\n".join(f"line {i}" for i in range(1000))
    found = describe("s", text, 100)
    kept = found.text.rpartition("\n[…")[0]
    assert kept.splitlines()[-1].startswith("line ") and text.startswith(kept + "\n")


def test_fit_to_cap_takes_the_first_candidate_that_fits():
    assert fit_to_cap(["a b c d", "a b", "a"], 2, Words()) == ("a b", 2, True)
    assert fit_to_cap(["a b"], 2, Words()) == ("a b", 2, False)


def test_estimate_counts_digits_and_non_ascii_high():
    assert estimate_tokens("abc") == 1
    assert estimate_tokens("0.123456") == 8
    assert estimate_tokens("日本") == 4
