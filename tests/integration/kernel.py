"""A real Jupyter kernel driven over ZMQ, the way JupyterLab drives it."""

from __future__ import annotations

import functools
import itertools
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager, start_new_kernel

Message = dict[str, Any]
# How llama.cpp's own log lines start ("llama_model_loader: ...", "load_tensors: ...",
# "llama_kv_cache_iswa: ..."): none may reach a cell unless a test asks for verbose output.
NATIVE_LOG_LINE = re.compile(
    r"^(llama_\w+|ggml_\w+|gguf_\w+|llm_load_\w+|load_tensors|load|print_info|init_tokenizer"
    r"|sched_\w+|graph_\w+|common_\w+): ",
    re.MULTILINE,
)


@dataclass
class CellRun:
    """What one execute request produced."""

    reply: Message
    messages: list[Message] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.reply["content"]["status"]

    def of_type(self, *types: str) -> list[Message]:
        return [m for m in self.messages if m["msg_type"] in types]

    @property
    def displays(self) -> list[Message]:
        return self.of_type("display_data", "update_display_data")

    @property
    def stdout(self) -> str:
        return "".join(
            m["content"]["text"] for m in self.of_type("stream") if m["content"]["name"] == "stdout"
        )

    @property
    def stderr(self) -> str:
        return "".join(
            m["content"]["text"] for m in self.of_type("stream") if m["content"]["name"] == "stderr"
        )

    @property
    def error(self) -> Message | None:
        errors = self.of_type("error")
        return errors[-1]["content"] if errors else None

    @property
    def shown_text(self) -> str:
        """Every text the cell showed: its streams and the text of its displays."""
        texts = [m["content"]["text"] for m in self.of_type("stream")]
        for display in self.displays:
            data = display["content"]["data"]
            texts += [data[mime] for mime in ("text/plain", "text/markdown") if mime in data]
        return "\n".join(texts)

    def native_log_lines(self) -> list[str]:
        return [m.group(0) for m in NATIVE_LOG_LINE.finditer(self.shown_text)]


