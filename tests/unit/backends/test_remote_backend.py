"""The openai backend's own logic, through the real ``openai`` client, against a loopback fake."""

from __future__ import annotations

import socket
import threading

import httpx
import numpy
import openai
import pytest

from llmux_jupyter.api import LLM
from llmux_jupyter.backends.openai import (
    OpenAIBackend,
    _context_error,
    _served_window,
    _stop_reason,
)
from llmux_jupyter.errors import ContextOverflow, InvalidParameter, RemoteServerError, UnknownModel
from llmux_jupyter.models.catalog import Catalog
from llmux_jupyter.models.sources import RemoteSource
from llmux_jupyter.models.spec import LoadOptions, ModelSpec
from llmux_jupyter.types.audio import Segment, SpeechAudio, SpeechOptions, TranscribeOptions
from llmux_jupyter.types.values import GenerationParams, Task

from ..fake_openai import WAV_BYTES, FakeOpenAIServer

KEY = "sk-fake-0123456789"
FAST = {"timeout": 2.0, "max_retries": 0}


@pytest.fixture
def server(request):
    behaviour = getattr(request, "param", {})
    fake = FakeOpenAIServer(**behaviour)
    yield fake
    fake.close()


@pytest.fixture
def llm(tmp_path, server, monkeypatch):
    monkeypatch.setenv("FAKE_KEY", KEY)
    api = LLM(Catalog(tmp_path / "models.json"))
    api.register("r", backend="openai", base_url=server.url, model="fake-model", **FAST)
    yield api
    api.unload(all=True)


def backend(url: str, model: str = "fake-model", **settings) -> OpenAIBackend:
    spec = ModelSpec("b", "openai", Task.CHAT, RemoteSource(url, model), settings=settings)
    return OpenAIBackend(spec, LoadOptions())


def test_chat_streams_forwards_params_and_takes_usage_from_the_server(llm, server):
    response = llm.chat(
        "Hi", model="r", temperature=0.5, max_tokens=9, seed=3, stop=["END"], system="Be brief."
    )
    assert response.text == "Hello there, friend!"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (11, 5)
    assert response.backend == "openai"
    sent = server.requests[-1].json()
    assert sent["model"] == "fake-model" and sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert {k: sent[k] for k in ("temperature", "max_tokens", "seed", "stop")} == {
        "temperature": 0.5,
        "max_tokens": 9,
        "seed": 3,
        "stop": ["END"],
    }
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    loaded = llm.ps()[0]
    assert loaded.device == "remote" and loaded.estimate.total == 0
    llm.register("tuned", backend="openai", base_url=server.url, model="fake-model",
                 extra_body={"top_k": 20}, stream_usage=False)  # fmt: skip
    assert llm.chat("Hi", model="tuned").usage.prompt_tokens == 0
    sent = server.requests[-1].json()
    assert sent["top_k"] == 20 and "stream_options" not in sent


@pytest.mark.parametrize("server", [{"usage": None}], indirect=True)
def test_without_server_usage_pieces_are_counted(llm):
    response = llm.chat("Hi", model="r")
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (0, 5)


@pytest.mark.parametrize("server", [{"key": KEY}], indirect=True)
def test_key_is_sent_from_its_variable_and_never_shown(llm, server, monkeypatch):
    llm.register("keyed", backend="openai", base_url=server.url, model="fake-model",
                 api_key_env="FAKE_KEY", **FAST)  # fmt: skip
    assert llm.chat("Hi", model="keyed").text.startswith("Hello")
    assert server.requests[-1].headers["authorization"] == f"Bearer {KEY}"
    with pytest.raises(
        RemoteServerError, match="it needs a key: name the variable holding it with"
    ):
        llm.chat("Hi", model="r")  # no key at all
    monkeypatch.setenv("WRONG_KEY", "sk-wrong-999")
    llm.register("wrong", backend="openai", base_url=server.url, model="fake-model",
                 api_key_env="WRONG_KEY", **FAST)  # fmt: skip
    with pytest.raises(RemoteServerError) as refused:
        llm.chat("Hi", model="wrong")
    assert str(refused.value) == (
        f"the server at {server.url} refused the request (HTTP 401: Invalid API key): "
        "put the right key in $WRONG_KEY."
    )
    shown = [repr(llm.ps()), repr(llm.models()), repr(llm.manager.get_loaded("keyed").backend)]
    assert not any(KEY in text for text in shown)


