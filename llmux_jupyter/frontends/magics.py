"""``%%llm`` (stream an answer) and ``%llm COMMAND`` (manage models)."""

from __future__ import annotations

import os
import time
from argparse import Namespace
from collections.abc import Callable

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.display import display

from ..api import LLM
from ..engine.conversation import Thread
from ..engine.manager import DEFAULT, LoadedModel
from ..errors import InvalidAudio
from ..hardware.memory import process_rss
from ..hardware.threads import CpuCores
from ..models.sources import RemoteSource, display_url
from ..models.spec import ModelSpec
from ..types.tools import shortened
from ..types.values import GenerationParams, Task
from ..units import format_bytes, format_duration, format_path
from .answer import finish_answer, stream_answer
from .arguments import cell_parser, command_parser, parse_settings, say_cell_parser
from .bench_view import bench_command
from .compare import compare_cell
from .fix import fix_last_error
from .history_view import history_command
from .image_view import ThumbnailStrip, option_images
from .insert import offer_code
from .interrupts import sigint_cancels
from .map_view import map_cell
from .operator_view import operator_cell
from .player import live_player
from .prompt import cell_prompt, spoken_text
from .render import live_output
from .status import chat_layout, completion_status, images_text, model_statuses
from .table_options import table_operation
from .tables import Table
from .tool_calls import tool_options


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
            "devices": self._devices,
            "du": self._du,
            "cache": self._cache,
            "pin": self._pin,
            "unpin": self._pin,
            "keep-alive": self._keep_alive,
            "use": self._use,
            "picker": self._picker,
            "complete": self._complete,
            "register": self._register,
            "unregister": self._unregister,
            "threads": self._threads,
            "history": lambda args: history_command(self.llm, args),
            "fix": self._fix,
            "help": self._help,
            "transcribe": self._transcribe,
            "say": self._say_line,
            "rerank": self._rerank,
            "bench": self._bench,
        }
        self._say_cell_parser = say_cell_parser()

    @line_cell_magic
    def llm(self, line: str, cell: str | None = None) -> None:
        """%%llm [options] streams a chat answer; %llm COMMAND manages models (%llm help)."""
        if cell is None:
            arguments = self._command_parser.parse_argstring(line or "help")
            self._commands[arguments.command](arguments)
        elif line.split(maxsplit=1)[:1] == ["say"]:  # %%llm say [options]: speak the cell
            arguments = self._say_cell_parser.parse_argstring(line.strip()[3:])
            self._say(arguments, spoken_text(self.shell.user_ns, cell.strip(), arguments.raw))
        else:
            self._chat(self._cell_parser.parse_argstring(line), cell)

    # -- %%llm -----------------------------------------------------------------
    def _chat(self, args: Namespace, cell: str) -> None:
        if not cell.strip():
            raise UsageError("%%llm needs a prompt: write it in the cell below the %%llm line.")
        if args.output is not None and not args.output.isidentifier():
            raise UsageError(f"-o {args.output!r}: give a Python variable name.")
        operation = table_operation(args)
        if args.images and (operation is not None or args.compare is not None):
            dropped = f"--{operation}" if operation is not None else "--compare"
            raise UsageError(f"--image goes with one answer: drop {dropped}.")
        if operation == "map":
            map_cell(self.llm, args, cell, self.shell.user_ns)
            return
        if operation is not None:
            operator_cell(self.llm, operation, args, cell, self.shell.user_ns)
            return
        if args.compare is not None and args.insert:
            raise UsageError("--compare gives several answers: --insert takes one; drop it.")
        body = cell.strip("\n")
        prompt = cell_prompt(self.llm, self.shell, body, args.model, raw=args.raw, cells=args.cells)
        params = GenerationParams(
            args.temperature, args.top_p, args.max_tokens, args.seed, tuple(args.stop)
        )
        if args.compare is not None:
            if args.tools is not None or args.schema is not None:
                raise UsageError("--compare answers in plain text: drop --tools and --schema.")
            if prompt.images:
                raise UsageError(
                    f"{{{prompt.images[0].name}}} is an image, and images go with one answer: "
                    "drop --compare."
                )
            compare_cell(self.llm, args, prompt.text, params, self.shell.user_ns)
            return
        schema = None if args.schema is None else self._variable("--schema", args.schema)
        # --image ones before the text, then the {var} ones where they were written
        images = option_images(args.images, self.shell.user_ns) + prompt.images
        offsets = [0] * len(args.images) + prompt.image_offsets
        stream = self.llm.chat(
            prompt.text,
            model=args.model,
            system=args.system,
            thread=args.thread,
            new=args.new,
            stream=True,
            context=args.context,
            schema=schema,
            images=images,
            image_offsets=offsets,
            log=not args.no_log,
            inputs=prompt.inputs(),
            **tool_options(args, self.shell.user_ns),
            **params.as_dict(),
        )
        thumbnails = ThumbnailStrip(images) if images else None
        fmt = "json" if schema is not None else args.format or self.llm.config.default_format
        output, response = stream_answer(stream, fmt, self.llm.config.max_updates_per_second)
        if thumbnails is not None:
            thumbnails.sent(response.images)
        note = offer_code(self.shell, response, fmt) if args.insert else ""
        finish_answer(output, response, max_tool_calls=args.max_tool_calls, note=note)
        if args.output:
            value = response.text if response.schema is None else response.value
            self.shell.user_ns[args.output] = value
        if response.interrupted:
            # The user pressed interrupt: stop the queued cells, as Jupyter does.
            raise KeyboardInterrupt

    def _fix(self, args: Namespace) -> None:
        _check_variable(args.output)
        params = GenerationParams(args.temperature, None, args.max_tokens, args.seed)
        fix_last_error(
            self.llm,
            self.shell,
            model=args.model,
            thread=args.thread,
            new=args.new,
            output=args.output,
            log=not args.no_log,
            **params.as_dict(),
        )

    def _variable(self, option: str, name: str) -> object:
        """The notebook variable an option names (UsageError if there is none)."""
        if not name.isidentifier() or name not in self.shell.user_ns:
            raise UsageError(f"{option} {name}: no notebook variable of that name.")
        return self.shell.user_ns[name]

    def _bench(self, args: Namespace) -> None:
        _check_variable(args.output)
        bench_command(self.llm, args, self.shell.user_ns)

    # -- speech ----------------------------------------------------------------
    def _transcribe(self, args: Namespace) -> None:
        _check_variable(args.output)
        audio = args.audio
        if audio.isidentifier() and audio in self.shell.user_ns:
            audio = self.shell.user_ns[audio]
        elif audio.isidentifier() and not os.path.exists(audio):
            raise InvalidAudio(f"{audio!r} is neither an audio file nor a notebook variable.")
        stream = self.llm.transcribe(
            audio,
            model=args.model,
            language=args.language,
            stream=True,
            **parse_settings(args.settings),
        )
        output = live_output("text", self.llm.config.max_updates_per_second)
        with sigint_cancels(stream.cancel_event):
            for segment in stream:
                output.append(f"{segment}\n")
        transcript = stream.transcript
        assert transcript is not None
        if not transcript.segments:
            output.append("(no speech found)")
        output.finish(stream.provenance, transcript.interrupted)
        self._store(args.output, transcript, transcript.interrupted)

    def _say_line(self, args: Namespace) -> None:
        self._say(args, " ".join(args.text))

    def _say(self, args: Namespace, text: str) -> None:
        _check_variable(args.output)
        stream = self.llm.say(
            text,
            model=args.model,
            voice=args.voice,
            save=args.save,
            stream=True,
            **parse_settings(args.settings),
        )
        player = live_player(args.autoplay)
        with sigint_cancels(stream.cancel_event):
            for chunk in stream:
                player.add(chunk)
        assert stream.audio is not None
        interrupted = stream.provenance["interrupted"]
        player.finish(stream.audio, stream.provenance, interrupted)
        self._store(args.output, stream.audio, interrupted)

    def _store(self, variable: str | None, value: object, interrupted: bool) -> None:
        if variable:
            self.shell.user_ns[variable] = value
        if interrupted:
            raise KeyboardInterrupt  # the user pressed interrupt: stop the queued cells

    # -- reranking -------------------------------------------------------------
    def _rerank(self, args: Namespace) -> None:
        _check_variable(args.output)
        if args.documents not in self.shell.user_ns:
            raise UsageError(
                f"No variable {args.documents!r}: give the name of a list of documents."
            )
        job = self.llm.rerank(
            " ".join(args.query),
            self.shell.user_ns[args.documents],
            model=args.model,
            top_n=args.top_n,
            stream=True,
        )
        with sigint_cancels(job.cancel_event):
            for _ in job:
                pass
        if job.reranking is None:
            raise KeyboardInterrupt  # the user pressed interrupt: stop the queued cells
        ranking = job.reranking
        table = Table(
            ["rank", "index", "score", "document"],
            title=f"{ranking.query} — {ranking.model}, {ranking.method}",
        )
        for rank, result in enumerate(ranking, 1):
            table.rows.append(
                [
                    str(rank),
                    str(result.index),
                    f"{result.score:.4f}",
                    shortened(result.document, 160),
                ]
            )
        display(table)
        self._store(args.output, ranking, False)

    # -- %llm commands ---------------------------------------------------------
    def _list(self, args: Namespace) -> None:
        if args.remote is not None:
            self._list_remote(args)
            return
        models = Table(
            ["name", "backend", "task", "source", "size", "chat template", "images", "loaded"],
            title="Models",
        )
        for model in model_statuses(self.llm):
            if args.task and model.task != args.task:
                continue
            size = "remote" if model.remote else format_bytes(model.size)
            size = "not available" if model.size is None and not model.remote else size
            spec = self.llm.manager.catalog.get(model.name)
            chat = chat_layout(spec, self.llm.backend_registry.class_of(spec.backend))
            models.rows.append([model.name, model.backend, model.task, model.source, size, chat,
                                images_text(model), "yes" if model.loaded else "no"])  # fmt: skip
        backends = Table(["backend", "tasks", "status"], title="Backends")
        for status in self.llm.backends():
            backends.rows.append([status.name, ", ".join(status.tasks), status.status])
        display(models, backends)

    def _list_remote(self, args: Namespace) -> None:
        served = self.llm.served_models(args.remote, api_key_env=args.api_key_env)
        remote = [s for s in self.llm.models() if isinstance(s.source, RemoteSource)]
        url = next((s.source.public_url for s in remote if s.name == args.remote), None)
        url = url or display_url(args.remote)
        names: dict[str, list[str]] = {}
        for spec in remote:
            if spec.source.public_url == url:
                names.setdefault(spec.source.model, []).append(spec.name)
        table = Table(["model", "owned by", "registered as"], title=f"Served at {url}")
        for model in served:
            table.rows.append([model.id, model.owned_by, ", ".join(names.get(model.id, []))])
        display(table)

    def _load(self, args: Namespace) -> None:
        settings = parse_settings(args.settings)
        for option in ("device", "draft"):
            if option in settings:
                raise UsageError(f"--set {option}=...: use --{option} instead.")
        if args.dtype is not None:
            settings["dtype"] = args.dtype
        keep_alive = DEFAULT if args.keep_alive is None else args.keep_alive
        before = next((m for m in self.llm.ps() if m.name == args.name), None)
        model = self.llm.load(
            args.name,
            device=args.device,
            pin=args.pin or None,
            keep_alive=keep_alive,
            draft=args.draft,
            **settings,
        )
        print(_load_message(model, already=model is before))

    def _pin(self, args: Namespace) -> None:
        model = self.llm.pin(args.name, args.command == "pin")
        said = f"{model.name} is {'pinned' if model.pinned else 'no longer pinned'}"
        # Unpinned, an idle model with keep-alive 0 goes at once (as %llm keep-alive NAME 0).
        print(f"{said}; keep-alive 0 unloaded it." if model.unloaded else f"{said}.")

    def _keep_alive(self, args: Namespace) -> None:
        model = self.llm.keep_alive(args.name, args.duration)
        if not model.unloaded:
            print(f"{model.name} stays loaded {format_duration(model.keep_alive)} when idle.")
        else:
            print(f"{model.name} was idle and is now unloaded.")

    def _unload(self, args: Namespace) -> None:
        if args.all == (args.name is not None):
            raise UsageError("%llm unload NAME, or %llm unload --all")
        names = self.llm.unload(args.name, all=args.all)
        print(f"Unloaded {', '.join(names)}." if names else "No model was loaded.")

    def _ps(self, args: Namespace) -> None:
        now = time.time()
        models = Table(
            ["name", "backend", "task", "device", "estimate", "measured", "state", "pinned",
             "keep-alive", "expires in", "loaded since", "last used", "draft", "threads"],
            title=f"Loaded models (process memory: {format_bytes(process_rss())})",
            empty="(no model loaded)",
        )  # fmt: skip
        for model in self.llm.ps():
            expires = model.expires_at
            models.rows.append([
                model.name, model.spec.backend, model.spec.task.value,
                _device(model.device, model.spec),
                format_bytes(model.estimate.total), format_bytes(model.measured.total),
                model.state, "yes" if model.pinned else "no", format_duration(model.keep_alive),
                "-" if expires is None else format_duration(max(0.0, expires - now)),
                _clock(model.loaded_at), _ago(model.last_used), _draft(model),
                str(model.threads or "-"),
            ])  # fmt: skip
        elsewhere = self.llm.elsewhere()
        budgets = Table(
            ["device", "used by models", "other kernels", "budget", "device total"],
            title="Memory (the budget covers this kernel's models and the other kernels')",
        )
        for use in self.llm.budgets():
            budgets.rows.append([use.device, format_bytes(use.used), format_bytes(use.others),
                                 format_bytes(use.budget), format_bytes(use.total)])  # fmt: skip
        if not args.all:
            display(models, budgets)
            return
        others = Table(
            ["notebook", "pid", "name", "backend", "device", "estimate", "measured"],
            title="Models of the other kernels on this machine",
            empty="(no other kernel holds a model)",
        )
        others.rows = [
            [kernel.notebook or "?", str(kernel.pid), held.name, held.backend, held.device,
             format_bytes(held.estimate.total), format_bytes(held.measured.total)]
            for kernel in elsewhere
            for held in kernel.models
        ]  # fmt: skip
        display(models, others, budgets)

    def _devices(self, args: Namespace) -> None:
        reports = self.llm.devices()
        devices = Table(
            ["device", "name", "memory", "free", "our budget", "compute capability", "dtypes",
             "CPU features", "cores"],
            title="Devices",
        )  # fmt: skip
        backends = Table(["device", *reports[0].backends], title="What each backend can use")
        for report in reports:
            device = report.device
            budget = "shares cpu's" if device.kind == "mps" else format_bytes(report.budget)
            devices.rows.append([
                device.id, device.name, format_bytes(device.total),
                format_bytes(device.free) if device.free else "-", budget,
                device.compute_capability or "-", ", ".join(device.dtypes),
                ", ".join(device.features) or "-", _cores(device.cores),
            ])  # fmt: skip
            backends.rows.append([device.id, *(str(s) for s in report.backends.values())])
        display(devices, backends)

    def _du(self, args: Namespace) -> None:
        usage = self.llm.du()
        models = Table(
            ["model", "source", "files", "size", "in caches"],
            title=f"Models' own files: {format_bytes(usage.model_bytes)}",
        )
        for model in usage.models:
            size = "remote" if model.kind == "remote" else format_bytes(model.size)
            files = format_path(model.path) if model.path else "not on this machine"
            files = "-" if model.kind == "remote" else files
            cached = usage.cached_for(model.name)
            models.rows.append([model.name, model.source, files, size,
                                format_bytes(cached) if cached else "-"])  # fmt: skip
        caches = Table(
            ["cache", "entry", "belongs to", "size", "note"],
            title=f"Caches: {format_bytes(usage.cache_bytes)}, of which orphaned "
            f"{format_bytes(usage.orphan_bytes)} (%llm cache clear NAME | --orphans | --all)",
            empty="(nothing cached)",
        )
        for entry in usage.entries:
            owner = ", ".join(entry.models) or ("shared" if entry.shared else "orphan")
            note = f"holds {entry.keeps}: never cleared" if entry.keeps else ""
            note = note or ("cleared only by naming its models" if entry.named_only else "")
            caches.rows.append([entry.cache, format_path(entry.path), owner,
                                format_bytes(entry.size), note])  # fmt: skip
        display(models, caches)

    def _cache(self, args: Namespace) -> None:
        if [bool(args.names), args.orphans, args.all].count(True) != 1:
            raise UsageError("%llm cache clear NAME [NAME ...], or --orphans, or --all")
        done = self.llm.clear_cache(*args.names, orphans=args.orphans, all=args.all)
        lines = [f"Freed {format_bytes(done.freed_bytes)}." if done.freed else "Nothing to clear."]
        for entry in done.freed:
            owner = ", ".join(entry.models) or ("shared" if entry.shared else "orphan")
            lines.append(f"  {format_bytes(entry.size):>10}  {entry.cache}: "
                         f"{format_path(entry.path)} ({owner})")  # fmt: skip
        for entry, reason in done.kept:
            lines.append(f"  kept {format_path(entry.path)}: {reason}")
        print("\n".join(lines))

    def _use(self, args: Namespace) -> None:
        spec = self.llm.use(args.name)
        target = "%%llm" if spec.task is Task.CHAT else f"{spec.task.value} commands"
        print(f"{spec.name} is now the default for {target}.")

    def _picker(self, args: Namespace) -> None:
        from .picker import ModelPicker  # ipywidgets only when a picker is made

        display(ModelPicker(self.llm))

    def _complete(self, args: Namespace) -> None:
        if args.state == "off" and args.model is not None:
            raise UsageError("%llm complete off, or %llm complete --model NAME: not both.")
        if args.state == "off":
            self.llm.set_completion_model(None)
        elif args.model is not None:
            self.llm.set_completion_model(args.model)
        print(completion_status(self.llm))

    def _register(self, args: Namespace) -> None:
        replaced = args.name in self.llm.manager.catalog.names()
        spec = self.llm.register(
            args.name,
            backend=args.backend,
            path=args.path,
            hf=args.hf,
            file=args.file,
            revision=args.revision,
            base_url=args.base_url,
            model=args.model,
            api_key_env=args.api_key_env,
            task=args.task,
            description=args.description,
            force=args.force,
            mmproj=args.mmproj,
            **parse_settings(args.settings),
        )
        print(
            f"Registered {spec.name} ({spec.backend}, {spec.task.value}, "
            f"{spec.source.describe()}) in {format_path(self.llm.manager.catalog.store_path)}"
            + (", replacing the model of that name." if replaced else ".")
        )

    def _unregister(self, args: Namespace) -> None:
        self.llm.unregister(args.name)
        print(f"Unregistered {args.name}.")

    def _threads(self, args: Namespace) -> None:
        logged = {thread.name: thread for thread in self.llm.history.logged_threads()}
        if args.name is None:
            table = Table(
                ["thread", "turns", "system", "where"], title="Threads", empty="(no thread yet)"
            )
            for name in self.llm.threads.names():
                thread = self.llm.threads.get(name)
                table.rows.append([name, str(len(thread.turns)), thread.system or "", "kernel"])
            for name, found in logged.items():
                if name not in self.llm.threads:
                    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(found.updated))
                    table.rows.append([name, str(found.turns), found.system or "",
                                       f"log, {when} (continues when used)"])  # fmt: skip
            display(table)
            return
        if args.name not in self.llm.threads and args.name not in logged:
            raise UsageError(f"No thread named {args.name!r} (see %llm threads).")
        thread = self.llm.threads.get(args.name)
        columns = ["#", "model", "tokens", "last answer", "user", "assistant"]
        table = Table(columns, title=f"Thread {args.name}")
        for number, turn in enumerate(thread.turns, 1):
            note = " [interrupted]" if turn.interrupted else ""
            shown = f" [+ {', '.join(i.describe() for i in turn.images)}]" if turn.images else ""
            tokens = turn.tokens.get(thread.turns[-1].model)
            counted = "" if tokens is None else f"{tokens:,}"
            used = _use_in_last(thread, number - 1)
            table.rows.append(
                [str(number), turn.model, counted, used, turn.user + shown, turn.assistant + note]
            )
        display(table)

    def _help(self, args: Namespace) -> None:
        topic = " ".join(args.topic) or None
        commands = {name: sub for name, sub in self._subparsers.items() if " " not in name}
        if topic in (None, "llm", "%%llm"):
            lines = ["%%llm [options]   stream a chat answer (options: %llm help %%llm)", ""]
            lines += [f"%llm {name:<11} {sub.description}" for name, sub in commands.items()]
            lines += ["", "%llm help COMMAND shows a command's options."]
            print("\n".join(lines))
            if topic == "%%llm":
                print("\n" + self._cell_parser.format_help())
            return
        if topic not in self._subparsers:
            raise UsageError(f"No command {topic!r}; commands: {', '.join(commands)}")
        actions = [sub for name, sub in self._subparsers.items() if name.startswith(f"{topic} ")]
        print("\n\n".join(sub.format_help() for sub in [self._subparsers[topic], *actions]))


