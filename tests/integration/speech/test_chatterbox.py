"""Chatterbox for real, in a kernel on the .venv-chatterbox interpreter: from_local on random
weights of the real architecture with a voice prompt, from_pretrained with only the hub call
replaced, capped generation at 24 kHz, and bad voices. (Random weights make noise, not speech:
these prove loading and calling; speech quality is checked with Piper.)"""

from __future__ import annotations

import pytest

from .helpers import player_wav

STATE = "(sorted((m.name, m.loaded_at) for m in llm.ps()), keep)"


@pytest.fixture(scope="module")
def local(chatterbox_kernel, chatterbox_weights):
    run = chatterbox_kernel.run(
        "keep = 'precious'\n"
        f"%llm register cbx --backend chatterbox --path {chatterbox_weights / 'local'} "
        "--set max_new_tokens=30\n"
        "%llm load cbx\n",
        timeout=600,
    )
    assert run.status == "ok", run.error
    # What the libraries print while loading ("loaded PerthNet (Implicit) at step ...") is
    # logged, not shown: the cell says what we said.
    registered, loaded = run.stdout.splitlines()
    assert registered.startswith("Registered cbx") and loaded.startswith("cbx loaded on cpu")
    assert "PerthNet" not in run.shown_text
    return chatterbox_kernel


def test_voice_prompt_and_capped_generation_give_24khz_audio(local, spoken_wav):
    run = local.run(
        f"%llm say Hello there. -m cbx --voice {spoken_wav} -o cloned "
        "--set exaggeration=0.7 --set cfg_weight=0.3 --set temperature=0.6",
        timeout=600,
    )
    assert run.status == "ok", run.error
    final = run.displays[-1]["content"]
    wav = player_wav(final["data"]["text/html"])
    assert wav.sample_rate == 24000 and wav.frames > 0
    assert local.value("(cloned.sample_rate, len(cloned.samples))") == (24000, wav.frames)
    # 30 speech tokens at 25 a second, upsampled: at most ~1.2 s (+ the vocoder's tail)
    assert wav.duration < 2.0
    provenance = final["metadata"]["llmux"]
    assert (provenance["backend"], provenance["device"]) == ("chatterbox", "cpu")
    assert local.value("llm.manager.get_loaded('cbx').backend._model.conds") is None


def test_a_model_without_a_builtin_voice_asks_for_one(local):
    before = local.value(STATE)
    run = local.run("%llm say Hello. -m cbx -o keep")
    assert (run.error["ename"], len(run.error["traceback"])) == ("InvalidParameter", 1)
    assert "pass a reference clip with --voice" in run.error["evalue"]
    assert local.value(STATE) == before


@pytest.mark.parametrize(
    ("voice", "message"),
    [("notes.wav", "Cannot use notes.wav as a voice clip"), ("none.wav", "No voice clip")],
)
def test_a_voice_file_that_is_not_audio(local, tmp_path, voice, message):
    (tmp_path / "notes.wav").write_text("meeting notes, not a recording\n")
    before = local.value(STATE)
    run = local.run(f"%llm say Hello. -m cbx --voice {tmp_path / voice} -o keep")
    assert (run.error["ename"], len(run.error["traceback"])) == ("InvalidAudio", 1), run.error
    assert message in run.error["evalue"]
    assert local.value(STATE) == before


def test_from_pretrained_with_the_hub_call_isolated(local, chatterbox_weights):
    """The built-in hub release goes through ChatterboxTTS.from_pretrained; only
    hf_hub_download is replaced, by a function that serves the fixture's files."""
    hub = chatterbox_weights / "hub"
    code = f"""
import chatterbox.tts
fetched = []
def fake_download(repo_id, filename, **keywords):
    fetched.append((repo_id, filename))
    return f"{hub}/{{filename}}"
real_download, chatterbox.tts.hf_hub_download = chatterbox.tts.hf_hub_download, fake_download
try:
    llm.register("cbx-hub", backend="chatterbox", hf="ResembleAI/chatterbox", max_new_tokens=20)
    hub_audio = llm.say("Hello from the hub.", model="cbx-hub")
finally:
    chatterbox.tts.hf_hub_download = real_download
"""
    run = local.run(code, timeout=600)
    assert run.status == "ok", run.error
    fetched = local.value("fetched")
    assert {f for _, f in fetched} == {
        "ve.safetensors",
        "t3_cfg.safetensors",
        "s3gen.safetensors",
        "tokenizer.json",
        "conds.pt",
    }
    assert {r for r, _ in fetched} == {"ResembleAI/chatterbox"}
    rate, frames = local.value("(hub_audio.sample_rate, len(hub_audio.samples))")
    assert rate == 24000 and frames > 0  # spoken with the built-in voice (conds.pt)


def test_chatterbox_is_managed_and_unloads(local):
    run = local.run("%llm ps")
    assert "cbx" in run.displays[0]["content"]["data"]["text/plain"]  # the models table
    assert local.run("%llm unload --all").status == "ok"
    assert local.value("llm.ps()") == []
