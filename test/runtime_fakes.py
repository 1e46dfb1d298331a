"""A fake robot for runtime tests: an in-process rclpy node spun in a background thread.

It publishes joint states (names shuffled, extra joints) and camera images on any topic,
records what the runtime nodes publish (commands, chunks, diagnostics), publishes e-stop
and action chunks, and drives lifecycle transitions and services.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import yaml
from builtin_interfaces.msg import Duration
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.srv import ListParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, Float64MultiArray
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from robot_policy_ros.core.images import rgb_to_raw

JOINTS = ["shoulder", "elbow", "wrist"]
LIMITS = {
    "joints": [
        {"name": "shoulder", "lower": -1.0, "upper": 1.0, "max_velocity": 2.0},
        {"name": "elbow", "lower": -2.0, "upper": 0.5, "max_velocity": 1.0},
        {"name": "wrist", "lower": -0.5, "upper": 0.5, "max_velocity": 1.5},
    ]
}


def write_limits(path: Path, limits: dict = LIMITS) -> Path:
    """Write a limits_file YAML; returns its path."""
    path.write_text(yaml.safe_dump(limits))
    return path


def lower_upper(limits: dict = LIMITS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lower, upper, max_velocity) arrays in the limits' joint order."""
    joints = limits["joints"]
    return (
        np.array([j["lower"] for j in joints]),
        np.array([j["upper"] for j in joints]),
        np.array([j["max_velocity"] for j in joints]),
    )


