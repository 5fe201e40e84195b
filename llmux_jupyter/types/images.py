"""Images for prompts. What a user hands us (a PIL image, a matplotlib Figure or Axes, a numpy
``HxW`` / ``HxWx1|3|4`` array, PNG/JPEG bytes, a file path) is read once into a small encoded
image, and fitted to each model's own input size when it is sent.

Pillow is imported when the first image is read (never at ``%load_ext``); matplotlib and numpy
only when the value already is one of theirs.
"""

from __future__ import annotations

import base64
import io
import math
import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import BackendNotInstalled, InvalidImage
from .kinds import instance_of, is_ndarray

if TYPE_CHECKING:
    import numpy as np
    import PIL.Image

# The longest side an image is kept at when it is read (models fit it further when sent).
MAX_SIDE = 2048
# Refused outright, before any copy: more pixels than this, or an array bigger than this.
MAX_INPUT_PIXELS = 64 * 2**20
MAX_INPUT_BYTES = 512 * 2**20
# A PNG bigger than this (a photo, noise) goes as JPEG when that is smaller.
PNG_BUDGET = 2**20
JPEG_QUALITY = 90
THUMBNAIL_SIDE = 160
# How PNG and JPEG files start.
IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")
# A processor's ``longest_edge`` above this is a pixel budget, not a side (Qwen2-VL's
# ``size={"shortest_edge": 56*56, "longest_edge": 28*28*1280}``).
PIXEL_BUDGET_THRESHOLD = 65536
KINDS = (
    "a PIL image, a matplotlib Figure, a numpy array (HxW or HxWx3|4, uint8 or floats in "
    "0..1), PNG/JPEG bytes or a file path"
)


@dataclass(frozen=True)
class ImageLimit:
    """How big a model takes its images: the longest and the shortest side and the pixels
    that its processor resizes to at most (None: no such bound). Fitting keeps the aspect."""

    longest: int | None = MAX_SIDE
    shortest: int | None = None
    pixels: int | None = None

    def fit(self, width: int, height: int) -> tuple[int, int]:
        """The size an image of ``width`` x ``height`` is sent at (never larger)."""
        scale = 1.0
        if self.longest:
            scale = min(scale, self.longest / max(width, height))
        if self.shortest:
            scale = min(scale, self.shortest / min(width, height))
        if self.pixels:
            scale = min(scale, math.sqrt(self.pixels / (width * height)))
        if scale >= 1.0:
            return width, height
        return max(1, round(width * scale)), max(1, round(height * scale))


@dataclass(frozen=True, eq=False)
class Image:
    """An image read for a prompt: encoded (PNG, or JPEG when a PNG would be big), at most
    MAX_SIDE on its longest side. ``name`` is what the user called it (a variable, a file);
    ``original`` its size as given."""

    name: str
    data: bytes = field(repr=False)
    mime: str
    width: int
    height: int
    original: tuple[int, int]
    _fits: dict[ImageLimit, Image] = field(default_factory=dict, repr=False)

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def fitted(self, limit: ImageLimit) -> Image:
        """This image at the size ``limit`` allows (itself when it fits; kept per limit)."""
        size = limit.fit(self.width, self.height)
        if size == self.size:
            return self
        if limit not in self._fits:
            resized = self.pil().resize(size, _pil().Resampling.LANCZOS)
            data, mime = encode(resized)
            self._fits[limit] = Image(self.name, data, mime, *size, self.original)
        return self._fits[limit]

    def pil(self) -> PIL.Image.Image:
        """The decoded pixels (RGB or L)."""
        image = _pil().open(io.BytesIO(self.data))
        image.load()
        return image

    @property
    def data_url(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"

    def thumbnail(self, side: int = THUMBNAIL_SIDE) -> bytes:
        """A small PNG of the image, for the cell's output."""
        image = self.pil()
        image.thumbnail((side, side), _pil().Resampling.LANCZOS)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()

    def describe(self) -> str:
        """``fig (640×480)``"""
        return f"{self.name} ({self.width}×{self.height})"


@dataclass(frozen=True)
class SentImage:
    """What went to the model for one image: its size as given and as sent, the bytes sent,
    and the tokens it cost in the prompt (the model's own count, or an estimate)."""

    name: str
    original: tuple[int, int]
    sent: tuple[int, int]
    bytes: int
    mime: str
    tokens: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "original": list(self.original),
            "sent": list(self.sent),
            "bytes": self.bytes,
            "mime": self.mime,
            "tokens": self.tokens,
        }


def read_image(value: Any, name: str, max_side: int = MAX_SIDE) -> Image:
    """``value`` read as an Image (see the module's kinds), downscaled to ``max_side`` (an
    Image stays as it is).

    InvalidImage, naming ``name``, for anything else: an unknown type, a missing, corrupt or
    empty file, an array of the wrong shape or dtype, or one too big to read
    (MAX_INPUT_PIXELS, MAX_INPUT_BYTES).
    """
    if isinstance(value, Image):
        return value
    image = _as_pil(value, name)
    original = image.size
    image = _flattened(image)
    size = ImageLimit(longest=max_side).fit(*original)
    if size != original:
        image = image.resize(size, _pil().Resampling.LANCZOS)
    data, mime = encode(image)
    return Image(name, data, mime, *size, original)