class Kernel:
    """One ipykernel process; ``run`` executes code and collects its output messages.

    ``python`` runs the kernel with another interpreter (e.g. the Chatterbox environment's).
    """

    def __init__(self, env: dict[str, str] | None = None, python: str | None = None) -> None:
        self.manager: KernelManager
        environment = {**os.environ, **(env or {})}
        if python is None:
            self.manager, self.client = start_new_kernel(kernel_name="python3", env=environment)
            return
        self.manager = KernelManager(
            kernel_name="llmux-test", kernel_spec_manager=_spec_manager_for(python)
        )
        self.manager.start_kernel(env=environment)
        self.client = self.manager.client()
        self.client.start_channels()
        try:
            self.client.wait_for_ready(timeout=180)
        except RuntimeError:
            self.shutdown()
            raise

    def run(
        self,
        code: str,
        timeout: float = 300,
        on_message: Callable[[Message], None] | None = None,
        native_log: bool = False,
        stdin: Callable[[str], str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> CellRun:
        """Run ``code``; unless ``native_log``, check that no llama.cpp log line was shown.
        ``stdin`` answers the cell's input() prompts (given the prompt's text); ``metadata``
        goes with the execute request, as JupyterLab sends a cell's id (``cellId``)."""
        messages: list[Message] = []

        def hook(message: Message) -> None:
            messages.append(message)
            if on_message is not None:
                on_message(message)

        def answer(message: Message) -> None:
            assert stdin is not None
            messages.append(message)
            self.client.input(stdin(message["content"]["prompt"]))

        session = self.client.session
        make_message = session.msg
        if metadata is not None:
            session.msg = functools.partial(make_message, metadata=metadata)  # type: ignore[method-assign]
        try:
            reply = self.client.execute_interactive(
                code,
                timeout=timeout,
                output_hook=hook,
                allow_stdin=stdin is not None,
                stdin_hook=answer if stdin is not None else None,
            )
        finally:
            session.msg = make_message  # type: ignore[method-assign]
        run = CellRun(reply, messages)
        assert native_log or not run.native_log_lines(), run.shown_text
        return run

    def value(self, expression: str) -> Any:
        """Evaluate an expression in the kernel and return its repr's literal value."""
        import ast

        run = self.run(f"print(repr({expression}))")
        assert run.status == "ok", run.error
        return ast.literal_eval(run.stdout.strip())

    def interrupt(self) -> None:
        self.manager.interrupt_kernel()

    def restart(self, timeout: float = 180) -> None:
        """Restart the kernel process (as the Restart button does) and wait until it answers;
        its namespace and models are gone."""
        self.manager.restart_kernel(now=True)
        self.client.wait_for_ready(timeout=timeout)

    def shutdown(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


LOAD_EXTENSION = "%load_ext llmux_jupyter\nfrom llmux_jupyter import llm\n"


@contextmanager
def llmux_kernel(
    config: Path,
    setup: str = "",
    env: dict[str, str] | None = None,
    python: str | None = None,
    timeout: float = 300,
) -> Iterator[Kernel]:
    """A kernel with its own LLMux config folder and history (``env`` may say otherwise),
    the extension loaded and ``setup`` run; shut down on exit."""
    own = {"LLMUX_CONFIG_DIR": str(config), "LLMUX_DATA_DIR": str(config / "data")}
    kernel = Kernel(env={**own, **(env or {})}, python=python)
    try:
        run = kernel.run(LOAD_EXTENSION + setup, timeout=timeout)
        assert run.status == "ok", run.error
        yield kernel
    finally:
        kernel.shutdown()


def sent_at(message: Message) -> datetime:
    date = message["header"]["date"]
    return date if isinstance(date, datetime) else datetime.fromisoformat(date)


def streamed_answer(run: CellRun) -> Message:
    """Check that a ``%%llm`` cell streamed (one display, then at least 3 in-place updates sent
    before the cell ended, each extending the last) and return its final display's content."""
    assert run.status == "ok", run.error
    displays = run.displays
    assert displays[0]["msg_type"] == "display_data"
    updates = [m for m in displays if m["msg_type"] == "update_display_data"]
    assert len(updates) >= 3, [m["content"]["data"] for m in displays]
    assert sent_at(displays[0]) < sent_at(updates[-2]) < sent_at(run.reply)
    texts = [m["content"]["data"]["text/markdown"] for m in displays]
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(texts))
    return displays[-1]["content"]


@dataclass
class InterruptedAnswer:
    """A ``%%llm`` cell interrupted while it streamed."""

    run: CellRun
    seen: str  # the answer as the last live update before the interrupt showed it
    final: Message  # the content of the last display: the partial answer, with provenance


def interrupt_answer(kernel: Kernel, cell: str, after_updates: int = 3) -> InterruptedAnswer:
    """Run a long ``%%llm`` cell, press interrupt after ``after_updates`` live updates, and
    check what every backend promises: a KeyboardInterrupt, and a final display that keeps the
    partial answer (starting with what was on screen) marked as interrupted."""
    seen: list[str] = []

    def interrupt_after_updates(message: Message) -> None:
        data = message["content"].get("data", {})
        if message["msg_type"] == "update_display_data" and "text/markdown" in data:
            seen.append(data["text/markdown"])
            if len(seen) == after_updates:
                kernel.interrupt()

    run = kernel.run(cell, on_message=interrupt_after_updates)
    assert run.status == "error" and run.error["ename"] == "KeyboardInterrupt", run.error
    final = run.displays[-1]["content"]
    assert final["metadata"]["llmux"]["interrupted"] is True
    assert "interrupted" in final["data"]["text/markdown"]
    assert final["data"]["text/plain"].startswith(seen[after_updates - 1])
    return InterruptedAnswer(run, seen[after_updates - 1], final)


def interrupt_at_rows(kernel: Kernel, rows: int) -> Callable[[Message], None]:
    """An ``on_message`` hook that presses interrupt once, when a progress bar (tqdm's
    widget) reaches ``rows`` rows."""
    pressed: list[float] = []

    def hook(message: Message) -> None:
        value = message["content"].get("data", {}).get("state", {}).get("value")
        done = value if isinstance(value, (int, float)) else 0  # the bar's, not its labels'
        if message["msg_type"] == "comm_msg" and done >= rows and not pressed:
            pressed.append(done)
            kernel.interrupt()

    return hook


def _spec_manager_for(python: str) -> KernelSpecManager:
    """A kernel spec manager that knows one kernel, ``llmux-test``, run by ``python``."""
    folder = Path(tempfile.mkdtemp(prefix="llmux-kernelspec-"))
    (folder / "llmux-test").mkdir()
    spec = {
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python ({python})",
        "language": "python",
    }
    (folder / "llmux-test" / "kernel.json").write_text(json.dumps(spec))
    return KernelSpecManager(kernel_dirs=[str(folder)])
