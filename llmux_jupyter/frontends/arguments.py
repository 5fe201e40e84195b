"""Argument parsers of ``%%llm`` and the ``%llm`` commands (IPython's MagicArgumentParser:
bad input raises UsageError, never exits; quoting as in ``quoting.split_arguments``)."""

from __future__ import annotations

import ast
from argparse import ArgumentTypeError
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import MagicArgumentParser

from ..config import FORMATS
from ..engine.bench import DEFAULT_MAX_TOKENS, DEFAULT_PROMPTS
from ..engine.context import POLICIES
from ..engine.tool_loop import DEFAULT_MAX_CALLS, TOOL_TOKENS
from ..types.values import DTYPES, Task
from .quoting import split_arguments

# Commands whose first word may be free text: the action it then means, and the others.
HISTORY_ACTIONS = ("search", "show", "fork", "export", "clear")
DEFAULT_ACTIONS = {"history": ("search", HISTORY_ACTIONS)}


class LineParser(MagicArgumentParser):
    """A MagicArgumentParser whose lines split with our quoting rules (its sub-parsers too)."""

    def parse_argstring(self, argstring: str, *, partial: bool = False) -> Any:
        argv = self.words(argstring)
        return self.parse_known_args(argv) if partial else self.parse_args(argv)

    def words(self, argstring: str) -> list[str]:
        return split_arguments(argstring)


class CommandParser(LineParser):
    """The ``%llm`` parser: ``%llm history QUERY`` means ``%llm history search QUERY``."""

    def words(self, argstring: str) -> list[str]:
        argv = super().words(argstring)
        if argv and argv[0] in DEFAULT_ACTIONS:
            default, actions = DEFAULT_ACTIONS[argv[0]]
            if len(argv) == 1 or argv[1] not in (*actions, "-h", "--help"):
                argv.insert(1, default)
        return argv


def cell_parser() -> LineParser:
    # IPython's help formatter writes "%" before the prog: "%llm" shows as %%llm.
    parser = LineParser(prog="%llm", description="Stream a chat model's answer.")
    parser.add_argument("-m", "--model", help="model name (default: %%llm use, else smollm2)")
    parser.add_argument("--system", help="system prompt (kept by the thread)")
    parser.add_argument("--temperature", type=float, help="0-2; 0 is greedy")
    parser.add_argument("--top-p", type=float, help="nucleus sampling, 0-1")
    parser.add_argument("--max-tokens", type=int, help="cap on the answer's tokens")
    parser.add_argument("--seed", type=int, help="sampling seed, for repeatable answers")
    parser.add_argument(
        "--stop", action="append", default=[], metavar="TEXT", help="stop string (repeatable)"
    )
    parser.add_argument(
        "-o", "--output", metavar="VAR", help="store the answer text (with --schema: the value)"
    )
    parser.add_argument(
        "--schema",
        metavar="TYPE",
        help="answer as JSON of this pydantic model, dataclass, TypedDict or JSON-schema dict",
    )
    parser.add_argument(
        "--tools",
        type=model_names,
        metavar="F,G",
        help="functions the model may call (or a variable holding a list of them)",
    )
    parser.add_argument(
        "--tool-choice", default="auto", metavar="CHOICE", help="auto, required, none or NAME"
    )
    parser.add_argument(
        "--max-tool-calls", type=int, default=DEFAULT_MAX_CALLS, metavar="N", help="(5)"
    )
    parser.add_argument(
        "--tool-tokens",
        type=int,
        default=TOOL_TOKENS,
        metavar="N",
        help=f"most tokens for one tool call, apart from --max-tokens ({TOOL_TOKENS})",
    )
    parser.add_argument("--approve", action="store_true", help="ask before each tool call")
    parser.add_argument(
        "--thread",
        default="default",
        help="conversation thread name; a thread continues from the history after a restart "
        "(the default thread per notebook)",
    )
    parser.add_argument("--new", action="store_true", help="start the thread afresh")
    parser.add_argument(
        "--no-log",
        action="store_true",
        help="keep this cell out of the history (so also out of its thread after a restart)",
    )
    parser.add_argument("-f", "--format", choices=FORMATS, help="how to render the answer")
    parser.add_argument(
        "--raw",
        action="store_true",
        help="send the cell as is: no {var}. Otherwise {var} is described for the model (a "
        "DataFrame's shape, dtypes and first and last rows; an array's shape and statistics; "
        "an object's _repr_llm_()) within %%config LLMux.describe_tokens; {var!s} and "
        "{var!r} are Python's str() and repr()",
    )
    parser.add_argument(
        "--cells",
        type=positive,
        metavar="N",
        help="also send the last N cells run before this one: their sources and results "
        "(Out[n]), each within LLMux.describe_tokens",
    )
    parser.add_argument(
        "--insert",
        action="store_true",
        help="offer the answer's first fenced code block (with -f code, else the whole "
        "answer) as a new cell below, not run; -o still gets the whole answer",
    )
    parser.add_argument(
        "--image",
        dest="images",
        action="append",
        default=[],
        metavar="PATH_OR_VAR",
        help="an image for a model that takes images (repeatable, sent in this order before "
        "the text): a file, or a variable holding a PIL image, a matplotlib Figure, a numpy "
        "HxW/HxWx3|4 array or PNG/JPEG bytes; downscaled to the model's size",
    )
    parser.add_argument(
        "--context",
        choices=POLICIES,
        help="a thread longer than the context window: leave old turns out (truncate), or "
        "refuse (error); default %%config LLMux.context_policy",
    )
    parser.add_argument(
        "--compare",
        type=model_names,
        metavar="A,B[,C]",
        help="the same prompt to each model (fresh threads), answers side by side",
    )
    _add_map_options(parser)
    return parser


