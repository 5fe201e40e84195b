"""Speech in a real kernel of its own: inline players carrying real WAVs, streamed transcripts,
-o values, the voice round trip, interrupts, %llm ps, and one clear error per bad input."""

from __future__ import annotations

from datetime import datetime

import pytest

from .helpers import SENTENCE, player_wav, word_error_rate

THREE = "Good morning to you. The kettle is on the stove. Breakfast will be ready soon."
LONG = " ".join([SENTENCE, "The weather is nice today, so we will walk to the park."] * 4)


def sent_at(message) -> datetime:
    date = message["header"]["date"]
    return date if isinstance(date, datetime) else datetime.fromisoformat(date)


def test_say_plays_an_embedded_wav_of_the_right_rate_and_length(speech_kernel, tmp_path):
    saved = tmp_path / "said.wav"
    run = speech_kernel.run(f"%llm say {SENTENCE} -o spoken --autoplay --save {saved}")
    assert run.status == "ok", run.error
    final = run.displays[-1]["content"]
    html = final["data"]["text/html"]
    wav = player_wav(html)
    assert (wav.sample_rate, wav.channels, wav.sample_width) == (22050, 1, 2)
    kind = speech_kernel.value(
        "(type(spoken).__name__, isinstance(spoken, tuple), type(spoken[1]).__name__,"
        " str(spoken[1].dtype), spoken[0], len(spoken[1]))"
    )
    assert kind == ("SpeechAudio", True, "ndarray", "float32", 22050, wav.frames)
    provenance = final["metadata"]["llmux"]
    assert provenance["model"] == "piper-joe" and provenance["sample_rate"] == 22050
    assert wav.duration == pytest.approx(provenance["audio_seconds"], abs=1e-3)
    assert 3 < wav.duration < 10 and "autoplay" in html
    assert player_wav(html).frames == (saved.stat().st_size - 44) // 2  # the same WAV saved


def test_first_sentence_is_playable_before_the_last_is_synthesized(speech_kernel):
    run = speech_kernel.run(f"%%llm say -o three\n{THREE}")
    assert run.status == "ok", run.error
    first, last = run.displays[0], run.displays[-1]
    assert first["msg_type"] == "display_data" and last["msg_type"] == "update_display_data"
    early, whole = (
        player_wav(first["content"]["data"]["text/html"]),
        player_wav(last["content"]["data"]["text/html"]),
    )
    assert 0 < early.frames < whole.frames == speech_kernel.value("len(three.samples)")
    assert "autoplay" not in last["content"]["data"]["text/html"]
    assert last["content"]["metadata"]["llmux"]["chunks"] == 3


def test_transcript_streams_segment_by_segment(speech_kernel):
    setup = speech_kernel.run(f"long_clip = llm.say({LONG!r})")
    assert setup.status == "ok", setup.error
    run = speech_kernel.run("%llm transcribe long_clip --language en -o heard")
    assert run.status == "ok", run.error
    texts = [m["content"]["data"]["text/plain"] for m in run.displays]
    final_lines = texts[-1].strip().splitlines()
    segments = speech_kernel.value("[str(s) for s in heard.segments]")
    assert final_lines == segments and len(segments) >= 4
    assert run.displays[0]["msg_type"] == "display_data"
    assert texts[0].strip().splitlines() == segments[: len(texts[0].strip().splitlines())]
    assert len(texts[0].strip().splitlines()) < len(segments)
    assert sent_at(run.displays[0]) < sent_at(run.displays[-1])
    kind = speech_kernel.value(
        "(type(heard).__name__, type(heard.segments[0]).__name__, heard.language)"
    )
    assert kind == ("Transcript", "Segment", "en")
    assert word_error_rate(LONG, speech_kernel.value("heard.text")) < 0.15
    assert run.displays[-1]["content"]["metadata"]["llmux"]["segments"] == len(segments)


def test_quoted_paths_with_spaces_and_apostrophes_in_the_text(speech_kernel, tmp_path):
    folder = tmp_path / "My Drive" / "Bob's clips"
    folder.mkdir(parents=True)
    said = speech_kernel.run(
        f"%llm say Don't worry, it's fine. --save '{folder}/my answer.wav' -o spoken"
    )
    assert said.status == "ok", said.error
    assert (folder / "my answer.wav").stat().st_size > 10_000
    heard = speech_kernel.run(f'%llm transcribe "{folder}/my answer.wav" --language en -o heard')
    assert heard.status == "ok", heard.error
    text = speech_kernel.value("heard.text")
    assert word_error_rate("Don't worry, it's fine.", text) <= 0.25, text


