"""Transcription and speech jobs, their magics and the live player, on fake speech backends."""

from __future__ import annotations

import base64
import io
import re
import wave
from collections.abc import Iterator

import numpy as np
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from llmux_jupyter.api import LLM
from llmux_jupyter.backends.base import Backend
from llmux_jupyter.backends.registry import registry
from llmux_jupyter.errors import (
    GenerationError,
    InvalidAudio,
    InvalidParameter,
    UnsupportedTask,
)
from llmux_jupyter.frontends.magics import LLMuxMagics
from llmux_jupyter.frontends.player import JupyterPlayer, TerminalPlayer
from llmux_jupyter.models.catalog import Catalog
from llmux_jupyter.models.sources import FileSource
from llmux_jupyter.models.spec import ModelSpec
from llmux_jupyter.types.audio import Segment, SpeechAudio, Transcript
from llmux_jupyter.types.values import RequiredMemory, Task


class FakeListener(Backend):
    """One segment per second of audio; ``fail`` raises after the first segment."""

    tasks = frozenset({Task.TRANSCRIPTION})

    def required_memory(self) -> RequiredMemory:
        return RequiredMemory(ram=10)

    def load(self) -> None:
        pass

    def transcribe(self, audio, options, cancel) -> Iterator[Segment]:
        seconds = int(audio.duration)
        for index in range(seconds):
            if index and self.settings.get("fail"):
                raise RuntimeError("injected failure")
            yield Segment(float(index), index + 1.0, f" word{index}")
            if cancel.is_set():
                break
        return {"language": options.language or "xx", "duration": audio.duration}


class FakeSpeaker(Backend):
    """One chunk of 0.1 s per word, at 1000 Hz; records the options it was given."""

    tasks = frozenset({Task.SPEECH})

    def required_memory(self) -> RequiredMemory:
        return RequiredMemory(ram=10)

    def load(self) -> None:
        self.calls = []

    def synthesize(self, text, options, cancel) -> Iterator[SpeechAudio]:
        self.calls.append(options)
        for index, _ in enumerate(text.split()):
            if text.startswith("..."):
                return
            yield SpeechAudio(1000, np.full(100, index / 10, dtype=np.float32))
            if cancel.is_set():
                break


@pytest.fixture
def llm(tmp_path) -> Iterator[LLM]:
    registry.add("fake-stt", FakeListener)
    registry.add("fake-tts", FakeSpeaker)
    source = FileSource(str(tmp_path))
    catalog = Catalog(
        tmp_path / "models.json",
        builtins=[
            ModelSpec("ears", "fake-stt", Task.TRANSCRIPTION, source, builtin=True),
            ModelSpec("broken-ears", "fake-stt", Task.TRANSCRIPTION, source, {"fail": True}),
            ModelSpec("mouth", "fake-tts", Task.SPEECH, source, builtin=True),
        ],
    )
    yield LLM(catalog)
    registry.remove("fake-stt")
    registry.remove("fake-tts")


def seconds_of_audio(seconds: int) -> SpeechAudio:
    return SpeechAudio(16000, np.zeros(16000 * seconds, dtype=np.float32))


def test_transcribe_builds_a_transcript_and_frees_the_model(llm):
    transcript = llm.transcribe(seconds_of_audio(3), language="en")
    assert isinstance(transcript, Transcript)
    assert transcript.text == "word0 word1 word2" == str(transcript)
    assert [s.start for s in transcript.segments] == [0.0, 1.0, 2.0]
    assert (transcript.language, transcript.duration, transcript.model) == ("en", 3.0, "ears")
    assert [(m.name, m.state) for m in llm.ps()] == [("ears", "idle")]


def test_transcription_stream_is_busy_while_running_and_cancels_between_segments(llm):
    stream = llm.transcribe(seconds_of_audio(5), stream=True)
    segments = iter(stream)
    assert next(segments).text == " word0"
    assert llm.ps()[0].state == "busy"
    stream.cancel()
    assert list(segments) == []
    assert stream.transcript.text == "word0" and stream.transcript.interrupted
    assert stream.provenance["interrupted"] and stream.provenance["segments"] == 1
    assert llm.ps()[0].state == "idle"


