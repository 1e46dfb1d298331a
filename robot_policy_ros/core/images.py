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

from robot_policy_ros.checkpoint.config import IMAGE_FITS  # resize, crop, letterbox

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
# Multi-byte encodings are refused by name (their byte order, is_bigendian, would matter).
_WIDE_ENCODINGS = frozenset(
    {
        "mono16",
        "rgb16",
        "bgr16",
        "rgba16",
        "bgra16",
        "16uc1",
        "16uc3",
        "16uc4",
        "16sc1",
        "32fc1",
        "32fc3",
        "32sc1",
        "64fc1",
    }
)

# A frame larger than this is refused before it is decoded or allocated: 4096 x 4096 covers
# 4K cameras; a tiny PNG/JPEG that declares a larger image (a decompression bomb) never
# reaches the decoder.
MAX_IMAGE_PIXELS = 4096 * 4096
MAX_IMAGE_SIDE = 8192


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


#: Aspect ratios (width / height) closer than this, relatively, count as the same.
ASPECT_TOLERANCE = 0.01


def same_aspect(a: tuple[int, int], b: tuple[int, int], tol: float = ASPECT_TOLERANCE) -> bool:
    """Do (height, width) shapes ``a`` and ``b`` have the same aspect ratio (within ``tol``)?"""
    ra, rb = a[1] / a[0], b[1] / b[0]
    return abs(ra - rb) <= tol * max(ra, rb)


def fit_for_camera(
    camera: str,
    frame: tuple[int, int],
    model: tuple[int, int],
    trained_on: tuple[int, int] | None,
    trained_fit: str,
    chosen: str = "checkpoint",
) -> str:
    """The fit (IMAGE_FITS) to bring a camera's (height, width) ``frame`` to ``model``.

    ``chosen`` "checkpoint": the transform training used (``trained_fit``), provided the
    frame has the aspect ratio of the frames it was trained on (``trained_on``, or the
    model's own shape where the checkpoint did not record them); any other aspect ratio is
    refused, naming both shapes: stretching, cropping or padding it silently would show the
    policy images unlike its training data. ``chosen`` one of IMAGE_FITS: that, always.

    Raises:
        ImageDecodeError: the aspect ratio differs and no transform was chosen.
    """
    if chosen != "checkpoint":
        return chosen
    reference = trained_on or model
    if same_aspect(frame, reference):
        return trained_fit
    what = "was trained on" if trained_on else "takes (model input)"
    raise ImageDecodeError(
        f"camera '{camera}' gives {frame[1]}x{frame[0]} frames but the checkpoint {what} "
        f"{reference[1]}x{reference[0]}, another aspect ratio; refused (set "
        "image_fit:=resize, crop or letterbox to choose how to map them)"
    )


def fit_rgb(image: np.ndarray, size: tuple[int, int], fit: str = "resize") -> np.ndarray:
    """Bring an (H, W[, C]) uint8 image to ``size`` = (height, width) by ``fit`` (IMAGE_FITS).

    ``crop`` keeps the centre of the frame at the target aspect ratio (the sides or the top
    and bottom are cut); ``letterbox`` keeps the whole frame and pads it with black to the
    target aspect ratio; ``resize`` stretches. Same aspect ratio: all three are a resize.

    Raises:
        ImageDecodeError: unknown ``fit`` or a non-positive size.
    """
    height, width = _check_size(size)
    if fit not in IMAGE_FITS:
        raise ImageDecodeError(f"image fit {fit!r} is not one of {IMAGE_FITS}")
    h, w = image.shape[:2]
    if fit == "resize" or same_aspect((h, w), (height, width), tol=1e-9):
        return resize_rgb(image, (height, width))
    target = width / height
    if fit == "crop":
        if w / h > target:  # too wide: cut the sides
            keep = max(1, round(h * target))
            x0 = (w - keep) // 2
            image = image[:, x0 : x0 + keep]
        else:  # too tall: cut top and bottom
            keep = max(1, round(w / target))
            y0 = (h - keep) // 2
            image = image[y0 : y0 + keep]
        return resize_rgb(np.ascontiguousarray(image), (height, width))
    # letterbox
    if w / h > target:  # too wide: bars above and below
        new_h, new_w = max(1, round(width * h / w)), width
    else:  # too tall: bars left and right
        new_h, new_w = height, max(1, round(height * w / h))
    inner = resize_rgb(image, (new_h, new_w))
    out = np.zeros((height, width, *image.shape[2:]), dtype=image.dtype)
    y0, x0 = (height - new_h) // 2, (width - new_w) // 2
    out[y0 : y0 + new_h, x0 : x0 + new_w] = inner
    return out