@pytest.mark.parametrize("server", [{"key": "pa55word"}], indirect=True)
def test_credentials_in_the_url_are_redacted_from_errors(server):
    url = server.url.replace("http://", "http://alice:pa55word@")
    remote = backend(url, **FAST)
    with pytest.raises(RemoteServerError) as refused:
        remote.load()  # the URL's password goes as basic auth, which this server refuses
    assert "pa55word" not in str(refused.value) and "HTTP 401" in str(refused.value)


@pytest.mark.parametrize("server", [{"hold_after": 2}], indirect=True)
def test_cancel_hangs_up_at_once_even_while_the_server_is_silent(llm, server):
    stream = llm.chat("Hi", model="r", stream=True)
    deltas = iter(stream)
    assert [next(deltas), next(deltas)] == ["Hello", " there"]
    # the server now sends nothing; a cancel from another thread must end the wait
    threading.Timer(0.2, stream.cancel).start()
    assert list(deltas) == []
    assert server.behaviour.hung_up.wait(5), "the server never saw the client leave"
    assert stream.response.interrupted and stream.response.text == "Hello there"
    server.behaviour.hold_after = None
    assert llm.chat("Again", model="r").text == "Hello there, friend!"  # model still usable


@pytest.mark.parametrize("server", [{"hold_after": 2}], indirect=True)
def test_a_silent_server_hits_the_timeout_mid_answer(llm, server):
    llm.register("slow", backend="openai", base_url=server.url, model="fake-model",
                 timeout=0.5, max_retries=0)  # fmt: skip
    received: list[str] = []
    with pytest.raises(RemoteServerError, match=r"sent nothing for 0\.5 s while answering"):
        for delta in llm.chat("Hi", model="slow", stream=True, thread="t"):
            received.append(delta)
    assert received == ["Hello", " there"]
    assert llm.threads.get("t").turns == []  # a failed answer records no turn
    assert llm.manager.get_loaded("slow").busy == 0


@pytest.mark.parametrize("server", [{"error_after": 1}], indirect=True)
def test_an_error_event_mid_stream(llm):
    with pytest.raises(RemoteServerError, match=r"reported an error while answering.*crashed"):
        llm.chat("Hi", model="r")


@pytest.mark.parametrize("server", [{"unfinished": True}], indirect=True)
def test_a_stream_that_ends_without_finishing_is_an_error_and_a_failed_map_row(llm):
    with pytest.raises(RemoteServerError, match="ended the answer without finishing it"):
        llm.chat("Hi", model="r")
    result = llm.map("{item}", ["a", "b"], model="r", concurrency=2, progress=False)
    assert result.values == [None, None] and "without finishing it" in result.errors[0]


def test_connection_refused_loads_nothing(llm):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    llm.register("down", backend="openai", base_url=f"http://127.0.0.1:{port}/v1",
                 model="m", **FAST)  # fmt: skip
    with pytest.raises(RemoteServerError, match=rf"Cannot connect to the server at .*:{port}/v1"):
        llm.chat("Hi", model="down")
    assert [m.name for m in llm.ps()] == []


@pytest.mark.parametrize("server", [{"models": ("llama3.2:latest", "qwen")}], indirect=True)
def test_loading_checks_the_server_serves_the_model(server):
    with pytest.raises(RemoteServerError, match=r"not serve 'nope'; it serves llama3\.2:latest"):
        backend(server.url, "nope", **FAST).load()
    backend(server.url, "llama3.2", **FAST).load()  # Ollama's implicit :latest
    backend(server.url, "nope", check_model=False, **FAST).load()


@pytest.mark.parametrize("server", [{"models": None}], indirect=True)
def test_a_server_without_a_model_list_is_trusted(server, llm):
    backend(server.url, "anything", **FAST).load()
    with pytest.raises(RemoteServerError, match="does not list its models"):
        llm.served_models(server.url)


def test_served_models_by_url_or_registered_name(llm, server):
    assert [m.id for m in llm.served_models(server.url)] == ["fake-model"]
    assert [m.owned_by for m in llm.served_models("r")] == ["fake"]
    with pytest.raises(UnknownModel):
        llm.served_models("nobody")


@pytest.mark.parametrize(
    ("settings", "message"),
    [({"timeout": 0}, "timeout=0"), ({"max_retries": "many"}, "max_retries='many'")],
)
def test_bad_client_settings(server, settings, message):
    with pytest.raises(InvalidParameter, match=message):
        backend(server.url, **settings)


