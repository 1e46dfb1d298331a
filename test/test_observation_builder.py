"""ObservationBuilder (core/observation_builder.py): the messages -> Observation step that
policy_node and the bag replay share, tested alone with message-shaped objects (rclpy's
and rosbags' messages have these fields)."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from robot_policy_ros.checkpoint.config import CameraInput
from robot_policy_ros.core.images import fit_rgb, rgb_to_raw
from robot_policy_ros.core.observation import JOINTS, ObservationGate
from robot_policy_ros.core.observation_builder import CameraImageError, ObservationBuilder

CAMERAS = [CameraInput(name="front", height=16, width=16)]


def raw_msg(img: np.ndarray, encoding: str = "rgb8") -> SimpleNamespace:
    height, width, step, data = rgb_to_raw(img, encoding)
    return SimpleNamespace(
        encoding=encoding, height=height, width=width, step=step, data=data, is_bigendian=0
    )


def png_msg(img: np.ndarray) -> SimpleNamespace:
    _ok, png = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return SimpleNamespace(format="png", data=png.tobytes())


def frame(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(32, 32, 3), dtype=np.uint8)


def test_raw_and_compressed_frames_become_the_model_image_by_the_trained_fit() -> None:
    builder = ObservationBuilder(CAMERAS, n_obs_steps=1, fps=10.0)
    img = frame(0)
    expected = fit_rgb(img, (16, 16), "resize")
    np.testing.assert_array_equal(builder.to_rgb("front", raw_msg(img)), expected)
    np.testing.assert_array_equal(builder.to_rgb("front", raw_msg(img, "bgr8")), expected)
    np.testing.assert_array_equal(builder.to_rgb("front", png_msg(img)), expected)


def test_single_frame_observation_uses_the_gate_snapshot() -> None:
    builder = ObservationBuilder(CAMERAS, n_obs_steps=1, fps=10.0)
    gate = ObservationGate(["front"], max_age_s=0.25)
    img, q = frame(1), np.array([0.1, -0.2])
    gate.set_camera("front", 1.0, raw_msg(img))
    gate.set_joints(1.01, q)
    obs, offsets = builder.build(gate.snapshot(1.02))
    assert offsets == []
    assert obs.history is None
    assert obs.stamp == 1.0  # the oldest input
    np.testing.assert_array_equal(obs.images["front"], fit_rgb(img, (16, 16), "resize"))
    np.testing.assert_array_equal(obs.joint_positions, q)


def test_history_frames_are_picked_by_stamp_one_period_apart() -> None:
    builder = ObservationBuilder(CAMERAS, n_obs_steps=2, fps=10.0)
    gate = ObservationGate(["front"], max_age_s=0.25)
    # Frames every 50 ms: the earlier frame of an observation at 1.10 is the one at 1.00.
    for k, t in enumerate((1.00, 1.05, 1.10)):
        msg, q = raw_msg(frame(k)), np.array([t, -t])
        gate.set_camera("front", t, msg)
        builder.add("front", t, msg)
        gate.set_joints(t, q)
        builder.add(JOINTS, t, q)
    obs, offsets = builder.build(gate.snapshot(1.10))
    assert offsets == pytest.approx([-0.1, 0.0])
    (earlier,) = obs.history
    assert earlier.stamp == 1.00
    np.testing.assert_array_equal(earlier.images["front"], fit_rgb(frame(0), (16, 16), "resize"))
    np.testing.assert_array_equal(earlier.joint_positions, [1.00, -1.00])
    np.testing.assert_array_equal(obs.images["front"], fit_rgb(frame(2), (16, 16), "resize"))
    builder.clear()
    assert builder.build(gate.snapshot(1.10)) is None  # history gone since the snapshot


def test_unconvertible_frame_names_its_camera() -> None:
    builder = ObservationBuilder(CAMERAS, n_obs_steps=1, fps=10.0)
    gate = ObservationGate(["front"], max_age_s=0.25)
    bad = raw_msg(frame(0))
    bad.encoding = "yuv422_weird"
    gate.set_camera("front", 1.0, bad)
    gate.set_joints(1.0, np.zeros(2))
    with pytest.raises(CameraImageError) as info:
        builder.build(gate.snapshot(1.0))
    assert info.value.camera == "front"
    # Another aspect ratio than the model's: refused under image_fit "checkpoint".
    wide = raw_msg(np.zeros((16, 32, 3), dtype=np.uint8))
    with pytest.raises(CameraImageError, match="front"):
        gate.set_camera("front", 1.0, wide)
        builder.build(gate.snapshot(1.0))
