"""The demo's rclpy side: one node that resets and watches episodes (through the one
sim-episode client, :class:`~robot_policy_ros.nodes.episode_client.EpisodeClient`), switches
lifecycle nodes, and monitors commands, joint states, chunks and diagnostics."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from robot_policy_ros.demo.config import ARM_NS


class Orchestrator:
    """An rclpy node that resets episodes and watches them, plus what the report needs."""

    def __init__(self, domain_id: int) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node

        from robot_policy_ros.nodes.episode_client import EpisodeClient

        self._rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = Node("demo_orchestrator", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        # Spun by this object's own thread, so the client's waits only sleep.
        self.episodes = EpisodeClient(self.node, f"{ARM_NS}/sim_robot")
        self._lifecycle_clients: dict[str, Any] = {}
        # The demo's e-stop input, as a real cell has one: latched "not stopped". The
        # command_streamer waits for a latched e-stop's sample before it moves anything, so
        # without one every activation would wait out its e_stop_grace_s.
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from std_msgs.msg import Bool

        latched = QoSProfile(
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self.e_stop = self.node.create_publisher(Bool, "/e_stop", latched)
        self.e_stop.publish(Bool(data=False))
        self.pauses: list[tuple[float, float]] = []  # (monotonic) policy stack restarts
        self.resets: list[float] = []  # (monotonic) when each episode's reset answered
        self._spinning = True
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self._spinning and self.context.ok():
            self.executor.spin_once(timeout_sec=0.05)

    def current_episode(self) -> dict[str, Any]:
        return self.episodes.current()

    def wait_for_sim(self, timeout: float) -> bool:
        return self.episodes.wait_for_sim(timeout)

    def reset_episode(self, timeout: float = 10.0) -> dict[str, Any]:
        """Call the sim's ``~/reset``; returns the new episode's state."""
        return self.episodes.reset(timeout)

    def lifecycle_client(self, node: str, timeout: float = 10.0) -> Any:
        """The (cached) ``change_state`` client of lifecycle node ``node``, once available."""
        from lifecycle_msgs.srv import ChangeState

        client = self._lifecycle_clients.get(node)
        if client is None:
            client = self.node.create_client(ChangeState, f"{node}/change_state")
            self._lifecycle_clients[node] = client
        if not client.wait_for_service(timeout_sec=timeout):
            raise RuntimeError(f"{node}/change_state is not available")
        return client

    def transition(self, node: str, activate: bool, timeout: float = 10.0) -> None:
        """Activate or deactivate the lifecycle node ``node`` (e.g. ``/command_streamer``)."""
        from lifecycle_msgs.msg import Transition
        from lifecycle_msgs.srv import ChangeState

        client = self.lifecycle_client(node, timeout)
        request = ChangeState.Request()
        request.transition.id = (
            Transition.TRANSITION_ACTIVATE if activate else Transition.TRANSITION_DEACTIVATE
        )
        future = client.call_async(request)
        deadline = time.monotonic() + timeout
        while not future.done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{node}/change_state did not answer")
            time.sleep(0.005)
        if not future.result().success:
            raise RuntimeError(f"{node}: {'activate' if activate else 'deactivate'} failed")

    def run_episode(self, timeout: float, restart_nodes: Sequence[str] = ()) -> dict[str, Any]:
        """Start the next episode and wait until the sim says it is done.

        ``restart_nodes`` (lifecycle nodes, in start order) are deactivated before the reset
        (in reverse order) and activated again after it.
        """
        paused = time.monotonic()
        for name in reversed(restart_nodes):
            self.transition(name, activate=False)
        started = self.reset_episode()
        self.resets.append(time.monotonic())
        for name in restart_nodes:
            self.transition(name, activate=True)
        if restart_nodes:
            self.pauses.append((paused, time.monotonic()))
        return self.episodes.wait_done(int(started["index"]), timeout)

    def close(self) -> None:
        self._spinning = False
        self._thread.join(timeout=2.0)
        self.node.destroy_node()
        self.context.try_shutdown()


class EvalMonitor:
    """Collects commands, joint states, chunk arrivals and diagnostics during evaluation."""

    def __init__(self, orch: Orchestrator) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray
        from trajectory_msgs.msg import JointTrajectory

        node = orch.node
        self._clock = node.get_clock()
        self.commands: list[tuple[float, list[float]]] = []
        self.states: list[tuple[float, list[float]]] = []
        self.chunks: list[float] = []  # arrival (monotonic)
        self.chunk_ends: list[float] = []  # when its last action is due (monotonic)
        self.diagnostics: dict[str, dict[str, str]] = {}
        self.joint_names: list[str] = []
        self._lock = threading.Lock()
        node.create_subscription(
            Float64MultiArray,
            f"{ARM_NS}/forward_position_controller/commands",
            self._on_command,
            100,
        )
        node.create_subscription(
            JointState, f"{ARM_NS}/joint_states", self._on_state, qos_profile_sensor_data
        )
        node.create_subscription(
            JointTrajectory, f"{ARM_NS}/policy/action_chunk", self._on_chunk, 10
        )
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 50)

    @staticmethod
    def _now() -> float:
        return time.monotonic()

    def _on_command(self, msg) -> None:
        with self._lock:
            self.commands.append((self._now(), list(msg.data)))

    def _on_state(self, msg) -> None:
        with self._lock:
            if not self.joint_names:
                self.joint_names = list(msg.name)
            self.states.append((self._now(), list(msg.position)))

    def _on_chunk(self, msg) -> None:
        now = self._now()
        # Stamp and clock are ROS (wall) time here: the chunk's last action is due
        # (stamp + its time_from_start) - ros_now after its arrival.
        ros_now = self._clock.now().nanoseconds * 1e-9
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        last = msg.points[-1].time_from_start if msg.points else None
        span = last.sec + last.nanosec * 1e-9 if last is not None else 0.0
        with self._lock:
            self.chunks.append(now)
            self.chunk_ends.append(now + (stamp - ros_now) + span)

    def _on_diag(self, msg) -> None:
        with self._lock:
            for status in msg.status:
                self.diagnostics[status.name] = {kv.key: kv.value for kv in status.values}

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "commands": list(self.commands),
                "states": list(self.states),
                "chunks": list(self.chunks),
                "chunk_ends": list(self.chunk_ends),
                "diagnostics": {k: dict(v) for k, v in self.diagnostics.items()},
                "joint_names": list(self.joint_names),
            }
