"""Images in a real kernel: a matplotlib figure and a PIL image to a tiny random Idefics3
(SmolVLM's architecture, built here: no vision weights can be had, so its answers are noise)
and to a loopback server that records each request; thumbnails in the output, sizes in the
provenance, the thread keeping its images, a text-only model refusing them, and the
interrupt keeping the partial answer."""

from __future__ import annotations

import base64
import io

import pytest

from ..tiny_models import build_tiny_vlm
from ..unit.fake_openai import FakeOpenAIServer
from .kernel import interrupt_answer

PIL = pytest.importorskip("PIL.Image")
SETUP = (
    "import matplotlib.pyplot as plt\n"
    "from PIL import Image\n"
    "fig, ax = plt.subplots(figsize=(3, 2), dpi=60)\n"
    "ax.plot([1, 3, 2])\n"
    "img = Image.new('RGB', (120, 80), (200, 30, 30))\n"
)


@pytest.fixture(scope="module")
def server():
    fake = FakeOpenAIServer(model_fields={"capabilities": ["completion", "vision"]})
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def vision_kernel(kernel, server, tmp_path_factory):
    """The session kernel with the tiny VLM and the server registered, a figure and an image
    made; everything removed afterwards."""
    vlm = build_tiny_vlm(tmp_path_factory.mktemp("vision") / "tiny-vlm")
    run = kernel.run(
        f"%llm register tiny-vlm --backend transformers --path {vlm}\n"
        f"%llm register eye --backend openai --base-url {server.url} --model fake-model\n" + SETUP
    )
    assert run.status == "ok", run.error
    yield kernel
    run = kernel.run(
        "plt.close('all')\n%llm unload --all\n%llm unregister tiny-vlm\n%llm unregister eye\n"
        "for name in ('vis', 'far', 'near', 'cut', 'smol'):\n"
        "    llm.threads._threads.pop(name, None)\n"
        "del fig, ax, img, plt, Image"
    )
    assert run.status == "ok", run.error


def strips(run):
    """The thumbnail displays: first shown, then updated with the sizes sent."""
    return [m["content"] for m in run.messages
            if "text/html" in m["content"].get("data", {})
            and "llmux-images" in m["content"]["data"]["text/html"]]  # fmt: skip


def test_a_figure_and_an_image_go_to_a_vision_model_with_thumbnails(vision_kernel):
    run = vision_kernel.run(
        "%%llm -m tiny-vlm --image fig --image img --thread vis --max-tokens 5 --temperature 0\n"
        "What do these show?"
    )
    assert run.status == "ok", run.error
    first, updated = strips(run)
    assert first["data"]["text/html"].count("<img src='data:image/png;base64,") == 2
    assert first["data"]["text/plain"].startswith("[images: fig (")
    assert "img (120×80 → sent 64×43," in updated["data"]["text/plain"]
    answer = [m for m in run.displays if "text/markdown" in m["content"]["data"]][-1]
    provenance = answer["content"]["metadata"]["llmux"]
    names = [(image["name"], image["original"][0] > 64, max(image["sent"]))
             for image in provenance["images"]]  # fmt: skip
    assert names == [("fig", True, 64), ("img", True, 64)]  # the processor's 64 pixels
    assert provenance["usage"]["completion_tokens"] == 5  # noise from random weights
    assert provenance["usage"]["prompt_tokens"] > sum(i["tokens"] for i in provenance["images"])
    names = "[[i.name for i in t.images] for t in llm.threads.get('vis').turns]"
    assert vision_kernel.value(names) == [["fig", "img"]]
    # The next turn of the thread sends both images again, counted in its prompt.
    run = vision_kernel.run("%%llm -m tiny-vlm --thread vis --max-tokens 3\nAnd now?")
    assert run.status == "ok", run.error
    assert vision_kernel.value("llm.last.context.used") == 1


def test_a_figure_and_an_image_go_to_a_server_in_order(vision_kernel, server):
    run = vision_kernel.run("%%llm -m eye --image fig --image img --thread far\nCompare them.")
    assert run.status == "ok", run.error
    [body] = [r.json() for r in server.requests if r.path == "/v1/chat/completions"]
    content = body["messages"][-1]["content"]
    assert [part["type"] for part in content] == ["image_url", "image_url", "text"]
    sizes = []
    for part in content[:2]:
        data = base64.b64decode(part["image_url"]["url"].split(",")[1])
        sizes.append(PIL.open(io.BytesIO(data)).size)
    figure_size = tuple(vision_kernel.value("llm.last.images[0].original"))
    assert sizes == [figure_size, (120, 80)]  # as given: both fit the server's 2048 pixels
    assert "Hello there, friend!" in run.shown_text


def test_images_named_in_the_text_go_where_they_are_written(vision_kernel, server):
    run = vision_kernel.run("%%llm -m eye --thread near\nIs {fig} brighter than {img}?")
    assert run.status == "ok", run.error
    body = [r.json() for r in server.requests if r.path == "/v1/chat/completions"][-1]
    content = body["messages"][-1]["content"]
    assert [part.get("text", part["type"]) for part in content] == [
        "Is ", "image_url", " brighter than ", "image_url", "?"
    ]  # fmt: skip
    assert "<Figure" not in str(body) and "PIL" not in str(body)
    names = [image["name"] for image in run.displays[-1]["content"]["metadata"]["llmux"]["images"]]
    assert names == ["fig", "img"]


def test_an_image_to_a_text_model_is_a_typed_error_naming_the_models_that_take_images(
    vision_kernel,
):
    run = vision_kernel.run("%%llm -m smollm2 --image img --thread smol\nWhat is this?")
    assert run.status == "error" and run.error["ename"] == "ImagesNotSupported"
    message = run.error["evalue"]
    assert "'smollm2' takes only text" in message and "(img)" in message
    assert "tiny-vlm" in message and "eye" in message and "Nothing was sent" in message
    assert vision_kernel.value("'smol' in llm.threads") is False


def test_interrupt_mid_stream_keeps_the_partial_answer_and_the_images(vision_kernel):
    # The random model writes ~400 tokens/s and ends wherever it samples its end token (107
    # tokens, 0.35 s, in one unseeded run): seed 0 writes all 900, about 2 s to interrupt in.
    interrupt_answer(
        vision_kernel,
        "%%llm -m tiny-vlm --image img --thread cut --new --max-tokens 900 --temperature 0.8 "
        "--seed 0\n"
        "Tell a very long story about this picture.",
        after_updates=2,
    )
    state = vision_kernel.value(
        "([t.interrupted for t in llm.threads.get('cut').turns],"
        " [len(t.images) for t in llm.threads.get('cut').turns],"
        " [m.name for m in llm.ps()])"
    )
    assert state[0] == [True] and state[1] == [1] and "tiny-vlm" in state[2]
