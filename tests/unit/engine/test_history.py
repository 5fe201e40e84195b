"""The kernel's history over the echo and scripted backends: what each answer logs, threads
resumed in a new kernel (a new LLM on the same data folder), forks, exports, clearing, the
secret filter, and a database that cannot be used."""

from __future__ import annotations

import json

import pydantic
import pytest

from llmux_jupyter.api import LLM
from llmux_jupyter.engine.history.log import notebook_origin
from llmux_jupyter.engine.history.records import Origin
from llmux_jupyter.engine.history.secrets import SecretFilter
from llmux_jupyter.errors import HistoryError, InvalidParameter, ModelLoadError, SchemaError
from llmux_jupyter.models.credentials import keys_file
from llmux_jupyter.models.sources import RemoteSource
from llmux_jupyter.models.spec import ModelSpec
from llmux_jupyter.types.values import Task

from ..conftest import ScriptedBackend
from .test_tools import decision, multiply


class City(pydantic.BaseModel):
    name: str


def restarted(llm: LLM, notebook: str = "") -> LLM:
    """A new kernel's API on the same catalog and data folder, in ``notebook``."""
    fresh = LLM(llm.manager.catalog)
    fresh.history.origin = lambda: Origin(notebook)
    return fresh


def prompts(llm: LLM, thread: str) -> list[str]:
    return [turn.user for turn in llm.threads.get(thread).turns]


def test_an_answer_logs_what_was_sent_and_what_came_back(fake_llm):
    fake_llm.history.origin = lambda: Origin("/work/trip.ipynb", "cell-7")
    for words in ("a b c", "d e f", "g h i"):
        fake_llm.chat(words, model="small", thread="t", system="terse")
    fake_llm.chat("x y", model="small", thread="t", temperature=0, max_tokens=15)
    logged = fake_llm.history.search(thread="t", n=1)[0]
    assert (logged.kind, logged.model, logged.backend) == ("chat", "small", "echo")
    assert (logged.notebook, logged.cell) == ("/work/trip.ipynb", "cell-7")
    assert logged.params == {"temperature": 0, "max_tokens": 15}
    assert (logged.system, logged.status, logged.stop_reason) == ("terse", "ok", "stop")
    # the messages sent: the thread fitted to the 60-token window, the oldest turn left out
    assert logged.details["context"]["turns_left_out"] == 1
    assert [m["content"] for m in logged.messages] == ["terse", "d e f", "d e f", "g h i",
                                                       "g h i", "x y"]  # fmt: skip
    assert logged.messages == [m.as_dict() for m in fake_llm.last.messages]
    assert (logged.answer, logged.prompt_tokens, logged.completion_tokens) == ("x y", 15, 2)
    assert logged.ttft_s is not None and logged.tokens_per_s is not None
    assert logged.conversation == fake_llm.threads.get("t").id


def test_tool_calls_and_schema_values_are_logged(scripted_llm):
    ScriptedBackend.replies = ['{"a": 2, "b": 3}', decision("answer"), "Six.", '{"name": "Oslo"}']
    scripted_llm.chat("2 times 3?", tools=[multiply], tool_choice="multiply", thread="m")
    scripted_llm.chat("Capital of Norway?", schema=City, thread="m")
    city, product = scripted_llm.history.search(thread="m")
    (call,) = product.tool_calls
    del call["seconds"]
    assert call == {"name": "multiply", "arguments": {"a": 2, "b": 3}, "result": "6",
                    "status": "ok"}  # fmt: skip
    assert product.messages[-1]["content"] == "2 times 3?"  # the thread fitted, then the prompt
    assert (city.schema, city.value, city.answer) == ("City", {"name": "Oslo"}, '{"name": "Oslo"}')
    resumed = restarted(scripted_llm).threads.get("m")
    assert [c.signature() for c in resumed.turns[0].tool_calls] == ["multiply(a=2, b=3)"]


def test_images_are_logged_as_what_was_sent_and_resume_as_text(fake_llm, echo_backend, monkeypatch):
    import numpy

    monkeypatch.setattr(echo_backend, "takes_images", classmethod(lambda cls, spec: True))
    picture = numpy.zeros((30, 40, 3), dtype=numpy.uint8)
    fake_llm.chat("what is in it", images=[picture], thread="look")
    (logged,) = fake_llm.history.search(thread="look")
    (image,) = logged.details["images"]
    assert (image["original"], image["mime"]) == ([40, 30], "image/png") and image["tokens"] > 0
    (turn,) = restarted(fake_llm).threads.get("look").turns
    assert (turn.user, turn.images) == ("what is in it", ())


