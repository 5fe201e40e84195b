"""``%%llm --image`` and the images column of ``%llm list``, in a real (terminal) IPython
shell against a loopback server that records each request."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from llmux_jupyter.api import LLM
from llmux_jupyter.errors import InvalidImage
from llmux_jupyter.frontends.arguments import cell_parser
from llmux_jupyter.frontends.image_view import thumbnails
from llmux_jupyter.frontends.magics import LLMuxMagics
from llmux_jupyter.models.catalog import Catalog
from llmux_jupyter.types.images import SentImage, read_image

from ..fake_openai import FakeOpenAIServer

np = pytest.importorskip("numpy")
PIL = pytest.importorskip("PIL.Image")


@pytest.fixture
def server():
    fake = FakeOpenAIServer(model_fields={"capabilities": ["completion", "vision"]})
    yield fake
    fake.close()


@pytest.fixture
def shell(tmp_path, server):
    llm = LLM(Catalog(tmp_path / "models.json"))
    llm.register("eye", backend="openai", base_url=server.url, model="fake-model",
                 timeout=5.0, max_retries=0)  # fmt: skip
    shell = InteractiveShell.instance()
    shell.register_magics(LLMuxMagics(shell, llm))
    shell.user_ns["img"] = np.zeros((30, 40, 3), np.uint8)
    yield shell
    llm.unload(all=True)
    for name in ("img", "answer", "text"):
        shell.user_ns.pop(name, None)


def chat_bodies(server):
    return [r.json() for r in server.requests if r.path == "/v1/chat/completions"]


def test_images_from_variables_and_files_go_in_the_order_written(shell, server, tmp_path,
                                                                 capsys):  # fmt: skip
    path = tmp_path / "photo.png"
    PIL.new("RGB", (20, 10)).save(path)
    shell.run_cell_magic("llm", f"-m eye --image {path} --image img -o answer", "Compare them.")
    [body] = chat_bodies(server)
    content = body["messages"][-1]["content"]
    assert [part["type"] for part in content] == ["image_url", "image_url", "text"]
    out = capsys.readouterr().out
    assert f"[images: {path} (20×10), img (40×30)]" in out  # the thumbnails' text
    assert "Hello there, friend!" in out
    assert shell.user_ns["answer"] == "Hello there, friend!"
    shell.run_line_magic("llm", "threads default")
    assert "Compare them. [+ " in capsys.readouterr().out


def test_an_unreadable_image_changes_nothing_and_sends_nothing(shell, server):
    shell.user_ns["text"] = "just words"
    shell.user_ns["answer"] = "before"
    with pytest.raises(InvalidImage, match="text: no image file 'just words'"):
        shell.run_cell_magic("llm", "-m eye --image text -o answer", "What is it?")
    with pytest.raises(InvalidImage, match="--image nothere: neither an image file nor"):
        shell.run_cell_magic("llm", "-m eye --image nothere", "What is it?")
    assert chat_bodies(server) == []
    assert shell.user_ns["answer"] == "before"


def test_image_with_compare_or_map_is_a_usage_error(shell):
    with pytest.raises(UsageError, match="--image goes with one answer"):
        shell.run_cell_magic("llm", "--image img --compare eye,eye", "What?")
    with pytest.raises(UsageError, match="--image goes with one answer"):
        shell.run_cell_magic("llm", "--image img --map img", "What?")


def test_list_says_which_models_take_images(shell, capsys):
    shell.run_line_magic("llm", "list")
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line}
    assert "  no  " in rows["smollm2"]
    assert "ask server" in rows["eye"]  # its server has not been asked yet
    shell.run_line_magic("llm", "load eye")
    capsys.readouterr()
    shell.run_line_magic("llm", "list")
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line}
    assert "  yes  " in rows["eye"]


def test_the_image_option_has_help_for_the_docs():
    help_text = cell_parser().format_help()
    assert "--image PATH_OR_VAR" in help_text and "repeatable" in help_text


def test_thumbnails_show_each_image_with_its_sizes_in_the_theme_colours():
    image = read_image(np.zeros((300, 400, 3), np.uint8), "fig")
    sent = SentImage("fig", (400, 300), (64, 48), 1234, "image/png", 88)
    bundle = thumbnails([image], [sent])
    assert bundle["text/plain"] == "[images: fig (400×300 → sent 64×48, 88 tokens)]"
    assert bundle["text/html"].count("<img src='data:image/png;base64,") == 1
    assert "var(--jp-ui-font-color2)" in bundle["text/html"]
    assert "fig · 400×300 → sent 64×48, 88 tokens" in bundle["text/html"]
