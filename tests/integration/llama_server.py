"""llama-cpp-python's own OpenAI-compatible server on loopback: the remote backend's real server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

STARTUP_LIMIT_S = 180.0
ALIAS = "smollm2"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LlamaServer:
    """``python -m llama_cpp.server`` serving one GGUF as ``smollm2`` on 127.0.0.1.

    By default the server ends a streaming answer when another request arrives;
    ``interrupt_requests=False`` makes concurrent requests wait their turn instead;
    ``chat_format`` names llama-cpp-python's format (e.g. chatml-function-calling for tools).
    """

    def __init__(
        self,
        model: Path,
        log: Path,
        api_key: str | None = None,
        interrupt_requests: bool = True,
        chat_format: str | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log_path = log
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model)]
        command += ["--model_alias", ALIAS, "--host", "127.0.0.1", "--port", str(self.port)]
        if api_key is not None:
            command += ["--api_key", api_key]
        if not interrupt_requests:
            command += ["--interrupt_requests", "False"]
        if chat_format is not None:
            command += ["--chat_format", chat_format]
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self._wait_until_listening()

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + STARTUP_LIMIT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited:\n{self.log()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return  # uvicorn listens only once the model is loaded
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"llama_cpp.server did not listen within {STARTUP_LIMIT_S} s")

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_for_log(self, text: str, count: int = 1, seconds: float = 60.0) -> bool:
        """Whether ``text`` appears ``count`` times in the log within ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.log().count(text) >= count:
                return True
            time.sleep(0.1)
        return False

    def pause(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.resume()
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
