"""Recognising values of libraries the user may have (pandas, numpy, PIL, matplotlib) by their
classes' names, so that nothing here imports those libraries."""

from __future__ import annotations

from typing import Any

# An array is an image when it is HxWx3 (RGB) or HxWx4 (RGBA) of unsigned ints or floats.
IMAGE_CHANNELS = (3, 4)


def instance_of(value: Any, module: str, name: str) -> bool:
    """Whether ``value``'s class, or one it derives from, is ``name`` from the package
    ``module`` (or one of its submodules): ``instance_of(df, "pandas", "DataFrame")``."""
    return any(
        cls.__name__ == name
        and (cls.__module__ == module or cls.__module__.startswith(module + "."))
        for cls in type(value).__mro__
    )


def is_dataframe(value: Any) -> bool:
    return instance_of(value, "pandas", "DataFrame")


def is_series(value: Any) -> bool:
    return instance_of(value, "pandas", "Series")


def is_ndarray(value: Any) -> bool:
    return instance_of(value, "numpy", "ndarray")


def is_image(value: Any) -> bool:
    """Whether ``value`` is a picture rather than data: a PIL image, a matplotlib Figure, or
    an ``HxWx3`` / ``HxWx4`` numpy array of unsigned ints or floats."""
    if instance_of(value, "PIL", "Image") or instance_of(value, "matplotlib", "Figure"):
        return True
    return (
        is_ndarray(value)
        and value.ndim == 3
        and value.shape[2] in IMAGE_CHANNELS
        and value.dtype.kind in "uf"
    )


def image_kind(value: Any) -> str:
    """What kind of image ``value`` is, for messages: "PIL image", "matplotlib Figure" or
    "HxWxC array"."""
    if instance_of(value, "PIL", "Image"):
        return "PIL image"
    if instance_of(value, "matplotlib", "Figure"):
        return "matplotlib Figure"
    height, width, channels = value.shape
    return f"{height}x{width}x{channels} {value.dtype} array"