def raw_to_rgb(
    encoding: str,
    height: int,
    width: int,
    step: int,
    data: Any,
    size: tuple[int, int] | None = None,
    is_bigendian: bool = False,
    fit: str = "resize",
) -> np.ndarray:
    """Decode the fields of a ``sensor_msgs/Image`` into uint8 RGB of shape (H, W, 3).

    Args:
        encoding: ``rgb8``, ``bgr8``, ``mono8``, ``rgba8`` or ``bgra8`` (also the OpenCV
            aliases ``8UC1``/``8UC3``/``8UC4``, read as mono/BGR/BGRA).
        height, width: image size in pixels.
        step: bytes per row (may include padding beyond ``width * channels``).
        data: the pixel buffer (bytes, bytearray, array.array('B') or a uint8 array).
        size: (height, width) to bring the frame to; None keeps the image size.
        fit: how, when the aspect ratio differs (:data:`IMAGE_FITS`, see :func:`fit_rgb`).
        is_bigendian: the message's flag; irrelevant for the 8-bit encodings accepted here,
            named in the refusal of 16/32-bit encodings.

    Raises:
        ImageDecodeError: unsupported encoding, zero or over-large sizes, ``step`` smaller
        than ``width * channels``, or ``data`` that is not exactly ``step * height`` bytes.
    """
    key = encoding.lower()
    if key in _WIDE_ENCODINGS:
        order = "big-endian" if is_bigendian else "little-endian"
        raise ImageDecodeError(
            f"image encoding '{encoding}' ({order} multi-byte pixels) is not supported; "
            f"supported: {', '.join(SUPPORTED_ENCODINGS)}"
        )
    if key not in _RAW_ENCODINGS:
        raise ImageDecodeError(
            f"unsupported image encoding '{encoding}'; supported: {', '.join(SUPPORTED_ENCODINGS)}"
            " (publish one of these, or use image_transport compressed)"
        )
    channels, conversion = _RAW_ENCODINGS[key]
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f"image has no pixels: height={height}, width={width}")
    _check_dimensions(width, height, "image")
    row_bytes = width * channels
    if step < row_bytes:
        raise ImageDecodeError(
            f"image step {step} is smaller than width*channels = {width}*{channels} = {row_bytes}"
        )
    buffer = np.frombuffer(data, dtype=np.uint8)
    if buffer.size != step * height:
        # Shorter cannot be decoded; longer means the sizes lie (or the publisher is broken):
        # either way no part of it becomes an observation.
        raise ImageDecodeError(
            f"image data has {buffer.size} bytes, expected step*height = {step}*{height} = "
            f"{step * height} for a {width}x{height} {encoding} image"
        )
    # A strided view: rows of `step` bytes, of which the first `row_bytes` are pixels.
    rows = buffer[: step * height].reshape(height, step)[:, :row_bytes]
    image = rows.reshape(height, width, channels) if channels > 1 else rows
    if size is not None:
        image = fit_rgb(image, size, fit)
    if conversion is not None:
        image = cv2.cvtColor(image, conversion)
    elif np.may_share_memory(image, buffer):
        # rgb8 at the target size: own the pixels (the message buffer may be read-only/reused).
        image = image.copy(order="C")
    return image


