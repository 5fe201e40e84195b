"""What the speech tests measure: word error rate, and the WAV inside an audio player."""

from __future__ import annotations

import base64
import io
import re
import wave
from dataclasses import dataclass

SENTENCE = "Please call Stella and ask her to bring these things with her from the store."


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, after lower-casing and
    dropping punctuation."""
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, 1):
        diagonal, row[0] = row[0], i
        for j, hyp_word in enumerate(hyp, 1):
            diagonal, row[j] = (
                row[j],
                min(row[j] + 1, row[j - 1] + 1, diagonal + (ref_word != hyp_word)),
            )
    return row[len(hyp)] / max(1, len(ref))


@dataclass(frozen=True)
class Wav:
    sample_rate: int
    frames: int
    channels: int
    sample_width: int

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


def player_wav(html: str) -> Wav:
    """The WAV embedded in an ``<audio src="data:audio/wav;base64,...">`` player."""
    match = re.search(r'<audio controls[^>]* src="data:audio/wav;base64,([A-Za-z0-9+/=]+)"', html)
    assert match, html[:200]
    with wave.open(io.BytesIO(base64.b64decode(match.group(1)))) as reader:
        return Wav(
            reader.getframerate(), reader.getnframes(), reader.getnchannels(), reader.getsampwidth()
        )
