"""Malformed camera frames are refused whole: never partly decoded, never over-allocated."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest
from fuzz import fuzz_settings
from hypothesis import given
from hypothesis import strategies as st

from robot_policy_ros.core.images import (
    MAX_IMAGE_PIXELS,
    ImageDecodeError,
    compressed_image_size,
    compressed_to_rgb,
    raw_to_rgb,
    rgb_to_raw,
)


def _png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def _jpeg(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_bomb(width: int, height: int) -> bytes:
    """A valid, tiny PNG (a few hundred bytes) that declares width x height RGB pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    # Highly compressible rows of zeros: the classic decompression bomb; only the first rows
    # are included, the header is what matters (it must be refused before inflating).
    idat = zlib.compress(b"\x00" * (1 + 3 * min(width, 4096)) * 16, 9)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def _jpeg_declaring(width: int, height: int) -> bytes:
    """A real small JPEG whose SOF header is rewritten to declare width x height."""
    data = bytearray(_jpeg(np.zeros((16, 16, 3), np.uint8)))
    i = data.index(b"\xff\xc0")
    data[i + 5 : i + 9] = struct.pack(">HH", height, width)
    return bytes(data)


# --- raw sensor_msgs/Image ---------------------------------------------------------------


def test_data_longer_than_step_times_height_refused():
    with pytest.raises(ImageDecodeError, match=r"has 13 bytes, expected step\*height .* = 12"):
        raw_to_rgb("rgb8", 2, 2, 6, bytes(13))


def test_data_shorter_than_step_times_height_refused():
    with pytest.raises(ImageDecodeError, match=r"has 11 bytes, expected step\*height .* = 12"):
        raw_to_rgb("rgb8", 2, 2, 6, bytes(11))


def test_step_smaller_than_width_times_channels_refused():
    with pytest.raises(ImageDecodeError, match=r"step 7 is smaller than width\*channels"):
        raw_to_rgb("bgra8", 2, 2, 7, bytes(14))


@pytest.mark.parametrize(("height", "width"), [(0, 4), (4, 0), (0, 0), (-1, 4)])
def test_zero_size_image_refused(height, width):
    with pytest.raises(ImageDecodeError, match="no pixels"):
        raw_to_rgb("rgb8", height, width, max(width, 0) * 3, b"")


def test_unknown_encoding_refused():
    with pytest.raises(ImageDecodeError, match=r"unsupported image encoding 'yuv422_yuy2'"):
        raw_to_rgb("yuv422_yuy2", 2, 2, 4, bytes(8))


def test_big_endian_16_bit_image_refused():
    with pytest.raises(ImageDecodeError, match=r"'mono16' \(big-endian multi-byte"):
        raw_to_rgb("mono16", 2, 2, 4, bytes(8), is_bigendian=True)


def test_huge_declared_raw_image_refused_before_viewing():
    with pytest.raises(ImageDecodeError, match="over the limit"):
        raw_to_rgb("rgb8", 100_000, 100_000, 300_000, bytes(16))


# --- sensor_msgs/CompressedImage ---------------------------------------------------------


def test_png_decompression_bomb_refused_before_decoding():
    bomb = _png_bomb(50_000, 50_000)  # 7.5 GB of RGB if decoded
    assert len(bomb) < 100_000
    with pytest.raises(ImageDecodeError, match=r"PNG declares 50000x50000 .*refused before"):
        compressed_to_rgb(bomb)


def test_jpeg_decompression_bomb_refused_before_decoding():
    bomb = _jpeg_declaring(60_000, 60_000)
    with pytest.raises(ImageDecodeError, match=r"JPEG declares 60000x60000 .*refused before"):
        compressed_to_rgb(bomb)


def test_pixel_limit_refuses_a_long_thin_bomb():
    side = MAX_IMAGE_PIXELS // 8000 + 1
    with pytest.raises(ImageDecodeError, match="over the limit"):
        compressed_image_size(_png_bomb(8000, side))


