"""Reading images for prompts: every kind a user hands us, their modes and dtypes, alpha,
downscaling, encoding, and the refusals (huge, corrupt, wrong shape or dtype)."""

from __future__ import annotations

import io

import pytest

from llmux_jupyter.errors import InvalidImage
from llmux_jupyter.types.images import (
    MAX_INPUT_PIXELS,
    MAX_SIDE,
    PNG_BUDGET,
    ImageLimit,
    estimated_image_tokens,
    is_image,
    read_image,
    read_images,
)
from llmux_jupyter.types.values import Message

np = pytest.importorskip("numpy")
PIL = pytest.importorskip("PIL.Image")


def png_bytes(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def pixels(image):
    return np.asarray(image.pil())


def test_a_uint8_rgb_array_keeps_its_pixels_exactly():
    array = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    image = read_image(array, "arr")
    assert (image.width, image.height, image.original) == (40, 30, (40, 30))
    assert image.mime == "image/png" and image.data.startswith(b"\x89PNG")
    assert (pixels(image) == array).all()


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (np.array([[0.0, 0.5, 1.0]]), [0, 128, 255]),  # floats in 0..1 (matplotlib's way)
        (np.array([[0.0, 0.5, 1.0]], dtype=np.float32), [0, 128, 255]),
        (np.array([[False, True, True]]), [0, 255, 255]),
        (np.array([[0, 1000, 65535]], dtype=np.uint16), [0, 3, 255]),  # 16 bits to 8
        (np.array([[0, 7, 255]]), [0, 7, 255]),  # int64 within 0..255
    ],
)
def test_grey_arrays_of_each_dtype_become_8_bit_grey(array, expected):
    image = read_image(array, "g")
    assert image.pil().mode == "L"
    assert pixels(image)[0].tolist() == expected


def test_an_hxwx1_array_is_grey_and_rgba_is_laid_on_white():
    assert read_image(np.zeros((4, 5, 1), np.uint8), "one").pil().mode == "L"
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red; the rest fully transparent
    image = read_image(rgba, "rgba")
    assert image.pil().mode == "RGB"
    assert pixels(image)[0, 0].tolist() == [255, 0, 0]
    assert pixels(image)[1, 1].tolist() == [255, 255, 255]


@pytest.mark.parametrize(
    ("mode", "check"),
    [
        ("RGBA", lambda p: p[0, 0].tolist() == [255, 255, 255]),  # transparent -> white
        ("LA", lambda p: p[0, 0].tolist() == [255, 255, 255]),
        ("P", lambda p: p.shape == (4, 6, 3)),
        ("CMYK", lambda p: p.shape == (4, 6, 3)),
        ("1", lambda p: p.ndim == 2),
        ("I;16", lambda p: p.ndim == 2),
        ("F", lambda p: p.ndim == 2),
    ],
)
def test_pil_images_of_every_mode_become_rgb_or_grey(mode, check):
    image = read_image(PIL.new(mode, (6, 4)), "pil")
    assert image.pil().mode in ("RGB", "L")
    assert check(pixels(image))


def test_a_16_bit_grey_image_is_scaled_not_clipped():
    sixteen = PIL.fromarray(np.array([[0, 32768, 65535]], dtype=np.uint16))
    assert pixels(read_image(sixteen, "s"))[0].tolist() == [0, 128, 255]


def test_png_and_jpeg_bytes_and_files_are_read(tmp_path):
    picture = PIL.new("RGB", (20, 10), (10, 200, 30))
    jpeg = io.BytesIO()
    picture.save(jpeg, format="JPEG")
    assert read_image(png_bytes(picture), "b").size == (20, 10)
    assert read_image(bytearray(jpeg.getvalue()), "j").size == (20, 10)
    path = tmp_path / "photo.png"
    path.write_bytes(png_bytes(picture))
    [from_file] = read_images([str(path)])
    assert from_file.name == "photo.png" and from_file.size == (20, 10)
    assert read_images(path)[0].name == "photo.png"  # one path alone, as a Path


def test_a_matplotlib_figure_or_its_axes_is_rendered_as_the_notebook_shows_it():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(4, 3), dpi=50)
    axes.plot([1, 3, 2])
    try:
        image = read_image(figure, "fig")
        assert image.mime == "image/png" and 100 < image.width <= 200
        assert read_image(axes, "ax").size == image.size
    finally:
        plt.close(figure)


def test_an_empty_figure_says_why_plt_gcf_in_a_later_cell_is_empty():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = plt.figure()
    try:
        with pytest.raises(InvalidImage, match=r"fig: the matplotlib figure is empty.*plt.gcf"):
            read_image(figure, "fig")
    finally:
        plt.close(figure)


def test_big_images_are_downscaled_when_read_and_photos_go_as_jpeg():
    noise = np.random.default_rng(1).integers(0, 256, (3000, 4000, 3), dtype=np.uint8)
    image = read_image(noise, "noise")
    assert image.size == (MAX_SIDE, 1536) and image.original == (4000, 3000)
    assert image.mime == "image/jpeg"  # its PNG would be ~9 MB
    assert len(image.data) < 4 * 2**20