def test_a_failing_transcription_keeps_nothing(llm):
    stream = llm.transcribe(seconds_of_audio(3), model="broken-ears", stream=True)
    with pytest.raises(RuntimeError, match="injected"):
        list(stream)
    assert stream.transcript is None and llm.ps()[0].state == "idle"


def test_say_joins_chunks_saves_and_passes_options(llm, tmp_path):
    audio = llm.say("one two three", voice="clip.wav", save=str(tmp_path / "out.wav"), speed=2)
    assert isinstance(audio, SpeechAudio) and isinstance(audio, tuple)
    assert audio.sample_rate == 1000 and len(audio.samples) == 300
    with wave.open(str(tmp_path / "out.wav")) as reader:
        assert (reader.getframerate(), reader.getnframes()) == (1000, 300)
    options = llm.manager.get_loaded("mouth").backend.calls[-1]
    assert (options.voice, options.extra) == ("clip.wav", {"speed": 2})


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda llm: llm.say("  \n"), InvalidParameter, "The text is empty"),
        (lambda llm: llm.say("..."), GenerationError, "made no sound"),
        (lambda llm: llm.say("hi", save="/no/such/dir/x.wav"), InvalidParameter, "does not exist"),
        (lambda llm: llm.say("hi", model="ears"), UnsupportedTask, "not a text-to-speech"),
        (lambda llm: llm.transcribe(b"", model="ears"), InvalidAudio, "empty"),
        (lambda llm: llm.transcribe("/x.wav", model="mouth"), UnsupportedTask, "speech-to-text"),
    ],
)
def test_bad_speech_requests(llm, call, error, message):
    with pytest.raises(error, match=message):
        call(llm)
    assert all(m.state == "idle" for m in llm.ps())


# -- the live player ------------------------------------------------------------------------
def wav_in(bundle) -> tuple[int, int]:
    encoded = re.search(r'base64,([^"]+)"', bundle["text/html"]).group(1)
    with wave.open(io.BytesIO(base64.b64decode(encoded))) as reader:
        return reader.getframerate(), reader.getnframes()


def test_player_shows_the_first_chunk_at_once_then_doubles_and_autoplays_the_end():
    shown = []
    player = JupyterPlayer(autoplay=True, publish=lambda *published: shown.append(published))
    for _ in range(9):
        player.add(SpeechAudio(1000, np.zeros(500, dtype=np.float32)))
    frames = [wav_in(bundle)[1] for bundle, _, _ in shown]
    assert frames == [500, 1000, 2000, 4000]  # replaced once the audio has doubled
    assert [update for _, _, update in shown] == [False, True, True, True]
    assert all("autoplay" not in bundle["text/html"] for bundle, _, _ in shown)
    player.finish(SpeechAudio(1000, np.zeros(4500)), {"model": "m"}, interrupted=False)
    bundle, metadata, update = shown[-1]
    assert update and metadata == {"llmux": {"model": "m"}} and "autoplay" in bundle["text/html"]
    assert wav_in(bundle) == (1000, 4500) and "4.5 s · 1000 Hz · m" in bundle["text/plain"]


def test_interrupted_player_does_not_autoplay():
    shown = []
    player = JupyterPlayer(autoplay=True, publish=lambda b, m, u: shown.append(b))
    player.finish(SpeechAudio(1000, np.zeros(10)), {}, interrupted=True)
    assert "autoplay" not in shown[-1]["text/html"] and "interrupted" in shown[-1]["text/plain"]
    player.finish(SpeechAudio(0, np.zeros(0)), {}, interrupted=True)
    assert shown[-1] == {"text/plain": "(interrupted before any audio)"}


