import numpy as np
import pandas as pd
import pytest

from llmux_jupyter.types.kinds import image_kind, instance_of, is_dataframe, is_image


def test_library_classes_are_recognised_by_name_subclasses_too():
    class Mine(pd.DataFrame):
        pass

    assert is_dataframe(pd.DataFrame()) and is_dataframe(Mine())
    assert not is_dataframe(pd.Series(dtype=float))

    class DataFrame:  # the same name from another package
        pass

    assert not is_dataframe(DataFrame())
    assert instance_of(np.zeros(2), "numpy", "ndarray")
    assert not instance_of(np.zeros(2), "num", "ndarray")  # a package, not a name's prefix


def test_pictures_are_images():
    from matplotlib.figure import Figure
    from PIL import Image

    assert is_image(Image.new("RGBA", (4, 4)))
    assert is_image(Figure())
    assert image_kind(Figure()) == "matplotlib Figure"
    assert image_kind(Image.new("L", (2, 2))) == "PIL image"


@pytest.mark.parametrize(
    ("array", "image"),
    [
        (np.zeros((64, 48, 3), dtype=np.uint8), True),
        (np.zeros((64, 48, 4), dtype=np.float32), True),
        (np.zeros((8, 8, 3), dtype=np.uint16), True),
        (np.zeros((64, 48), dtype=np.uint8), False),  # one channel: could be any matrix
        (np.zeros((64, 48, 2), dtype=np.uint8), False),
        (np.zeros((64, 48, 3), dtype=np.int64), False),  # signed ints: data, not pixels
        (np.zeros((64, 48, 3), dtype=object), False),
        (np.zeros((2, 64, 48, 3), dtype=np.uint8), False),  # a batch: not one image
    ],
)
def test_arrays_are_images_when_hxwx3_or_hxwx4(array, image):
    assert is_image(array) is image


def test_an_image_arrays_kind_names_its_shape():
    assert image_kind(np.zeros((64, 48, 3), dtype=np.uint8)) == "64x48x3 uint8 array"


def test_other_values_are_not_images():
    assert not any(is_image(v) for v in ["img", b"\x89PNG", [1, 2, 3], None, pd.DataFrame()])
