"""Helpers for tests that run real rclpy nodes: isolated DDS domains and node processes.

Every test that touches DDS runs with ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` and a
ROS_DOMAIN_ID of its own, so parallel test runs on one machine never see each other.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path

from robot_policy_ros.processes import (
    SAFE_DOMAIN_IDS,
    DomainLease,
    NodeProcess,
    isolated_ros_env,
    lease_domain_id,
)

__all__ = ["REPO_ROOT", "NodeProcess", "lease_test_domain", "ros_env", "spin_until"]

REPO_ROOT = Path(__file__).resolve().parents[1]

# Walk through the safe domain IDs from a random start, one per test, so a test never
# reuses the previous test's domain (late DDS traffic) and concurrent runs, which lease
# their domains too, are never joined.
_DOMAIN_START = random.SystemRandom().randrange(len(SAFE_DOMAIN_IDS))
_domain_counter = 0


def lease_test_domain() -> DomainLease:
    """Lease a fresh ROS_DOMAIN_ID for the next test (release it at teardown)."""
    global _domain_counter
    _domain_counter += 1
    k = (_DOMAIN_START + _domain_counter) % len(SAFE_DOMAIN_IDS)
    return lease_domain_id(SAFE_DOMAIN_IDS[k:] + SAFE_DOMAIN_IDS[:k])


def ros_env(domain_id: int, **extra: str) -> dict[str, str]:
    """Environment for a node subprocess: localhost discovery, own domain, repo on path."""
    return isolated_ros_env(domain_id, **extra)


def spin_until(executor, predicate: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    """Spin ``executor`` until ``predicate()`` holds or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        executor.spin_once(timeout_sec=step)
    return predicate()


class FakeSimEpisodes:
    """The sim's episode interface, in-process: ``sim_robot/episode`` (latched JSON) and
    ``sim_robot/reset`` (Trigger), on the caller's node. Each reset starts the next index;
    ``finish()`` ends the current episode; ``refuse`` makes resets fail."""

    def __init__(self, node, sim: str = "sim_robot") -> None:
        import json

        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from std_msgs.msg import String
        from std_srvs.srv import Trigger

        self._json, self._string = json, String
        latched = QoSProfile(
            depth=1,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
            reliability=ReliabilityPolicy.RELIABLE,
        )
        self.pub = node.create_publisher(String, f"{sim}/episode", latched)
        self.episode = {"index": 0, "done": False, "success": False}
        self.resets: list[int] = []  # the index that was running at each reset
        self.refuse = ""
        node.create_service(Trigger, f"{sim}/reset", self._on_reset)
        self.publish()

    def publish(self) -> None:
        self.pub.publish(self._string(data=self._json.dumps(self.episode)))

    def finish(self, success: bool = True) -> None:
        self.episode.update(done=True, success=success)
        self.publish()

    def _on_reset(self, request, response):
        if self.refuse:
            response.success, response.message = False, self.refuse
            return response
        self.resets.append(self.episode["index"])
        self.episode = {"index": self.episode["index"] + 1, "done": False, "success": False}
        self.publish()
        response.success, response.message = True, self._json.dumps(self.episode)
        return response
