"""Where llmux keeps files it derives from models (e.g. GGUF files converted for transformers).

``$LLMUX_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/llmux``, else ``~/.cache/llmux``. Everything
in it can be deleted at any time; it is rebuilt on the next load that needs it.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """The llmux cache folder (not created here)."""
    configured = os.environ.get("LLMUX_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "llmux"
