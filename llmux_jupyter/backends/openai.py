"""Any OpenAI-compatible server (vLLM, Ollama, llama.cpp's server, Docker Model Runner, TGI),
driven through the official ``openai`` client like a local model."""

from __future__ import annotations

import contextlib
import socket
import threading
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ContextOverflow, InvalidParameter, RemoteServerError
from ..hardware.capabilities import DeviceCapabilities, DeviceSupport
from ..models.credentials import api_key, refuse_secrets
from ..models.sources import RemoteSource, check_base_url, display_url
from ..models.spec import LoadOptions, ModelSpec
from ..types.audio import (
    Segment,
    SpeechAudio,
    SpeechOptions,
    TranscribeOptions,
    call_keywords,
    read_wav,
)
from ..types.values import GenerationParams, Message, RequiredMemory, Task
from .base import Backend, TokenCounts
from .image_parts import openai_message
from .registry import register_backend
from .settings import CONTEXT_WINDOW, Setting

if TYPE_CHECKING:
    import openai

DEFAULT_TIMEOUT = 60.0
DEFAULT_RETRIES = 2
DEFAULT_VOICE = "alloy"
NO_KEY = "none"  # the client insists on a key; servers without authentication ignore it
HANG_UP_POLL_S = 0.05


@dataclass(frozen=True)
class ServedModel:
    """One entry of a server's ``/v1/models``."""

    id: str
    owned_by: str = ""
    context_window: int | None = None  # when the server says (vLLM, llama.cpp's llama-server)
    takes_images: bool | None = None  # when the server says (capabilities, modalities)


class Server:
    """How to reach one server: URL, the NAME of the key's variable, timeout and retries.

    ``repr`` and every message show the URL without credentials, never the key.
    """

    def __init__(self, base_url: str, api_key_env: str | None, settings: Mapping[str, Any]):
        check_base_url(base_url)
        self.base_url = base_url
        self.api_key_env = api_key_env
        self.where = f"the server at {display_url(base_url)}"
        self.timeout = _number(settings, "timeout", DEFAULT_TIMEOUT, minimum=0.001)
        self.max_retries = int(_number(settings, "max_retries", DEFAULT_RETRIES, minimum=0))
        self._secrets: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"Server({display_url(self.base_url)!r}, api_key_env={self.api_key_env!r})"

    def client(self) -> openai.OpenAI:
        """A client with the key read now from its variable (or the keys file)."""
        import openai

        key = api_key(self.api_key_env)
        password = _url_password(self.base_url)
        self._secrets = tuple(s for s in (key, password) if s)
        return openai.OpenAI(
            base_url=self.base_url,
            api_key=key or NO_KEY,
            timeout=self.timeout,
            max_retries=self.max_retries,
        )

    def models(self, client: openai.OpenAI) -> list[ServedModel] | None:
        """What ``/v1/models`` lists, or None if the server has no such endpoint."""
        import openai

        try:
            return [
                ServedModel(
                    m.id,
                    m.owned_by or "",
                    _served_window(m.model_extra or {}),
                    _served_images(m.model_extra or {}),
                )
                for m in client.models.list()
            ]
        except openai.NotFoundError:
            return None
        except openai.APIError as error:
            raise self.explain(error, "listing its models") from None

    def explain(self, error: Exception, action: str, midway: bool = False) -> RemoteServerError:
        """One clear error for a failed request (key and URL credentials never included)."""
        import openai

        if isinstance(error, openai.APITimeoutError):
            text = (
                f"{self.where} sent nothing for {self.timeout:g} s while {action}: it may be "
                "overloaded or stuck. Allow longer with --set timeout=SECONDS."
            )
        elif isinstance(error, openai.APIConnectionError):
            cause = _first_line(error.__cause__ or error)
            text = (
                f"The connection to {self.where} broke while {action} ({cause}): "
                "did the server stop?"
                if midway
                else f"Cannot connect to {self.where} ({cause}): is the server running and "
                "the URL right?"
            )
        elif isinstance(error, openai.APIStatusError) and error.status_code in (401, 403):
            todo = (
                f"put the right key in ${self.api_key_env}."
                if self.api_key_env
                else "it needs a key: name the variable holding it with --api-key-env VAR."
            )
            text = f"{self.where} refused the request (HTTP {error.status_code}: "
            text += f"{_detail(error)}): {todo}"
        elif isinstance(error, openai.APIStatusError):
            text = f"{self.where} answered HTTP {error.status_code} while {action}: "
            text += _detail(error)
        else:
            text = f"{self.where} reported an error while {action}: {_detail(error)}"
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return RemoteServerError(text)


