"""The history database on its own: the schema, the full-text search, conversations and
forks, clearing, and the failures it turns into HistoryError."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from llmux_jupyter.engine.history.records import Exchange
from llmux_jupyter.engine.history.store import SCHEMA_VERSION, HistoryStore, match_expression
from llmux_jupyter.errors import HistoryError


def exchange(prompt: str, answer: str = "ok", **fields) -> Exchange:
    return Exchange("chat", prompt, answer, fields.pop("model", "smol"), "llamacpp", **fields)


@pytest.fixture
def store(tmp_path) -> HistoryStore:
    return HistoryStore(tmp_path / "data" / "history.sqlite3")


def test_the_schema_is_made_once_in_wal_mode(store):
    store.add(exchange("hello"))
    connection = sqlite3.connect(store.path)
    assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert connection.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert {"exchanges", "conversations", "exchanges_fts"} <= tables
    store.close()
    assert HistoryStore(store.path).count() == 1  # reopened as it is


def test_every_field_round_trips(store):
    logged = exchange(
        "What is 2*3?",
        "Six.",
        notebook="/work/a.ipynb",
        cell="c-1",
        thread="math",
        conversation="conv-1",
        params={"temperature": 0, "stop": ["\n"]},
        system="be brief",
        messages=[{"role": "user", "content": "What is 2*3?"}],
        status="ok",
        stop_reason="stop",
        prompt_tokens=12,
        completion_tokens=2,
        ttft_s=0.05,
        tokens_per_s=40.5,
        duration_s=0.1,
        tool_calls=[
            {
                "name": "multiply",
                "arguments": {"a": 2, "b": 3},
                "result": "6",
                "seconds": 0.0,
                "status": "ok",
            }
        ],
        schema="Answer",
        value={"n": 6},
        details={"context": {"window": 8192}},
    )
    number = store.add(logged)
    assert store.get(number) == logged
    assert store.get(number + 1) is None


def test_search_is_full_text_newest_first_with_filters(store):
    store.add(exchange("Where is Paris?", "In France, on the Seine.", thread="geo"))
    store.add(exchange("Name a river", "The Loire flows through France.", model="gemma"))
    store.add(exchange("Running fast", "Runners run.", thread="geo"))
    store.add(exchange("Unrelated", "Nothing here."))

    def ids(query=None, **filters):
        return [e.id for e in store.search(query, **filters)]

    assert ids("france") == [2, 1]  # prompt or answer, newest first
    assert ids("FRANCE seine") == [1]  # every word, any case
    assert ids('"flows through"') == [2] and ids('"through flows"') == []  # a phrase
    assert ids("Lo*") == [2]  # a prefix
    assert ids("run") == [3]  # porter stemming: Running, Runners, run
    assert ids("france", model="gemma") == [2]
    assert ids(thread="geo") == [3, 1]
    assert ids(None, limit=2) == [4, 3]
    assert ids("absent") == []


@pytest.mark.parametrize(
    "query", ["what's \"up", "a:b", "NOT", "-x", "(", "*", 'say "', "AND OR NEAR(x)", "^a"]
)
def test_any_query_is_words_not_syntax(store, query):
    store.add(exchange("what's up a:b NOT -x AND OR NEAR(x) ^a", "fine"))
    store.search(query)  # never an FTS5 syntax error


def test_match_expression_quotes_every_word():
    assert match_expression('paris "new york" lo*  ') == '"paris" "new york" "lo"*'
    assert match_expression('say "hi"x') == '"say" "hi" "x"'
    assert match_expression("* ** ") == ""


def test_a_conversation_comes_after_the_one_it_was_forked_from(store):
    sent = [{"role": "user", "content": "q"}]
    first = [
        store.add(exchange(f"q{i}", conversation="a", thread="t", messages=sent)) for i in range(3)
    ]
    store.add(exchange("elsewhere", conversation="b", thread="u"))
    store.add(Exchange("map", "{item}?", "3 rows", "smol", "llamacpp", conversation="a"))
    store.fork("c", "t2", "", first[1], 0.0)
    store.add(exchange("branch", conversation="c", thread="t2"))
    assert [e.prompt for e in store.conversation("a")] == ["q0", "q1", "q2"]  # chat only
    assert store.conversation("a")[0].messages == [] and store.get(first[0]).messages == sent
    assert [e.prompt for e in store.conversation("c")] == ["q0", "q1", "branch"]
    store.fork("d", "t3", "", store.search("branch")[0].id, 0.0)
    assert [e.prompt for e in store.conversation("d")] == ["q0", "q1", "branch"]


def test_the_latest_conversation_prefers_this_notebook(store):
    store.add(exchange("here", conversation="mine", thread="t", notebook="a.ipynb", created=1))
    store.add(exchange("there", conversation="theirs", thread="t", notebook="b.ipynb", created=2))
    assert store.latest_conversation("t", "a.ipynb", only_here=False) == "mine"
    assert store.latest_conversation("t", "c.ipynb", only_here=False) == "theirs"
    assert store.latest_conversation("t", "c.ipynb", only_here=True) is None
    assert store.latest_conversation("nope", "a.ipynb", only_here=False) is None


def test_clearing_removes_rows_their_index_and_empty_conversations(store):
    store.add(exchange("old secret", conversation="a", thread="t", created=100))
    store.add(exchange("new one", conversation="b", thread="u", created=200))
    store.fork("c", "t-fork", "", 1, 150)
    assert store.clear("created < ?", [150]) == 1
    assert store.search("secret") == [] and store.count() == 1
    assert [c[0] for c in store.conversations()] == ["b"]  # the fork lost its parent
    assert store.clear("thread = ?", ["u"], thread="u") == 1
    assert store.conversations() == []
    connection = sqlite3.connect(store.path)
    assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    connection.execute("INSERT INTO exchanges_fts (exchanges_fts) VALUES ('integrity-check')")


def test_threads_of_one_process_write_at_once(store):
    stores = [HistoryStore(store.path) for _ in range(4)]  # a connection each, as kernels have
    errors = []

    def write(writer: HistoryStore, number: int) -> None:
        try:
            for i in range(25):
                writer.add(exchange(f"writer {number} answer {i}", conversation=f"w{number}"))
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    workers = [threading.Thread(target=write, args=(s, n)) for n, s in enumerate(stores)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    assert store.count() == 100
    assert len(store.search("writer answer", limit=1000)) == 100


def test_a_corrupt_file_is_a_history_error(store):
    store.path.parent.mkdir(parents=True)
    store.path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(HistoryError, match=r"cannot open the history .*not a database"):
        store.add(exchange("hi"))
    assert store.path.read_bytes() == b"this is not a database" * 100  # left as it was


def test_a_folder_that_cannot_be_made_is_a_history_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(HistoryError, match="cannot open the history"):
        HistoryStore(tmp_path / "file" / "history.sqlite3").add(exchange("hi"))


def test_a_newer_schema_is_refused(store):
    store.add(exchange("hi"))
    store.close()
    connection = sqlite3.connect(store.path)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.close()
    with pytest.raises(HistoryError, match="newer llmux-jupyter"):
        HistoryStore(store.path).count()


def test_a_full_disk_is_a_history_error_and_keeps_what_was_there(store):
    store.add(exchange("kept"))
    store._open().execute("PRAGMA max_page_count = 1")  # SQLite's own "disk is full"
    with pytest.raises(HistoryError, match=r"cannot write the history .*full"):
        store.add(exchange("x" * 100_000))
    assert [e.prompt for e in store.search()] == ["kept"]


def test_the_file_is_the_users_alone(store):
    store.add(exchange("a private prompt"))
    assert store.path.stat().st_mode & 0o777 == 0o600
    assert store.path.parent.stat().st_mode & 0o777 == 0o700
    assert all(path.stat().st_mode & 0o077 == 0 for path in store.path.parent.iterdir())
