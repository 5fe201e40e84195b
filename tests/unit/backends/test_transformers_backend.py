"""The transformers backend on tiny random Llamas built in-process: streaming, cancel, sampling
parameters, stop strings, device and dtype choice, chat templates, draft models, memory."""

from __future__ import annotations

import gc
import threading
import weakref

import pytest

from llmux_jupyter.api import LLM
from llmux_jupyter.backends import transformers as backend_module
from llmux_jupyter.backends.hf_streaming import THREAD_NAME
from llmux_jupyter.backends.transformers import Placement, TransformersBackend, choose_dtype
from llmux_jupyter.errors import ContextOverflow, InvalidParameter, ModelLoadError, UnknownModel
from llmux_jupyter.hardware.devices import Device
from llmux_jupyter.models.catalog import Catalog
from llmux_jupyter.models.sources import FileSource
from llmux_jupyter.models.spec import LoadOptions, ModelSpec
from llmux_jupyter.types.values import GenerationParams, Message, Task

from ...tiny_models import CHATML, build_tiny_llama, train_tokenizer

torch = pytest.importorskip("torch")
GIB = 2**30
TWO_GPUS = [Device("cuda", 0, "A", 24 * GIB, 2 * GIB), Device("cuda", 1, "B", 24 * GIB, 20 * GIB)]
HELLO = [Message("user", "Hello world")]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Two tiny Llamas sharing a tokenizer, one with another tokenizer, one without a template."""
    root = tmp_path_factory.mktemp("tiny")
    tokenizer = train_tokenizer()
    return {
        "tiny": build_tiny_llama(root / "tiny", tokenizer, seed=0),
        "draft": build_tiny_llama(root / "draft", tokenizer, seed=1, layers=1),
        "other": build_tiny_llama(root / "other", train_tokenizer(vocab_size=300), seed=2),
        "bare": build_tiny_llama(root / "bare", train_tokenizer(chat_template=None), seed=3),
    }


@pytest.fixture(scope="module")
def api(models, tmp_path_factory):
    llm = LLM(Catalog(tmp_path_factory.mktemp("cfg") / "models.json"))
    for name, path in models.items():
        llm.register(name, backend="transformers", path=str(path))
    yield llm
    llm.unload(all=True)


def chat(api, prompt="Hello world", **params):
    return api.chat(prompt, model="tiny", new=True, thread="t", **params)


def generation_threads():
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


def test_answer_streams_in_several_deltas_with_token_counts(api):
    stream = api.chat("Hello world", model="tiny", stream=True, max_tokens=24, temperature=0)
    deltas = list(stream)
    assert len(deltas) > 1 and all(deltas)
    response = stream.response
    assert response.text == "".join(deltas) and response.backend == "transformers"
    assert response.usage.completion_tokens == 24
    assert response.usage.prompt_tokens == len(
        api.manager.get_loaded("tiny").backend._tokenizer.apply_chat_template(
            [{"role": "user", "content": "Hello world"}], add_generation_prompt=True
        )["input_ids"]
    )
    assert generation_threads() == []


def test_greedy_and_seeded_sampling_repeat_and_leave_the_global_rng_alone(api):
    assert (
        chat(api, max_tokens=12, temperature=0).text == chat(api, max_tokens=12, temperature=0).text
    )
    torch.manual_seed(5)
    expected = torch.rand(1)
    torch.manual_seed(5)
    first = chat(api, max_tokens=16, temperature=1.0, top_p=0.95, seed=42).text
    assert torch.equal(torch.rand(1), expected)
    assert chat(api, max_tokens=16, temperature=1.0, top_p=0.95, seed=42).text == first
    assert chat(api, max_tokens=16, temperature=1.0, top_p=0.95, seed=43).text != first


def test_max_tokens_caps_the_answer(api):
    assert chat(api, max_tokens=5, temperature=0).usage.completion_tokens == 5


def test_stop_string_ends_the_answer_before_it(api):
    full = chat(api, max_tokens=40, temperature=1.0, seed=7).text
    stop = full[12:15]
    stopped = chat(api, max_tokens=40, temperature=1.0, seed=7, stop=[stop])
    assert stopped.text == full[: full.index(stop)]
    assert stopped.usage.completion_tokens < 40


def test_cancel_before_the_first_token_stops_after_one(api):
    backend = api.manager.get_loaded("tiny").backend if api.ps() else api.load("tiny").backend
    cancel = threading.Event()
    cancel.set()
    generation = backend.generate(HELLO, GenerationParams(max_tokens=200), cancel)
    with pytest.raises(StopIteration) as finished:
        while True:
            next(generation)
    assert finished.value.value["completion_tokens"] == 1
    assert generation_threads() == []


def test_cancel_mid_stream_and_closing_the_stream_stop_the_worker(api):
    stream = api.chat("Hello", model="tiny", stream=True, max_tokens=400, temperature=1.0, seed=1)
    received = 0
    for _ in stream:
        received += 1
        if received == 2:
            stream.cancel()
    assert received == 2
    assert stream.response.interrupted and stream.response.usage.completion_tokens < 400
    assert generation_threads() == []
    for _ in api.chat("Hello", model="tiny", stream=True, max_tokens=400, temperature=1.0):
        break  # closes the generator: the worker must stop and be joined
    assert generation_threads() == []
    assert api.manager.get_loaded("tiny").busy == 0


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"temperature": 0}, {"do_sample": False}),
        ({"temperature": 0.7, "top_p": 0.9}, {"do_sample": True, "temperature": 0.7, "top_p": 0.9}),
        ({"top_p": 0.5}, {"do_sample": True, "top_p": 0.5}),
        ({}, {}),
    ],
)
def test_generation_keywords(api, params, expected):
    backend = api.load("tiny").backend
    keywords = backend._generation_keywords(GenerationParams(**params), prompt_tokens=10)
    sampling = {k: v for k, v in keywords.items() if k in ("do_sample", "temperature", "top_p")}
    assert {k: v for k, v in sampling.items() if v is not None} == expected
    assert keywords["max_new_tokens"] == 512 - 10  # up to the end of the context
    assert keywords["pad_token_id"] == backend._tokenizer.pad_token_id


def test_a_prompt_longer_than_the_context_is_refused(api):
    with pytest.raises(ContextOverflow, match="context window is 512"):
        chat(api, prompt="Hello world " * 400)


@pytest.mark.parametrize(
    ("requested", "device", "saved", "bf16", "expected"),
    [
        ("auto", "cpu", "bfloat16", False, "float32"),
        ("auto", "cuda:1", "bfloat16", True, "bfloat16"),
        ("auto", "cuda:0", "bfloat16", False, "float16"),
        ("auto", "cuda:0", "float32", True, "float16"),
        ("auto", "mps", None, False, "float16"),
        ("bfloat16", "cpu", None, False, "bfloat16"),
    ],
)
def test_dtype_choice(requested, device, saved, bf16, expected):
    assert choose_dtype(requested, device, saved, bf16) == expected


def test_auto_device_on_a_fake_cuda_host_picks_the_freest_gpu(models, monkeypatch):
    monkeypatch.setattr(backend_module, "detect_devices", lambda: TWO_GPUS)
    spec = ModelSpec("tiny", "transformers", Task.CHAT, FileSource(str(models["tiny"])))
    backend = TransformersBackend(spec, LoadOptions())
    assert backend.placement() == Placement("cuda:1", "float16")
    estimate = backend.required_memory()
    assert estimate.ram == 0 and estimate.vram > 0
    pinned = TransformersBackend(spec, LoadOptions("cuda:0", {"dtype": "float32"}))
    assert pinned.placement() == Placement("cuda:0", "float32")
    assert pinned.required_memory().vram == 2 * estimate.vram


def test_estimate_from_safetensors_matches_the_loaded_tensors(models):
    spec = ModelSpec("tiny", "transformers", Task.CHAT, FileSource(str(models["tiny"])))
    backend = TransformersBackend(spec, LoadOptions("cpu"))
    estimate = backend.required_memory()
    backend.load()
    measured = backend.measured_memory().ram  # the weights + small buffers (rotary frequencies)
    assert estimate.ram <= measured <= estimate.ram + 1024
    half = TransformersBackend(spec, LoadOptions("cpu", {"dtype": "float16"})).required_memory()
    assert half.ram == estimate.ram // 2
    backend.unload()


def test_unload_drops_the_model(api):
    model = weakref.ref(api.load("tiny").backend._model)
    api.unload("tiny")
    gc.collect()
    assert model() is None


@pytest.mark.parametrize(
    ("load", "error", "message"),
    [
        ({"device": "cuda"}, InvalidParameter, "no CUDA GPU"),
        ({"device": "cuda:3"}, InvalidParameter, "no CUDA device 3"),
        ({"dtype": "float64"}, InvalidParameter, "dtype='float64': give one of auto"),
        ({"completion": "maybe"}, InvalidParameter, "completion must be true or false"),
        ({"template": "chatml"}, InvalidParameter, "neither a file nor Jinja text"),
        ({"n_ctx": -4}, InvalidParameter, "n_ctx=-4: give at least 1"),
        ({"draft": "nope"}, UnknownModel, "No model named 'nope'"),
        ({"draft": "other"}, InvalidParameter, "its tokenizer differs"),
    ],
)
def test_bad_loads_fail_clearly_and_keep_the_loaded_model(api, load, error, message):
    before = api.load("tiny")
    with pytest.raises(error, match=message):
        api.load("tiny", **load)
    assert [m.name for m in api.ps()] == ["tiny"]
    after = api.ps()[0]
    assert after.options == before.options and after.backend._model is not None
    assert generation_threads() == []


def test_folder_without_config_json_and_a_non_model_file(api, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "weights.gguf").write_bytes(b"GGUF")
    (tmp_path / "notes.txt").write_text("not a model")
    api.register("empty", backend="transformers", path=str(tmp_path / "empty"))
    api.register("notes", backend="transformers", path=str(tmp_path / "notes.txt"))
    with pytest.raises(ModelLoadError, match=r"has no config\.json.*weights\.gguf"):
        api.load("empty")
    with pytest.raises(ModelLoadError, match="neither a transformers model folder"):
        api.load("notes")
    assert "empty" not in [m.name for m in api.ps()]


def test_a_model_without_chat_template_names_the_ways_out(api, tmp_path):
    with pytest.raises(ModelLoadError, match=r"no chat template.*--set template=.*completion=true"):
        api.load("bare")
    assert "bare" not in [m.name for m in api.ps()]
    template = tmp_path / "chat.jinja"
    template.write_text("{% for m in messages %}{{ m['content'] }}\n{% endfor %}")
    tokenizer = api.load("bare", template=str(template)).backend._tokenizer
    templated = api.chat("Hi", model="bare", max_tokens=3, temperature=0, new=True)
    assert templated.usage.prompt_tokens == len(tokenizer("Hi\n")["input_ids"])
    assert templated.usage.completion_tokens == 3
    api.load("bare", completion="true")
    plain = api.chat("Hi", model="bare", max_tokens=3, temperature=0, new=True)
    assert plain.usage.prompt_tokens == len(tokenizer("Hi")["input_ids"])
    api.unload("bare")


def test_draft_model_gives_the_same_greedy_answer(api):
    alone = api.load("tiny").measured.ram
    plain = chat(api, max_tokens=30, temperature=0)
    loaded = api.load("tiny", draft="draft")
    assert loaded.options.draft.name == "draft" and "draft: draft" in loaded.backend.load_note
    assert alone < loaded.measured.ram < 2 * alone  # the 1-layer draft's tensors count too
    drafted = chat(api, max_tokens=30, temperature=0)
    assert drafted.text == plain.text
    assert drafted.usage.completion_tokens == plain.usage.completion_tokens == 30
    api.load("tiny")  # back to no draft


def test_only_transformers_chat_models_can_be_drafts(api, models):
    api.register("embedder", backend="transformers", path=str(models["draft"]), task="embedding")
    with pytest.raises(InvalidParameter, match="must be a transformers chat model"):
        api.load("tiny", draft="embedder")
    with pytest.raises(InvalidParameter, match="'embedder' does embedding"):
        api.load("embedder", draft="draft")


def test_registration_defaults_to_chat_and_can_say_embedding(api, models):
    assert api.manager.catalog.get("tiny").task is Task.CHAT
    spec = api.register("enc", backend="transformers", path=str(models["tiny"]), task="embedding")
    assert spec.task is Task.EMBEDDING
    with pytest.raises(InvalidParameter, match="not an embedding model"):
        api.embed("hello", model="tiny")
    with pytest.raises(InvalidParameter, match="non-empty list of strings"):
        api.embed([], model="enc")


def test_hugging_face_repo_resolves_from_a_prepopulated_cache(models, tmp_path, monkeypatch):
    """--hf ORG/REPO without --file: huggingface_hub's snapshot, offline, then from_pretrained."""
    import huggingface_hub.constants as constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--org--tiny-llama"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for file in models["tiny"].iterdir():
        (snapshot / file.name).symlink_to(file)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    llm = LLM(Catalog(tmp_path / "models.json"))
    llm.register("tiny-hf", backend="transformers", hf="org/tiny-llama")
    answer = llm.chat("Hello world", model="tiny-hf", max_tokens=6, temperature=0)
    assert answer.usage.completion_tokens == 6
    assert llm.ps()[0].backend.files().path == snapshot
    llm.unload(all=True)