def test_terminal_player_reports(capsys):
    TerminalPlayer().finish(SpeechAudio(1000, np.zeros(1500)), {"saved": "a.wav"}, False)
    assert capsys.readouterr().out == "[speech: 1.5 s · 1000 Hz, saved to a.wav]\n"


# -- the magics ------------------------------------------------------------------------------
@pytest.fixture
def shell(llm):
    shell = InteractiveShell.instance()
    shell.register_magics(LLMuxMagics(shell, llm))
    yield shell
    for name in ("heard", "spoken", "clip", "keep"):
        shell.user_ns.pop(name, None)


def test_say_line_joins_words_and_stores_the_audio(shell, llm, capsys):
    shell.run_line_magic("llm", 'say "Hello there" general Kenobi -o spoken --set speed=2')
    audio = shell.user_ns["spoken"]
    assert isinstance(audio, SpeechAudio) and len(audio.samples) == 400
    assert capsys.readouterr().out == "[speech: 0.4 s · 1000 Hz · mouth]\n"
    assert llm.manager.get_loaded("mouth").backend.calls[-1].extra == {"speed": 2}


def test_say_keeps_apostrophes_and_saves_to_a_path_with_spaces(shell, tmp_path):
    folder = tmp_path / "My Drive"
    folder.mkdir()
    shell.run_line_magic(
        "llm", f"say Don't panic, it's fine. -o spoken --save \"{folder}/my answer.wav\""
    )
    assert len(shell.user_ns["spoken"].samples) == 400  # four words, one chunk each
    assert (folder / "my answer.wav").stat().st_size == 44 + 400 * 2


def test_transcribe_takes_a_quoted_path(shell):
    with pytest.raises(InvalidAudio, match=r"No audio file at /no such/clip\.wav"):
        shell.run_line_magic("llm", "transcribe '/no such/clip.wav'")


def test_say_cell_speaks_the_interpolated_cell(shell):
    shell.user_ns["who"] = "you all"
    shell.run_cell_magic("llm", "say -o spoken", "Hello {who}.\n")
    assert len(shell.user_ns["spoken"].samples) == 300
    shell.run_cell_magic("llm", "say --raw -o spoken", "{a} {b}")
    assert len(shell.user_ns["spoken"].samples) == 200


def test_transcribe_a_variable_streams_segments_and_stores_the_transcript(shell, capsys):
    shell.user_ns["clip"] = seconds_of_audio(2)
    shell.run_line_magic("llm", "transcribe clip -o heard --language en")
    out = capsys.readouterr().out
    assert out == "[00:00.00 → 00:01.00] word0\n[00:01.00 → 00:02.00] word1\n\n"
    assert shell.user_ns["heard"].text == "word0 word1"


@pytest.mark.parametrize(
    ("line", "error", "message"),
    [
        ("say", UsageError, "required: TEXT"),
        ('say ""', InvalidParameter, "The text is empty"),
        ("say hi -o 1x", UsageError, "give a Python variable name"),
        ("say hi --set 1=2", UsageError, "write KEY=VALUE"),
        ("transcribe nothing_here -o keep", InvalidAudio, "neither an audio file nor a notebook"),
        ("transcribe /no/clip.wav -o keep", InvalidAudio, "No audio file at /no/clip.wav"),
        ("transcribe clip -m mouth -o keep", UnsupportedTask, "not a speech-to-text model"),
    ],
)
def test_bad_speech_magics_raise_one_error_and_change_nothing(shell, llm, line, error, message):
    shell.user_ns.update(keep="kept", clip=seconds_of_audio(1))
    shell.run_line_magic("llm", "say warm up")
    with pytest.raises(error, match=message):
        shell.run_line_magic("llm", line)
    assert shell.user_ns["keep"] == "kept"
    assert [(m.name, m.state) for m in llm.ps()] == [("mouth", "idle")]


def test_help_lists_the_speech_commands(shell, capsys):
    shell.run_line_magic("llm", "help")
    out = capsys.readouterr().out
    assert "%llm transcribe" in out and "%llm say" in out
