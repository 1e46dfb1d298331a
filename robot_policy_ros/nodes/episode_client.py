"""The one client of the sim's episode interface: reset, wait for the outcome, read it.

sim_robot offers ``~/reset`` (std_srvs/Trigger, answering the new episode's JSON) and
publishes ``~/episode`` (std_msgs/String JSON ``{"index", "seed", "success", "elapsed_s",
"done"}``, transient-local, republished periodically). The demo, the benchmarks, the
episode driver and the tests all talk to it through :class:`EpisodeClient`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from rclpy.executors import Executor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String
from std_srvs.srv import Trigger

# The sim publishes ~/episode transient-local so a late subscriber gets the current state.
EPISODE_QOS = QoSProfile(
    depth=1,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
    reliability=ReliabilityPolicy.RELIABLE,
)


class EpisodeClient:
    """Resets and watches the sim's episodes through ``node``.

    Args:
        node: the caller's node (subscription and service client are created on it).
        sim: the sim node's name with its namespace, e.g. ``"sim_robot"`` or
            ``"/arm/sim_robot"``.
        executor: spin this executor while waiting; None when the node is already spun
            by another thread (waits then only sleep).
        on_episode: also called with every episode message (in the executor's thread).
    """

    def __init__(
        self,
        node: Node,
        sim: str = "sim_robot",
        executor: Executor | None = None,
        on_episode: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.node = node
        self.sim = sim
        self.executor = executor
        self._on_episode_hook = on_episode
        self._lock = threading.Lock()
        self._episode: dict[str, Any] = {}
        node.create_subscription(String, f"{sim}/episode", self._on_episode, EPISODE_QOS)
        self.reset_client = node.create_client(Trigger, f"{sim}/reset")

    def _on_episode(self, msg: String) -> None:
        try:
            data = json.loads(msg.data)
        except json.JSONDecodeError:
            self.node.get_logger().warning(f"ignoring a non-JSON episode message: {msg.data!r}")
            return
        with self._lock:
            self._episode = data
        if self._on_episode_hook is not None:
            self._on_episode_hook(data)

    def current(self) -> dict[str, Any]:
        """The latest episode state ({} before the first message)."""
        with self._lock:
            return dict(self._episode)

    def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """True once ``predicate()`` holds, False after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if self.executor is not None:
                self.executor.spin_once(timeout_sec=min(0.05, remaining))
            else:
                time.sleep(min(0.01, remaining))
        return True

    def wait_for_sim(self, timeout: float) -> bool:
        """Whether the sim's reset service appeared within ``timeout``."""
        return self.wait_until(self.reset_client.service_is_ready, timeout)

    @staticmethod
    def reset_request() -> Trigger.Request:
        """A request for ``<sim>/reset`` (for callers that must not block on the answer)."""
        return Trigger.Request()

    def reset(self, timeout: float = 10.0) -> dict[str, Any]:
        """Start the next episode; returns its state as the sim answered it.

        Raises:
            TimeoutError: the service is not there or did not answer in time.
            RuntimeError: the sim refused the reset.
        """
        if not self.wait_for_sim(timeout):
            raise TimeoutError(f"{self.sim}/reset is not available")
        future = self.reset_client.call_async(Trigger.Request())
        if not self.wait_until(future.done, timeout):
            raise TimeoutError(f"{self.sim}/reset did not answer within {timeout:g} s")
        response = future.result()
        if not response.success:
            raise RuntimeError(f"{self.sim}/reset failed: {response.message}")
        return json.loads(response.message)

    def wait_done(self, index: int, timeout: float) -> dict[str, Any]:
        """The final state of episode ``index``; on timeout a failed one marked
        ``timed_out_waiting``."""

        def done() -> bool:
            episode = self.current()
            return episode.get("index") == index and bool(episode.get("done"))

        if self.wait_until(done, timeout):
            return self.current()
        episode = self.current()
        episode.update(index=index, done=True, success=False, timed_out_waiting=True)
        return episode

    def run_episode(self, timeout: float) -> dict[str, Any]:
        """Reset, then wait up to ``timeout`` seconds for that episode's outcome."""
        started = self.reset()
        return self.wait_done(int(started["index"]), timeout)
