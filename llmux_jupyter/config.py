"""Settings users change with ``%config LLMux.<name> = ...`` (or in ipython_config.py)."""

from __future__ import annotations

from traitlets import CaselessStrEnum, Float
from traitlets.config import Configurable

from .render import FORMATS


class LLMux(Configurable):
    """llmux-jupyter's configuration."""

    max_updates_per_second = Float(
        15.0, help="At most this many live display updates a second while an answer streams."
    ).tag(config=True)
    default_format = CaselessStrEnum(
        list(FORMATS), default_value="markdown", help="How %%llm renders answers by default."
    ).tag(config=True)
