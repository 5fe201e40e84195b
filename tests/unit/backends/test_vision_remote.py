"""Images to an OpenAI-compatible server, through the real ``openai`` client, against a
loopback server that records each request: image_url parts with base64 data URLs in the order
written, sizes fitted, a bounded body; the capability from the server's model list."""

from __future__ import annotations

import base64
import io

import pytest

from llmux_jupyter.api import LLM
from llmux_jupyter.backends.openai import _served_images
from llmux_jupyter.errors import ImagesNotSupported
from llmux_jupyter.models.catalog import Catalog
from llmux_jupyter.types.images import MAX_SIDE, read_image

from ..fake_openai import FakeOpenAIServer

np = pytest.importorskip("numpy")
PIL = pytest.importorskip("PIL.Image")
FAST = {"timeout": 5.0, "max_retries": 0}


@pytest.fixture
def server(request):
    fake = FakeOpenAIServer(**getattr(request, "param", {}))
    yield fake
    fake.close()


@pytest.fixture
def llm(tmp_path, server):
    api = LLM(Catalog(tmp_path / "models.json"))
    api.register("remote", backend="openai", base_url=server.url, model="fake-model", **FAST)
    yield api
    api.unload(all=True)


def chat_requests(server):
    return [r.json() for r in server.requests if r.path == "/v1/chat/completions"]


def decoded(part):
    """The image of an image_url part: its format and size."""
    header, _, data = part["image_url"]["url"].partition(",")
    image = PIL.open(io.BytesIO(base64.b64decode(data)))
    return header, image.format, image.size


def test_images_go_as_image_url_parts_before_the_text_in_the_order_given(llm, server):
    red = np.zeros((30, 40, 3), np.uint8)
    red[..., 0] = 255
    grey = np.full((10, 20), 0.5)
    response = llm.chat("Which is red?", model="remote", images=[red, grey])
    [sent] = chat_requests(server)
    content = sent["messages"][-1]["content"]
    assert [part["type"] for part in content] == ["image_url", "image_url", "text"]
    assert content[2]["text"] == "Which is red?"
    assert decoded(content[0]) == ("data:image/png;base64", "PNG", (40, 30))
    assert decoded(content[1]) == ("data:image/png;base64", "PNG", (20, 10))
    first = PIL.open(io.BytesIO(base64.b64decode(content[0]["image_url"]["url"].split(",")[1])))
    assert first.getpixel((0, 0)) == (255, 0, 0)
    assert [(i.name, i.sent) for i in response.images] == [("image 1", (40, 30)),
                                                           ("image 2", (20, 10))]  # fmt: skip


def test_a_huge_photo_is_downscaled_and_sent_as_jpeg_in_a_bounded_body(llm, server):
    noise = np.random.default_rng(0).integers(0, 256, (3000, 4000, 3), dtype=np.uint8)
    response = llm.chat("What is this?", model="remote", images=noise)
    body = next(r for r in server.requests if r.path == "/v1/chat/completions").body
    assert len(body) < 6 * 2**20  # the raw array is 36 MB, and so would its PNG be
    [part] = [p for p in chat_requests(server)[0]["messages"][-1]["content"] if "image_url" in p]
    assert decoded(part) == ("data:image/jpeg;base64", "JPEG", (MAX_SIDE, 1536))
    assert response.images[0].original == (4000, 3000)
    assert response.images[0].mime == "image/jpeg"


def test_a_thread_sends_its_earlier_images_again(llm, server):
    picture = read_image(np.zeros((8, 8, 3), np.uint8), "picture")
    llm.chat("Look at this.", model="remote", images=[picture], thread="t")
    llm.chat("And again?", model="remote", thread="t")
    second = chat_requests(server)[1]["messages"]
    assert [m["role"] for m in second] == ["user", "assistant", "user"]
    assert [p["type"] for p in second[0]["content"]] == ["image_url", "text"]
    assert second[2]["content"] == "And again?"  # plain text when it has no image


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ({"model_fields": {"capabilities": ["completion", "vision"]}}, True),  # Ollama-like
        ({"model_fields": {"type": "vlm"}}, True),  # LM Studio
        ({"model_fields": {"architecture": {"input_modalities": ["text", "image"]}}}, True),
        ({}, None),  # vLLM and most servers say nothing
    ],
    indirect=["server"],
)
def test_the_servers_model_list_says_whether_the_model_takes_images(llm, server, expected):
    assert llm.manager.takes_images("remote") is None  # not asked before loading
    llm.load("remote")
    assert llm.manager.takes_images("remote") is expected
    llm.chat("What is it?", model="remote", images=np.zeros((2, 2), np.uint8))
    assert len(chat_requests(server)) == 1  # sent when it may take them


@pytest.mark.parametrize("server", [{"model_fields": {"capabilities": ["completion"]}}],
                         indirect=True)  # fmt: skip
def test_a_server_model_without_vision_refuses_images_and_sends_nothing(llm, server):
    with pytest.raises(ImagesNotSupported, match=r"'remote' takes only text.*\(image 1\)"):
        llm.chat("What is it?", model="remote", images=np.zeros((2, 2), np.uint8), thread="x")
    assert chat_requests(server) == []
    assert llm.threads.get("x").turns == []


def test_the_images_setting_wins_and_is_known_before_loading(tmp_path, server):
    api = LLM(Catalog(tmp_path / "models.json"))
    api.register("seeing", backend="openai", base_url=server.url, model="fake-model",
                 images=True, **FAST)  # fmt: skip
    api.register("blind", backend="openai", base_url=server.url, model="fake-model",
                 images="false", **FAST)  # fmt: skip
    assert api.manager.takes_images("seeing") is True
    assert api.manager.takes_images("blind") is False
    with pytest.raises(ImagesNotSupported, match="with -m NAME: seeing"):
        api.chat("?", model="blind", images=np.zeros((2, 2), np.uint8))
    assert not api.manager.is_loaded("blind") and server.requests == []


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"capabilities": ["completion", "multimodal"]}, True),  # llama.cpp's llama-server
        ({"capabilities": ["completion", "tools"]}, False),
        ({"type": "llm"}, False),
        ({"input_modalities": ["text"]}, False),
        ({"owned_by": "vllm", "max_model_len": 4096}, None),
    ],
)
def test_served_images_reads_each_servers_way_of_saying_it(fields, expected):
    assert _served_images(fields) is expected
