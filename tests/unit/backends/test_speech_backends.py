"""Pure logic of the speech backends: device/compute choice with faked hosts, voice files,
sentence splitting, the Chatterbox token cap, and how they register."""

from types import SimpleNamespace

import pytest

from llmux_jupyter.backends.chatterbox import ChatterboxBackend, _cap_speech_tokens, sentences
from llmux_jupyter.backends.piper import voice_files
from llmux_jupyter.backends.registry import registry
from llmux_jupyter.backends.whisper import whisper_placement
from llmux_jupyter.errors import InvalidParameter, SourceNotFound
from llmux_jupyter.hardware.devices import Device
from llmux_jupyter.models.catalog import BUILTIN_MODELS
from llmux_jupyter.models.sources import FileSource, HuggingFaceSource
from llmux_jupyter.models.spec import LoadOptions, ModelSpec
from llmux_jupyter.types.values import Task

GPU = [Device("cuda", 0, "A", total=8 << 30, free=2 << 30), Device("cuda", 1, "B", free=6 << 30)]
MAC = [Device("mps", name="Apple GPU")]


@pytest.mark.parametrize(
    ("device", "compute", "devices", "expected"),
    [
        ("auto", "auto", GPU, ("cuda:1", "float16")),
        ("auto", "auto", [], ("cpu", "int8")),
        ("auto", "auto", MAC, ("cpu", "int8")),
        ("cpu", "auto", GPU, ("cpu", "int8")),
        ("cuda:0", "auto", GPU, ("cuda:0", "float16")),
        ("cuda", "int8_float16", GPU, ("cuda:1", "int8_float16")),
        ("auto", "float32", [], ("cpu", "float32")),
    ],
)
def test_whisper_placement(device, compute, devices, expected):
    assert whisper_placement(device, compute, devices) == expected


@pytest.mark.parametrize(
    ("device", "compute", "devices", "message"),
    [
        ("cuda", "auto", [], "no CUDA GPU"),
        ("mps", "auto", MAC, "cannot use Apple's GPU"),
        ("auto", "int4", GPU, "compute_type 'int4' is not one of"),
    ],
)
def test_whisper_placement_refuses(device, compute, devices, message):
    with pytest.raises(InvalidParameter, match=message):
        whisper_placement(device, compute, devices)


def test_piper_voice_files(tmp_path):
    (tmp_path / "v.onnx").write_bytes(b"x")
    with pytest.raises(SourceNotFound, match=r"needs v.onnx.json beside it"):
        voice_files(tmp_path / "v.onnx")
    (tmp_path / "v.onnx.json").write_text("{}")
    expected = (tmp_path / "v.onnx", tmp_path / "v.onnx.json")
    assert voice_files(tmp_path / "v.onnx") == expected
    assert voice_files(tmp_path) == expected
    (tmp_path / "w.onnx").write_bytes(b"x")
    with pytest.raises(SourceNotFound, match="holds 2 "):
        voice_files(tmp_path)


def test_sentences():
    text = "Hello there!  How are you? I am fine.\nThanks. 3.5 stays whole"
    assert sentences(text) == [
        "Hello there!",
        "How are you?",
        "I am fine.",
        "Thanks.",
        "3.5 stays whole",
    ]
    assert sentences("   ") == []


def test_token_cap_overrides_what_generate_asks_for():
    calls = []
    t3 = SimpleNamespace(inference=lambda **keywords: calls.append(keywords))
    limit = [50]
    _cap_speech_tokens(SimpleNamespace(t3=t3), lambda: limit[0])
    t3.inference(text_tokens=1, max_new_tokens=1000)
    limit[0] = 2000
    t3.inference(text_tokens=1, max_new_tokens=1000)
    assert [c["max_new_tokens"] for c in calls] == [50, 1000]


def test_chatterbox_hub_release_is_recognised_and_estimated_without_downloading():
    def backend(source):
        spec = ModelSpec("c", "chatterbox", Task.SPEECH, source)
        return ChatterboxBackend(spec, LoadOptions())

    hub = backend(HuggingFaceSource("ResembleAI/chatterbox"))
    assert hub._from_hub() and hub.required_memory().ram > 3e9
    assert not backend(HuggingFaceSource("ResembleAI/chatterbox", revision="v1"))._from_hub()
    assert not backend(FileSource("/models/chatterbox"))._from_hub()


def test_speech_backends_and_defaults_are_built_in():
    assert {"faster-whisper", "piper", "chatterbox"} <= set(registry.names())
    assert registry.task_set("faster-whisper") == {Task.TRANSCRIPTION}
    assert registry.task_set("piper") == registry.task_set("chatterbox") == {Task.SPEECH}
    builtins = {spec.name: spec for spec in BUILTIN_MODELS}
    assert builtins["whisper-tiny.en"].task is Task.TRANSCRIPTION
    assert builtins["piper-joe"].task is Task.SPEECH