def _check_dimensions(width: int, height: int, what: str) -> None:
    if width > MAX_IMAGE_SIDE or height > MAX_IMAGE_SIDE or width * height > MAX_IMAGE_PIXELS:
        raise ImageDecodeError(
            f"{what} declares {width}x{height} pixels, over the limit ({MAX_IMAGE_SIDE} per "
            f"side, {MAX_IMAGE_PIXELS} in all); refused before decoding"
        )


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic variants).
_JPEG_SOF = frozenset(
    {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
)


def _png_size(buf: bytes) -> tuple[int, int]:
    """(width, height) from the IHDR chunk, which the PNG spec requires to come first."""
    if len(buf) < 33 or buf[12:16] != b"IHDR" or int.from_bytes(buf[8:12], "big") != 13:
        raise ImageDecodeError("PNG has no IHDR header chunk (corrupt or truncated)")
    if not buf.endswith(_PNG_IEND):
        raise ImageDecodeError("PNG does not end with an IEND chunk (truncated)")
    return int.from_bytes(buf[16:20], "big"), int.from_bytes(buf[20:24], "big")


def _jpeg_size(buf: bytes) -> tuple[int, int]:
    """(width, height) from the first start-of-frame segment, walking the marker segments."""
    # Some USB/MJPEG cameras pad frames with zeros after EOI; that is still a whole image.
    if not buf.rstrip(b"\x00").endswith(b"\xff\xd9"):
        raise ImageDecodeError("JPEG does not end with an EOI marker (truncated)")
    i, n = 2, len(buf)
    while i + 4 <= n:
        if buf[i] != 0xFF:
            raise ImageDecodeError(f"JPEG marker expected at byte {i} (corrupt header)")
        marker = buf[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # standalone markers
            i += 2
            continue
        length = int.from_bytes(buf[i + 2 : i + 4], "big")
        if length < 2:
            raise ImageDecodeError(f"JPEG segment at byte {i} has length {length} (corrupt)")
        if marker in _JPEG_SOF:
            if i + 9 > n:
                break
            height = int.from_bytes(buf[i + 5 : i + 7], "big")
            width = int.from_bytes(buf[i + 7 : i + 9], "big")
            return width, height
        if marker in (0xDA, 0xD9):  # scan data or end before any frame header
            break
        i += 2 + length
    raise ImageDecodeError("JPEG has no frame header before its data (corrupt or truncated)")


def compressed_image_size(data: Any) -> tuple[str, int, int]:
    """(format, width, height) read from the header of PNG or JPEG bytes, nothing decoded.

    Raises ImageDecodeError for any other format, a missing/corrupt header, a truncated
    file (no PNG IEND / JPEG EOI at the end), zero sizes, or sizes over the limits.
    """
    buf = bytes(memoryview(data).cast("B")) if not isinstance(data, bytes) else data
    if not buf:
        raise ImageDecodeError("compressed image has no data")
    if buf.startswith(_PNG_SIGNATURE):
        fmt, (width, height) = "PNG", _png_size(buf)
    elif buf.startswith(b"\xff\xd8"):
        fmt, (width, height) = "JPEG", _jpeg_size(buf)
    else:
        raise ImageDecodeError(
            f"compressed image ({len(buf)} bytes) is neither PNG nor JPEG (first bytes "
            f"{buf[:8].hex()})"
        )
    if width <= 0 or height <= 0:
        raise ImageDecodeError(f"{fmt} declares no pixels: {width}x{height}")
    _check_dimensions(width, height, fmt)
    return fmt, width, height


def compressed_to_rgb(
    data: Any, size: tuple[int, int] | None = None, fit: str = "resize"
) -> np.ndarray:
    """Decode JPEG/PNG bytes (``sensor_msgs/CompressedImage.data``) into uint8 RGB (H, W, 3).

    The header is read first (:func:`compressed_image_size`): other formats, truncated
    files and images over MAX_IMAGE_PIXELS are refused before the decoder allocates
    anything, and the decoded size must equal the declared one. ``size`` and ``fit`` as in
    :func:`raw_to_rgb`.

    Raises:
        ImageDecodeError: empty, non-PNG/JPEG, truncated, over-large or undecodable data.
    """
    fmt, width, height = compressed_image_size(data)
    buffer = np.frombuffer(data, dtype=np.uint8)
    try:
        image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    except cv2.error as exc:  # some malformed streams raise instead of returning None
        raise ImageDecodeError(f"could not decode the compressed {fmt} image: {exc}") from None
    if image is None:
        raise ImageDecodeError(
            f"could not decode the compressed {fmt} image ({buffer.size} bytes): corrupt data"
        )
    if image.shape[:2] != (height, width):
        raise ImageDecodeError(
            f"{fmt} decoded to {image.shape[1]}x{image.shape[0]} but its header declares "
            f"{width}x{height}"
        )
    if size is not None:
        image = fit_rgb(image, size, fit)
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
