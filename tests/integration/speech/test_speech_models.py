"""The real faster-whisper (Whisper tiny.en) and Piper (joe) through our Python API."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from llmux_jupyter.errors import InvalidAudio, UnsupportedTask
from llmux_jupyter.types.audio import Segment, SpeechAudio, Transcript

from .helpers import SENTENCE, word_error_rate


def test_piper_speaks_22khz_sentence_by_sentence(speech_llm):
    stream = speech_llm.say("One sentence here. And a second one! A third?", stream=True)
    chunks = list(stream)
    assert len(chunks) == 3
    assert all(isinstance(c, SpeechAudio) and c.sample_rate == 22050 for c in chunks)
    audio = stream.audio
    assert len(audio.samples) == sum(len(c.samples) for c in chunks)
    assert audio.samples.dtype == np.float32 and 0.1 < np.abs(audio.samples).max() <= 1.0
    assert stream.provenance["chunks"] == 3 and stream.provenance["model"] == "piper-joe"


def test_whisper_transcribes_piper_with_few_word_errors(speech_llm, spoken, spoken_wav):
    transcript = speech_llm.transcribe(spoken_wav, language="en")
    assert isinstance(transcript, Transcript) and transcript.language == "en"
    assert all(isinstance(s, Segment) and s.end > s.start for s in transcript.segments)
    wer = word_error_rate(SENTENCE, transcript.text)
    print(f"WER {wer:.3f}: {transcript.text!r}")
    assert wer < 0.15, transcript.text
    assert transcript.duration == pytest.approx(spoken.duration, abs=0.05)


def encoded(audio: SpeechAudio, codec: str, container: str) -> bytes:
    """The clip re-encoded with PyAV (mp3, flac...)."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as output:
        stream = output.add_stream(codec, rate=audio.sample_rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(
            audio.samples.reshape(1, -1), format="flt", layout="mono"
        )
        frame.sample_rate = audio.sample_rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            output.mux(packet)
    return buffer.getvalue()


@pytest.mark.parametrize("form", ["flac bytes", "mp3 file", "22 kHz pair", "16 kHz array"])
def test_every_input_form_transcribes(speech_llm, spoken, form, tmp_path):
    if form == "flac bytes":
        audio = encoded(spoken, "flac", "flac")
    elif form == "mp3 file":
        audio = tmp_path / "clip.mp3"
        audio.write_bytes(encoded(spoken, "mp3", "mp3"))
    elif form == "22 kHz pair":
        audio = (spoken.sample_rate, spoken.samples)
    else:
        from faster_whisper import decode_audio

        audio = decode_audio(io.BytesIO(spoken.to_wav()))
    transcript = speech_llm.transcribe(audio)
    assert word_error_rate(SENTENCE, transcript.text) < 0.15, (form, transcript.text)


def test_models_are_managed_like_the_llms(speech_llm, spoken):
    speech_llm.transcribe(spoken)
    loaded = {m.name: m for m in speech_llm.ps()}
    assert {"whisper-tiny.en", "piper-joe"} <= set(loaded)
    whisper = loaded["whisper-tiny.en"]
    assert (whisper.device, whisper.backend.compute_type) == ("cpu", "int8")
    assert whisper.estimate.ram > 30_000_000 and whisper.state == "idle"
    speech_llm.unload("whisper-tiny.en")
    assert "whisper-tiny.en" not in {m.name for m in speech_llm.ps()}
    assert speech_llm.transcribe(spoken).text  # loads again on use


def test_bad_inputs_raise_one_clear_error(speech_llm, tmp_path):
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(range(200)))
    with pytest.raises(InvalidAudio, match=r"Cannot read .*corrupt.wav as audio"):
        speech_llm.transcribe(corrupt)
    with pytest.raises(InvalidAudio, match="No audio file at"):
        speech_llm.transcribe(tmp_path / "missing.wav")
    with pytest.raises(UnsupportedTask, match="not a speech-to-text model"):
        speech_llm.transcribe(corrupt, model="piper-joe")
    assert all(m.state == "idle" for m in speech_llm.ps())
