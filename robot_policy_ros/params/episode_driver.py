"""episode_driver's parameter table (no rclpy: read by the node, launch validation and docs)."""

from __future__ import annotations

from robot_policy_ros.core.params import ParamSpec

SPECS = [
    ParamSpec(
        "episodes",
        0,
        "Episodes to record; the node exits after the last one (0: until Ctrl-C).",
        min_value=0,
        max_value=1_000_000,
    ),
    ParamSpec(
        "reset_delay_s",
        1.0,
        "Pause between the end of an episode and the reset that starts the next one.",
        min_value=0.0,
        max_value=3600.0,
    ),
    ParamSpec(
        "sim",
        "sim_robot",
        "The sim node whose ~/reset and ~/episode are used (relative names follow the "
        "driver's namespace).",
    ),
]
