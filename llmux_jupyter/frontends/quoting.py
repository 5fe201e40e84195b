"""How a magic's line splits into words: IPython's POSIX splitting (single and double quotes,
backslash escapes; ``IPython.utils.process.arg_split``), with two exceptions that keep what
people type working: an apostrophe inside a word is a letter (``don't``, ``O'Brien``), and a
backslash escapes only a space or a quote, so Windows paths keep theirs (``C:\\models\\m.gguf``).
"""

from __future__ import annotations

import re

from IPython.core.error import UsageError
from IPython.utils.process import arg_split

# Characters no one types, standing in for the protected ones while shlex splits.
_APOSTROPHE, _BACKSLASH = "\ue000", "\ue001"
_PROTECTED = re.compile(r"(?<=\w)'(?=\w)|\\(?![\s'\"])")


def split_arguments(line: str) -> list[str]:
    """Words of ``line`` with their quotes removed; an unclosed quote is a UsageError."""
    protected = _PROTECTED.sub(lambda m: _APOSTROPHE if m[0] == "'" else _BACKSLASH, line)
    try:
        words = arg_split(protected, posix=True, strict=True)
    except ValueError:
        raise UsageError(
            f"A quote is not closed in {line.strip()!r}: close it, or put a backslash before "
            "a quote that is part of the text."
        ) from None
    return [word.replace(_APOSTROPHE, "'").replace(_BACKSLASH, "\\") for word in words]
