"""Speech in the output: an embedded audio player that appears with the first sentence.

Jupyter cannot append to a playing ``<audio>`` element: updating a display replaces the
player. So the player shows as soon as the first chunk exists (playable while the rest is
synthesized), is replaced only once the audio made so far is at least twice what it holds
(a few replacements, and the WAV bytes sent stay under three times the final WAV), and the
last one holds everything, embedded so a saved notebook replays it. ``autoplay`` applies to
that final player only, so nothing is heard twice.
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from typing import Any, TextIO

from ..types.audio import SpeechAudio, audio_html, join_chunks
from .render import Publisher, _ipython_publisher, in_jupyter_kernel


def player_bundle(audio: SpeechAudio, caption: str, autoplay: bool = False) -> dict[str, str]:
    """The display data of an audio player with the WAV inside."""
    return {
        "text/html": audio_html(audio.to_wav(), autoplay, caption),
        "text/plain": f"<audio: {caption}>",
    }


def describe(audio: SpeechAudio, metadata: dict[str, Any], interrupted: bool) -> str:
    parts = [f"{audio.duration:.1f} s", f"{audio.sample_rate} Hz", metadata.get("model", "")]
    if interrupted:
        parts.append("interrupted")
    return " · ".join(p for p in parts if p)


class LivePlayer(ABC):
    """Where synthesized speech goes while it is made."""

    @abstractmethod
    def add(self, chunk: SpeechAudio) -> None:
        """Another chunk (sentence) of audio is ready."""

    @abstractmethod
    def finish(self, audio: SpeechAudio, metadata: dict[str, Any], interrupted: bool) -> None:
        """Show the whole audio with its provenance."""


class JupyterPlayer(LivePlayer):
    def __init__(self, autoplay: bool = False, publish: Publisher | None = None) -> None:
        self.autoplay = autoplay
        self.updates = 0
        self._publish = publish or _ipython_publisher()
        self._chunks: list[SpeechAudio] = []
        self._made = self._shown = 0  # samples

    def add(self, chunk: SpeechAudio) -> None:
        self._chunks.append(chunk)
        self._made += len(chunk.samples)
        if self._made >= 2 * self._shown:
            sofar = join_chunks(self._chunks)
            self._show(player_bundle(sofar, f"{sofar.duration:.1f} s so far, speaking…"), {})
            self._shown = self._made

    def finish(self, audio: SpeechAudio, metadata: dict[str, Any], interrupted: bool) -> None:
        if not audio.sample_rate:  # interrupted before the first sentence was ready
            self._show({"text/plain": "(interrupted before any audio)"}, {"llmux": metadata})
            return
        caption = describe(audio, metadata, interrupted)
        bundle = player_bundle(audio, caption, self.autoplay and not interrupted)
        self._show(bundle, {"llmux": metadata})

    def _show(self, bundle: dict[str, str], metadata: dict[str, Any]) -> None:
        self._publish(bundle, metadata, self.updates > 0)
        self.updates += 1


class TerminalPlayer(LivePlayer):
    """A terminal cannot play audio: it says what was made (use --save to keep it)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def add(self, chunk: SpeechAudio) -> None:
        pass

    def finish(self, audio: SpeechAudio, metadata: dict[str, Any], interrupted: bool) -> None:
        saved = f", saved to {metadata['saved']}" if "saved" in metadata else ""
        self.stream.write(f"[speech: {describe(audio, metadata, interrupted)}{saved}]\n")
        self.stream.flush()


def live_player(autoplay: bool = False) -> LivePlayer:
    return JupyterPlayer(autoplay) if in_jupyter_kernel() else TerminalPlayer()