def served_models(
    base_url: str, api_key_env: str | None = None, settings: Mapping[str, Any] | None = None
) -> list[ServedModel]:
    """The models a server serves (its ``/v1/models``)."""
    server = Server(base_url, api_key_env, settings or {})
    with server.client() as client:
        models = server.models(client)
    if models is None:
        raise RemoteServerError(f"{server.where} does not list its models (no /v1/models).")
    return models


@register_backend("openai")
class OpenAIBackend(Backend):
    """A model on an OpenAI-compatible server. Settings: ``timeout`` (60 s to connect and
    between two pieces of an answer), ``max_retries`` (2), ``check_model`` (True: loading
    checks that ``/v1/models`` lists the model), ``stream_usage`` (True: ask the server for
    token counts), ``extra_body`` (a dict of server-specific request fields), ``voice``,
    ``schema_format`` (json_schema; json_object for llama-cpp-python's server).
    Reranking goes to the server's ``/v1/rerank`` (vLLM, llama.cpp's server)."""

    tasks = frozenset({Task.CHAT, Task.TRANSCRIPTION, Task.SPEECH, Task.RERANK})
    requires = ("openai",)
    extra = "remote"
    concurrent_requests = "threads"  # the client is thread-safe; the server schedules
    accepted_settings = (
        Setting("timeout", float, "seconds to connect and between two pieces (60)", minimum=0.001),
        Setting("max_retries", int, "retries of a failed request (2)", minimum=0),
        Setting("check_model", bool, "loading checks that /v1/models lists the model (true)"),
        Setting("stream_usage", bool, "ask the server for token counts (true)"),
        Setting("extra_body", dict, "server-specific request fields"),
        Setting(
            "schema_format",
            str,
            "how a JSON schema is asked for: json_schema (OpenAI, vLLM, Ollama) or json_object "
            "(llama-cpp-python's server)",
            choices=("json_schema", "json_object"),
        ),
        CONTEXT_WINDOW,
        Setting(
            "images",
            bool,
            "the model takes images (default: what the server's model list says; unknown: "
            "they are sent and the server decides)",
        ),
        Setting("voice", str, "the server's voice for speech (alloy)"),
        Setting("speed", float, "speech speed", minimum=0),
        Setting("prompt", str, "transcription: text to steer the transcript"),
        Setting("temperature", float, "transcription: sampling temperature", minimum=0),
        Setting("response_format", str, "transcription: the server's answer format"),
    )
    _window: int | None = None
    _images: bool | None = None
    json_schemas = native_tools = True

    def __init__(self, spec: ModelSpec, options: LoadOptions) -> None:
        super().__init__(spec, options)
        if not isinstance(spec.source, RemoteSource):
            raise InvalidParameter(
                f"{spec.name!r}: the openai backend drives a server; register the model with "
                "--base-url URL --model SERVED_NAME."
            )
        refuse_secrets(self.settings)
        self.source = spec.source
        self.server = Server(spec.source.base_url, spec.source.api_key_env, self.settings)
        self.device = "remote"

    @classmethod
    def device_support(cls, device: DeviceCapabilities) -> DeviceSupport:
        return DeviceSupport(None, "runs on its server")

    def required_memory(self) -> RequiredMemory:
        return RequiredMemory()  # the server holds the weights

    def load(self) -> None:
        self._client = self.server.client()
        if not self.settings.get("check_model", True):
            return
        served = self.server.models(self._client)
        names = {m.id for m in served or ()}
        model = self.source.model
        entry = next((m for m in served or () if m.id == model), None)
        if entry is not None:
            self._window, self._images = entry.context_window, entry.takes_images
        if served is not None and model not in names and f"{model}:latest" not in names:
            raise RemoteServerError(
                f"{self.server.where} does not serve {model!r}; it serves "
                f"{', '.join(sorted(names)) or 'nothing'}. Register one of those with --model "
                "(a server that accepts any name: --set check_model=False)."
            )

    def unload(self) -> None:
        client = self.__dict__.pop("_client", None)
        if client is not None:
            client.close()

    def context_window(self) -> int | None:
        """The ``context_window`` setting, else what ``/v1/models`` said; None: unknown (the
        whole thread is sent, and the server's refusal is ContextOverflow)."""
        return self.settings.get("context_window", self._window)

    @classmethod
    def takes_images(cls, spec: ModelSpec) -> bool | None:
        """The ``images`` setting; None without it (the server's model list may say)."""
        value = spec.settings.get("images")
        return None if value is None else cls.checked_settings({"images": value})["images"]

    def takes_images_now(self) -> bool | None:
        """The ``images`` setting, else what ``/v1/models`` said; None: unknown."""
        return self.settings.get("images", self._images)

    def generate(
        self, messages: Sequence[Message], params: GenerationParams, cancel: threading.Event
    ) -> Iterator[str]:
        limit = self.image_limit()
        wire = [openai_message(m, limit) for m in messages]
        summary = yield from self._stream(wire, {}, params, cancel)
        summary.pop("text")
        summary.pop("tool_calls")
        return summary

    def generate_with_tools(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        tool_choice: Any,
        params: GenerationParams,
        cancel: threading.Event,
    ) -> Iterator[str]:
        """The server's own tool calling; the calls' streamed deltas are assembled by index."""
        extra = {"tools": tools, "tool_choice": tool_choice}
        return (yield from self._stream(messages, extra, params, cancel))

    def _stream(
        self,
        messages: list[dict[str, Any]],
        extra: dict[str, Any],
        params: GenerationParams,
        cancel: threading.Event,
    ) -> Iterator[str]:
        import openai

        request: dict[str, Any] = {
            "model": self.source.model,
            "messages": messages,
            "stream": True,
            **params.as_dict(),
            **extra,
        }
        if self.settings.get("stream_usage", True):
            request["stream_options"] = {"include_usage": True}
        if "extra_body" in self.settings:
            request["extra_body"] = dict(self.settings["extra_body"])
        if params.json_schema is not None:
            request["response_format"] = response_format(
                params.json_schema, self.settings.get("schema_format", "json_schema")
            )
        action = f"answering with {self.source.model!r}"
        try:
            stream = self._client.chat.completions.create(**request)
        except openai.BadRequestError as error:
            raise _context_error(error) or self.server.explain(error, action) from None
        except openai.APIError as error:
            raise self.server.explain(error, action) from None
        pieces: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        finish = None
        counts: TokenCounts = {}
        try:
            with stream, hang_up_on(cancel, stream.response):
                for chunk in stream:
                    if chunk.usage is not None:
                        counts = {
                            "prompt_tokens": chunk.usage.prompt_tokens,
                            "completion_tokens": chunk.usage.completion_tokens,
                        }
                    delta = chunk.choices[0].delta if chunk.choices else None
                    finish = (chunk.choices[0].finish_reason if chunk.choices else None) or finish
                    text = delta.content if delta is not None else None
                    if text:
                        pieces.append(text)
                        yield text
                    for part in (delta.tool_calls or []) if delta is not None else []:
                        _assemble(calls, part)
                    if cancel.is_set():
                        break
        except openai.APIError as error:
            if not cancel.is_set():  # after a cancel, the hang-up is ours
                raise self.server.explain(error, action, midway=bool(pieces)) from None
        if finish is None and not cancel.is_set():  # e.g. it failed after answering HTTP 200
            raise RemoteServerError(
                f"{self.server.where} ended the answer without finishing it (no finish_reason) "
                f"while {action}: see its log. llama-cpp-python's server does this when the "
                "prompt is longer than its window: tell llmux the window with --set "
                "context_window=TOKENS to fit the thread."
            )
        summary = counts or {"completion_tokens": len(pieces)}
        return {
            **summary,
            "stop_reason": _stop_reason(finish, cancel, params),
            "text": "".join(pieces),
            "tool_calls": list(calls.values()),
        }

    def transcribe(
        self, audio: Path | bytes | SpeechAudio, options: TranscribeOptions, cancel: threading.Event
    ) -> Iterator[Segment]:
        """``/v1/audio/transcriptions`` (verbose_json, for timed segments). Extra options:
        prompt, temperature, response_format."""
        import openai

        if cancel.is_set():
            return None
        extra = call_keywords(
            self.settings, options.extra, ("prompt", "temperature", "response_format"), self.name
        )
        if options.language:
            extra["language"] = options.language
        extra.setdefault("response_format", "verbose_json")
        try:
            result = self._client.audio.transcriptions.create(
                model=self.source.model, file=_audio_file(audio), **extra
            )
        except openai.APIError as error:
            raise self.server.explain(error, "transcribing") from None
        if isinstance(result, str):  # response_format text, srt or vtt
            yield Segment(0.0, 0.0, result)
            return None
        segments = getattr(result, "segments", None) or []
        for segment in segments:
            yield Segment(segment.start, segment.end, segment.text)
        if not segments:
            yield Segment(0.0, float(getattr(result, "duration", 0.0) or 0.0), result.text)
        return {"language": getattr(result, "language", None),
                "duration": getattr(result, "duration", None)}  # fmt: skip

    def synthesize(
        self, text: str, options: SpeechOptions, cancel: threading.Event
    ) -> Iterator[SpeechAudio]:
        """``/v1/audio/speech`` as WAV. Extra options: voice (the server's voice name; setting
        ``voice``, else alloy), speed."""
        import openai

        if cancel.is_set():
            return
        extra = call_keywords(self.settings, options.extra, ("voice", "speed"), self.name)
        try:
            result = self._client.audio.speech.create(
                model=self.source.model, input=text, response_format="wav",
                voice=extra.pop("voice", DEFAULT_VOICE), **extra,
            )  # fmt: skip
        except openai.APIError as error:
            raise self.server.explain(error, "synthesizing speech") from None
        yield read_wav(result.content)

    def rerank(
        self, query: str, documents: Sequence[str], cancel: threading.Event
    ) -> Iterator[float]:
        """``/v1/rerank`` (the Jina/Cohere shape vLLM and llama.cpp's server speak): every
        document's ``relevance_score``, yielded in the documents' order."""
        import openai

        if cancel.is_set():
            return None
        request: dict[str, Any] = {
            "model": self.source.model,
            "query": query,
            "documents": list(documents),
            **dict(self.settings.get("extra_body", {})),
        }
        try:
            answer = self._client.post("/rerank", body=request, cast_to=object)
        except openai.NotFoundError:
            raise RemoteServerError(
                f"{self.server.where} has no /v1/rerank endpoint (or does not serve "
                f"{self.source.model!r} there): serve a reranker with vLLM or llama.cpp's server "
                "(--reranking)."
            ) from None
        except openai.APIError as error:
            raise self.server.explain(error, "reranking") from None
        yield from _scores_in_order(answer, len(documents), self.server.where)
        return {"method": "the server's /v1/rerank"}