def test_interrupted_failed_and_invalid_answers_are_logged_as_such(scripted_llm, fake_llm):
    stream = fake_llm.chat("a b c d e", stream=True, thread="t")
    for number, _ in enumerate(stream):
        if number == 1:
            stream.cancel()
    with pytest.raises(RuntimeError, match="injected generation failure"):
        fake_llm.chat("one two three four", model="flaky", thread="t")
    failed, interrupted = fake_llm.history.search(thread="t")
    assert (interrupted.status, interrupted.answer) == ("interrupted", "a b")
    assert failed.status == "error" and failed.answer == ""
    assert failed.error == "RuntimeError: injected generation failure"
    assert fake_llm.last.text == "a b"  # a failed backend leaves the last answer as it was
    assert prompts(restarted(fake_llm), "t") == ["a b c d e"]  # as the thread kept it

    ScriptedBackend.replies = ['{"name": "Oslo"}']
    with pytest.raises(SchemaError):
        scripted_llm.chat("Capital?", schema=City, max_tokens=3)
    invalid = scripted_llm.history.search(n=1)[0]
    assert invalid.status == "error" and "max-tokens" in invalid.error
    assert invalid.answer == '{"name": "Os' and invalid.value is None


def test_no_log_and_the_log_setting_write_nothing(fake_llm):
    fake_llm.chat("kept out", log=False)
    fake_llm.config.log = False
    fake_llm.chat("also out")
    fake_llm.map("{item}?", ["a", "b"], progress=False)
    assert fake_llm.history.search() == []
    assert not fake_llm.history.path.exists()
    fake_llm.config.log = True
    fake_llm.chat("logged")
    assert [e.prompt for e in fake_llm.history.search()] == ["logged"]


def test_a_map_is_one_row_and_a_comparison_one_per_model(fake_llm):
    import pandas

    table = pandas.DataFrame({"city": ["Oslo", "Rome", "Lima"], "n": [1, 2, 3]})
    fake_llm.map("Where is {city}?", table, temperature=0, progress=False)
    fake_llm.map("Where is {city}?", table, temperature=0, progress=False)  # from the cache
    fake_llm.compare("compare this", ["echo", "small"])
    rows = fake_llm.history.search()
    assert [(e.kind, e.thread, e.model) for e in rows] == [
        ("compare", "", "small"), ("compare", "", "echo"), ("map", "", "echo"), ("map", "", "echo")
    ]  # fmt: skip
    cached, first = rows[2], rows[3]
    assert first.prompt == "Where is {city}?" and first.answer.startswith("echo: 3 of 3 rows")
    assert first.details["shape"] == [3, 2] and first.details["columns"] == ["city", "n"]
    assert (first.details["cached"], cached.details["cached"]) == (0, 3)
    assert first.completion_tokens == 9 and first.params == {"temperature": 0}
    assert fake_llm.history.logged_threads() == []  # neither belongs to a thread


def test_a_failed_map_is_logged_with_its_reason(fake_llm):
    with pytest.raises(ModelLoadError):
        fake_llm.map("{item}?", ["a", "b"], model="broken", progress=False)
    (failed,) = fake_llm.history.search()
    assert (failed.kind, failed.status, failed.details["done"]) == ("map", "error", 0)
    assert "injected load failure" in failed.error


def test_a_named_thread_resumes_after_a_restart_and_new_starts_afresh(fake_llm):
    fake_llm.chat("first question", thread="trip", system="be brief")
    fake_llm.chat("second question", thread="trip")
    kernel = restarted(fake_llm, "/elsewhere.ipynb")  # a named thread follows you
    assert prompts(kernel, "trip") == ["first question", "second question"]
    assert kernel.threads.get("trip").system == "be brief"
    kernel.chat("third question", thread="trip")
    assert [m.content for m in kernel.last.messages][1::2] == [
        "first question", "second question", "third question"
    ]  # fmt: skip
    kernel.chat("fresh start", thread="trip", new=True)
    assert prompts(restarted(fake_llm), "trip") == ["fresh start"]


def test_the_default_thread_resumes_per_notebook_only(fake_llm):
    fake_llm.history.origin = lambda: Origin("/a.ipynb")
    fake_llm.chat("in notebook a")
    assert prompts(restarted(fake_llm, "/a.ipynb"), "default") == ["in notebook a"]
    assert prompts(restarted(fake_llm, "/b.ipynb"), "default") == []
    assert prompts(restarted(fake_llm, ""), "default") == []  # no notebook known: afresh


