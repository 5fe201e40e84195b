"""transformers' progress bars while a model loads: a widget per file in a notebook. Shown for
a GGUF conversion (a minute of work worth watching), hidden for a load from a folder, which
takes about a second, unless the model's ``verbose`` setting is true."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def progress_bars(shown: bool) -> Iterator[None]:
    """transformers' (and huggingface_hub's) progress bars on or off inside, as before after."""
    from transformers.utils import logging

    was_shown = logging.is_progress_bar_enabled()
    if not shown:
        logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_shown and not shown:
            logging.enable_progress_bar()
