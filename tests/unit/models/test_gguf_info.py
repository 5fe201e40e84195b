"""The GGUF header reader on files written by the gguf package's own writer."""

import numpy as np
import pytest

from llmux_jupyter.errors import ModelLoadError
from llmux_jupyter.models.gguf_info import read_gguf_info, tokens_in_vocabulary

from ...gguf_files import save


@pytest.fixture
def tiny_gguf(tmp_path):
    from gguf import GGUFWriter

    path = tmp_path / "tiny.gguf"
    writer = GGUFWriter(str(path), "llama")
    writer.add_block_count(2)
    writer.add_embedding_length(8)
    writer.add_head_count(2)
    writer.add_head_count_kv(1)
    writer.add_token_list(["<s>", "a", "b", "hello", "<|fim_prefix|>"])
    writer.add_chat_template("{{ messages }}")  # a key after the vocabulary, read past
    writer.add_tensor("w0", np.ones((4, 8), dtype=np.float32))
    writer.add_tensor("w1", np.ones((8,), dtype=np.float16))
    save(writer)
    return path


def test_reads_metadata_and_sizes(tiny_gguf):
    info = read_gguf_info(tiny_gguf)
    assert info.architecture == "llama" and info.version == 3
    assert info.vocabulary_size == 5 and info.tensor_count == 2
    assert info.tensor_bytes == 4 * 8 * 4 + 8 * 2
    assert info.tensor_elements == 4 * 8 + 8
    assert 0 <= info.file_size - info.data_end < 32  # the writer pads the end to alignment
    # 2 layers x 1 KV head x (4 + 4) x 2 bytes, per token
    assert info.kv_cache_bytes(10) == 10 * 2 * 1 * 8 * 2


def test_finds_whole_tokens_in_the_vocabulary(tiny_gguf):
    wanted = ["<|fim_prefix|>", "<|fim_suffix|>", "hell", "hello"]
    assert tokens_in_vocabulary(tiny_gguf, wanted) == {"<|fim_prefix|>", "hello"}
    assert tokens_in_vocabulary(tiny_gguf, ["<fim_prefix>"]) == frozenset()


def test_truncated_file_is_refused(tiny_gguf):
    data = tiny_gguf.read_bytes()
    tiny_gguf.write_bytes(data[:-40])
    with pytest.raises(ModelLoadError, match="truncated"):
        read_gguf_info(tiny_gguf)
    tiny_gguf.write_bytes(data[:40])
    with pytest.raises(ModelLoadError, match="damaged or truncated"):
        read_gguf_info(tiny_gguf)


def test_other_files_are_refused(tmp_path):
    text = tmp_path / "notes.gguf"
    text.write_text("hello")
    with pytest.raises(ModelLoadError, match="is not a GGUF file"):
        read_gguf_info(text)
    with pytest.raises(ModelLoadError, match="is not a file"):
        read_gguf_info(tmp_path)