def read_images(values: Sequence[Any], names: Sequence[str] | None = None) -> list[Image]:
    """Each value read with ``read_image``; a path is named by its file name, other values
    ``image 1``, ``image 2``... unless ``names`` are given."""
    if isinstance(values, (str, bytes, os.PathLike)) or not isinstance(values, Sequence):
        values = [values]
    found = []
    for index, value in enumerate(values):
        if names is not None:
            name = names[index]
        elif isinstance(value, (str, os.PathLike)):
            name = Path(value).name
        else:
            name = f"image {index + 1}"
        found.append(read_image(value, name))
    return found


def encode(image: PIL.Image.Image) -> tuple[bytes, str]:
    """PNG bytes, or JPEG when the PNG passes PNG_BUDGET and the JPEG is smaller."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    png = buffer.getvalue()
    if len(png) <= PNG_BUDGET:
        return png, "image/png"
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    jpeg = buffer.getvalue()
    return (jpeg, "image/jpeg") if len(jpeg) < len(png) else (png, "image/png")


def estimated_image_tokens(width: int, height: int) -> int:
    """Tokens an image costs when the model does not say: OpenAI's count for a high-detail
    image (fitted into 2048 and 768 on its shorter side, 170 per 512-pixel tile, plus 85),
    which errs on the large side for most open models."""
    width, height = ImageLimit(longest=2048, shortest=768).fit(width, height)
    return 85 + 170 * math.ceil(width / 512) * math.ceil(height / 512)


def is_image(value: Any) -> bool:
    """Whether a notebook value (``{var}`` in a cell) is a picture rather than data: a PIL
    image, a matplotlib Figure or Axes, an ``HxWx3`` / ``HxWx4`` array of unsigned ints or
    floats, or the bytes of a PNG or JPEG file. A 2-D array is taken for data (a matrix):
    ``--image VAR`` sends one as a grey image."""
    if instance_of(value, "PIL.Image", "Image") or _figure(value) is not None:
        return True
    if isinstance(value, (bytes, bytearray)):
        return bytes(value[:8]).startswith(IMAGE_SIGNATURES)
    return (
        is_ndarray(value)
        and value.ndim == 3
        and value.shape[2] in (3, 4)
        and value.dtype.kind in "uf"
    )


def placeholder(image: Image) -> str:
    """How an image of an earlier turn reads to a model that cannot see it."""
    return f"[image {image.describe()}, not shown to this model]"


# -- reading each kind ---------------------------------------------------------
def _as_pil(value: Any, name: str) -> PIL.Image.Image:
    if instance_of(value, "PIL.Image", "Image"):
        _check_pixels(value.size, name)
        return value
    figure = _figure(value)
    if figure is not None:
        return _from_figure(figure, name)
    if is_ndarray(value):
        return _from_array(value, name)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _decoded(bytes(value), name)
    if isinstance(value, (str, os.PathLike)):
        return _decoded(_file_bytes(Path(value), name), name)
    raise InvalidImage(
        f"{name}: a value of type {type(value).__name__} is not an image; give {KINDS}."
    )


def _from_figure(figure: Any, name: str) -> PIL.Image.Image:
    if len(figure.get_children()) <= 1:  # only its background patch
        raise InvalidImage(
            f"{name}: the matplotlib figure is empty. With the inline backend a figure is "
            "closed once its cell has run, so plt.gcf() in a later cell is a new, empty one: "
            "keep it in the plotting cell (fig = plt.gcf(), or fig, ax = plt.subplots())."
        )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")  # as the inline backend shows it
    return _decoded(buffer.getvalue(), name)


def _from_array(array: np.ndarray, name: str) -> PIL.Image.Image:
    import numpy as np

    if array.size == 0 or not _image_shaped(array.shape):
        hint = " (channels first? use array.transpose(1, 2, 0))" if _channels_first(array) else ""
        raise InvalidImage(
            f"{name}: an array of shape {array.shape} is not an image; give HxW (grey), "
            f"HxWx3 (RGB) or HxWx4 (RGBA){hint}."
        )
    _check_pixels((array.shape[1], array.shape[0]), name)
    if array.nbytes > MAX_INPUT_BYTES:
        raise InvalidImage(
            f"{name}: the array holds {array.nbytes / 2**20:,.0f} MiB, more than the "
            f"{MAX_INPUT_BYTES // 2**20} MiB an image may: downscale it first."
        )
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    pixels = _uint8(np, array, name)
    mode = {2: "L", 3: "RGB", 4: "RGBA"}[pixels.shape[2] if pixels.ndim == 3 else 2]
    return _pil().fromarray(np.ascontiguousarray(pixels), mode)


def _uint8(np: Any, array: np.ndarray, name: str) -> np.ndarray:
    """The pixels as uint8: uint8 and bool as they are, uint16 scaled, other integers when
    within 0..255, floats within 0..1 (matplotlib's convention)."""
    kind = array.dtype.kind
    if array.dtype == np.uint8:
        return array
    if kind == "b":
        return array.astype(np.uint8) * 255
    if array.dtype == np.uint16:
        return (array >> 8).astype(np.uint8)
    if kind in "iu":
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 255:
            raise InvalidImage(
                f"{name}: integer pixels must lie in 0..255 (these run {low}..{high}); "
                "convert with array.astype('uint8') after scaling, or give uint16 for 16 bits."
            )
        return array.astype(np.uint8)
    if kind == "f":
        if not np.isfinite(array).all():
            raise InvalidImage(f"{name}: the array holds NaN or infinite values.")
        low, high = float(array.min()), float(array.max())
        if low < 0.0 or high > 1.0:
            raise InvalidImage(
                f"{name}: float pixels must lie in 0..1 (these run {low:g}..{high:g}); "
                "divide by 255, or normalise: (a - a.min()) / (a.max() - a.min())."
            )
        return np.rint(array * 255.0).astype(np.uint8)
    raise InvalidImage(
        f"{name}: arrays of dtype {array.dtype} are not images; give uint8, uint16, bool, "
        "or floats in 0..1."
    )


def _decoded(data: bytes, name: str) -> PIL.Image.Image:
    pil = _pil()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pil.DecompressionBombWarning)  # checked below
        try:
            image = pil.open(io.BytesIO(data))
            _check_pixels(image.size, name)
            image.load()
        except InvalidImage:
            raise
        except pil.UnidentifiedImageError:
            raise InvalidImage(
                f"{name}: not an image file Pillow can read (PNG, JPEG, ...); give {KINDS}."
            ) from None
        except (OSError, ValueError, SyntaxError, pil.DecompressionBombError) as error:
            raise InvalidImage(
                f"{name}: a damaged or unreadable image ({_first_line(error)})."
            ) from None
    return image


