"""Sphinx configuration: MyST pages, the tutorials rendered with their stored outputs (myst-nb,
never executed at build), the API from docstrings, the magics/settings/config/errors reference
generated from the code (``_ext/llmux_reference.py``). Build: ``make docs``."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))

import llmux_jupyter  # noqa: E402

project = "llmux-jupyter"
author = "llmux-jupyter developers"
copyright = "2026, llmux-jupyter developers"
release = version = llmux_jupyter.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "llmux_reference",
]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

# Tutorials show the outputs stored in the notebooks (the test suite executes them).
nb_execution_mode = "off"
nb_merge_streams = True
# myst-nb renders every mime type of an output before it picks one, and warns about those it
# has no renderer for (a typed answer's application/json); the page shows its text/plain twin.
suppress_warnings = ["mystnb.unknown_mime_type"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
# Type hints name classes the pages do not document (numpy, IPython...): not worth a warning.
nitpicky = False

html_theme = "pydata_sphinx_theme"
html_title = "llmux-jupyter"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_static_path: list[str] = []

# Unlabelled blocks are mostly cells with magics and prose: shown as typed, not lexed as Python.
highlight_language = "none"
