"""Weight sizes from safetensors headers, without loading the tensors."""

import numpy as np

from llmux_jupyter.models.safetensors_info import tensor_elements, weight_bytes


def test_counts_elements_per_dtype_over_shards(tmp_path):
    from safetensors.numpy import save_file

    save_file(
        {"a": np.zeros((4, 8), np.float32), "b": np.zeros(3, np.int64)}, tmp_path / "1.safetensors"
    )
    save_file({"c": np.zeros((2, 5), np.float16)}, tmp_path / "2.safetensors")
    counts = tensor_elements(tmp_path)
    assert counts == {"F32": 32, "I64": 3, "F16": 10}
    assert weight_bytes(counts) == 32 * 4 + 3 * 8 + 10 * 2
    assert weight_bytes(counts, float_bytes=2) == 32 * 2 + 3 * 8 + 10 * 2  # ints keep their size


def test_no_or_broken_safetensors_gives_none(tmp_path):
    assert tensor_elements(tmp_path) is None
    (tmp_path / "model.safetensors").write_bytes(b"\x05\x00")
    assert tensor_elements(tmp_path) is None