def _served_window(fields: Mapping[str, Any]) -> int | None:
    """A model's context window from the extra fields of its ``/v1/models`` entry."""
    meta = fields.get("meta") if isinstance(fields.get("meta"), dict) else {}
    for value in (fields.get("max_model_len"), fields.get("context_length"), meta.get("n_ctx")):
        if isinstance(value, int) and value > 0:
            return value
    return None


def _served_images(fields: Mapping[str, Any]) -> bool | None:
    """Whether a ``/v1/models`` entry says its model takes images: Ollama's and llama.cpp's
    ``capabilities``, LM Studio's ``type`` (vlm), OpenRouter's ``input_modalities``; None
    when the entry says nothing (vLLM, most servers)."""
    capabilities = fields.get("capabilities")
    if isinstance(capabilities, list):
        return bool({"vision", "multimodal", "image"} & {str(c).lower() for c in capabilities})
    if fields.get("type") in ("vlm", "llm"):
        return fields["type"] == "vlm"
    architecture = fields.get("architecture")
    modalities = fields.get("input_modalities") or (
        architecture.get("input_modalities") if isinstance(architecture, dict) else None
    )
    if isinstance(modalities, list):
        return "image" in modalities
    return None


def _context_error(error: Exception) -> ContextOverflow | None:
    """The server refusing a prompt longer than its model's window, as ContextOverflow."""
    if getattr(error, "code", None) != "context_length_exceeded" and "context length" not in (
        str(error).lower()
    ):
        return None
    return ContextOverflow(
        f"The server says the prompt does not fit: {_detail(error)}. Start afresh with --new, "
        "shorten the input, or tell llmux the model's window (--set context_window=TOKENS) so "
        "it leaves old turns out."
    )


