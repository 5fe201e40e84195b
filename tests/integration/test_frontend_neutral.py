"""A front end without our labextension and without widgets: ``jupyter nbconvert --execute``
(nbclient) runs the magics and the picker on the real SmolLM2, and every output stays readable
as text/plain. (That the kernel opens no comm is tested in test_kernel_sidebar_comm.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat

CELLS = [
    "%load_ext llmux_jupyter",
    "%%llm --temperature 0 --max-tokens 12\nWhat is the capital of France? One word.",
    "%llm ps",
    "%llm picker",
]
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def test_nbconvert_execute_keeps_every_output_readable_as_text(tmp_path: Path):
    notebook = tmp_path / "plain.ipynb"
    nbformat.write(
        nbformat.v4.new_notebook(
            cells=[nbformat.v4.new_code_cell(code) for code in CELLS],
            metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
        ),
        notebook,
    )
    command = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
               "--inplace", str(notebook)]  # fmt: skip
    env = {**os.environ, "LLMUX_CONFIG_DIR": str(tmp_path / "config")}
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stderr
    load_ext, answer, ps, picker = (cell.outputs for cell in nbformat.read(notebook, 4).cells)
    assert load_ext == []  # no output noise
    assert "Paris" in answer[-1]["data"]["text/plain"]
    assert ["Loaded models" in o["data"]["text/plain"] for o in ps] == [True, False]
    assert "smollm2" in ps[0]["data"]["text/plain"]
    (shown,) = picker
    assert WIDGET_MIME in shown["data"]  # the widget where widgets show...
    text = shown["data"]["text/plain"]  # ...and a table of the models everywhere else
    assert text.startswith("LLMux model picker")
    assert any(line.split()[:2] == ["smollm2", "chat"] and "loaded on cpu" in line
               for line in text.splitlines())  # fmt: skip
