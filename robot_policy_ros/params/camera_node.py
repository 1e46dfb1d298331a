"""camera_node's parameter table (no rclpy: read by the node, launch validation and docs)."""

from __future__ import annotations

from robot_policy_ros.core.params import ParamSpec

SPECS: list[ParamSpec] = [
    ParamSpec(
        "source",
        "0",
        "OpenCV source: a device index (e.g. 0), a video file path, or a stream URL.",
        check=lambda v: None if v.strip() else "is empty",
        fix="set -p source:=0 (device), a video file path, or rtsp://... / http://...",
    ),
    ParamSpec("rate_hz", 30.0, "Frames published per second.", min_value=0.1, max_value=1000.0),
    ParamSpec("width", 0, "Output width in pixels (0: the source's).", min_value=0, max_value=8192),
    ParamSpec(
        "height", 0, "Output height in pixels (0: the source's).", min_value=0, max_value=8192
    ),
    ParamSpec("frame_id", "camera", "header.frame_id of the published images."),
    ParamSpec("encoding", "rgb8", "Published pixel encoding.", choices=("rgb8", "bgr8")),
    ParamSpec("loop", False, "Restart a video file from its first frame at its end."),
    ParamSpec(
        "reconnect_period_s",
        1.0,
        "Seconds between attempts to (re)open a source that failed or was lost.",
        min_value=0.05,
        max_value=60.0,
    ),
]