def test_transcribe_and_synthesize(server, tmp_path):
    remote = backend(server.url, **FAST)
    remote.load()
    never = threading.Event()
    audio = tmp_path / "hello.wav"
    audio.write_bytes(WAV_BYTES)
    timed = list(remote.transcribe(audio, TranscribeOptions(language="en"), never))
    assert timed == [Segment(0.0, 1.5, "Hello"), Segment(1.5, 2.0, " world")]
    assert b'name="language"' in server.requests[-1].body
    assert b"verbose_json" in server.requests[-1].body
    plain = TranscribeOptions(extra={"response_format": "json"})
    assert list(remote.transcribe(WAV_BYTES, plain, never)) == [Segment(0.0, 0.0, "Hello world")]
    samples = SpeechAudio(16000, numpy.zeros(1600, dtype=numpy.float32))
    assert len(list(remote.transcribe(samples, TranscribeOptions(), never))) == 2
    assert b"RIFF" in server.requests[-1].body  # samples went as a WAV file
    spoken = list(remote.synthesize("Hello world", SpeechOptions(extra={"voice": "nova"}), never))
    assert [(a.sample_rate, len(a.samples)) for a in spoken] == [(16000, 1600)]
    assert numpy.allclose(spoken[0].samples[:4], [0.0, 0.5, -0.5, 0.25], atol=1e-3)
    sent = server.requests[-1].json()
    assert (sent["voice"], sent["input"], sent["response_format"]) == ("nova", "Hello world", "wav")
    cancelled = threading.Event()
    cancelled.set()
    assert list(remote.synthesize("x", SpeechOptions(), cancelled)) == []
    remote.unload()


def test_the_window_comes_from_a_setting_or_the_model_list():
    assert backend("http://127.0.0.1:9/v1", context_window="4096").context_window() == 4096
    assert backend("http://127.0.0.1:9/v1").context_window() is None
    assert _served_window({"max_model_len": 8192}) == 8192  # vLLM
    assert _served_window({"meta": {"n_ctx": 2048, "n_ctx_train": 8192}}) == 2048
    assert _served_window({"owned_by": "me"}) is None


def test_the_servers_context_length_refusal_is_context_overflow():
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    body = {"message": "This model's maximum context length is 2048 tokens. However, you "
            "requested 2300 tokens", "code": "context_length_exceeded"}  # fmt: skip
    refusal = openai.BadRequestError(
        "400", response=httpx.Response(400, request=request), body=body
    )
    error = _context_error(refusal)
    assert isinstance(error, ContextOverflow)
    assert "maximum context length is 2048" in str(error) and "context_window=" in str(error)
    other = openai.BadRequestError(
        "400", response=httpx.Response(400, request=request), body={"message": "bad top_p"}
    )
    assert _context_error(other) is None


@pytest.mark.parametrize(
    ("finish", "max_tokens", "cancelled", "reason"),
    [
        ("stop", None, False, "stop"),
        ("length", 10, False, "max_tokens"),
        ("length", None, False, "context_full"),
        ("length", None, True, "interrupted"),
    ],
)
def test_stop_reasons_from_the_finish_reason(finish, max_tokens, cancelled, reason):
    cancel = threading.Event()
    if cancelled:
        cancel.set()
    assert _stop_reason(finish, cancel, GenerationParams(max_tokens=max_tokens)) == reason


def test_streamed_tool_call_deltas_are_assembled_by_index():
    from types import SimpleNamespace as Part

    from llmux_jupyter.backends.openai import _assemble

    calls: dict = {}
    for part in [
        Part(index=0, id="a", function=Part(name="multiply", arguments="")),
        Part(index=0, id=None, function=Part(name=None, arguments='{"a": 1')),
        Part(index=1, id="b", function=Part(name="add", arguments="{}")),
        Part(index=0, id=None, function=Part(name="multiply", arguments=', "b": 2}')),
    ]:
        _assemble(calls, part)
    assert list(calls.values()) == [
        {"id": "a", "name": "multiply", "arguments": '{"a": 1, "b": 2}'},
        {"id": "b", "name": "add", "arguments": "{}"},
    ]


def test_response_format_is_openais_json_schema_or_llama_cpp_pythons_json_object():
    from llmux_jupyter.backends.openai import response_format
    from llmux_jupyter.errors import InvalidParameter

    schema = {"title": "A Person", "type": "object"}
    assert response_format(schema, "json_schema")["json_schema"]["name"] == "A_Person"
    assert response_format(schema, "json_object") == {"type": "json_object", "schema": schema}
    with pytest.raises(InvalidParameter, match="schema_format='xml'"):
        response_format(schema, "xml")
