"""episode_driver: resets the sim after each episode while demonstrations are recorded.

record_demos.launch.py starts it with ``sim:=true``; after ``episodes`` finished episodes
it exits (exit code 0), which ends the launch. Run it alone with
``episode_driver --ros-args -p episodes:=20`` (or ``ros2 run robot_policy_ros episode_driver``).
"""

from __future__ import annotations

import sys
import time
from typing import Any

from rclpy.node import Node

from robot_policy_ros.nodes.episode_client import EpisodeClient
from robot_policy_ros.nodes.params import declare_parameters, read_parameters
from robot_policy_ros.nodes.runner import run_nodes
from robot_policy_ros.params.episode_driver import SPECS
from robot_policy_ros.sim.sequencer import EpisodeSequencer

NODE_NAME = "episode_driver"


class EpisodeDriver(Node):
    """Watches ``<sim>/episode`` and calls ``<sim>/reset`` after each finished episode."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        declare_parameters(self, SPECS)
        p = read_parameters(self, SPECS)
        self.reset_delay_s = float(p["reset_delay_s"])
        self.sequencer = EpisodeSequencer(int(p["episodes"]))
        self.episodes = EpisodeClient(self, p["sim"], on_episode=self._on_episode)
        self._reset_at: float | None = None
        self._stop_at: float | None = None
        self._pending: Any = None
        self.create_timer(0.05, self._tick)

    def _on_episode(self, data: dict[str, Any]) -> None:
        action = self.sequencer.on_episode(data)
        done = len(self.sequencer.finished)
        if action == "reset":
            self.get_logger().info(
                f"episode {data['index']} done ({done} recorded); next one in "
                f"{self.reset_delay_s:g} s"
            )
            self._reset_at = time.monotonic() + self.reset_delay_s
        elif action == "stop":
            self.get_logger().info(f"recorded {done} episodes; stopping")
            self._stop_at = time.monotonic() + 1.0  # let the recorders write the last messages

    def _tick(self) -> None:
        now = time.monotonic()
        if self._stop_at is not None and now >= self._stop_at:
            # Ends the spin in run_nodes, which then exits with code 0.
            self.context.try_shutdown()
            return
        client = self.episodes.reset_client
        if self._reset_at is not None and now >= self._reset_at and client.service_is_ready():
            self._reset_at = None
            self._pending = client.call_async(self.episodes.reset_request())


def main(args: list[str] | None = None) -> int:
    """Entry point: ``episode_driver --ros-args -p episodes:=20``."""
    return run_nodes([EpisodeDriver], args=args)


if __name__ == "__main__":
    sys.exit(main())
