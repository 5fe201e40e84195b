"""A loopback HTTP server speaking just enough of the OpenAI API to test our client code.

Streams are sent with chunked transfer encoding, as real servers do. ``hold_after`` makes a
stream stop after that many words until ``release`` is set (bounded), watching for the client
to hang up meanwhile (``hung_up``).
"""

from __future__ import annotations

import json
import select
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from llmux_jupyter.types.audio import wav_bytes

HOLD_LIMIT_S = 10.0
WAV_BYTES = wav_bytes([0.0, 0.5, -0.5, 0.25] * 400, 16000)  # 0.1 s


@dataclass
class Request:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Behaviour:
    key: str | None = None
    models: tuple[str, ...] | None = ("fake-model",)
    model_fields: dict[str, Any] = field(default_factory=dict)  # extra keys of each model entry
    words: tuple[str, ...] = ("Hello", " there", ",", " friend", "!")
    usage: tuple[int, int] | None = (11, 5)
    hold_after: int | None = None
    error_after: int | None = None
    unfinished: bool = False  # end the stream without a finish_reason (a server that failed)
    rerank: bool = True  # serve /v1/rerank (scores: the share of the query's words in a document)
    rerank_score_key: str = "relevance_score"
    rerank_omit: int | None = None  # leave this document's result out of the answer
    requests: list[Request] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    hung_up: threading.Event = field(default_factory=threading.Event)


class FakeOpenAIServer:
    def __init__(self, **behaviour: Any) -> None:
        self.behaviour = Behaviour(**behaviour)
        handler = type("Handler", (_Handler,), {"behaviour": self.behaviour})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/v1"

    @property
    def requests(self) -> list[Request]:
        return self.behaviour.requests

    def close(self) -> None:
        self.behaviour.release.set()
        self._server.shutdown()
        self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    behaviour: Behaviour
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle(b"")

    def do_POST(self) -> None:
        self._handle(self.rfile.read(int(self.headers.get("Content-Length", 0))))

    def _handle(self, body: bytes) -> None:
        b = self.behaviour
        headers = {k.lower(): v for k, v in self.headers.items()}
        b.requests.append(Request(self.path, headers, body))
        if b.key is not None and self.headers.get("Authorization") != f"Bearer {b.key}":
            return self._json(401, {"error": {"message": "Invalid API key", "type": "auth"}})
        if self.path == "/v1/models" and b.models is not None:
            data = [
                {"id": m, "object": "model", "owned_by": "fake", **b.model_fields} for m in b.models
            ]
            return self._json(200, {"object": "list", "data": data})
        if self.path == "/v1/chat/completions":
            return self._chat(json.loads(body))
        if self.path == "/v1/rerank" and b.rerank:
            return self._json(200, self._rerank(json.loads(body)))
        if self.path == "/v1/audio/transcriptions":
            if b"verbose_json" in body:
                segments = [
                    {"id": 0, "start": 0.0, "end": 1.5, "text": "Hello"},
                    {"id": 1, "start": 1.5, "end": 2.0, "text": " world"},
                ]
                return self._json(200, {"text": "Hello world", "segments": segments})
            return self._json(200, {"text": "Hello world"})
        if self.path == "/v1/audio/speech":
            self.send_response(200)
            self.send_header("Content-Type", "audio/wav")
            self.send_header("Content-Length", str(len(WAV_BYTES)))
            self.end_headers()
            self.wfile.write(WAV_BYTES)
            return None
        return self._json(404, {"error": {"message": f"no route {self.path}"}})

    def _chat(self, request: dict[str, Any]) -> None:
        b = self.behaviour
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._event({"choices": [{"index": 0, "delta": {"role": "assistant"}}]})
        for index, word in enumerate(b.words):
            if index == b.hold_after:
                self._hold()
                return
            if index == b.error_after:
                self._event({"error": {"message": "the model crashed"}})
                break
            self._event({"choices": [{"index": 0, "delta": {"content": word}}]})
        if not b.unfinished:
            self._event({"choices": [{"index": 0, "finish_reason": "stop"}]})  # no delta at all
        if b.usage and request.get("stream_options", {}).get("include_usage"):
            prompt, completion = b.usage
            usage = {"prompt_tokens": prompt, "completion_tokens": completion}
            self._event({"choices": [], "usage": {**usage, "total_tokens": prompt + completion}})
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")

    def _rerank(self, request: dict[str, Any]) -> dict[str, Any]:
        b = self.behaviour
        words = set(request["query"].lower().split())
        results = [
            {"index": i, b.rerank_score_key: len(words & set(d.lower().split())) / len(words)}
            for i, d in enumerate(request["documents"])
            if i != b.rerank_omit
        ]
        results.sort(key=lambda r: -r[b.rerank_score_key])
        return {"id": "rerank-1", "model": request["model"], "results": results}

    def _hold(self) -> None:
        """Send nothing until released; notice if the client hangs up meanwhile."""
        b = self.behaviour
        readable, _, _ = select.select([self.connection], [], [], HOLD_LIMIT_S)
        if readable and not self.connection.recv(1):
            b.hung_up.set()
        b.release.wait(HOLD_LIMIT_S)
        self.close_connection = True

    def _event(self, data: dict[str, Any]) -> None:
        base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0}
        payload = {**base, "model": "fake-model", **data}
        self._chunk(f"data: {json.dumps(payload)}\n\n".encode())

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
