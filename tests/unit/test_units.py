import pytest

from llmux_jupyter.errors import InvalidParameter
from llmux_jupyter.units import format_bytes, format_duration, parse_bytes, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [("12GiB", 12 * 2**30), ("500MB", 500_000_000), ("1.5 gib", int(1.5 * 2**30)), ("42", 42),
     (1024, 1024)],
)  # fmt: skip
def test_parse_bytes(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("5m", 300.0), ("30s", 30.0), ("1h", 3600.0), ("0", 0.0), ("-1", None), (-5, None),
     (None, None), ("250ms", 0.25), (90, 90.0)],
)  # fmt: skip
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["twelve", "5 parsecs", "--3"])
def test_bad_sizes_and_durations(bad):
    with pytest.raises(InvalidParameter, match="not a size"):
        parse_bytes(bad)
    with pytest.raises(InvalidParameter, match="not a duration"):
        parse_duration(bad)


def test_negative_size_refused():
    with pytest.raises(InvalidParameter, match="cannot be negative"):
        parse_bytes("-1GB")


def test_formatting():
    assert [format_bytes(n) for n in (None, 12, 1536, 3 * 2**30)] == [
        "-",
        "12 B",
        "1.5 KiB",
        "3.0 GiB",
    ]
    assert [format_duration(s) for s in (None, 0, 59.6, 90, 3600, 5400)] == [
        "forever", "0s", "1m", "1m30s", "1h", "1h30m"]  # fmt: skip
