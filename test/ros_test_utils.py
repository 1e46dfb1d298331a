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
