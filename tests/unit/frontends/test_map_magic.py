"""``%%llm --map TABLE`` in a terminal IPython on the echo backend: rows then variables fill the
template, -o gets the MapResult, the summary and the first rows show, bad input is refused."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from llmux_jupyter.engine.map import MapResult
from llmux_jupyter.errors import InvalidParameter

pd = pytest.importorskip("pandas")


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMUX_CACHE_DIR", str(tmp_path / "cache"))


def test_map_cell_fills_rows_then_variables_and_stores_the_result(shell, capsys):
    shell.user_ns["df"] = pd.DataFrame({"text": ["fine", "poor"]}, index=["x", "y"])
    shell.user_ns["tone"] = "calm"
    shell.run_cell_magic("llm", "--map df -o result --temperature 0", "Rate {text} ({tone})")
    result = shell.user_ns["result"]
    assert isinstance(result, MapResult)
    assert result.values == ["Rate fine (calm)", "Rate poor (calm)"]
    assert result.to_pandas().loc["y", "answer"] == "Rate poor (calm)"
    shown = capsys.readouterr()
    assert "echo: 2 of 2 rows" in shown.out and "Rate poor (calm)" in shown.out
    assert "map echo" in shown.err  # the progress bar


def test_long_tables_show_their_first_rows_and_failures(shell, capsys):
    shell.user_ns["items"] = [f"row number {i}" for i in range(12)]
    shell.run_cell_magic("llm", "--map items -m flaky --no-cache", "{item}")
    out = capsys.readouterr().out
    assert "12 failed (see .errors)" in out and "The first 10 rows" in out
    assert "RuntimeError: injected generation failure" in out


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("--map nothing", "no variable 'nothing'"),
        ("--map items --compare a,b", "--compare cannot go with it"),
        ("--map items --new --raw", "--new, --raw cannot go with it"),
        ("--map items --thread t", "--thread cannot go with it"),
        ("--map items --tools f --approve", "--tools, --approve cannot go with it"),
        ("--map items --schema Nope", "--schema Nope: no variable 'Nope'"),
        ("--no-cache", "--no-cache go with --map TABLE"),
        ("--batch-size 4 --concurrency 2", "--batch-size, --concurrency go with --map TABLE"),
        ("--map items --batch-size x", "invalid int value"),
    ],
)
def test_wrong_map_syntax_is_a_usage_error(shell, line, message):
    shell.user_ns["items"] = ["a"]
    with pytest.raises(UsageError, match=message):
        shell.run_cell_magic("llm", line, "{item}")


def test_a_field_nothing_provides_is_named_and_nothing_runs(shell, fake_llm):
    shell.user_ns["items"] = ["a"]
    with pytest.raises(InvalidParameter, match="'missing'"):
        shell.run_cell_magic("llm", "--map items -o out", "{item} {missing}")
    assert "out" not in shell.user_ns and fake_llm.ps() == []
