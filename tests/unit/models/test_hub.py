"""Hub files through the real huggingface_hub against a loopback server that answers like
the hub (file metadata, downloads, gated and missing repositories), or against no server."""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from llmux_jupyter.errors import SourceNotFound
from llmux_jupyter.models.sources import HuggingFaceSource

COMMIT = "0123456789abcdef0123456789abcdef01234567"
SPLIT = [f"m-0000{n}-of-00003.gguf" for n in (1, 2, 3)]


class FakeHub:
    """Serves ``files`` of every repo at /{org}/{repo}/resolve/{revision}/{name} (and records
    those requests); ``errors`` maps a repo id to the status and X-Error-Code it answers."""

    def __init__(self, files: dict[str, bytes], errors: dict[str, tuple[int, str]]) -> None:
        self.requests: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:
                self._answer(body=False)

            def do_GET(self) -> None:
                self._answer(body=True)

            def _answer(self, body: bool) -> None:
                parts = self.path.lstrip("/").split("/", 4)
                if len(parts) < 5 or parts[2] != "resolve":  # e.g. the client's telemetry
                    self.send_error(404)
                    return
                hub.requests.append(f"{self.command} {self.path}")
                org, repo, _, _, name = parts
                status, code = errors.get(f"{org}/{repo}", (200, ""))
                if status == 200 and name not in files:
                    status, code = 404, "EntryNotFound"
                self.send_response(status)
                if code:
                    self.send_header("X-Error-Code", code)
                data = files.get(name, b"") if status == 200 else b""
                self.send_header("Content-Length", str(len(data)))
                if status == 200:
                    self.send_header("X-Repo-Commit", COMMIT)
                    self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def hub_at(tmp_path, monkeypatch):
    """Point huggingface_hub at an endpoint, with an empty cache and offline mode off."""
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)

    def point(url: str) -> None:  # what HF_ENDPOINT=url does when set before the import
        monkeypatch.setattr(constants, "ENDPOINT", url)
        template = url + "/{repo_id}/resolve/{revision}/{filename}"
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)

    return point


@pytest.fixture
def fake_hub(hub_at) -> Iterator[FakeHub]:
    hub = FakeHub(
        {"m.gguf": b"GGUF model", "x-00001-of-00002.gguf": b"x", **{n: n.encode() for n in SPLIT}},
        {"org/gated": (401, "GatedRepo"), "org/absent": (404, "RepoNotFound")},
    )
    hub_at(hub.url)
    yield hub
    hub.close()


def test_an_uncached_file_is_probed_then_downloaded_and_then_found_offline(fake_hub):
    source = HuggingFaceSource("org/ok", "m.gguf")
    assert source.local_path() is None and fake_hub.requests == []  # listing never downloads
    assert source.resolve().read_bytes() == b"GGUF model"
    asked = len(fake_hub.requests)
    assert source.local_path().read_bytes() == b"GGUF model"
    assert len(fake_hub.requests) == asked


def test_the_first_part_of_a_split_model_brings_the_others(fake_hub):
    first = HuggingFaceSource("org/ok", SPLIT[0]).resolve()
    assert [(first.parent / name).read_bytes() for name in SPLIT] == [n.encode() for n in SPLIT]
    with pytest.raises(
        SourceNotFound, match=r"\(its part x-00002-of-00002\.gguf\): .*no such file"
    ):
        HuggingFaceSource("org/ok", "x-00001-of-00002.gguf").resolve()


@pytest.mark.parametrize(
    ("repo", "filename", "message"),
    [
        ("org/gated", "m.gguf", r"hf:org/gated/m\.gguf is in a gated repository: accept its terms"),
        ("org/absent", "m.gguf", "The hub has no repository 'org/absent', or it is private"),
        ("org/ok", "other.gguf", r"other\.gguf: the repository has no such file; check --file"),
    ],
)
def test_hub_refusals_say_what_to_do(fake_hub, repo, filename, message):
    with pytest.raises(SourceNotFound, match=message) as refused:
        HuggingFaceSource(repo, filename).resolve()
    assert "gated" not in repo or "HF_TOKEN" in str(refused.value)
    assert "absent" not in repo or "hf auth login" in str(refused.value)


def test_an_unreachable_hub_fails_at_once_without_retries(hub_at, caplog):
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        hub_at(f"http://127.0.0.1:{closed.getsockname()[1]}")
    caplog.set_level(logging.INFO)
    started = time.perf_counter()
    with pytest.raises(SourceNotFound, match=r"Could not get hf:org/m/m\.gguf from the Hugging"):
        HuggingFaceSource("org/m", "m.gguf").resolve()
    assert time.perf_counter() - started < 5  # huggingface_hub alone retries for ~23 s
    assert "Retrying" not in caplog.text


def test_offline_mode_asks_nothing_of_the_hub(fake_hub, monkeypatch):
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(SourceNotFound, match="not in the Hugging Face cache and HF_HUB_OFFLINE"):
        HuggingFaceSource("org/ok", "m.gguf").resolve()
    with pytest.raises(SourceNotFound, match="HF_HUB_OFFLINE is set"):
        HuggingFaceSource("org/ok").resolve()
    assert fake_hub.requests == []
