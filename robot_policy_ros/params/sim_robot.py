"""sim_robot's parameter table (no rclpy: read by the node, launch validation and docs)."""

from __future__ import annotations

import re

from robot_policy_ros.core.params import ParamSpec
from robot_policy_ros.sim.task import TASKS

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def _topic_token(value: str) -> str | None:
    return None if _NAME_RE.match(value) else "must be a topic name token ([A-Za-z][A-Za-z0-9_]*)"


def _optional_token(value: str) -> str | None:
    return None if value == "" else _topic_token(value)


SPECS = [
    ParamSpec(
        "arm_config",
        "",
        "Arm YAML (joints, limits, links, cameras); empty = the packaged config/sim_arm.yaml.",
    ),
    ParamSpec(
        "joint_state_rate_hz", 100.0, "Rate of joint_states.", min_value=1.0, max_value=1000.0
    ),
    ParamSpec(
        "physics_rate_hz",
        500.0,
        "Fixed internal servo integration rate.",
        min_value=200.0,
        max_value=5000.0,
    ),
    ParamSpec(
        "camera_name", "front", "Camera name: images on <name>/image_raw.", check=_topic_token
    ),
    ParamSpec("camera_view", "front", "Viewpoint of that camera, a key of `cameras` in the YAML."),
    ParamSpec("camera_rate_hz", 30.0, "Camera frame rate.", min_value=1.0, max_value=240.0),
    ParamSpec("image_width", 640, "Image width in pixels.", min_value=16, max_value=4096),
    ParamSpec("image_height", 480, "Image height in pixels.", min_value=16, max_value=4096),
    ParamSpec(
        "second_camera_name",
        "",
        "Optional second camera (e.g. 'top'), same size and rate; empty = none.",
        check=_optional_token,
    ),
    ParamSpec("second_camera_view", "top", "Viewpoint of the second camera (YAML `cameras` key)."),
    ParamSpec(
        "command_timeout_s",
        0.5,
        "Without a command for this long (after a trajectory's end), the arm stops and holds.",
        min_value=0.01,
        max_value=3600.0,
    ),
    ParamSpec(
        "seed",
        0,
        "Episode seed: the same seed gives the same sequence of targets.",
        min_value=0,
        max_value=2**31 - 1,
    ),
    ParamSpec(
        "task",
        "reach",
        "Task: 'reach' (touch the one target disc), 'two_targets' (two identical discs,"
        " touching either succeeds; both on ~/targets) or 'cued_targets' (three discs, one"
        " shown in green for the first 0.4 s; only it succeeds, touching another fails;"
        " only it on ~/targets).",
        choices=TASKS,
    ),
    ParamSpec(
        "success_radius_m",
        0.04,
        "Success: tool tip within this horizontal distance of the target centre.",
        min_value=0.001,
        max_value=1.0,
    ),
    ParamSpec(
        "success_height_m",
        0.05,
        "Success: tool tip below this height above the table.",
        min_value=0.001,
        max_value=1.0,
    ),
    ParamSpec(
        "success_hold_s",
        0.3,
        "Success: the tip stays in the goal region this long.",
        min_value=0.0,
        max_value=60.0,
    ),
    ParamSpec(
        "episode_timeout_s",
        20.0,
        "An episode without success is done (failed) after this long; 0 = never.",
        min_value=0.0,
        max_value=3600.0,
    ),
    ParamSpec(
        "reset_arm_to_home",
        True,
        "On ~/reset, snap the arm instantly to the home pose (else it stops where it is).",
    ),
    ParamSpec(
        "episode_rate_hz",
        4.0,
        "Rate at which ~/episode is republished (also on every change).",
        min_value=0.1,
        max_value=100.0,
    ),
]
