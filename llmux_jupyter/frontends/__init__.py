"""Front ends: everything that knows IPython, ipywidgets or the Jupyter comm — the magics and
their arguments, live rendering, the audio player, tables, the model picker and the sidebar's
comm. They drive the Python API (``llmux_jupyter.api``); nothing below imports them."""