def test_a_plot_like_image_stays_png_under_the_budget():
    flat = np.full((1500, 2000, 3), 255, np.uint8)
    flat[700:800, :, 0] = 0
    image = read_image(flat, "plot")
    assert image.mime == "image/png" and len(image.data) < PNG_BUDGET


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.zeros((3, 50, 50)), r"shape \(3, 50, 50\).*channels first"),
        (np.zeros((4, 4, 2), np.uint8), r"shape \(4, 4, 2\) is not an image"),
        (np.zeros((0, 4), np.uint8), "is not an image"),
        (np.zeros((4, 4), complex), "dtype complex128 are not images"),
        (np.zeros((4, 4), "datetime64[s]"), "dtype datetime64"),
        (np.full((4, 4), 2.5), r"float pixels must lie in 0..1 \(these run 2.5..2.5\)"),
        (np.array([[0.0, np.nan]]), "NaN"),
        (np.array([[-1, 300]]), r"integer pixels must lie in 0..255 \(these run -1..300\)"),
        (b"not an image at all", "not an image file Pillow can read"),
        ("no/such/file.png", "no image file"),
        (3, "a value of type int is not an image"),
    ],
)
def test_bad_input_is_one_typed_error_naming_the_variable(value, message):
    with pytest.raises(InvalidImage, match=message) as raised:
        read_image(value, "img")
    assert str(raised.value).startswith("img: ")


def test_a_truncated_png_is_refused():
    data = png_bytes(PIL.new("RGB", (64, 64), (1, 2, 3)))
    with pytest.raises(InvalidImage, match="damaged or unreadable"):
        read_image(data[: len(data) // 2], "cut")


def test_huge_arrays_are_refused_before_any_copy():
    # 1 GiB of pixels as a view of one byte: reading it would copy a gigabyte.
    huge = np.lib.stride_tricks.as_strided(np.zeros(1, np.uint8), (16384, 16384, 4), (0, 0, 0))
    with pytest.raises(InvalidImage, match="268 megapixels, more than the 67"):
        read_image(huge, "huge")
    wide = np.lib.stride_tricks.as_strided(np.zeros(1), (5000, 5000, 4), (0, 0, 0))  # 800 MB
    with pytest.raises(InvalidImage, match="MiB, more than the 512 MiB"):
        read_image(wide, "wide")


def test_an_image_file_claiming_too_many_pixels_is_refused_before_decoding():
    side = int(MAX_INPUT_PIXELS**0.5) + 100
    bomb = png_bytes(PIL.new("1", (side, side)))  # a tiny file of a giant image
    with pytest.raises(InvalidImage, match="megapixels"):
        read_image(bomb, "bomb")


@pytest.mark.parametrize(
    ("limit", "size", "fitted"),
    [
        (ImageLimit(longest=64), (640, 480), (64, 48)),
        (ImageLimit(longest=64), (32, 16), (32, 16)),  # never larger
        (ImageLimit(longest=None, shortest=336), (1000, 500), (672, 336)),
        (ImageLimit(longest=2048, pixels=28 * 28 * 1280), (2000, 2000), (1002, 1002)),
        (ImageLimit(longest=10), (1000, 1), (10, 1)),
    ],
)
def test_limits_fit_keeping_the_aspect(limit, size, fitted):
    assert limit.fit(*size) == fitted


def test_fitting_re_encodes_once_per_limit_and_keeps_the_name_and_original_size():
    image = read_image(np.zeros((300, 400, 3), np.uint8), "fig")
    small = image.fitted(ImageLimit(longest=100))
    assert (small.size, small.name, small.original) == ((100, 75), "fig", (400, 300))
    assert image.fitted(ImageLimit(longest=100)) is small
    assert image.fitted(ImageLimit(longest=1000)) is image
    assert small.pil().size == (100, 75)
    assert small.data_url.startswith("data:image/png;base64,")
    thumbnail = PIL.open(io.BytesIO(image.thumbnail(side=40)))
    assert thumbnail.size == (40, 30)


def test_an_image_read_twice_is_the_same_object():
    image = read_image(np.zeros((2, 2), np.uint8), "a")
    assert read_image(image, "other") is image


def test_estimated_tokens_follow_the_tile_count():
    assert estimated_image_tokens(512, 512) == 85 + 170
    assert estimated_image_tokens(1024, 1024) == 85 + 170 * 4  # fitted to 768 on its shorter side


def test_a_message_lays_its_images_where_the_offsets_say():
    a = read_image(np.zeros((2, 2), np.uint8), "a")
    b = read_image(np.zeros((2, 2), np.uint8), "b")
    message = Message("user", "Compare  and .", (a, b), (8, 13))
    assert message.parts() == ["Compare ", a, " and ", b, "."]
    assert Message("user", "What?", (a,)).parts() == [a, "What?"]  # default: before the text
    described = message.without_images(note=True).content
    assert described.startswith("Compare [image a (2×2), not shown to this model]\n and")
    assert message.without_images() == Message("user", "Compare  and .")
    with pytest.raises(ValueError):
        Message("user", "x", (a, b), (1, 0))


@pytest.mark.parametrize(
    ("value", "picture"),
    [
        (np.zeros((64, 48, 3), dtype=np.uint8), True),
        (np.zeros((64, 48, 4), dtype=np.float32), True),
        (np.zeros((8, 8, 3), dtype=np.uint16), True),
        (np.zeros((64, 48), dtype=np.uint8), False),  # a matrix is data: --image sends it
        (np.zeros((64, 48, 2), dtype=np.uint8), False),
        (np.zeros((64, 48, 3), dtype=np.int64), False),  # signed ints: data, not pixels
        (np.zeros((2, 64, 48, 3), dtype=np.uint8), False),  # a batch, not one image
        (b"\x89PNG\r\n\x1a\n...", True),
        (bytearray(b"\xff\xd8\xff\xe0..."), True),
        (b"plain bytes", False),
        ("photo.png", False),  # a string is text (--image takes paths)
        ([1, 2, 3], False),
    ],
)
def test_which_notebook_values_are_pictures(value, picture):
    assert is_image(value) is picture


def test_pil_images_figures_and_axes_are_pictures():
    from matplotlib.figure import Figure

    figure = Figure()
    assert is_image(PIL.new("RGBA", (4, 4))) and is_image(figure)
    assert is_image(figure.add_subplot())