def _stop_reason(finish: str | None, cancel: threading.Event, params: GenerationParams) -> str:
    """Ours from the server's finish_reason: "length" without max_tokens is the window full."""
    if cancel.is_set():
        return "interrupted"
    if finish != "length":
        return "stop"
    return "max_tokens" if params.max_tokens is not None else "context_full"


def _assemble(calls: dict[int, dict[str, str]], part: Any) -> None:
    """Add one streamed tool-call delta to the call of its index (id and name come first,
    the arguments' JSON in pieces; some servers repeat the name)."""
    call = calls.setdefault(part.index, {"id": "", "name": "", "arguments": ""})
    call["id"] = part.id or call["id"] or f"call_{part.index}"
    if part.function is not None:
        call["name"] = part.function.name or call["name"]
        call["arguments"] += part.function.arguments or ""


def response_format(schema: dict[str, Any], kind: str) -> dict[str, Any]:
    """The request's ``response_format`` for a JSON schema: OpenAI's ``json_schema`` (vLLM,
    Ollama, llama.cpp's llama-server), or ``json_object`` with the schema alongside
    (llama-cpp-python's server)."""
    if kind == "json_object":
        return {"type": "json_object", "schema": schema}
    if kind != "json_schema":
        raise InvalidParameter(
            f"--set schema_format={kind!r}: use json_schema (OpenAI, vLLM, Ollama) or "
            "json_object (llama-cpp-python's server)."
        )
    name = "".join(c if c.isalnum() or c in "_-" else "_" for c in str(schema.get("title", "")))
    return {
        "type": "json_schema",
        "json_schema": {"name": name or "answer", "schema": schema, "strict": True},
    }