def _add_map_options(parser: MagicArgumentParser) -> None:
    parser.add_argument(
        "--map",
        metavar="TABLE",
        help="the cell is a template: answer it for every row of TABLE (a DataFrame, a list "
        "of dicts or of strings); -o gets a MapResult",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="--map and the operators: do not read or store cached answers",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        metavar="N",
        help="--map: rows decoded at once (transformers: rows per batch; llama.cpp: parallel "
        "sequences, 8 by default, 1 for one row after another)",
    )
    parser.add_argument(
        "--concurrency", type=int, metavar="N", help="--map: requests at once (servers; 8)"
    )
    _add_operator_options(parser)


def _add_operator_options(parser: MagicArgumentParser) -> None:
    parser.add_argument(
        "--filter",
        metavar="TABLE",
        help="keep the rows of TABLE for which the model answers yes to the cell (a question "
        "or statement naming {columns}); -o gets a FilterResult (.kept, .mask, .confidence)",
    )
    parser.add_argument(
        "--classify",
        metavar="TABLE",
        help="one of --labels for every row of TABLE, asked by the cell; -o gets a "
        "ClassifyResult (.values, .confidence, .to_pandas())",
    )
    parser.add_argument(
        "--labels",
        type=label_list,
        metavar="A,B,C",
        help="--classify: the labels, or a variable holding a list, Literal or Enum",
    )
    parser.add_argument(
        "--extract",
        metavar="TABLE",
        help="the --schema's fields for every row of TABLE, asked by the cell; -o gets an "
        "ExtractResult (.to_pandas(): the fields as columns)",
    )
    parser.add_argument(
        "--reduce",
        metavar="TABLE",
        help="one answer to the cell (a task naming the {columns} to read) over all rows of "
        "TABLE, folding rows that do not fit the context window; -o gets a ReduceResult",
    )
    parser.add_argument("--by", metavar="COLUMN", help="--reduce: one answer per value of COLUMN")
    parser.add_argument(
        "--topk",
        metavar="TABLE",
        help="the rows of TABLE most relevant to the cell (the query), scored by -m (a rerank "
        "or embedding model); -o gets a TopKResult (.rows, .scores)",
    )
    parser.add_argument(
        "--k", type=int, metavar="N", help="--topk: how many rows (5, or all of a shorter table)"
    )
    parser.add_argument(
        "--document",
        metavar="TEMPLATE",
        help="--topk: how a row reads, e.g. '{title}: {abstract}' (default: its values)",
    )
    parser.add_argument(
        "--judge",
        metavar="MODEL",
        help="--topk: a chat model that orders the best 2k rows by comparing every pair",
    )


