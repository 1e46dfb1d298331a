"""camera_node: frames from an OpenCV video file on a remapped image_raw topic."""

from __future__ import annotations

import itertools
import os
import subprocess
import threading
import time

import cv2
import numpy as np
import pytest
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from ros_test_utils import NodeProcess
from sensor_msgs.msg import Image

from robot_policy_ros.core.images import raw_to_rgb
from robot_policy_ros.nodes.camera_node import parse_source

pytestmark = pytest.mark.ros

CAMERA = "robot_policy_ros.nodes.camera_node"
COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)]


def _write_video(path, frames: int = 5, size=(64, 48)) -> None:
    """An MJPG video whose frame k is filled with COLOURS[k] (RGB)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, size)
    assert writer.isOpened()
    for k in range(frames):
        rgb = np.zeros((size[1], size[0], 3), dtype=np.uint8)
        rgb[:] = COLOURS[k % len(COLOURS)]
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()


class Receiver:
    """Subscribes to an image topic in a background executor and keeps what arrives."""

    def __init__(self, context, topic: str) -> None:
        self.node = Node("image_receiver", context=context)
        self.images: list[tuple[float, Image]] = []
        self.node.create_subscription(
            Image, topic, lambda m: self.images.append((self._now(), m)), qos_profile_sensor_data
        )
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self._running = True
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _now(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def _spin(self) -> None:
        while self._running:
            self.executor.spin_once(timeout_sec=0.01)

    def wait_for(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.images) < count:
            time.sleep(0.02)
        return len(self.images) >= count

    def close(self) -> None:
        self._running = False
        self._thread.join(timeout=5)
        self.executor.shutdown(timeout_sec=1)
        self.node.destroy_node()


def test_parse_source_kinds():
    assert parse_source("0") == (0, "device")
    assert parse_source("rtsp://cam/stream")[1] == "url"
    assert parse_source("/dev/video2")[1] == "device"
    assert parse_source("clip.avi") == ("clip.avi", "file")


def test_video_file_published_looping_resized_stamped_on_remapped_topic(
    start_node, rclpy_context, tmp_path
):
    video = tmp_path / "clip.avi"
    _write_video(video)
    receiver = Receiver(rclpy_context, "/arm/front/image_raw")
    try:
        proc = start_node(
            CAMERA,
            "-p", f"source:={video}",
            "-p", "rate_hz:=20.0",
            "-p", "width:=32",
            "-p", "height:=24",
            "-p", "frame_id:=front_optical",
            "-p", "loop:=true",
            "-r", "image_raw:=/arm/front/image_raw",
        )  # fmt: skip
        assert receiver.wait_for(16, 20.0), proc.output()  # > 5 frames: it looped
        received = list(receiver.images)
    finally:
        receiver.close()
    arrivals = np.array([t for t, _ in received])
    stamps = np.array([m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for _, m in received])
    msg = received[-1][1]
    assert (msg.encoding, msg.width, msg.height, msg.step) == ("rgb8", 32, 24, 96)
    assert msg.header.frame_id == "front_optical"
    assert np.all(np.diff(stamps) > 0)
    assert np.all(arrivals - stamps >= -1e-3) and np.all(arrivals - stamps < 0.5)
    rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    assert rate == pytest.approx(20.0, rel=0.15)
    # Frame colours follow the video (JPEG-lossy), in RGB order, wrapping after 5 frames.
    colours = [
        raw_to_rgb(m.encoding, m.height, m.width, m.step, m.data)[12, 16].astype(int)
        for _, m in received
    ]
    nearest = [int(np.argmin([np.abs(c - ref).sum() for ref in COLOURS])) for c in colours]
    assert set(nearest) == set(range(5))
    # Consecutive messages show consecutive frames (a lost best-effort message may skip one).
    assert all((b - a) % 5 in (1, 2) for a, b in itertools.pairwise(nearest))


def test_missing_source_is_clear_error_and_recovers_when_it_appears(
    start_node, rclpy_context, tmp_path
):
    video = tmp_path / "later.avi"
    receiver = Receiver(rclpy_context, "image_raw")
    try:
        proc = start_node(
            CAMERA, "-p", f"source:={video}", "-p", "reconnect_period_s:=0.2", "-p", "loop:=true"
        )
        assert proc.wait_for_output(f"cannot open camera source '{video}'", 20.0), proc.output()
        assert proc.alive()
        _write_video(tmp_path / "tmp.avi")
        os.rename(tmp_path / "tmp.avi", video)  # appears atomically, as a device would
        assert receiver.wait_for(3, 20.0), proc.output()
        assert proc.wait_for_output("opened camera source", 5.0)
    finally:
        receiver.close()


def test_bad_size_parameters_stop_with_message(node_env):
    proc = NodeProcess(CAMERA, ros_args=["-p", "width:=32"], env=node_env)
    try:
        proc.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.stop()
        raise
    assert proc.proc.returncode == 2
    assert "'width' = 32 and 'height' = 0" in proc.output()
