"""policy_stack: policy_node and command_streamer in one process, for a single executable.

Both nodes keep their names, parameters and topics (``-p checkpoint:=...`` reaches both;
``-p command_streamer:control_rate_hz:=100.0`` targets one). The streamer's control loop
still runs on its own thread with absolute deadlines, and inference on its own worker, but
the two now share one Python interpreter: inference holds the GIL between torch operations,
which can delay a control tick. See doc/runtime.md for the measured effect; for the tightest
timing run the two nodes as separate processes (``policy_node`` + ``command_streamer``).
"""

from __future__ import annotations

import sys

from robot_policy_ros.nodes.command_streamer import CommandStreamer
from robot_policy_ros.nodes.policy_node import PolicyNode
from robot_policy_ros.nodes.runner import run_nodes


def main(args: list[str] | None = None) -> int:
    """Entry point: ``policy_stack --ros-args -p checkpoint:=/path/to/checkpoint``."""
    return run_nodes([PolicyNode, CommandStreamer], args=args)


if __name__ == "__main__":
    sys.exit(main())