def command_parser() -> tuple[LineParser, dict[str, LineParser]]:
    """The ``%llm`` parser and its sub-parsers by command name (``history``'s actions as
    "history show"...)."""
    parser = CommandParser(prog="llm", description="Manage the kernel's models.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=LineParser)
    commands.required = True
    subparsers: dict[str, LineParser] = {}

    def add(name: str, summary: str) -> LineParser:
        sub: LineParser = commands.add_parser(name, help=summary, description=summary)
        subparsers[name] = sub
        return sub

    listing = add("list", "models and backends llmux knows")
    listing.add_argument("--task", choices=[t.value for t in Task], help="only this task")
    listing.add_argument(
        "--remote", metavar="NAME_OR_URL", help="what this server (a model's, or a URL) serves"
    )
    _add_key_option(listing)

    load = add("load", "load a model now (otherwise it loads on first use)")
    load.add_argument("name")
    load.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    load.add_argument(
        "--keep-alive", metavar="DURATION", help="idle time before unloading: 30s, 10m, 0, -1"
    )
    load.add_argument("--pin", action="store_true", help="never evict it (keep-alive ignored)")
    load.add_argument(
        "--dtype", choices=DTYPES, help="weights' precision (transformers; default auto)"
    )
    load.add_argument("--draft", metavar="NAME", help="draft model for speculative decoding")
    _add_settings(load)

    unload = add("unload", "free a model's memory")
    unload.add_argument("name", nargs="?")
    unload.add_argument("--all", action="store_true", help="unload every model")

    ps = add("ps", "loaded models (device, memory, state, keep-alive) and the memory budgets")
    ps.add_argument(
        "--all",
        action="store_true",
        help="also the models of the other kernels on this machine (their notebooks, memory)",
    )
    add("devices", "each device: memory, budget, number formats, CPU features, backends' use")
    add("du", "disk used by each model's files and by each cache entry; orphans")
    cache = add("cache", "clear cached files: of models, orphaned, or all")
    cache.add_argument("action", choices=["clear"])
    cache.add_argument("names", nargs="*", metavar="NAME", help="models whose caches to clear")
    cache.add_argument("--orphans", action="store_true", help="entries no model owns any more")
    cache.add_argument("--all", action="store_true", help="all of llmux's own caches")

    pin = add("pin", "protect a loaded model from eviction and keep-alive")
    pin.add_argument("name")
    unpin = add("unpin", "let a pinned model be evicted again")
    unpin.add_argument("name")
    keep_alive = add("keep-alive", "change how long a loaded model may stay idle")
    keep_alive.add_argument("name")
    keep_alive.add_argument("duration", help="30s, 10m, 1h; 0 = unload after use; -1 = forever")

    use = add("use", "make a model the default for its task (%%llm for chat)")
    use.add_argument("name")

    add("picker", "a widget to load, unload, pin and choose models, with memory per device")

    complete = add(
        "complete",
        "code completion as you type (JupyterLab, Notebook 7): show it, pick its model, or off",
    )
    complete.add_argument(
        "state",
        nargs="?",
        choices=["off"],
        help="off: stop completing (the model stays loaded until its keep-alive ends)",
    )
    complete.add_argument(
        "-m",
        "--model",
        help="complete with this code model, loaded now; it needs fill-in-the-middle tokens "
        "(e.g. qwen2.5-coder-0.5b; %%config LLMux.completion_model sets it too)",
    )

    register = add("register", "add a model (saved across kernel restarts)")
    register.add_argument("name")
    register.add_argument("--backend", required=True)
    register.add_argument("--path", help="a local model file or directory")
    register.add_argument("--hf", metavar="ORG/REPO", help="a Hugging Face repository")
    register.add_argument("--file", help="the file inside the --hf repository")
    register.add_argument("--revision", help="branch, tag or commit of the --hf repository")
    register.add_argument(
        "--base-url", help="an OpenAI-compatible server, e.g. http://host:8000/v1"
    )
    register.add_argument("--model", help="the name the --base-url server serves the model under")
    _add_key_option(register)
    register.add_argument("--task", choices=[t.value for t in Task])
    register.add_argument("--description", default="")
    register.add_argument(
        "--force", action="store_true", help="replace a model of that name (built-in or yours)"
    )
    register.add_argument(
        "--mmproj",
        metavar="FILE",
        help="llamacpp: the model's vision projector GGUF (mmproj); the model then takes images",
    )
    _add_settings(register)

    unregister = add("unregister", "forget a registered model")
    unregister.add_argument("name")

    fix = add("fix", "explain the last error; its corrected cell is offered below (not run)")
    fix.add_argument("-m", "--model", help="model (default: %%llm use, else smollm2)")
    fix.add_argument("--thread", default="default", help="conversation thread name")
    fix.add_argument("--new", action="store_true", help="start the thread afresh")
    fix.add_argument("--temperature", type=float, help="0-2; 0 is greedy")
    fix.add_argument("--max-tokens", type=int, help="cap on the answer's tokens")
    fix.add_argument("--seed", type=int, help="sampling seed, for repeatable answers")
    fix.add_argument("-o", "--output", metavar="VAR", help="store the answer text in VAR")
    fix.add_argument("--no-log", action="store_true", help="keep this answer out of the history")

    threads = add("threads", "conversation threads (this kernel's and the logged ones)")
    threads.add_argument("name", nargs="?", help="show this thread's messages")

    history = add("history", "search the logged answers (newest first); show, fork, export, clear")
    subparsers.update(_history_actions(history))

    transcribe = add("transcribe", "speech to text: an audio file or a notebook variable")
    transcribe.add_argument("audio", metavar="PATH_OR_VAR", help="file, or variable with audio")
    transcribe.add_argument(
        "-m", "--model", help="model (default: %%llm use, else whisper-tiny.en)"
    )
    transcribe.add_argument("--language", help="language code, e.g. en (default: detected)")
    transcribe.add_argument("-o", "--output", metavar="VAR", help="store the Transcript in VAR")
    _add_settings(transcribe)

    say = add("say", "text to speech, played inline (%%llm say takes the cell as text)")
    say.add_argument("text", nargs="+", metavar="TEXT", help="the words to speak")
    _add_say_options(say)

    rerank = add("rerank", "order a list of documents by relevance to a query")
    rerank.add_argument("query", nargs="+", metavar="QUERY", help="the query (quote it)")
    rerank.add_argument("documents", metavar="DOCS_VAR", help="variable holding the documents")
    rerank.add_argument(
        "-m", "--model", help="rerank or embedding model (default: %%llm use, else all-minilm)"
    )
    rerank.add_argument("--top-n", type=int, metavar="N", help="keep only the N best")
    rerank.add_argument("-o", "--output", metavar="VAR", help="store the Reranking in VAR")

    bench = add("bench", "measure chat models: TTFT, ITL, TPOT, latency, tokens/s (as guidellm)")
    bench.add_argument("models", nargs="+", metavar="MODEL")
    bench.add_argument(
        "--prompts", type=int, metavar="N", help=f"requests per level ({DEFAULT_PROMPTS})"
    )
    bench.add_argument(
        "--max-tokens", type=int, default=DEFAULT_MAX_TOKENS, help="cap on each answer's tokens"
    )
    bench.add_argument(
        "--concurrency",
        type=concurrency_levels,
        default=[1],
        metavar="1,4,8",
        help="requests at once, per level (only where the backend serves them concurrently)",
    )
    bench.add_argument(
        "--prompts-from", metavar="VAR", help="a notebook variable holding a list of prompts"
    )
    bench.add_argument(
        "-o", "--output", metavar="VAR", help="store the report (.records, .summary) in VAR"
    )

    helper = add("help", "this help, or one command's options")
    helper.add_argument("topic", nargs="*", help="a command, e.g. load or history show")
    return parser, subparsers


def _history_actions(history: LineParser) -> dict[str, LineParser]:
    """``%llm history ACTION``'s parsers, by "history ACTION"."""
    actions = history.add_subparsers(dest="action", metavar="ACTION", parser_class=LineParser)
    found: dict[str, LineParser] = {}

    def add(name: str, summary: str) -> LineParser:
        escaped = summary.replace("%", "%%")  # argparse formats help strings with %
        sub: LineParser = actions.add_parser(name, help=escaped, description=summary)
        found[f"history {name}"] = sub
        return sub

    search = add("search", "the newest logged answers, as a table (%llm history QUERY)")
    search.add_argument(
        "query",
        nargs="*",
        metavar="WORD",
        help='words each prompt-and-answer must hold (any order; "a phrase" in quotes, word* '
        "for a prefix); none: the newest answers",
    )
    search.add_argument("-m", "--model", help="only this model's answers")
    search.add_argument("--thread", help="only this thread's answers")
    search.add_argument("-n", type=int, default=20, metavar="N", help="how many to show (20)")

    show = add("show", "one logged answer in full: messages sent, answer, usage, tool calls")
    show.add_argument("id", type=int, metavar="ID", help="its number in %%llm history")

    fork = add("fork", "a new thread that continues from a logged answer")
    fork.add_argument("id", type=int, metavar="ID", help="the answer to continue from")
    fork.add_argument("--thread", required=True, metavar="NEW", help="the new thread's name")

    export = add("export", "write a thread's logged turns to a .md or .jsonl file")
    export.add_argument("thread", help="the thread (as %%llm --thread would continue it)")
    export.add_argument(
        "path", metavar="FILE", help="FILE.md (Markdown) or FILE.jsonl (one message a line)"
    )

    clear = add("clear", "delete logged answers: --before DATE, --thread T or --all")
    clear.add_argument("--before", metavar="DATE", help="those logged before 2026-01-31[T18:00]")
    clear.add_argument("--thread", help="those of this thread (every notebook's)")
    clear.add_argument("--all", action="store_true", help="every logged answer")
    clear.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    return found


def say_cell_parser() -> LineParser:
    parser = LineParser(prog="%llm say", description="Speak the cell's text.")
    _add_say_options(parser)
    parser.add_argument("--raw", action="store_true", help="speak the cell as is: no {var}")
    return parser


def _add_say_options(parser: MagicArgumentParser) -> None:
    parser.add_argument("-m", "--model", help="model (default: %%llm use, else piper-joe)")
    parser.add_argument("--voice", metavar="CLIP", help="reference clip to clone (Chatterbox)")
    parser.add_argument("--autoplay", action="store_true", help="play once it is synthesized")
    parser.add_argument("-o", "--output", metavar="VAR", help="store (sample_rate, samples) in VAR")
    parser.add_argument("--save", metavar="FILE.wav", help="also write a WAV file")
    _add_settings(parser)


def model_names(text: str) -> list[str]:
    """'a,b' -> ['a', 'b'] (an argparse type: a bad value is a UsageError)."""
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise ArgumentTypeError(f"{text!r}: name the models separated by commas, e.g. a,b")
    return names


def positive(text: str) -> int:
    """'3' -> 3 (an argparse type: anything but a whole number of at least 1 is a
    UsageError)."""
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise ArgumentTypeError(f"{text!r}: give a whole number of at least 1")
    return number


def label_list(text: str) -> list[str]:
    """'a, b,c' -> ['a', 'b', 'c'] (an argparse type: a bad value is a UsageError)."""
    labels = [label.strip() for label in text.split(",")]
    if not all(labels):
        raise ArgumentTypeError(f"{text!r}: give the labels separated by commas, e.g. a,b,c")
    return labels


def concurrency_levels(text: str) -> list[int]:
    """'1,4,8' -> [1, 4, 8] (an argparse type: a bad value is a UsageError)."""
    try:
        levels = [int(part) for part in text.split(",")]
    except ValueError:
        levels = []
    if not levels or min(levels) < 1:
        raise ArgumentTypeError(f"{text!r}: give whole numbers of at least 1, e.g. 1,4,8")
    return levels


def _add_settings(parser: MagicArgumentParser) -> None:
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="backend setting, e.g. --set n_ctx=4096 (repeatable)",
    )


def _add_key_option(parser: MagicArgumentParser) -> None:
    parser.add_argument(
        "--api-key-env", metavar="VAR", help="environment variable holding the server's API key"
    )


def parse_settings(pairs: list[str]) -> dict[str, Any]:
    """['n_ctx=4096', 'chat_format=gemma'] -> {'n_ctx': 4096, 'chat_format': 'gemma'}"""
    settings: dict[str, Any] = {}
    for pair in pairs:
        key, equals, text = pair.partition("=")
        if not equals or not key.isidentifier():
            raise UsageError(f"--set {pair!r}: write KEY=VALUE, e.g. --set n_ctx=4096")
        try:
            settings[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            settings[key] = text
    return settings
