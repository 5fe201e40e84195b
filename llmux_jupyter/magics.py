"""``%%llm`` (stream an answer) and ``%llm COMMAND`` (manage models)."""

from __future__ import annotations

import time
from argparse import Namespace
from collections.abc import Callable

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.display import display

from .api import LLM
from .arguments import cell_parser, command_parser, parse_settings
from .backends.base import path_size
from .errors import SourceNotFound
from .interpolate import interpolate
from .interrupts import sigint_cancels
from .memory import format_bytes, process_rss
from .render import live_output
from .specs import GenerationParams, ModelSpec, Task
from .tables import Table


@magics_class
class LLMuxMagics(Magics):
    """The magics; all state lives in the ``LLM`` object they drive."""

    def __init__(self, shell: object, llm: LLM) -> None:
        super().__init__(shell)
        self.llm = llm
        self._cell_parser = cell_parser()
        self._command_parser, self._subparsers = command_parser()
        self._commands: dict[str, Callable[[Namespace], None]] = {
            "list": self._list,
            "load": self._load,
            "unload": self._unload,
            "ps": self._ps,
            "use": self._use,
            "register": self._register,
            "unregister": self._unregister,
            "threads": self._threads,
            "help": self._help,
        }

    @line_cell_magic
    def llm(self, line: str, cell: str | None = None) -> None:
        """%%llm [options] streams a chat answer; %llm COMMAND manages models (%llm help)."""
        if cell is None:
            arguments = self._command_parser.parse_argstring(line or "help")
            self._commands[arguments.command](arguments)
        else:
            self._chat(self._cell_parser.parse_argstring(line), cell)

    # -- %%llm -----------------------------------------------------------------
    def _chat(self, args: Namespace, cell: str) -> None:
        if not cell.strip():
            raise UsageError("%%llm needs a prompt: write it in the cell below the %%llm line.")
        if args.output is not None and not args.output.isidentifier():
            raise UsageError(f"-o {args.output!r}: give a Python variable name.")
        body = cell.strip("\n")
        prompt = body if args.raw else interpolate(body, self.shell.user_ns)
        params = GenerationParams(
            args.temperature, args.top_p, args.max_tokens, args.seed, tuple(args.stop)
        )
        stream = self.llm.chat(
            prompt,
            model=args.model,
            system=args.system,
            thread=args.thread,
            new=args.new,
            stream=True,
            **params.as_dict(),
        )
        output = live_output(
            args.format or self.llm.config.default_format, self.llm.config.max_updates_per_second
        )
        with sigint_cancels(stream.cancel_event):
            for delta in stream:
                output.append(delta)
        response = stream.response
        assert response is not None
        output.finish(response.provenance(), response.interrupted)
        if args.output:
            self.shell.user_ns[args.output] = response.text
        if response.interrupted:
            # The user pressed interrupt: stop the queued cells, as Jupyter does.
            raise KeyboardInterrupt

    # -- %llm commands ---------------------------------------------------------
    def _list(self, args: Namespace) -> None:
        loaded = {m.name for m in self.llm.ps()}
        models = Table(["name", "backend", "task", "source", "size", "loaded"], title="Models")
        for spec in self.llm.models():
            if args.task and spec.task.value != args.task:
                continue
            models.rows.append(
                [
                    spec.name,
                    spec.backend,
                    spec.task.value,
                    spec.source.describe(),
                    _source_size(spec),
                    "yes" if spec.name in loaded else "no",
                ]
            )
        backends = Table(["backend", "tasks", "status"], title="Backends")
        for status in self.llm.backends():
            backends.rows.append([status.name, ", ".join(status.tasks), status.status])
        display(models, backends)

    def _load(self, args: Namespace) -> None:
        settings = parse_settings(args.settings)
        for option in ("device", "draft"):
            if option in settings:
                raise UsageError(f"--set {option}=...: use --{option} instead.")
        if args.dtype is not None:
            settings["dtype"] = args.dtype
        model = self.llm.load(args.name, device=args.device, draft=args.draft, **settings)
        note = f" {model.backend.load_note}." if model.backend.load_note else ""
        print(
            f"{model.name} loaded on {model.device} in {model.load_seconds:.2f} s "
            f"({format_bytes(model.measured.total)} measured).{note}"
        )

    def _unload(self, args: Namespace) -> None:
        if args.all == (args.name is not None):
            raise UsageError("%llm unload NAME, or %llm unload --all")
        names = self.llm.unload(args.name, all=args.all)
        print(f"Unloaded {', '.join(names)}." if names else "No model was loaded.")

    def _ps(self, args: Namespace) -> None:
        table = Table(
            [
                "name",
                "backend",
                "task",
                "device",
                "estimate",
                "measured",
                "state",
                "loaded since",
                "last used",
            ],
            title=f"Loaded models (process memory: {format_bytes(process_rss())})",
            empty="(no model loaded)",
        )
        for model in self.llm.ps():
            table.rows.append(
                [
                    model.name,
                    model.spec.backend,
                    model.spec.task.value,
                    model.device,
                    format_bytes(model.estimate.total),
                    format_bytes(model.measured.total),
                    model.state,
                    _clock(model.loaded_at),
                    _ago(model.last_used),
                ]
            )
        display(table)

    def _use(self, args: Namespace) -> None:
        spec = self.llm.use(args.name)
        target = "%%llm" if spec.task is Task.CHAT else f"{spec.task.value} commands"
        print(f"{spec.name} is now the default for {target}.")

    def _register(self, args: Namespace) -> None:
        spec = self.llm.register(
            args.name,
            backend=args.backend,
            path=args.path,
            hf=args.hf,
            file=args.file,
            revision=args.revision,
            task=args.task,
            description=args.description,
            **parse_settings(args.settings),
        )
        print(
            f"Registered {spec.name} ({spec.backend}, {spec.task.value}, "
            f"{spec.source.describe()}) in {self.llm.manager.catalog.store_path}."
        )

    def _unregister(self, args: Namespace) -> None:
        self.llm.unregister(args.name)
        print(f"Unregistered {args.name}.")

    def _threads(self, args: Namespace) -> None:
        if args.name is None:
            table = Table(["thread", "turns", "system"], title="Threads", empty="(no thread yet)")
            for name in self.llm.threads.names():
                thread = self.llm.threads.get(name)
                table.rows.append([name, str(len(thread.turns)), thread.system or ""])
            display(table)
            return
        if args.name not in self.llm.threads:
            raise UsageError(f"No thread named {args.name!r} (see %llm threads).")
        table = Table(["#", "model", "user", "assistant"], title=f"Thread {args.name}")
        for number, turn in enumerate(self.llm.threads.get(args.name).turns, 1):
            note = " [interrupted]" if turn.interrupted else ""
            table.rows.append([str(number), turn.model, turn.user, turn.assistant + note])
        display(table)

    def _help(self, args: Namespace) -> None:
        if args.topic in (None, "llm", "%%llm"):
            lines = ["%%llm [options]   stream a chat answer (options: %llm help %%llm)", ""]
            lines += [
                f"%llm {name:<11} {sub.description}" for name, sub in self._subparsers.items()
            ]
            lines += ["", "%llm help COMMAND shows a command's options."]
            print("\n".join(lines))
            if args.topic == "%%llm":
                print("\n" + self._cell_parser.format_help())
            return
        if args.topic not in self._subparsers:
            raise UsageError(f"No command {args.topic!r}; commands: {', '.join(self._subparsers)}")
        print(self._subparsers[args.topic].format_help())


def _source_size(spec: ModelSpec) -> str:
    try:
        return format_bytes(path_size(spec.source.resolve()))
    except SourceNotFound:
        return "not available"


def _clock(timestamp: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(timestamp))


def _ago(timestamp: float) -> str:
    seconds = max(0, int(time.time() - timestamp))
    return f"{seconds} s ago" if seconds < 120 else f"{seconds // 60} min ago"