def _file_bytes(path: Path, name: str) -> bytes:
    path = path.expanduser()
    if not path.is_file():
        raise InvalidImage(f"{name}: no image file {str(path)!r}.")
    if path.stat().st_size > MAX_INPUT_BYTES:
        raise InvalidImage(
            f"{name}: the file is {path.stat().st_size / 2**20:,.0f} MiB, more than the "
            f"{MAX_INPUT_BYTES // 2**20} MiB an image may."
        )
    return path.read_bytes()


def _flattened(image: PIL.Image.Image) -> PIL.Image.Image:
    """RGB or L: transparency laid on white, palettes and other colour spaces converted,
    16-bit and 32-bit greys scaled to 8 bits."""
    pil = _pil()
    if image.mode in ("RGB", "L"):
        return image
    if image.mode == "1":
        return image.convert("L")
    if image.mode.startswith("I") or image.mode == "F":
        return _scaled_grey(image)
    if image.mode == "P" or image.mode == "PA":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "RGBa", "La"):
        image = image.convert("RGBA")
        white = pil.new("RGBA", image.size, (255, 255, 255, 255))
        return pil.alpha_composite(white, image).convert("RGB")
    return image.convert("RGB")


def _scaled_grey(image: PIL.Image.Image) -> PIL.Image.Image:
    """A 16-bit or 32-bit grey image in 8 bits: 16-bit ranges scaled by 256, floats in 0..1
    by 255, anything else stretched from its minimum to its maximum."""
    import numpy as np

    values = np.asarray(image, dtype=np.float64)
    low, high = float(values.min()), float(values.max())
    if image.mode == "F" and low >= 0.0 and high <= 1.0:
        scaled = values * 255.0
    elif low >= 0.0 and high <= 65535.0 and (image.mode != "F" or high > 255.0):
        scaled = values / 256.0 if high > 255.0 else values
    else:
        scaled = (values - low) / ((high - low) or 1.0) * 255.0
    return _pil().fromarray(np.rint(scaled).clip(0, 255).astype(np.uint8), "L")


def _check_pixels(size: tuple[int, int], name: str) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise InvalidImage(f"{name}: the image is empty ({width}×{height}).")
    if width * height > MAX_INPUT_PIXELS:
        raise InvalidImage(
            f"{name}: {width}×{height} is {width * height / 1e6:,.0f} megapixels, more than the "
            f"{MAX_INPUT_PIXELS / 1e6:.0f} megapixels an image may: downscale it first."
        )


def _figure(value: Any) -> Any:
    """The matplotlib Figure of a Figure, SubFigure or Axes (None for anything else)."""
    if "matplotlib" not in sys.modules:
        return None
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure

    if isinstance(value, Axes):
        value = value.figure
    if isinstance(value, SubFigure):
        value = value.figure
    return value if isinstance(value, Figure) else None


def _image_shaped(shape: tuple[int, ...]) -> bool:
    return len(shape) == 2 or (len(shape) == 3 and shape[2] in (1, 3, 4))


def _channels_first(array: Any) -> bool:
    return array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[2] > 4


def _pil() -> Any:
    try:
        import PIL.Image
    except ImportError:
        raise BackendNotInstalled(
            "Images in prompts need Pillow: pip install 'llmux-jupyter[images]'."
        ) from None
    return PIL.Image


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