def test_the_logged_threads_are_those_this_notebook_would_continue(fake_llm):
    fake_llm.history.origin = lambda: Origin("/a.ipynb")
    fake_llm.chat("in notebook a")
    fake_llm.chat("named", thread="n", system="terse")
    fake_llm.chat("named again", thread="n")

    def listed(notebook: str) -> list[tuple[str, int, str | None]]:
        found = restarted(fake_llm, notebook).history.logged_threads()
        return [(thread.name, thread.turns, thread.system) for thread in found]

    assert listed("/a.ipynb") == [("n", 2, "terse"), ("default", 1, None)]
    assert listed("/b.ipynb") == listed("") == [("n", 2, "terse")]


def test_the_notebook_comes_from_jupyter_server(monkeypatch):
    monkeypatch.setenv("JPY_SESSION_NAME", "/work/analysis.ipynb")
    assert notebook_origin() == Origin("/work/analysis.ipynb", "")
    monkeypatch.delenv("JPY_SESSION_NAME")
    assert notebook_origin() == Origin()


def test_a_fork_continues_from_any_past_answer_and_survives_a_restart(fake_llm):
    for words in ("one", "two", "three"):
        fake_llm.chat(words, thread="main")
    second = fake_llm.history.search("two")[0].id
    forked = fake_llm.history.fork(second, "branch")
    assert [turn.user for turn in forked.turns] == ["one", "two"]
    fake_llm.chat("other way", thread="branch")
    assert prompts(restarted(fake_llm), "branch") == ["one", "two", "other way"]
    assert prompts(restarted(fake_llm), "main") == ["one", "two", "three"]
    fake_llm.history.fork(second, "empty-branch")
    assert prompts(restarted(fake_llm), "empty-branch") == ["one", "two"]
    with pytest.raises(InvalidParameter, match="'main' exists"):
        fake_llm.history.fork(second, "main")
    with pytest.raises(HistoryError, match="No exchange #999"):
        fake_llm.history.fork(999, "nowhere")
    fake_llm.map("{item}", ["x"], progress=False)
    with pytest.raises(InvalidParameter, match="is a map, not a turn"):
        fake_llm.history.fork(fake_llm.history.search(n=1)[0].id, "from-map")


def test_exports_round_trip_the_thread(fake_llm, tmp_path):
    fake_llm.chat("hello there", thread="x", system="be kind")
    fake_llm.chat("how are you", thread="x")
    assert fake_llm.history.export("x", tmp_path / "x.jsonl") == 5
    lines = [json.loads(line) for line in (tmp_path / "x.jsonl").read_text().splitlines()]
    thread = fake_llm.threads.get("x")
    sent = [m.as_dict() for m in thread.messages_for("next")[:-1]]
    assert [{"role": line["role"], "content": line["content"]} for line in lines] == sent
    assert lines[-1]["model"] == "echo" and lines[-1]["id"] == 2
    assert fake_llm.history.export("x", tmp_path / "x.md") == 5
    text = (tmp_path / "x.md").read_text()
    assert text.startswith("# Thread `x`") and "> **System:** be kind" in text
    assert text.index("hello there") < text.index("how are you")
    with pytest.raises(InvalidParameter, match=r"\.md .* or \.jsonl"):
        fake_llm.history.export("x", tmp_path / "x.txt")
    with pytest.raises(HistoryError, match="No logged thread named 'nope'"):
        fake_llm.history.export("nope", tmp_path / "nope.md")
    assert not (tmp_path / "x.txt").exists() and not (tmp_path / "nope.md").exists()


def test_clearing_before_a_date_by_thread_or_all(fake_llm):
    for thread in ("a", "a", "b"):
        fake_llm.chat(f"in {thread}", thread=thread)
    with pytest.raises(InvalidParameter, match="before a date, of one thread, or all"):
        fake_llm.history.clear()
    with pytest.raises(InvalidParameter, match="give a date such as"):
        fake_llm.history.count(before="last week")
    assert fake_llm.history.count(before="2000-01-01") == 0
    assert fake_llm.history.count(thread="a") == 2
    assert fake_llm.history.clear(thread="a") == 2
    assert prompts(restarted(fake_llm), "a") == []
    assert prompts(fake_llm, "a") == ["in a", "in a"]  # this kernel's thread keeps its turns
    assert fake_llm.history.clear(before="2999-12-31T23:59") == 1
    fake_llm.chat("again", thread="b")
    assert fake_llm.history.clear(all=True) == 1
    assert fake_llm.history.search() == []


