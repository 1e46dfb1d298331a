"""camera_node: sensor_msgs/Image on ``image_raw`` from any OpenCV source.

The source is a device index (``0``), a video file or a stream URL. Frames are read in a
capture thread paced by absolute deadlines at ``rate_hz``, stamped with the node clock right
after the read returns (capture time), resized to ``width`` x ``height`` when set and
published as ``rgb8`` (or ``bgr8``). A video file loops when ``loop`` is true (demos, tests).

If the source cannot be opened the node says so, naming the source, and keeps retrying
every ``reconnect_period_s``; if a device or stream stops delivering frames it is released
and reopened the same way, so the camera recovers when it comes back. Remap ``image_raw``
(or use a namespace) to place it: ``--ros-args -r image_raw:=front/image_raw``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import Any

import cv2
import numpy as np
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from robot_policy_ros.core.images import resize_rgb
from robot_policy_ros.core.params import ParameterError
from robot_policy_ros.core.timing import FixedRateTicker
from robot_policy_ros.nodes.lifecycle import LogThrottle
from robot_policy_ros.nodes.params import declare_parameters, read_parameters
from robot_policy_ros.nodes.runner import run_nodes
from robot_policy_ros.params.camera_node import SPECS

NODE_NAME = "camera_node"


def parse_source(source: str) -> tuple[int | str, str]:
    """(value for cv2.VideoCapture, kind) with kind in device / url / file."""
    text = source.strip()
    if text.isdigit():
        return int(text), "device"
    if "://" in text:
        return text, "url"
    if text.startswith("/dev/video"):
        return text, "device"
    return os.path.expanduser(text), "file"


class CameraNode(Node):
    """Publishes frames from an OpenCV source on ``image_raw``."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        declare_parameters(self, SPECS)
        self.params = read_parameters(self, SPECS)
        if (self.params["width"] == 0) != (self.params["height"] == 0):
            raise ParameterError(
                f"parameters 'width' = {self.params['width']} and 'height' = "
                f"{self.params['height']}: set both (resize) or neither (source size)"
            )
        self.source, self.kind = parse_source(self.params["source"])
        self._log = LogThrottle(self.get_logger(), period_s=5.0)
        self._pub = self.create_publisher(Image, "image_raw", qos_profile_sensor_data)
        self._stop = threading.Event()
        self.frames = 0
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the capture thread."""
        self._stop.set()
        self._thread.join(timeout=5.0)

    def _open(self) -> cv2.VideoCapture | None:
        if self.kind == "file" and not os.path.isfile(self.source):
            self._log(
                "open",
                "error",
                f"cannot open camera source '{self.params['source']}': no such video file; "
                f"retrying every {self.params['reconnect_period_s']:g} s",
            )
            return None
        cap = cv2.VideoCapture(self.source)
        if not cap.isOpened():
            cap.release()
            self._log(
                "open",
                "error",
                f"cannot open camera source '{self.params['source']}' ({self.kind}): OpenCV "
                f"could not open it; retrying every {self.params['reconnect_period_s']:g} s",
            )
            return None
        if self.kind == "device":
            with contextlib.suppress(cv2.error):
                cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # newest frame, not a queue of old ones
        self.get_logger().info(f"opened camera source '{self.params['source']}' ({self.kind})")
        return cap

    def _read(self, cap: cv2.VideoCapture) -> np.ndarray | None:
        ok, frame = cap.read()
        if ok:
            return frame
        if self.kind == "file" and self.params["loop"]:
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = cap.read()
            if ok:
                return frame
        return None

    def _run(self) -> None:
        ticker = FixedRateTicker(self.params["rate_hz"], spin_s=0.0)
        msg = Image()
        msg.header.frame_id = self.params["frame_id"]
        msg.encoding = self.params["encoding"]
        size = (self.params["height"], self.params["width"]) if self.params["width"] else None
        cap = None
        finished = False
        while not self._stop.is_set():
            if cap is None:
                if finished:
                    self._stop.wait(0.5)
                    continue
                cap = self._open()
                if cap is None:
                    self._stop.wait(self.params["reconnect_period_s"])
                    continue
                ticker.start()
            if ticker.wait(self._stop) is None:
                break
            frame = self._read(cap)
            stamp = self.get_clock().now()
            if frame is None:
                cap.release()
                cap = None
                if self.kind == "file":
                    finished = True
                    self.get_logger().info(
                        f"end of video file '{self.params['source']}' (set loop:=true to repeat)"
                    )
                else:
                    self.get_logger().warning(
                        f"camera source '{self.params['source']}' stopped delivering frames; "
                        "reconnecting"
                    )
                continue
            self._publish(msg, frame, stamp, size)
        if cap is not None:
            cap.release()

    def _publish(self, msg: Image, frame: np.ndarray, stamp, size) -> None:
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        elif frame.shape[2] == 4:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
        if size is not None:
            frame = resize_rgb(frame, size)
        if msg.encoding == "rgb8":
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        frame = np.ascontiguousarray(frame)
        msg.header.stamp = stamp.to_msg()
        msg.height, msg.width = int(frame.shape[0]), int(frame.shape[1])
        msg.step = msg.width * 3
        msg.data = frame.tobytes()
        self._pub.publish(msg)
        self.frames += 1


def main(args: list[str] | None = None) -> int:
    """Entry point: ``camera_node --ros-args -p source:=0 -r image_raw:=front/image_raw``."""
    return run_nodes([CameraNode], args=args, on_stop=lambda node: node.close())


if __name__ == "__main__":
    sys.exit(main())