def make_chunk_message(
    chunk: np.ndarray, names: Sequence[str], stamp: float, fps: float = 20.0
) -> JointTrajectory:
    """A JointTrajectory chunk: action i of ``chunk`` (P, J) at ``stamp + i / fps``."""
    msg = JointTrajectory()
    msg.header.stamp.sec = math.floor(stamp)
    msg.header.stamp.nanosec = int((stamp - math.floor(stamp)) * 1e9)
    msg.joint_names = list(names)
    for i, row in enumerate(np.asarray(chunk, dtype=float)):
        nanos = round(i * 1e9 / fps)
        msg.points.append(
            JointTrajectoryPoint(
                positions=[float(v) for v in row],
                time_from_start=Duration(sec=nanos // 10**9, nanosec=nanos % 10**9),
            )
        )
    return msg


class FakeRobot:
    """Joint states + images out, runtime outputs recorded. Use as a context manager."""

    def __init__(
        self,
        context,
        joint_names: Sequence[str] = JOINTS,
        positions: Sequence[float] | None = None,
        extra_joints: Sequence[str] = ("gripper", "base_yaw"),
        joint_rate_hz: float = 100.0,
        cameras: dict[str, tuple[str, tuple[int, int], str]] | None = None,
        camera_rate_hz: float = 30.0,
        command_type: type = Float64MultiArray,
        follow_commands: bool = True,
        sim_time_start: float | None = None,
        record_chunks: bool = True,
    ) -> None:
        """``cameras``: label -> (topic, (height, width), encoding). With
        ``follow_commands`` the joints track position_array commands perfectly. With
        ``sim_time_start`` it publishes /clock (sim time = start + wall time elapsed) at
        200 Hz and stamps everything with that clock."""
        self.node = Node("fake_robot", context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.lock = threading.Lock()
        self.joint_names = list(joint_names)
        self.positions = np.array(
            positions if positions is not None else np.zeros(len(joint_names)), dtype=float
        )
        self.extra = list(extra_joints)
        self.follow_commands = follow_commands
        self.publish_joints = True
        self.publish_images = {label: True for label in (cameras or {})}
        self.image_stamp_offset = 0.0
        self.joint_stamp_offset = 0.0  # seconds added to joint-state stamps (< 0: taken earlier)
        self.commands: list[tuple[float, np.ndarray]] = []
        self.command_sources: list[float] = []  # publish times (time.time() clock)
        self.chunks: list[tuple[float, JointTrajectory]] = []
        self.diagnostics: list[DiagnosticArray] = []
        self._rng = np.random.default_rng(1)

        node = self.node
        self.sim_time_start = sim_time_start
        self._t0 = time.monotonic()
        self.timers: list = []
        if sim_time_start is not None:
            from rosgraph_msgs.msg import Clock

            self.clock_pub = node.create_publisher(Clock, "/clock", 10)
            self.timers.append(node.create_timer(0.005, self._publish_clock))
        self.js_pub = node.create_publisher(JointState, "joint_states", 10)
        self.timers.append(node.create_timer(1.0 / joint_rate_hz, self._publish_joint_state))
        self.cam_pubs = {}
        for label, (topic, (h, w), encoding) in (cameras or {}).items():
            self.cam_pubs[label] = node.create_publisher(Image, topic, 5)
            frame = self._rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
            height, width, step, data = rgb_to_raw(frame, encoding)
            msg = Image(height=height, width=width, step=step, encoding=encoding)
            msg.data = data
            msg.header.frame_id = label
            self.timers.append(
                node.create_timer(1.0 / camera_rate_hz, self._image_publisher(label, msg))
            )
        self.command_type = command_type
        node.create_subscription(command_type, "joint_commands", self._on_command, 100)
        if record_chunks:  # off where another process floods action_chunk
            node.create_subscription(
                JointTrajectory,
                "action_chunk",
                lambda m: self._record(self.chunks, m),
                QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE),
            )
        node.create_subscription(
            DiagnosticArray, "/diagnostics", lambda m: self._record(self.diagnostics, m), 50
        )
        latched = QoSProfile(
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self.e_stop_pub = node.create_publisher(Bool, "e_stop", latched)
        # As a real latched e-stop input: it always holds a value, "not stopped" until pressed
        # (the streamer waits for a latched publisher's sample before anything moves).
        self.e_stop_pub.publish(Bool(data=False))
        self.chunk_pub = node.create_publisher(
            JointTrajectory, "action_chunk", QoSProfile(depth=10, reliability=1)
        )
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._running = True

    # -- lifecycle of the fake ---------------------------------------------------------------

    def __enter__(self) -> FakeRobot:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._running = False
        self._thread.join(timeout=5)
        self.executor.shutdown(timeout_sec=1)
        self.node.destroy_node()

    def _spin(self) -> None:
        while self._running:
            self.executor.spin_once(timeout_sec=0.01)

    def now(self) -> float:
        """The robot's clock: sim time if it publishes /clock, else ROS (wall) time."""
        if self.sim_time_start is not None:
            return self.sim_time_start + time.monotonic() - self._t0
        return self.node.get_clock().now().nanoseconds * 1e-9

    def stamp(self, msg_header) -> None:
        """Set ``msg_header.stamp`` to :meth:`now`."""
        t = self.now()
        msg_header.stamp.sec = math.floor(t)
        msg_header.stamp.nanosec = int((t - math.floor(t)) * 1e9)

    def _publish_clock(self) -> None:
        from rosgraph_msgs.msg import Clock

        t = self.now()
        msg = Clock()
        msg.clock.sec = math.floor(t)
        msg.clock.nanosec = int((t - math.floor(t)) * 1e9)
        self.clock_pub.publish(msg)

    # -- publishing ------------------------------------------------------------------------------

    def _publish_joint_state(self) -> None:
        if not self.publish_joints:
            return
        with self.lock:
            names = self.joint_names + self.extra
            values = list(self.positions) + [0.123] * len(self.extra)
        order = self._rng.permutation(len(names))  # shuffled every message
        msg = JointState()
        t = self.now() + self.joint_stamp_offset
        msg.header.stamp.sec = math.floor(t)
        msg.header.stamp.nanosec = int((t - math.floor(t)) * 1e9)
        msg.name = [names[i] for i in order]
        msg.position = [float(values[i]) for i in order]
        self.js_pub.publish(msg)

    def _image_publisher(self, label: str, msg: Image) -> Callable[[], None]:
        def _publish() -> None:
            if not self.publish_images[label]:
                return
            t = self.now() + self.image_stamp_offset
            msg.header.stamp.sec = math.floor(t)
            msg.header.stamp.nanosec = int((t - math.floor(t)) * 1e9)
            self.cam_pubs[label].publish(msg)

        return _publish

    def publish_chunk(
        self,
        chunk: np.ndarray,
        names: Sequence[str],
        fps: float,
        stamp: float | None = None,
    ) -> None:
        """Publish a JointTrajectory chunk (action i at stamp + i / fps)."""
        msg = make_chunk_message(chunk, names, self.now() if stamp is None else stamp, fps)
        self.chunk_pub.publish(msg)

    def e_stop(self, value: bool) -> None:
        self.e_stop_pub.publish(Bool(data=value))

    # -- recording ---------------------------------------------------------------------------

    def _record(self, store: list, msg) -> None:
        with self.lock:
            store.append((time.monotonic(), msg))

    def _on_command(self, msg, info) -> None:
        # When the streamer published it (system clock), independent of this process's delays.
        source = info["source_timestamp"] * 1e-9
        if isinstance(msg, Float64MultiArray):
            values = np.array(msg.data)
        elif isinstance(msg, JointState):
            values = (list(msg.name), np.array(msg.position))
        else:
            values = msg
        with self.lock:
            self.commands.append((time.monotonic(), values))
            self.command_sources.append(source)
            if self.follow_commands and isinstance(msg, Float64MultiArray):
                self.positions = values.copy()

    def command_values(self, since: float = -math.inf) -> np.ndarray:
        """(N, J) array of position_array commands received after ``since`` (monotonic)."""
        with self.lock:
            rows = [v for t, v in self.commands if t >= since]
        if not rows:
            return np.zeros((0, len(self.joint_names)))
        return np.array(rows)

    def commands_published(self, after: float = -math.inf, before: float = math.inf):
        """position_array commands the streamer published in (after, before), time.time()."""
        with self.lock:
            rows = [
                v
                for (_, v), src in zip(self.commands, self.command_sources, strict=True)
                if after < src < before
            ]
        if not rows:
            return np.zeros((0, len(self.joint_names)))
        return np.array(rows)

    def command_times(self, since: float = -math.inf) -> np.ndarray:
        with self.lock:
            return np.array([t for t, _ in self.commands if t >= since])

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()

    def diagnostic_values(self, status_prefix: str) -> dict[str, str]:
        """Key/values of the latest diagnostics status whose name starts with the prefix."""
        with self.lock:
            arrays = [m for _, m in self.diagnostics]
        for array in reversed(arrays):
            for status in array.status:
                # Names are fully qualified ("/policy_node: ..."); a bare prefix matches too.
                if status.name.lstrip("/").startswith(status_prefix.lstrip("/")):
                    values = {kv.key: kv.value for kv in status.values}
                    values["_message"] = status.message
                    values["_level"] = str(status.level[0])
                    values["_hardware_id"] = status.hardware_id
                    return values
        return {}

    # -- services ----------------------------------------------------------------------------

    def _call(self, srv_type, name: str, request, timeout: float = 10.0):
        client = self.node.create_client(srv_type, name)
        try:
            if not client.wait_for_service(timeout_sec=timeout):
                raise TimeoutError(f"service {name} not available")
            future = client.call_async(request)
            deadline = time.monotonic() + timeout
            while not future.done() and time.monotonic() < deadline:
                time.sleep(0.01)
            if not future.done():
                raise TimeoutError(f"service {name} did not answer")
            return future.result()
        finally:
            self.node.destroy_client(client)

    def spinning(self, node: str, timeout: float = 30.0) -> bool:
        """True once ``node`` answers its ``list_parameters`` service: its executor spins."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self._call(ListParameters, f"/{node}/list_parameters", ListParameters.Request())
                return True
            except TimeoutError:
                time.sleep(0.1)
        return False

    def reset_e_stop(self, node: str = "command_streamer") -> Trigger.Response:
        return self._call(Trigger, f"/{node}/reset_e_stop", Trigger.Request())

    def lifecycle(self, node: str, transition: int) -> bool:
        request = ChangeState.Request()
        request.transition.id = transition
        return self._call(ChangeState, f"/{node}/change_state", request).success

    def lifecycle_state(self, node: str) -> str:
        return self._call(GetState, f"/{node}/get_state", GetState.Request()).current_state.label

    def wait_active(self, node: str, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.lifecycle_state(node) == "active":
                    return True
            except TimeoutError:
                pass
            time.sleep(0.1)
        return False


DEACTIVATE = Transition.TRANSITION_DEACTIVATE
ACTIVATE = Transition.TRANSITION_ACTIVATE


def make_checkpoint(
    out_dir: Path,
    joints: Sequence[str] = JOINTS,
    cameras: dict[str, tuple[int, int]] | None = None,
    fps: float = 20.0,
    chunk_size: int = 20,
    policy_type: str = "mlp",
    limits: dict = LIMITS,
    **overrides,
) -> Path:
    """A tiny random checkpoint (tiny CNN backbone) written with the policies API."""
    from robot_policy_ros.checkpoint.weights import save_checkpoint
    from robot_policy_ros.core.joint_limits import JointLimits
    from robot_policy_ros.policies.factory import make_policy

    lower, upper, vmax = lower_upper(limits)
    spec = JointLimits(names=tuple(joints), lower=lower, upper=upper, max_velocity=vmax)
    if policy_type == "mlp":
        overrides = {"vision_backbone": "tiny_cnn", "hidden_dims": (32,), **overrides}
    if policy_type != "diffusion":  # diffusion's chunk is its n_action_steps
        overrides = {"chunk_size": chunk_size, **overrides}
    policy = make_policy(
        policy_type,
        list(joints),
        cameras or {"front": (32, 32)},
        fps,
        limits=spec,
        seed=0,
        **overrides,
    )
    return save_checkpoint(policy, out_dir)


def poison_checkpoint(checkpoint: Path, value: float) -> Path:
    """Overwrite every float weight with ``value`` (re-recording the weights' sha256).

    ``value`` = nan gives weights the loader must refuse; a huge finite value (3e38) gives a
    loadable network whose outputs overflow to inf/nan.
    """
    import hashlib
    import json

    import torch
    from safetensors.torch import load_file, save_file

    weights = checkpoint / "model.safetensors"
    tensors = load_file(str(weights))
    for name, tensor in tensors.items():
        if tensor.is_floating_point():
            tensors[name] = torch.full_like(tensor, value)
    save_file(tensors, str(weights), metadata={"format": "pt"})
    config_path = checkpoint / "config.json"
    config = json.loads(config_path.read_text())
    config["weights"]["sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    config_path.write_text(json.dumps(config))
    return checkpoint