def test_voice_round_trip_in_one_cell(speech_kernel):
    run = speech_kernel.run(
        "%llm say What is the capital of France? -o question\n"
        "%llm transcribe question -o heard_question\n"
        "get_ipython().run_cell_magic('llm', '--new --thread voice --temperature 0 "
        "--max-tokens 30 -o answer', '{heard_question}')\n"
        "%llm say {answer} -o spoken_answer\n"
    )
    assert run.status == "ok", run.error
    heard = speech_kernel.value("heard_question.text")
    assert word_error_rate("What is the capital of France?", heard) < 0.15, heard
    assert speech_kernel.value("llm.threads.get('voice').turns[0].user") == heard
    answer = speech_kernel.value("answer")
    assert len(answer.split()) >= 2
    spoken = player_wav(run.displays[-1]["content"]["data"]["text/html"])
    assert spoken.frames == speech_kernel.value("len(spoken_answer.samples)") > 0


def test_interrupt_stops_between_sentences_and_keeps_the_audio(speech_kernel):
    speech_kernel.run("%llm load piper-joe")
    loaded_at = speech_kernel.value("llm.manager.get_loaded('piper-joe').loaded_at")

    def interrupt_at_first_player(message) -> None:
        if message["msg_type"] == "display_data":
            speech_kernel.interrupt()

    text = " ".join(f"This is sentence number {n} of a long story." for n in range(1, 41))
    run = speech_kernel.run(f"%%llm say -o partial\n{text}", on_message=interrupt_at_first_player)
    assert run.status == "error" and run.error["ename"] == "KeyboardInterrupt"
    final = run.displays[-1]["content"]
    assert final["metadata"]["llmux"]["interrupted"] is True
    chunks = final["metadata"]["llmux"]["chunks"]
    assert 1 <= chunks < 40
    assert player_wav(final["data"]["text/html"]).frames == speech_kernel.value(
        "len(partial.samples)"
    )
    assert speech_kernel.value("llm.manager.get_loaded('piper-joe').loaded_at") == loaded_at


def test_ps_lists_speech_models_and_they_unload(speech_kernel):
    speech_kernel.run("%llm load whisper-tiny.en\n%llm load piper-joe")
    run = speech_kernel.run("%llm ps")
    table = run.displays[0]["content"]["data"]["text/plain"]  # models, then budgets
    for name, task in (("whisper-tiny.en", "speech-to-text"), ("piper-joe", "text-to-speech")):
        assert name in table and task in table, table
    assert speech_kernel.run("%llm unload whisper-tiny.en").status == "ok"
    assert "whisper-tiny.en" not in speech_kernel.value("[m.name for m in llm.ps()]")


STATE = "(sorted((m.name, m.loaded_at) for m in llm.ps()), keep)"


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad-audio")
    corrupt = folder / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 4)
    notes = folder / "voice.wav"
    notes.write_text("these are my notes, not a recording\n")
    return {"corrupt": corrupt, "notes": notes}


@pytest.fixture(scope="module")
def speech_ready(speech_kernel, bad_files):
    run = speech_kernel.run(
        "keep = 'precious'\n%llm load smollm2\n%llm load whisper-tiny.en\n%llm load piper-joe\n"
        f"clip = llm.say({SENTENCE!r})"
    )
    assert run.status == "ok", run.error
    return speech_kernel


BAD = [
    ("%llm transcribe /no/such/clip.wav -o keep", "InvalidAudio", "No audio file at"),
    ("%llm transcribe {corrupt} -o keep", "InvalidAudio", "as audio (Invalid data"),
    ("%llm transcribe no_such_var -o keep", "InvalidAudio", "neither an audio file nor"),
    ('%llm say "" -o keep', "InvalidParameter", "The text is empty"),
    ("%%llm say -o keep\n  \n", "InvalidParameter", "The text is empty"),
    ("%llm say Hello. --voice {notes} -o keep", "InvalidParameter", "cannot clone"),
    ("%llm transcribe clip -m smollm2 -o keep", "UnsupportedTask", "not a speech-to-text"),
    ("%%llm -m whisper-tiny.en -o keep\nHello", "UnsupportedTask", "not a chat model"),
    ("%llm say Hi -m whisper-tiny.en -o keep", "UnsupportedTask", "not a text-to-speech"),
    ("%llm transcribe clip --set beam=2 -o keep", "InvalidParameter", "no option beam"),
]


@pytest.mark.parametrize(("code", "ename", "message"), BAD, ids=[c[0] for c in BAD])
def test_bad_speech_input_one_clear_error_nothing_lost(
    speech_ready, bad_files, code, ename, message
):
    kernel = speech_ready
    code = code.format(**bad_files)
    before = kernel.value(STATE)
    run = kernel.run(code)
    assert run.status == "error"
    error = run.error
    assert (error["ename"], len(error["traceback"])) == (ename, 1), error
    assert message in error["evalue"], error["evalue"]
    assert kernel.value(STATE) == before
