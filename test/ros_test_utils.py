"""Helpers for tests that run real rclpy nodes: isolated DDS domains and node processes.

Every test that touches DDS runs with ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` and a
ROS_DOMAIN_ID of its own, so parallel test runs on one machine never see each other.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path

from robot_policy_ros.processes import NodeProcess, isolated_ros_env

__all__ = ["REPO_ROOT", "NodeProcess", "next_domain_id", "ros_env", "spin_until"]

REPO_ROOT = Path(__file__).resolve().parents[1]

# Domain IDs 1..101 are valid on every platform; pick a random start per pytest process
# so concurrent runs rarely collide, then walk through them test by test.
_DOMAIN_BASE = random.SystemRandom().randint(1, 101)
_domain_counter = 0


def next_domain_id() -> int:
    """A fresh ROS_DOMAIN_ID in 1..101 for the next test."""
    global _domain_counter
    _domain_counter += 1
    return (_DOMAIN_BASE + _domain_counter) % 101 + 1


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