TOOLS_TEMPLATE = (
    "{% if tools %}<|im_start|>system\nTools: {% for t in tools %}{{ t['function']['name'] }}"
    "{% endfor %}<|im_end|>\n{% endif %}" + CHATML
)


def test_a_template_that_knows_tools_describes_them_itself(api, models):
    def multiply(a: int, b: int) -> int:
        """Multiply two integers."""
        return a * b

    api.register("tooly", backend="transformers", path=str(models["tiny"]), template=TOOLS_TEMPLATE)
    backend = api.load("tooly").backend
    assert backend.template_tools()
    prompts = []
    encode = backend._encode

    def recorded(messages, tools=()):
        encoded = encode(messages, tools)
        prompts.append(backend._tokenizer.decode(encoded["input_ids"][0]))
        return encoded

    backend._encode = recorded
    try:
        api.chat("Hello world", model="tooly", tools=[multiply], tool_choice="multiply",
                 max_tokens=4, temperature=0, new=True)  # fmt: skip
    finally:
        api.unload("tooly")
    assert len(prompts) >= 2  # the arguments, then the answer
    assert all(p.startswith("<|im_start|>system\nTools: multiply<|im_end|>") for p in prompts)
    assert not any("You can call these tools" in p for p in prompts)


def test_every_batch_path_reports_the_answer_log_probability_under_a_schema(api):
    import dataclasses
    import json

    from llmux_jupyter.types.batch import BatchRequest

    pytest.importorskip("llguidance")
    backend = api.load("tiny").backend
    schema = {"type": "string", "enum": ["Paris", "France", "world"]}
    greedy = GenerationParams(temperature=0, max_tokens=8, json_schema=schema, logprobs=True)
    prompts = ["Hello world", "What is the capital of France?"]
    requests = [BatchRequest(i, [Message("user", p)], greedy) for i, p in enumerate(prompts)]
    continuous = {a.key: a for a in backend.generate_batch(requests, threading.Event())}
    sampled = dataclasses.replace(greedy, temperature=0.7, seed=1)
    requests_sampled = [dataclasses.replace(r, params=sampled) for r in requests]
    batched = list(backend.generate_batch(requests_sampled, threading.Event(), batch_size=2))
    stream = backend.generate(requests[0].messages, greedy, threading.Event())
    texts = []
    while True:
        try:
            texts.append(next(stream))
        except StopIteration as stop:
            single = stop.value
            break
    for answer in [*continuous.values(), *batched]:
        assert json.loads(answer.text) in schema["enum"] and answer.logprob < 0, answer
    assert json.loads("".join(texts)) == json.loads(continuous[0].text)
    assert single["logprob"] == pytest.approx(continuous[0].logprob, abs=1e-4)
    unasked = dataclasses.replace(greedy, logprobs=False)
    plain = backend.generate_batch(
        [dataclasses.replace(requests[0], params=unasked)], threading.Event()
    )
    assert [answer.logprob for answer in plain] == [None]