def _device(device: str, spec: ModelSpec) -> str:
    """Where a loaded model runs; a remote one with its server's URL (never credentials)."""
    if isinstance(spec.source, RemoteSource):
        return f"{device} {spec.source.public_url}"
    return device


def _draft(model: LoadedModel) -> str:
    """The draft in use for speculative decoding, with its counts when the backend has them."""
    if model.options.draft is None:
        return "-"
    return str(model.draft_totals() or model.options.draft.name)


def _load_message(model: LoadedModel, already: bool) -> str:
    """What ``%llm load`` did: loaded (or found loaded), and when keep-alive unloads it.
    ``model`` may be unloaded already (a keep-alive that ran out on the timer's thread)."""
    if already:
        said = (
            f"{model.name} is already loaded on {model.device} (since "
            f"{_clock(model.loaded_at)}; keep-alive {format_duration(model.keep_alive)})."
        )
    else:
        note = f" {model.load_note}." if model.load_note else ""
        said = (
            f"{model.name} loaded on {model.device} in {model.load_seconds:.2f} s "
            f"({format_bytes(model.estimate.total)} estimated, "
            f"{format_bytes(model.measured.total)} measured).{note}"
        )
    if model.unloaded:
        return f"{said} Its keep-alive ({format_duration(model.keep_alive)}) has unloaded it since."
    if model.keep_alive == 0 and not model.pinned:
        return f"{said} Keep-alive 0: it unloads after its next use."
    return said


def _cores(cores: CpuCores | None) -> str:
    if cores is None:
        return "-"
    return f"{cores.physical} physical, {cores.logical} logical"


def _check_variable(name: str | None) -> None:
    if name is not None and not name.isidentifier():
        raise UsageError(f"-o {name!r}: give a Python variable name.")


def _clock(timestamp: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(timestamp))


def _ago(timestamp: float) -> str:
    seconds = max(0, int(time.time() - timestamp))
    return f"{seconds} s ago" if seconds < 120 else f"{seconds // 60} min ago"


def _use_in_last(thread: Thread, index: int) -> str:
    """What turn ``index`` was to the thread's last answer: the answer, in its prompt, or not."""
    if index == len(thread.turns) - 1:
        return "answer"
    return "in prompt" if index in thread.last_prompt else "left out"
