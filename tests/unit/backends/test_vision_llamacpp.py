"""llama.cpp vision models (a GGUF and its mmproj projector), tested up to llama-cpp-python's
multimodal chat handler: no projector weights can be had here, so the handler's own call is
replaced by a recorder once the real Llama (SmolLM2) has been made with the real handler.
What this proves: registration with --mmproj, the projector's header read, the handler
chosen and given to Llama, the image_url parts it receives, the image-token count."""

from __future__ import annotations

import base64
import io

import pytest

from llmux_jupyter.api import LLM
from llmux_jupyter.errors import InvalidParameter, ModelLoadError
from llmux_jupyter.models.catalog import Catalog

from ...gguf_files import write_projector

np = pytest.importorskip("numpy")
PIL = pytest.importorskip("PIL.Image")
llama_chat_format = pytest.importorskip("llama_cpp.llama_chat_format")


@pytest.fixture(scope="module")
def projector(tmp_path_factory):
    return write_projector(tmp_path_factory.mktemp("mmproj") / "mmproj-test.gguf")


@pytest.fixture
def llm(tmp_path):
    api = LLM(Catalog(tmp_path / "models.json"))
    yield api
    api.unload(all=True)


@pytest.fixture
def smollm2(llm):
    return str(llm.manager.catalog.get("smollm2").source.resolve())


@pytest.fixture
def recorded(monkeypatch):
    """Calls of llama-cpp-python's multimodal handlers: their handler and messages; each
    answers with a two-chunk stream, as the real handler streams."""
    calls = []

    def call(self, *, llama, messages, stream=False, **keywords):
        calls.append({"handler": self, "messages": messages, "llama": llama})
        chunks = [{"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
                  for text in ("A red", " square.")]  # fmt: skip
        chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        return (chunk for chunk in chunks)

    for name in ("MTMDChatHandler", "Llava15ChatHandler"):
        monkeypatch.setattr(getattr(llama_chat_format, name), "__call__", call)
    return calls


def test_mmproj_registers_a_model_that_takes_images(llm, smollm2, projector):
    spec = llm.register("vis", backend="llamacpp", path=smollm2, mmproj=str(projector))
    assert spec.settings["mmproj"] == str(projector.resolve())
    assert llm.manager.takes_images("vis") is True
    assert llm.manager.takes_images("smollm2") is False


def test_the_real_handler_gets_the_projector_and_image_url_parts(llm, smollm2, projector,
                                                                 recorded):  # fmt: skip
    llm.register("vis", backend="llamacpp", path=smollm2, mmproj=str(projector))
    red = np.zeros((20, 30, 3), np.uint8)
    red[..., 0] = 255
    response = llm.chat("What is this?", model="vis", images=red, max_tokens=8)
    assert response.text == "A red square."
    [call] = recorded
    assert type(call["handler"]) is llama_chat_format.MTMDChatHandler  # the GGUF's template
    assert call["handler"].clip_model_path == str(projector.resolve())
    assert call["llama"] is llm.manager.get_loaded("vis").backend._llm
    content = call["messages"][-1]["content"]
    assert [part["type"] for part in content] == ["image_url", "text"]
    url = content[0]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    sent = PIL.open(io.BytesIO(base64.b64decode(url.split(",")[1])))
    assert sent.size == (30, 20) and sent.getpixel((0, 0)) == (255, 0, 0)
    # The projector's header: (384 / 16)^2 patches merged 4 x 4 = 36 tokens an image.
    assert response.images[0].tokens == 36


def test_a_vision_chat_format_picks_its_handler(llm, smollm2, projector, recorded):
    llm.register("llava", backend="llamacpp", path=smollm2, mmproj=str(projector),
                 chat_format="llava-1-5")  # fmt: skip
    llm.chat("Hi", model="llava", images=np.zeros((4, 4), np.uint8), max_tokens=4)
    assert type(recorded[0]["handler"]) is llama_chat_format.Llava15ChatHandler


def test_a_text_chat_format_or_completion_with_mmproj_is_refused(llm, smollm2, projector):
    llm.register("x", backend="llamacpp", path=smollm2, mmproj=str(projector),
                 chat_format="chatml")  # fmt: skip
    with pytest.raises(InvalidParameter, match=r"vision chat format.*llava-1-5"):
        llm.load("x")
    assert not llm.manager.is_loaded("x")


def test_a_file_that_is_not_a_projector_is_refused_at_registration(llm, smollm2, tmp_path):
    with pytest.raises(ModelLoadError, match="not a vision projector"):
        llm.register("x", backend="llamacpp", path=smollm2, mmproj=smollm2)
    with pytest.raises(InvalidParameter, match="no such projector file"):
        llm.register("x", backend="llamacpp", path=smollm2, mmproj=str(tmp_path / "nope.gguf"))
    with pytest.raises(InvalidParameter, match="goes with --backend llamacpp"):
        llm.register("x", backend="transformers", path=smollm2, mmproj=smollm2)
    assert "x" not in llm.manager.catalog.names()
