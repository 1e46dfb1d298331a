"""Image decoding: every supported encoding becomes RGB at the checkpoint's size."""

import array

import cv2
import numpy as np
import pytest

from robot_policy_ros.core.images import (
    SUPPORTED_ENCODINGS,
    ImageDecodeError,
    compressed_to_rgb,
    raw_to_rgb,
    resize_rgb,
    rgb_to_raw,
)


def _pattern(height: int = 6, width: int = 8) -> np.ndarray:
    """An RGB image whose channels differ, so channel swaps are visible."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    img[0, 0] = (255, 0, 0)  # pure red in the corner
    return img


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8"])
def test_colour_encodings_round_trip_to_rgb(encoding):
    img = _pattern()
    h, w, step, data = rgb_to_raw(img, encoding)
    out = raw_to_rgb(encoding, h, w, step, data)
    assert out.dtype == np.uint8 and out.shape == (6, 8, 3)
    np.testing.assert_array_equal(out, img)
    assert tuple(out[0, 0]) == (255, 0, 0)


def test_bgr8_channels_are_swapped_to_rgb():
    bgr = np.zeros((2, 2, 3), dtype=np.uint8)
    bgr[..., 0] = 200  # blue in BGR order
    out = raw_to_rgb("bgr8", 2, 2, 6, bgr.tobytes())
    assert (out[..., 2] == 200).all() and (out[..., 0] == 0).all()


def test_mono8_becomes_three_equal_channels():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = raw_to_rgb("mono8", 3, 4, 4, gray.tobytes())
    assert out.shape == (3, 4, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], gray)


def test_row_padding_in_step_is_ignored():
    img = _pattern(4, 5)
    padded = np.zeros((4, 5 * 3 + 7), dtype=np.uint8)
    padded[:, :15] = img.reshape(4, 15)
    padded[:, 15:] = 99
    out = raw_to_rgb("rgb8", 4, 5, 22, padded.tobytes())
    np.testing.assert_array_equal(out, img)


def test_resized_to_target_height_width():
    img = _pattern(48, 64)
    h, w, step, data = rgb_to_raw(img, "bgr8")
    out = raw_to_rgb("bgr8", h, w, step, data, size=(24, 16))
    assert out.shape == (24, 16, 3)
    expected = cv2.resize(img, (16, 24), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(out, expected)


def test_upscaling_uses_target_size():
    out = resize_rgb(_pattern(4, 4), (10, 12))
    assert out.shape == (10, 12, 3)


def test_accepts_ros_array_buffer_and_returns_owned_pixels():
    img = _pattern()
    h, w, step, data = rgb_to_raw(img, "rgb8")
    buf = array.array("B", data)
    out = raw_to_rgb("rgb8", h, w, step, buf)
    buf[0] = 0  # the message buffer being reused must not change the decoded frame
    assert out[0, 0, 0] == 255
    assert out.flags.writeable and out.flags.c_contiguous


def test_unsupported_encoding_is_named_with_alternatives():
    with pytest.raises(ImageDecodeError, match=r"'16UC1'.*rgb8.*bgr8.*mono8"):
        raw_to_rgb("16UC1", 2, 2, 4, bytes(8))


def test_short_buffer_is_clear_error():
    with pytest.raises(ImageDecodeError, match=r"has 10 bytes, expected .* = 18"):
        raw_to_rgb("rgb8", 2, 3, 9, bytes(10))


def test_step_smaller_than_row_is_clear_error():
    with pytest.raises(ImageDecodeError, match="step 5 is smaller"):
        raw_to_rgb("rgb8", 2, 2, 5, bytes(12))


def test_empty_image_is_clear_error():
    with pytest.raises(ImageDecodeError, match="no pixels"):
        raw_to_rgb("rgb8", 0, 2, 6, b"")


def test_bad_target_size_is_clear_error():
    with pytest.raises(ImageDecodeError, match="target size"):
        resize_rgb(_pattern(), (0, 4))


def test_png_compressed_decodes_to_rgb_exactly():
    img = _pattern(16, 20)
    ok, png = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    assert ok
    np.testing.assert_array_equal(compressed_to_rgb(png.tobytes()), img)


def test_jpeg_compressed_resized():
    img = np.full((40, 60, 3), (10, 200, 30), dtype=np.uint8)
    _ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    out = compressed_to_rgb(array.array("B", jpg.tobytes()), size=(20, 30))
    assert out.shape == (20, 30, 3)
    assert np.abs(out.astype(int) - (10, 200, 30)).max() < 8  # RGB order, JPEG-lossy


def test_garbage_compressed_data_is_clear_error():
    with pytest.raises(ImageDecodeError, match="neither PNG nor JPEG"):
        compressed_to_rgb(b"not an image")
    with pytest.raises(ImageDecodeError, match="no data"):
        compressed_to_rgb(b"")


def test_supported_encodings_listed():
    assert set(SUPPORTED_ENCODINGS) >= {"rgb8", "bgr8", "mono8", "rgba8", "bgra8"}


def test_fit_rgb_crop_keeps_the_centre_and_letterbox_pads():
    from robot_policy_ros.core.images import fit_rgb

    wide = np.zeros((40, 80, 3), np.uint8)
    wide[:, 20:60] = 200  # the centre square is bright, the sides dark
    np.testing.assert_array_equal(fit_rgb(wide, (20, 20), "crop"), np.full((20, 20, 3), 200))
    boxed = fit_rgb(wide, (40, 40), "letterbox")
    assert boxed.shape == (40, 40, 3)
    assert boxed[:10].max() == 0 and boxed[30:].max() == 0  # bars above and below
    assert boxed[10:30, 10:30].min() == 200  # the frame, shrunk into the middle
    stretched = fit_rgb(wide, (20, 20), "resize")
    assert stretched.shape == (20, 20, 3) and stretched[:, 0].max() == 0


def test_fit_for_camera_refuses_another_aspect_ratio_by_default():
    from robot_policy_ros.core.images import ImageDecodeError, fit_for_camera

    assert fit_for_camera("front", (480, 640), (96, 96), (240, 320), "crop") == "crop"
    with pytest.raises(ImageDecodeError, match=r"gives 640x360 frames.*trained on 320x240"):
        fit_for_camera("front", (360, 640), (96, 96), (240, 320), "crop")
    with pytest.raises(ImageDecodeError, match="takes \\(model input\\) 96x96"):
        fit_for_camera("front", (480, 640), (96, 96), None, "resize")
    assert fit_for_camera("front", (360, 640), (96, 96), (240, 320), "crop", "letterbox") == (
        "letterbox"
    )


def test_checkpoint_camera_records_fit_and_source_shape_round_trip():
    from robot_policy_ros.checkpoint.config import CameraInput

    spec = CameraInput("front", 96, 96, fit="crop", source_height=480, source_width=640)
    assert CameraInput.from_dict(spec.to_dict()) == spec
    legacy = CameraInput.from_dict({"name": "front", "height": 96, "width": 96})
    assert legacy.fit == "resize" and legacy.source_shape is None
    assert "fit" not in legacy.to_dict()  # old checkpoints keep their exact config.json