def test_truncated_png_refused():
    png = _png(np.full((32, 32, 3), 7, np.uint8))
    for cut in (len(png) // 2, len(png) - 1, 20):
        with pytest.raises(ImageDecodeError, match="PNG"):
            compressed_to_rgb(png[:cut])


def test_truncated_jpeg_refused_not_partly_decoded():
    # libjpeg would "decode" a truncated JPEG, filling the missing rows with grey.
    rng = np.random.default_rng(0)
    jpg = _jpeg(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    with pytest.raises(ImageDecodeError, match="truncated"):
        compressed_to_rgb(jpg[: len(jpg) // 2])


def test_corrupt_png_data_refused():
    png = bytearray(_png(np.random.default_rng(1).integers(0, 256, (32, 32, 3), np.uint8)))
    i = png.index(b"IDAT") + 10
    png[i] ^= 0xFF  # the chunk CRC no longer matches
    with pytest.raises(ImageDecodeError, match="could not decode"):
        compressed_to_rgb(bytes(png))


def test_png_with_zero_width_refused():
    with pytest.raises(ImageDecodeError, match="declares no pixels"):
        compressed_to_rgb(_png_bomb(0, 10))


@pytest.mark.parametrize(
    "data",
    [b"GIF89a" + bytes(40), b"BM" + bytes(60), b"\x00" * 64, b'{"json": true}', b"\xff\xd8"],
)
def test_non_png_non_jpeg_bytes_refused(data):
    with pytest.raises(ImageDecodeError):
        compressed_to_rgb(data)


def test_decoded_size_must_match_declared_size():
    png = bytearray(_png(np.zeros((16, 16, 3), np.uint8)))
    # Declare 17x16 and fix the IHDR CRC: the data is then short by a row of pixels.
    png[16:20] = struct.pack(">I", 17)
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])))
    with pytest.raises(ImageDecodeError):
        compressed_to_rgb(bytes(png))


# --- properties --------------------------------------------------------------------------

_ENCODINGS = st.sampled_from(["rgb8", "bgr8", "mono8", "rgba8", "bgra8", "mono16", "foo"])


@fuzz_settings(300)
@given(
    encoding=_ENCODINGS,
    height=st.integers(-2, 40),
    width=st.integers(-2, 40),
    step=st.integers(-2, 200),
    length=st.integers(0, 4000),
)
def test_raw_decode_either_refuses_or_gives_exact_rgb(encoding, height, width, step, length):
    """Whatever the fields say: a clean refusal, or an (H, W, 3) uint8 image of the sizes."""
    try:
        out = raw_to_rgb(encoding, height, width, step, bytes(length))
    except ImageDecodeError:
        return
    assert out.shape == (height, width, 3) and out.dtype == np.uint8
    assert length == step * height


@fuzz_settings(200)
@given(
    img=st.integers(1, 24).flatmap(
        lambda h: st.integers(1, 24).map(lambda w: np.full((h, w, 3), (h * 7) % 256, np.uint8))
    ),
    encoding=st.sampled_from(["rgb8", "bgr8", "rgba8", "bgra8"]),
)
def test_valid_raw_frames_round_trip(img, encoding):
    h, w, step, data = rgb_to_raw(img, encoding)
    np.testing.assert_array_equal(raw_to_rgb(encoding, h, w, step, data), img)


@fuzz_settings(300)
@given(
    data=st.binary(max_size=512), prefix=st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8"])
)
def test_compressed_decode_of_random_bytes_never_crashes(data, prefix):
    try:
        out = compressed_to_rgb(prefix + data)
    except ImageDecodeError:
        return
    assert out.ndim == 3 and out.shape[2] == 3 and out.dtype == np.uint8


@fuzz_settings(150)
@given(cut=st.integers(0, 10_000), flip=st.integers(0, 10_000))
def test_mutated_png_refused_or_exact(cut, flip):
    img = np.random.default_rng(2).integers(0, 256, (24, 24, 3), np.uint8)
    png = bytearray(_png(img))
    if flip % 2:
        png[flip % len(png)] ^= 0x55
    data = bytes(png[: max(1, len(png) - cut % len(png))])
    try:
        out = compressed_to_rgb(data)
    except ImageDecodeError:
        return
    assert out.shape == (24, 24, 3)  # anything accepted has the declared size


def test_jpeg_padded_with_zeros_after_eoi_accepted():
    img = np.full((16, 16, 3), 120, np.uint8)
    out = compressed_to_rgb(_jpeg(img) + b"\x00" * 32)
    assert out.shape == (16, 16, 3) and abs(int(out[8, 8, 0]) - 120) < 8
