"""Shared fixtures: isolated DDS domains, an rclpy context, and node processes."""

from __future__ import annotations

import os

import pytest

# Discovery must never leave this machine during tests, whatever the caller's environment.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"

from ros_test_utils import NodeProcess, lease_test_domain, ros_env


@pytest.fixture
def ros_domain(monkeypatch: pytest.MonkeyPatch):
    """A ROS_DOMAIN_ID of this test's own (leased), also set in this process's environment."""
    lease = lease_test_domain()
    monkeypatch.setenv("ROS_DOMAIN_ID", str(lease.domain_id))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    yield lease.domain_id
    lease.release()


@pytest.fixture
def node_env(ros_domain: int) -> dict[str, str]:
    """Environment for node subprocesses in this test's domain."""
    return ros_env(ros_domain)


@pytest.fixture
def rclpy_context(ros_domain: int):
    """An initialised rclpy context in this test's domain, shut down afterwards."""
    rclpy = pytest.importorskip("rclpy")
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=ros_domain)
    yield context
    context.try_shutdown()


@pytest.fixture
def start_node(node_env: dict[str, str]):
    """Factory: start ``python -m MODULE`` as a node process; all are stopped afterwards."""
    started: list[NodeProcess] = []

    def _start(module: str, *ros_args: str, args: tuple[str, ...] = (), **env: str):
        proc = NodeProcess(module, args=args, ros_args=ros_args, env={**node_env, **env})
        started.append(proc)
        return proc

    yield _start
    for proc in started:
        proc.stop()
    for proc in started:
        if proc.proc.returncode not in (0, -2, 130, None):
            print(f"--- {proc.module} exited {proc.proc.returncode}; output:\n{proc.output()}")


def pytest_collection_modifyitems(config, items):
    """Under ``make fuzz`` (FUZZ_EXAMPLES set) run only the hypothesis property tests."""
    if not os.environ.get("FUZZ_EXAMPLES"):
        return
    keep = [i for i in items if getattr(getattr(i, "obj", None), "is_hypothesis_test", False)]
    config.hook.pytest_deselected(items=[i for i in items if i not in keep])
    items[:] = keep
