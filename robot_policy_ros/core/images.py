"""Image decoding for policies, independent of ROS.

Turns the fields of a ``sensor_msgs/Image`` (encoding, height, width, step, data) or the
bytes of a ``sensor_msgs/CompressedImage`` into a uint8 RGB array of the size a checkpoint
expects. All pixel work is done by OpenCV / numpy views (no per-pixel Python): the raw
buffer is viewed without a copy, resized once (``INTER_AREA`` when shrinking, which
averages instead of aliasing; ``INTER_LINEAR`` when growing) and colour-converted once.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

# encoding -> (channels, cv2 conversion to RGB applied after resizing, or None)
_RAW_ENCODINGS: dict[str, tuple[int, int | None]] = {
    "rgb8": (3, None),
    "bgr8": (3, cv2.COLOR_BGR2RGB),
    "mono8": (1, cv2.COLOR_GRAY2RGB),
    "8uc1": (1, cv2.COLOR_GRAY2RGB),
    "8uc3": (3, cv2.COLOR_BGR2RGB),  # OpenCV's default channel order
    "rgba8": (4, cv2.COLOR_RGBA2RGB),
    "bgra8": (4, cv2.COLOR_BGRA2RGB),
    "8uc4": (4, cv2.COLOR_BGRA2RGB),
}

SUPPORTED_ENCODINGS: tuple[str, ...] = ("rgb8", "bgr8", "mono8", "rgba8", "bgra8")


class ImageDecodeError(ValueError):
    """An image that cannot be turned into an RGB frame; the message says why."""


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    height, width = int(size[0]), int(size[1])
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f"target size must be positive (height, width), got {size}")
    return height, width


def resize_rgb(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an (H, W, C) or (H, W) uint8 image to ``size`` = (height, width).

    Returns the input itself when it already has that size (no copy).
    """
    height, width = _check_size(size)
    if image.shape[0] == height and image.shape[1] == width:
        return image
    shrinking = image.shape[0] * image.shape[1] > height * width
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation)


def raw_to_rgb(
    encoding: str,
    height: int,
    width: int,
    step: int,
    data: Any,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Decode the fields of a ``sensor_msgs/Image`` into uint8 RGB of shape (H, W, 3).

    Args:
        encoding: ``rgb8``, ``bgr8``, ``mono8``, ``rgba8`` or ``bgra8`` (also the OpenCV
            aliases ``8UC1``/``8UC3``/``8UC4``, read as mono/BGR/BGRA).
        height, width: image size in pixels.
        step: bytes per row (may include padding beyond ``width * channels``).
        data: the pixel buffer (bytes, bytearray, array.array('B') or a uint8 array).
        size: (height, width) to resize to; None keeps the image size.

    Raises:
        ImageDecodeError: unsupported encoding, or a buffer that does not match the sizes.
    """
    key = encoding.lower()
    if key not in _RAW_ENCODINGS:
        raise ImageDecodeError(
            f"unsupported image encoding '{encoding}'; supported: {', '.join(SUPPORTED_ENCODINGS)}"
            " (publish one of these, or use image_transport compressed)"
        )
    channels, conversion = _RAW_ENCODINGS[key]
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f"image has no pixels: height={height}, width={width}")
    row_bytes = width * channels
    if step < row_bytes:
        raise ImageDecodeError(
            f"image step {step} is smaller than width*channels = {width}*{channels} = {row_bytes}"
        )
    buffer = np.frombuffer(data, dtype=np.uint8)
    if buffer.size < step * height:
        raise ImageDecodeError(
            f"image data has {buffer.size} bytes, expected step*height = {step}*{height} = "
            f"{step * height} for a {width}x{height} {encoding} image"
        )
    # A strided view: rows of `step` bytes, of which the first `row_bytes` are pixels.
    rows = buffer[: step * height].reshape(height, step)[:, :row_bytes]
    image = rows.reshape(height, width, channels) if channels > 1 else rows
    if size is not None:
        image = resize_rgb(image, size)
    if conversion is not None:
        image = cv2.cvtColor(image, conversion)
    elif np.may_share_memory(image, buffer):
        # rgb8 at the target size: own the pixels (the message buffer may be read-only/reused).
        image = image.copy(order="C")
    return image


def compressed_to_rgb(data: Any, size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode JPEG/PNG bytes (``sensor_msgs/CompressedImage.data``) into uint8 RGB (H, W, 3).

    Raises:
        ImageDecodeError: empty or undecodable data.
    """
    buffer = np.frombuffer(data, dtype=np.uint8)
    if buffer.size == 0:
        raise ImageDecodeError("compressed image has no data")
    image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    if image is None:
        raise ImageDecodeError(
            f"could not decode the compressed image ({buffer.size} bytes); expected JPEG or PNG"
        )
    if size is not None:
        image = resize_rgb(image, size)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def rgb_to_raw(image: np.ndarray, encoding: str = "rgb8") -> tuple[int, int, int, bytes]:
    """Encode uint8 RGB (H, W, 3) as (height, width, step, data) of a raw image.

    The inverse of :func:`raw_to_rgb` for the supported encodings; used by camera
    publishers and tests.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ImageDecodeError(f"expected uint8 (H, W, 3) RGB, got {image.dtype} {image.shape}")
    conversions = {
        "rgb8": None,
        "bgr8": cv2.COLOR_RGB2BGR,
        "mono8": cv2.COLOR_RGB2GRAY,
        "rgba8": cv2.COLOR_RGB2RGBA,
        "bgra8": cv2.COLOR_RGB2BGRA,
    }
    if encoding not in conversions:
        raise ImageDecodeError(
            f"unsupported image encoding '{encoding}'; supported: {', '.join(SUPPORTED_ENCODINGS)}"
        )
    conversion = conversions[encoding]
    out = image if conversion is None else cv2.cvtColor(image, conversion)
    out = np.ascontiguousarray(out)
    height, width = out.shape[:2]
    channels = 1 if out.ndim == 2 else out.shape[2]
    return height, width, width * channels, out.tobytes()