def _scores_in_order(answer: Any, count: int, where: str) -> list[float]:
    """The scores of a rerank answer, by document index; refuses an incomplete answer."""
    scores: list[float | None] = [None] * count
    results = answer.get("results") if isinstance(answer, dict) else None
    for result in results or []:
        index = result.get("index")
        score = result.get("relevance_score", result.get("score"))
        if isinstance(index, int) and 0 <= index < count and isinstance(score, (int, float)):
            scores[index] = float(score)
    missing = [i for i, score in enumerate(scores) if score is None]
    if missing:
        raise RemoteServerError(
            f"{where} answered the rerank request without scores for {len(missing)} of "
            f"{count} documents (first: #{missing[0]}): is it a reranking model?"
        )
    return [score for score in scores if score is not None]


@contextlib.contextmanager
def hang_up_on(cancel: threading.Event, response: Any) -> Iterator[None]:
    """While inside, a set ``cancel`` shuts the response's socket down at once: a read blocked
    on a silent server returns, and the server sees us leave and stops generating."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if sock is None:  # no socket to reach: stopping falls back to between-chunk checks
        yield
        return
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if cancel.wait(HANG_UP_POLL_S):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                return

    watcher = threading.Thread(target=watch, name="llmux-hang-up", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


def _audio_file(audio: Path | bytes | SpeechAudio) -> tuple[str, bytes]:
    if isinstance(audio, Path):
        return audio.name, audio.read_bytes()
    if isinstance(audio, (bytes, bytearray)):
        return "audio", bytes(audio)
    return "audio.wav", audio.to_wav()


def _number(settings: Mapping[str, Any], name: str, default: float, minimum: float) -> float:
    value = settings.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise InvalidParameter(f"--set {name}={value!r}: give a number of at least {minimum:g}.")
    return float(value)


def _url_password(base_url: str) -> str | None:
    return urllib.parse.urlsplit(base_url).password


def _detail(error: Exception) -> str:
    body = getattr(error, "body", None)
    detail = (body.get("message") or body.get("detail")) if isinstance(body, dict) else None
    return _first_line(detail if isinstance(detail, str) else str(error))[:300]


def _first_line(error: object) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
