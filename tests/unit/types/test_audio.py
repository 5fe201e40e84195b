"""Our audio plumbing: WAV encoding, SpeechAudio, transcription inputs, backend keywords."""

import io
import wave

import numpy as np
import pytest

from llmux_jupyter.errors import InvalidAudio, InvalidParameter
from llmux_jupyter.types.audio import (
    Segment,
    SpeechAudio,
    as_audio_input,
    audio_html,
    call_keywords,
    join_chunks,
    wav_bytes,
)


def read_wav(data: bytes) -> tuple[int, int, np.ndarray]:
    with wave.open(io.BytesIO(data)) as reader:
        assert (reader.getnchannels(), reader.getsampwidth()) == (1, 2)
        frames = reader.readframes(reader.getnframes())
        return reader.getframerate(), reader.getnframes(), np.frombuffer(frames, "<i2")


def test_wav_is_16_bit_pcm_with_the_rate_and_clipped_samples():
    rate, frames, pcm = read_wav(wav_bytes([0.0, 0.5, -0.5, 1.0, -1.0, 3.0, -3.0], 22050))
    assert (rate, frames) == (22050, 7)
    assert pcm.tolist() == [0, 16384, -16384, 32767, -32767, 32767, -32767]


def test_speech_audio_is_a_rate_samples_pair_that_saves_and_plays(tmp_path):
    audio = SpeechAudio(16000, np.zeros(8000, dtype=np.float32))
    rate, samples = audio
    assert (rate, len(samples), audio.duration) == (16000, 8000, 0.5)
    path = audio.save(tmp_path / "a.wav")
    assert read_wav(path.read_bytes())[:2] == (16000, 8000)
    html = audio._repr_html_()
    assert html.startswith("<audio controls") and "data:audio/wav;base64," in html
    with pytest.raises(InvalidAudio, match="Cannot write"):
        audio.save(tmp_path / "missing-folder" / "a.wav")


def test_audio_html_autoplay_and_escaped_caption():
    html = audio_html(b"RIFF", autoplay=True, caption="<b>1 s</b>")
    assert "<audio controls autoplay" in html and "&lt;b&gt;1 s&lt;/b&gt;" in html
    assert "autoplay" not in audio_html(b"RIFF")


def test_join_chunks_concatenates_in_order():
    joined = join_chunks([SpeechAudio(8, np.ones(3)), SpeechAudio(8, np.zeros(2))])
    assert joined.sample_rate == 8 and joined.samples.tolist() == [1, 1, 1, 0, 0]
    assert join_chunks([]).sample_rate == 0


def test_segment_shows_its_times():
    assert str(Segment(61.5, 65.25, " Hello.")) == "[01:01.50 → 01:05.25] Hello."


def test_audio_inputs(tmp_path):
    clip = tmp_path / "clip.wav"
    clip.write_bytes(b"RIFF")
    assert as_audio_input(str(clip)) == clip
    assert as_audio_input(b"RIFF") == b"RIFF"
    pair = as_audio_input((8000, [0.1, 0.2]))
    assert pair.sample_rate == 8000 and pair.samples.dtype == np.float32
    bare = as_audio_input(np.zeros(5))
    assert bare.sample_rate == 16000
    stereo = np.stack([np.ones(10), np.zeros(10)])  # (channels, frames)
    assert as_audio_input(stereo).samples.tolist() == [0.5] * 10
    assert as_audio_input(stereo.T).samples.tolist() == [0.5] * 10


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("/no/such/clip.wav", "No audio file at"),
        (b"", "bytes are empty"),
        (np.zeros(0), "1-D"),
        (np.zeros((2, 2, 2)), "1-D"),
        ((16000, ["a", "b"]), "not numbers"),
        (3.5, "Cannot transcribe a float"),
    ],
)
def test_bad_audio_inputs(value, message):
    with pytest.raises(InvalidAudio, match=message):
        as_audio_input(value)


def test_call_keywords_merge_settings_and_refuse_unknown_options():
    settings = {"beam_size": 5, "compute_type": "int8"}
    assert call_keywords(settings, {}, ("beam_size",), "x") == {"beam_size": 5}
    assert call_keywords(settings, {"beam_size": 1}, ("beam_size",), "x") == {"beam_size": 1}
    with pytest.raises(InvalidParameter, match="no option bogus; it takes beam_size"):
        call_keywords(settings, {"bogus": 1}, ("beam_size",), "x")
