"""``make demo``: record demonstrations, train a policy, deploy it and score it, on ROS 2 topics.

Stages (each prints its progress and elapsed time):

1. **record**: the embedded sim_robot (namespace ``/demo_arm``), the scripted expert as the
   teleoperator and the bag_recorder; ``N`` seeded episodes, one rosbag2 (MCAP) bag each.
2. **train**: ``robot-policy train`` on those bags (progress bar, validation loss, safe
   checkpoint).
3. **deploy**: policy_node + command_streamer at 50 Hz drive the sim *through topic
   remapping only*, exactly as they would a real arm, for ``M`` episodes on seeds never
   used in training; the evaluation is recorded to a bag as well.
4. **report**: success rate (policy vs expert), achieved control rate and period error,
   inference latency; ``demo_output/report.md``, ``report.json`` and ``eval_plot.png``.

Everything runs in a DDS domain of its own with discovery limited to localhost.

Layout: :mod:`.config` (what the demo does), :mod:`.orchestrator` (the rclpy side: episodes
through the one sim-episode client, lifecycle transitions, the evaluation monitor),
:mod:`.pipeline` (the stages), :mod:`.report` and :mod:`.plots` (the outputs),
:mod:`.entry` (the command line; ``python -m robot_policy_ros.demo``).
"""

from robot_policy_ros.demo.config import ARM_NS, CAMERA, DemoConfig, Stopwatch, family_train_args
from robot_policy_ros.demo.entry import main
from robot_policy_ros.demo.pipeline import Demo
from robot_policy_ros.demo.plots import plot_eval
from robot_policy_ros.demo.report import (
    _diag_float,
    command_timing,
    mean_success_time,
    recorded_episodes,
    training_summary,
)

__all__ = [
    "ARM_NS",
    "CAMERA",
    "Demo",
    "DemoConfig",
    "Stopwatch",
    "_diag_float",
    "command_timing",
    "family_train_args",
    "main",
    "mean_success_time",
    "plot_eval",
    "recorded_episodes",
    "training_summary",
]