def test_secrets_never_reach_the_log(fake_llm, monkeypatch):
    key, token = "sk-live-7f3a9c1e5b2d8f4a", "hf_AbCdEfGhIjKlMnOpQrSt"
    monkeypatch.setenv("MY_SERVER_KEY", key)
    monkeypatch.setenv("HF_TOKEN", token)
    server = RemoteSource("http://127.0.0.1:9/v1", "m", "MY_SERVER_KEY")
    spec = ModelSpec("served", "echo", Task.CHAT, server)
    fake_llm.manager.catalog.register(spec)
    fake_llm.chat(f"my key is {key} and my token {token}", thread="s", system=f"use {key}")
    logged = fake_llm.history.search(thread="s")[0]
    assert logged.prompt == "my key is [secret MY_SERVER_KEY] and my token [secret HF_TOKEN]"
    assert logged.answer == logged.prompt and key not in json.dumps(logged.messages)
    fake_llm.history.store.close()
    stored = b"".join(p.read_bytes() for p in fake_llm.history.path.parent.iterdir())
    assert key.encode() not in stored and token.encode() not in stored
    assert b"secret MY_SERVER_KEY" in stored


def test_keys_in_keys_env_never_reach_the_log(fake_llm):
    key = "sk-from-the-keys-file-0042"
    (keys := keys_file()).parent.mkdir(parents=True, exist_ok=True)
    keys.write_text(f"# my servers\nLAB_SERVER={key}\n")
    keys.chmod(0o600)
    fake_llm.chat(f"the lab key is {key}", thread="k")
    assert fake_llm.history.search(thread="k")[0].prompt == "the lab key is [secret LAB_SERVER]"


def test_the_secret_filter_replaces_whole_values_in_nested_data():
    secrets = SecretFilter({"LONG": "abcdefgh-12345", "INNER": "abcdefgh", "TINY": "1234"})
    assert secrets.text("x abcdefgh-12345 y abcdefgh z 1234") == (
        "x [secret LONG] y [secret INNER] z 1234"
    )
    data = {"k abcdefgh": ["abcdefgh-12345", 3, None, {"n": "abcdefgh"}]}
    assert secrets.scrub(data) == {"k [secret INNER]": ["[secret LONG]", 3, None,
                                                        {"n": "[secret INNER]"}]}  # fmt: skip


def test_a_corrupt_database_never_breaks_a_chat_and_warns_once(fake_llm, capsys):
    path = fake_llm.history.path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00garbage" * 512)
    answers = [fake_llm.chat(f"question {n}", thread="c").text for n in range(3)]
    assert answers == ["question 0", "question 1", "question 2"]
    warning = capsys.readouterr().err
    assert warning.count("\n") == 1 and "history logging is off" in warning
    assert "file is not a database" in warning and str(path.name) in warning
    assert prompts(restarted(fake_llm), "c") == []
    assert capsys.readouterr().err.count("\n") == 1  # the new kernel's own warning
    path.rename(path.with_suffix(".broken"))  # moved away: logging starts again, quietly
    fake_llm.chat("question 3", thread="c")
    assert capsys.readouterr().err == ""
    assert [e.prompt for e in fake_llm.history.search()] == ["question 3"]


def test_a_full_disk_never_breaks_a_chat_and_warns_once(fake_llm, capsys):
    fake_llm.chat("a first answer", thread="f")
    fake_llm.history.store._open().execute("PRAGMA max_page_count = 1")  # SQLite's "full"
    long = " ".join(["word"] * 2_000)
    assert [fake_llm.chat(long, thread="f").text == long for _ in range(3)] == [True] * 3
    warning = capsys.readouterr().err
    assert warning.count("\n") == 1 and "database or disk is full" in warning
    assert prompts(fake_llm, "f") == ["a first answer", long, long, long]


def test_an_unusable_folder_warns_once(fake_llm, tmp_path, monkeypatch, capsys):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("LLMUX_DATA_DIR", str(tmp_path / "a-file"))
    unusable = LLM(fake_llm.manager.catalog)
    assert [unusable.chat(f"q {n}", thread="u").text for n in range(2)] == ["q 0", "q 1"]
    assert capsys.readouterr().err.count("history logging is off") == 1
