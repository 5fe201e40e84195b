"""Split GGUF models, written by the gguf package's own writer (split_max_tensors)."""

import numpy as np
import pytest

from llmux_jupyter.backends.base import path_size
from llmux_jupyter.errors import ModelLoadError, SourceNotFound
from llmux_jupyter.models.gguf_info import read_gguf_info
from llmux_jupyter.models.gguf_split import gguf_parts, part_names, read_model_info
from llmux_jupyter.models.sources import FileSource

from ...gguf_files import save


@pytest.fixture
def parts(tmp_path):
    """A 3-part model: one float32 tensor of 4 * 8 values per part."""
    from gguf import GGUFWriter

    writer = GGUFWriter(str(tmp_path / "tiny.gguf"), "llama", split_max_tensors=1)
    for index in range(3):
        writer.add_tensor(f"w{index}", np.full((4, 8), index, dtype=np.float32))
    save(writer)
    return [tmp_path / f"tiny-0000{n}-of-00003.gguf" for n in (1, 2, 3)]


def test_part_names():
    assert part_names("m-00002-of-00003.gguf") == [
        "m-00001-of-00003.gguf",
        "m-00002-of-00003.gguf",
        "m-00003-of-00003.gguf",
    ]
    assert part_names("model.gguf") == ["model.gguf"]
    assert part_names("m-0001-of-0003.gguf") == ["m-0001-of-0003.gguf"]  # not llama.cpp's form


def test_the_header_adds_up_over_the_parts(parts):
    info = read_model_info(parts[0])
    assert (info.tensor_count, info.tensor_bytes) == (3, 3 * 4 * 8 * 4)
    assert info.file_size == sum(p.stat().st_size for p in parts)
    assert read_gguf_info(parts[0]).tensor_bytes == 4 * 8 * 4
    assert path_size(parts[0]) == info.file_size
    assert FileSource(str(parts[0])).resolve() == parts[0]


def test_a_later_part_or_a_missing_part_is_named(parts):
    with pytest.raises(SourceNotFound, match=r"use its first part, tiny-00001-of-00003\.gguf"):
        gguf_parts(parts[2])
    parts[1].unlink()
    with pytest.raises(SourceNotFound, match=r"tiny-00002-of-00003\.gguf is missing from"):
        FileSource(str(parts[0])).resolve()
    parts[2].unlink()
    with pytest.raises(SourceNotFound, match=r"02-of-00003\.gguf, tiny-00003-of-00003\.gguf are"):
        read_model_info(parts[0])


def test_parts_of_different_splits_are_refused(parts):
    renamed = [p.rename(p.with_name(p.name.replace("-of-00003", "-of-00002"))) for p in parts[:2]]
    with pytest.raises(ModelLoadError, match="says the model has 3 parts, its name says 2"):
        read_model_info(renamed[0])
