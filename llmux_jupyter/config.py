"""Settings users change with ``%config LLMux.<name> = ...`` (or in ipython_config.py)."""

from __future__ import annotations

from typing import Any

from traitlets import Bool, CaselessStrEnum, Float, Int, TraitError, Unicode, validate
from traitlets.config import Configurable

from .engine.budgets import DEFAULT_FRACTION, plan_budgets
from .engine.context import POLICIES
from .engine.repetition import DEFAULT_REPEATS
from .errors import InvalidParameter
from .hardware.memory import DeviceMemory
from .units import parse_duration

# How ``%%llm`` can render an answer (``-f``, ``default_format``).
FORMATS = ("markdown", "text", "code", "json")


class LLMux(Configurable):
    """llmux-jupyter's configuration."""

    max_updates_per_second = Float(
        15.0, help="At most this many live display updates a second while an answer streams."
    ).tag(config=True)
    default_format = CaselessStrEnum(
        list(FORMATS), default_value="markdown", help="How %%llm renders answers by default."
    ).tag(config=True)
    memory_budget = Unicode(
        "",
        help="Memory our models may use: '' (memory_fraction of what was free at %load_ext), "
        "one size for every device ('12GiB'), or per device ('cpu=16GiB,cuda:0=20GiB').",
    ).tag(config=True)
    memory_fraction = Float(
        DEFAULT_FRACTION, help="The default budget's share of the memory free at %load_ext."
    ).tag(config=True)
    keep_alive = Unicode(
        "5m",
        help="How long an idle model stays loaded: '30s', '5m', '1h'; '0' unloads right after "
        "each use; '-1' keeps models until unloaded.",
    ).tag(config=True)

    context_policy = CaselessStrEnum(
        list(POLICIES),
        default_value="truncate",
        help="A thread longer than the model's context window: 'truncate' leaves the oldest "
        "turns out of the prompt (and says so), 'error' refuses with ContextOverflow.",
    ).tag(config=True)

    completion_model = Unicode(
        "",
        help="The code model that completes code as you type in JupyterLab and Notebook 7 "
        "(ghost text; it needs fill-in-the-middle tokens, e.g. 'qwen2.5-coder-0.5b'); '' turns "
        "completion off. %llm complete --model NAME also loads it.",
    ).tag(config=True)

    log = Bool(
        True,
        help="Log every answer (and one row per map) to the history database in "
        "$LLMUX_DATA_DIR (default <jupyter data dir>/llmux): %llm history searches it and "
        "threads resume from it after a restart. False: nothing is written (%%llm --no-log "
        "does it for one cell).",
    ).tag(config=True)

    repeat_limit = Int(
        DEFAULT_REPEATS,
        min=0,
        help="Stop an answer once the same line or sentence (or a run of up to three) has come "
        "this many times in a row, and say so; 0 never stops one.",
    ).tag(config=True)

    describe_tokens = Int(
        500,
        min=100,
        help="At most this many tokens describe one notebook value for a model: a {var} in "
        "%%llm, each cell of --cells, the values %llm fix sends (which share it). Counted by "
        "the model's tokenizer when it is loaded, else estimated high; what the cap leaves "
        "out is said in the text.",
    ).tag(config=True)

    @validate("memory_budget")
    def _valid_budget(self, proposal: dict[str, Any]) -> str:
        devices = [DeviceMemory(name, 0, 0) for name in _named_devices(proposal["value"])]
        return _checked(lambda: plan_budgets(devices, proposal["value"]), proposal["value"])

    @validate("memory_fraction")
    def _valid_fraction(self, proposal: dict[str, Any]) -> float:
        return _checked(lambda: plan_budgets([], "", proposal["value"]), proposal["value"])

    @validate("keep_alive")
    def _valid_keep_alive(self, proposal: dict[str, Any]) -> str:
        return _checked(lambda: parse_duration(proposal["value"]), proposal["value"])


def _named_devices(setting: str) -> list[str]:
    names = {part.rpartition("=")[0].strip() for part in setting.split(",") if "=" in part}
    return sorted(names | {"cpu"})


def _checked(check: Any, value: Any) -> Any:
    try:
        check()
    except InvalidParameter as error:
        raise TraitError(str(error)) from None
    return value
