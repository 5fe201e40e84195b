"""``{var}`` in a cell, filled from the user's namespace; ``{{`` and ``}}`` are literal braces."""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

from IPython.core.error import UsageError

_FORMATTER = string.Formatter()


def interpolate(template: str, namespace: Mapping[str, Any]) -> str:
    """Fill ``{name}``, ``{name.attr}``, ``{name[0]}`` and format specs from ``namespace``."""
    try:
        return _FORMATTER.vformat(template, (), namespace)
    except KeyError as error:
        name = error.args[0]
        raise UsageError(
            f"{{{name}}} in the cell: there is no variable {name!r} in the notebook. Define it "
            "first, write {{ and }} for literal braces, or pass --raw to send the cell as it is."
        ) from None
    except IndexError:
        raise UsageError(
            "{} in the cell needs a variable name, like {text}; write {{}} for literal braces "
            "or pass --raw."
        ) from None
    except (ValueError, AttributeError, TypeError) as error:
        raise UsageError(
            f"Cannot fill the {{...}} fields of the cell ({error}). Write {{{{ and }}}} for "
            "literal braces, or pass --raw to send the cell as it is."
        ) from None
