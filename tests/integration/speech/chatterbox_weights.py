"""Build randomly initialised Chatterbox weights of the real architecture (run with the
.venv-chatterbox interpreter: ``python chatterbox_weights.py OUT_DIR VOICE_WAV``).

The hub weights cannot be downloaded here. This writes what ``ChatterboxTTS.from_local`` reads
(ve, t3_cfg, s3gen safetensors and an English tokenizer.json) into ``OUT_DIR/local`` and, for the
``from_pretrained`` test, the same files plus a built-in voice (``conds.pt``) into ``OUT_DIR/hub``.
T3's Llama backbone is shrunk to ``T3_LAYERS`` layers (a kernel must apply the same shrink before
loading); the voice encoder and S3Gen are the real, fixed-size modules.
"""

from __future__ import annotations

import sys
from pathlib import Path

T3_LAYERS = 2


def shrink_t3() -> None:
    from chatterbox.models.t3.llama_configs import LLAMA_CONFIGS

    LLAMA_CONFIGS["Llama_520M"]["num_hidden_layers"] = T3_LAYERS


def build_tokenizer(path: Path) -> None:
    from chatterbox.models.tokenizers.tokenizer import SPECIAL_TOKENS
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=SPECIAL_TOKENS)
    corpus = ["The quick brown fox jumps over the lazy dog.", "Hello there, how are you today?"]
    tokenizer.train_from_iterator(corpus * 20, trainer)
    tokenizer.save(str(path))


def main(out: Path, voice: Path) -> None:
    import torch
    from chatterbox.models.s3gen import S3Gen
    from chatterbox.models.t3 import T3
    from chatterbox.models.voice_encoder import VoiceEncoder
    from chatterbox.tts import ChatterboxTTS
    from safetensors.torch import save_file

    torch.manual_seed(0)
    shrink_t3()
    local, hub = out / "local", out / "hub"
    local.mkdir(parents=True)
    hub.mkdir()
    for name, module in (("ve", VoiceEncoder()), ("t3_cfg", T3()), ("s3gen", S3Gen())):
        state = {key: value.contiguous().clone() for key, value in module.state_dict().items()}
        save_file(state, str(local / f"{name}.safetensors"))
    build_tokenizer(local / "tokenizer.json")
    for file in local.iterdir():
        (hub / file.name).symlink_to(file)
    model = ChatterboxTTS.from_local(local, "cpu")
    model.prepare_conditionals(str(voice))
    model.conds.save(hub / "conds.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
