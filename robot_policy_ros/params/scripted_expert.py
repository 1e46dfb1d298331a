"""scripted_expert's parameter table (no rclpy: read by the node, launch validation and docs)."""

from __future__ import annotations

from robot_policy_ros.core.params import ParamSpec
from robot_policy_ros.sim.task import CUED_EXPERT_WAIT_S, TASKS

SPECS = [
    ParamSpec("arm_config", "", "Arm YAML (must match the sim_robot's); empty = the packaged one."),
    ParamSpec("rate_hz", 50.0, "Command publish rate.", min_value=1.0, max_value=1000.0),
    ParamSpec(
        "noise_std",
        0.0,
        "Demonstration diversity: std (m) of random hover-point offsets (final point: 1/4).",
        min_value=0.0,
        max_value=0.1,
    ),
    ParamSpec("seed", 0, "Seed of the noise (per target: seed, target position).", min_value=0),
    ParamSpec(
        "speed",
        0.5,
        "Fraction of the joint velocity/acceleration limits used at the peak of a move.",
        min_value=0.05,
        max_value=1.0,
    ),
    ParamSpec(
        "hover_height_m",
        0.08,
        "Tool tip height above the target before descending.",
        min_value=0.02,
        max_value=0.3,
    ),
    ParamSpec(
        "touch_height_m",
        0.015,
        "Final tool tip height above the table.",
        min_value=0.0,
        max_value=0.2,
    ),
    ParamSpec(
        "start_delay_s",
        0.0,
        "Wait this long after a new target before moving (a human reaction time), on top of "
        "the task's own wait.",
        min_value=0.0,
        max_value=10.0,
    ),
    ParamSpec(
        "task",
        "reach",
        "The sim_robot's task (set both from one params file). cued_targets: the expert "
        f"waits {CUED_EXPERT_WAIT_S:g} s at home after each reset before it moves (the cue "
        "shows only at the start), which makes the demonstrations non-Markovian.",
        choices=TASKS,
    ),
]
