"""Helpers for tests that run real rclpy nodes: isolated DDS domains and node processes.

Every test that touches DDS runs with ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` and a
ROS_DOMAIN_ID of its own, so parallel test runs on one machine never see each other.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

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
    env = dict(os.environ)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["ROS_DOMAIN_ID"] = str(domain_id)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


class NodeProcess:
    """A node (``python -m module``) in its own process, its output captured to a file."""

    def __init__(
        self,
        module: str,
        args: Sequence[str] = (),
        ros_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.module = module
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the process
            prefix=module.rsplit(".", 1)[-1] + "-", suffix=".log", delete=False
        )
        cmd = [sys.executable, "-m", module, *args]
        if ros_args:
            cmd += ["--ros-args", *ros_args]
        self.cmd = cmd
        self.proc = subprocess.Popen(
            cmd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(REPO_ROOT),
            start_new_session=True,
        )

    def output(self) -> str:
        """Everything the process printed so far."""
        self._log.flush()
        return Path(self._log.name).read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int:
        """SIGINT (as Ctrl-C would), then SIGKILL if it does not exit; returns the code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self._log.close()
        return self.proc.returncode

    def wait_for_output(self, text: str, timeout: float = 30.0) -> bool:
        """Wait until ``text`` appears in the output (or the process dies)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return True
            if not self.alive():
                return text in self.output()
            time.sleep(0.05)
        return False


def spin_until(executor, predicate: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    """Spin ``executor`` until ``predicate()`` holds or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        executor.spin_once(timeout_sec=step)
    return predicate()
