"""Images through the transformers backend, on a tiny random Idefics3 (SmolVLM's architecture)
built in-process with a real Idefics3 processor: no vision weights can be had here, so its
answers are noise. What this proves is our path: the capability read from the files, the
processor's image size and token count, loading with AutoProcessor and
AutoModelForImageTextToText, streaming, cancelling, and threads that keep their images."""

from __future__ import annotations

import pytest

from llmux_jupyter.api import LLM
from llmux_jupyter.engine.thread_fit import fit_thread
from llmux_jupyter.errors import ImagesNotSupported
from llmux_jupyter.models.catalog import Catalog
from llmux_jupyter.types.images import ImageLimit, read_image
from llmux_jupyter.types.values import Message

from ...tiny_models import build_tiny_llama, build_tiny_vlm, train_tokenizer

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")
LONGEST_EDGE = 64


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    root = tmp_path_factory.mktemp("vision")
    llm = LLM(Catalog(root / "models.json"))
    llm.register("vlm", backend="transformers", path=str(build_tiny_vlm(root / "vlm")))
    text = build_tiny_llama(root / "text", train_tokenizer())
    llm.register("text", backend="transformers", path=str(text))
    yield llm
    llm.unload(all=True)


@pytest.fixture(scope="module")
def picture():
    rng = np.random.default_rng(0)
    return read_image(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8), "picture")


def backend(api, name="vlm"):
    return api.manager.get_loaded(name).backend


def test_the_capability_comes_from_the_files_before_loading(api):
    assert api.manager.takes_images("vlm") is True
    assert api.manager.takes_images("text") is False
    assert not api.manager.is_loaded("vlm")
    assert "vlm" in api.manager.image_models() and "text" not in api.manager.image_models()


def test_an_image_is_answered_and_sent_at_the_processor_size(api, picture):
    response = api.chat("What is this?", model="vlm", images=[picture], max_tokens=6,
                        temperature=0, new=True, thread="one")  # fmt: skip
    vlm = backend(api)
    assert type(vlm._model).__name__ == "Idefics3ForConditionalGeneration"
    assert vlm.takes_images_now() and vlm.image_limit() == ImageLimit(longest=LONGEST_EDGE)
    [sent] = response.images
    assert (sent.name, sent.original, sent.sent) == ("picture", (400, 300), (64, 48))
    assert sent.tokens == vlm.count_image(picture.fitted(vlm.image_limit())) > 4
    assert response.provenance()["images"][0]["sent"] == [64, 48]
    # The prompt the model got holds the image's tokens: the processor's own count.
    processor = vlm._processor
    expected = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image", "image": picture.fitted(
            vlm.image_limit()).pil()}, {"type": "text", "text": "What is this?"}]}],
        add_generation_prompt=True, tokenize=True, return_dict=True,
    )["input_ids"]  # fmt: skip
    assert response.usage.prompt_tokens == len(expected[0] if hasattr(expected[0], "__len__")
                                               else expected)  # fmt: skip
    assert response.usage.completion_tokens == 6  # noise: random weights, any 6 tokens


def test_the_image_token_count_is_the_processors(api, picture):
    api.load("vlm")
    vlm = backend(api)
    fitted = picture.fitted(vlm.image_limit())
    image_token = vlm._processor.image_token
    tokens = vlm._processor(text=[image_token], images=[[fitted.pil()]])["input_ids"][0]
    assert vlm.count_image(fitted) == len(tokens)  # what its placeholder expands to


def test_a_thread_keeps_its_images_and_counts_them_in_later_prompts(api, picture):
    api.chat("Describe it.", model="vlm", images=[picture], max_tokens=3, temperature=0,
             new=True, thread="kept")  # fmt: skip
    second = api.chat("And now?", model="vlm", max_tokens=3, temperature=0, thread="kept")
    thread = api.threads.get("kept")
    assert [len(turn.images) for turn in thread.turns] == [1, 0]
    assert thread.turns[0].images[0] is picture
    vlm = backend(api)
    image_cost = vlm.count_image(picture.fitted(vlm.image_limit()))
    assert thread.turns[0].tokens["vlm"] > image_cost  # the turn's count holds the image
    assert second.context.used == 1 and second.usage.prompt_tokens > image_cost
    assert second.images == []  # none sent with this prompt


def test_cancelling_mid_stream_keeps_the_partial_answer_and_the_model(api, picture):
    stream = api.chat("Tell a long story.", model="vlm", images=[picture], max_tokens=200,
                      temperature=0, new=True, thread="cut", stream=True)  # fmt: skip
    deltas = []
    for delta in stream:
        deltas.append(delta)
        if len(deltas) == 3:
            stream.cancel()
    response = stream.response
    assert response.interrupted and response.usage.completion_tokens < 200
    assert response.text == "".join(deltas)
    assert api.manager.is_loaded("vlm")
    [turn] = api.threads.get("cut").turns
    assert turn.interrupted and turn.images == (picture,)


def test_a_text_model_refuses_images_before_loading_and_names_the_ones_that_take_them(api, picture):
    if api.manager.is_loaded("text"):
        api.unload("text")
    with pytest.raises(ImagesNotSupported, match=r"'text' takes only text.*\(picture\).*vlm"):
        api.chat("What is this?", model="text", images=[picture], thread="refused")
    assert not api.manager.is_loaded("text")
    assert "refused" not in api.threads


def test_a_text_model_continuing_a_thread_with_images_reads_them_in_words(api, picture):
    api.chat("Look.", model="vlm", images=[picture], max_tokens=2, temperature=0,
             new=True, thread="mixed")  # fmt: skip
    answer = api.chat("Go on.", model="text", max_tokens=2, temperature=0, thread="mixed")
    assert answer.context.used == 1  # the turn with the image went, said in words
    text = backend(api, "text")
    thread = api.threads.get("mixed")
    _, messages = fit_thread(text, "text", thread, Message("user", "Next."), None, 2, "truncate")
    assert messages[0].content == "[image picture (400×300), not shown to this model]\nLook."
    assert not any(message.images for message in messages)
    assert thread.turns[0].tokens["text"] == (
        text.count_text(messages[0].content) + text.count_text(thread.turns[0].assistant)
        + 2 * text.message_markup
    )  # fmt: skip


@pytest.mark.parametrize(
    ("size", "limit"),
    [
        ({"longest_edge": 1456}, ImageLimit(longest=1456)),  # SmolVLM / Idefics3
        ({"height": 896, "width": 896}, ImageLimit(longest=896)),  # Gemma 3, SigLIP
        ({"shortest_edge": 336}, ImageLimit(shortest=336)),  # CLIP-like
        ({"shortest_edge": 3136, "longest_edge": 1003520}, ImageLimit(pixels=1003520)),  # Qwen2-VL
        ({"longest_edge": 99999}, ImageLimit(pixels=99999)),  # no side is that long: pixels
        ({}, ImageLimit()),
    ],
)
def test_the_processor_size_becomes_the_limit_images_are_fitted_to(size, limit):
    from transformers.image_utils import SizeDict

    from llmux_jupyter.backends.hf_vision import processor_limit

    for given in (size, SizeDict(**size)):  # a dict, or transformers 5's SizeDict
        assert processor_limit(type("Processor", (), {"size": given})()) == limit
