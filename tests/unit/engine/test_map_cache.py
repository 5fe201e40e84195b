"""The map's answer cache: what identifies a model, what is deterministic, SQLite round trips,
and a cache folder that cannot be used."""

from __future__ import annotations

import os

import pytest

from llmux_jupyter.engine.map_cache import (
    AnswerCache,
    answer_key,
    deterministic,
    model_identity,
)
from llmux_jupyter.errors import CacheError
from llmux_jupyter.models.sources import FileSource, RemoteSource
from llmux_jupyter.models.spec import ModelSpec
from llmux_jupyter.types.batch import BatchAnswer
from llmux_jupyter.types.values import GenerationParams, Task


def spec(source, **settings) -> ModelSpec:
    return ModelSpec("m", "echo", Task.CHAT, source, settings=settings)


def test_only_greedy_or_seeded_requests_are_deterministic():
    assert deterministic(GenerationParams(temperature=0))
    assert deterministic(GenerationParams(temperature=0.8, seed=1))
    assert not deterministic(GenerationParams())
    assert not deterministic(GenerationParams(temperature=0.7))


def test_a_model_file_changing_or_other_settings_change_the_identity(model_file):
    source = FileSource(str(model_file))
    before = model_identity(spec(source))
    assert before == model_identity(spec(source))
    assert before != model_identity(spec(source, n_ctx=4096))
    os.utime(model_file, ns=(1, 1))
    assert before != model_identity(spec(source))


def test_a_remote_model_is_its_url_and_served_name():
    a = model_identity(spec(RemoteSource("http://h:8000/v1", "llama")))
    b = model_identity(spec(RemoteSource("http://h:8000/v1", "qwen")))
    assert a["server"] == ["http://h:8000/v1", "llama"] and a != b


def test_answers_round_trip_through_sqlite(tmp_path):
    cache = AnswerCache(tmp_path / "map" / "answers.sqlite3")
    assert cache.get(["nothing"]) == {}
    key = answer_key({"backend": "echo"}, {"prompt": "hi"})
    assert key != answer_key({"backend": "echo"}, {"prompt": "ho"})
    cache.put(key, BatchAnswer(7, "hello", 3, 2))
    assert cache.get([key, "other"]) == {key: BatchAnswer(0, "hello", 3, 2)}
    many = [answer_key({}, {"n": n}) for n in range(1200)]  # beyond one query's chunk
    for k in many:
        cache.put(k, BatchAnswer(0, k))
    assert len(cache.get(many)) == 1200


def test_a_cache_folder_that_cannot_be_made_is_a_cache_error(tmp_path):
    blocker = tmp_path / "map"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(CacheError, match="cache=False"):
        AnswerCache(blocker / "answers.sqlite3").put("k", BatchAnswer(0, "x"))


def test_a_measured_log_probability_is_kept_and_older_files_stay_readable(tmp_path):
    import sqlite3

    path = tmp_path / "map" / "answers.sqlite3"
    path.parent.mkdir()
    with sqlite3.connect(path) as old:  # a file written before log-probabilities were kept
        old.execute(
            "CREATE TABLE answers (key TEXT PRIMARY KEY, text TEXT, prompt_tokens INTEGER, "
            "completion_tokens INTEGER)"
        )
        old.execute("INSERT INTO answers VALUES ('old', 'kept', 1, 2)")
    old.close()
    cache = AnswerCache(path)
    assert cache.get(["old"]) == {"old": BatchAnswer(0, "kept", 1, 2)}
    cache.put("new", BatchAnswer(0, '"yes"', 5, 3, logprob=-0.25))
    assert cache.get(["new", "old"])["new"] == BatchAnswer(0, '"yes"', 5, 3, logprob=-0.25)
