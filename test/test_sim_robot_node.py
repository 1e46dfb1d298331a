"""sim_robot node over real DDS: joint states, camera, command interfaces, timeout, reset."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

pytest.importorskip("rclpy")

from builtin_interfaces.msg import Duration
from geometry_msgs.msg import PointStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from ros_test_utils import NodeProcess, spin_until
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from robot_policy_ros.nodes.episode_client import EpisodeClient
from robot_policy_ros.sim.arm import load_arm_config
from robot_policy_ros.sim.task import sample_target

pytestmark = pytest.mark.ros

MODULE = "robot_policy_ros.nodes.sim_robot"
CFG = load_arm_config()
NAMES = list(CFG.joint_names)
SMALL = ("-p", "image_width:=64", "-p", "image_height:=48")
LATCHED = QoSProfile(
    depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE
)


def _sec(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


class SimProbe:
    """An in-process node that watches and drives one sim_robot (in namespace ``ns``)."""

    def __init__(self, context, ns: str = "", cameras: tuple[str, ...] = ()) -> None:
        self.node = Node("sim_probe", context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        p = f"{ns}/" if ns else "/"
        self.joint_states: list[tuple[float, float, list[str], np.ndarray, np.ndarray]] = []
        self.images: dict[str, list[Image]] = {c: [] for c in cameras}
        self.episodes: list[dict] = []
        self.targets: list[np.ndarray] = []
        self.commands: list[np.ndarray] = []
        n = self.node
        n.create_subscription(JointState, p + "joint_states", self._on_js, 50)
        for cam in cameras:
            n.create_subscription(
                Image, f"{p}{cam}/image_raw", lambda m, c=cam: self.images[c].append(m), 10
            )
        n.create_subscription(
            PointStamped, p + "sim_robot/target",
            lambda m: self.targets.append(np.array([m.point.x, m.point.y, m.point.z])), LATCHED,
        )  # fmt: skip
        n.create_subscription(
            Float64MultiArray, p + "forward_position_controller/commands",
            lambda m: self.commands.append(np.array(m.data)), 10,
        )  # fmt: skip
        self.position_pub = n.create_publisher(
            Float64MultiArray, p + "forward_position_controller/commands", 10
        )
        self.trajectory_pub = n.create_publisher(
            JointTrajectory, p + "joint_trajectory_controller/joint_trajectory", 10
        )
        self.clock_pub = n.create_publisher(Clock, "/clock", 10)
        # The one sim-episode client (as the demo and the benchmarks use it).
        self.episode_client = EpisodeClient(
            n, p + "sim_robot", executor=self.executor, on_episode=self.episodes.append
        )

    def _on_js(self, msg: JointState) -> None:
        self.joint_states.append(
            (time.monotonic(), _sec(msg.header.stamp), list(msg.name),
             np.array(msg.position), np.array(msg.velocity))
        )  # fmt: skip

    def spin_until(self, predicate, timeout: float) -> bool:
        return spin_until(self.executor, predicate, timeout)

    def spin_for(self, seconds: float) -> None:
        spin_until(self.executor, lambda: False, seconds)

    def q(self) -> np.ndarray:
        return self.joint_states[-1][3]

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Joint states flowing and both command subscriptions discovered."""
        assert self.spin_until(
            lambda: (
                len(self.joint_states) > 2
                and self.position_pub.get_subscription_count() > 0
                and self.trajectory_pub.get_subscription_count() > 0
            ),
            timeout,
        ), "sim_robot did not come up"

    def send_position(self, values) -> None:
        self.position_pub.publish(Float64MultiArray(data=[float(v) for v in values]))

    def send_trajectory(self, names, points, stamp=None) -> None:
        msg = JointTrajectory()
        msg.joint_names = list(names)
        if stamp is not None:
            msg.header.stamp = stamp
        for t, pos in points:
            pt = JointTrajectoryPoint()
            pt.positions = [float(v) for v in pos]
            pt.time_from_start = Duration(sec=int(t), nanosec=round((t % 1) * 1e9))
            msg.points.append(pt)
        self.trajectory_pub.publish(msg)

    def reset(self) -> dict:
        return self.episode_client.reset(timeout=10.0)


def test_joint_states_at_configured_rate_with_arm_joint_names(start_node, rclpy_context):
    proc = start_node(MODULE, *SMALL, "-p", "joint_state_rate_hz:=50.0")
    probe = SimProbe(rclpy_context)
    probe.wait_ready()
    probe.joint_states.clear()
    probe.spin_for(2.0)
    msgs = probe.joint_states
    assert all(m[2] == NAMES for m in msgs)
    assert all(len(m[3]) == 4 and len(m[4]) == 4 for m in msgs)
    stamps = np.array([m[1] for m in msgs])
    assert np.all(np.diff(stamps) > 0)
    # Median period from the stamps (robust to a busy machine), count rate loosely.
    assert np.median(np.diff(stamps)) == pytest.approx(0.02, rel=0.2)
    assert 35 <= len(msgs) / 2.0 <= 65, proc.output()
    np.testing.assert_allclose(probe.q(), CFG.home, atol=1e-9)  # holds home, no command


def test_camera_images_have_declared_size_encoding_and_increasing_stamps(start_node, rclpy_context):
    start_node(
        MODULE, "-p", "image_width:=80", "-p", "image_height:=60", "-p", "camera_name:=cam1",
        "-p", "second_camera_name:=top", "-p", "camera_rate_hz:=20.0",
    )  # fmt: skip
    probe = SimProbe(rclpy_context, cameras=("cam1", "top"))
    probe.wait_ready()
    assert probe.spin_until(lambda: all(len(v) >= 12 for v in probe.images.values()), 10.0)
    now = probe.node.get_clock().now().nanoseconds * 1e-9
    for frames in probe.images.values():
        for m in frames:
            assert (m.width, m.height, m.encoding, m.step) == (80, 60, "rgb8", 240)
            assert len(m.data) == 80 * 60 * 3
        stamps = np.array([_sec(m.header.stamp) for m in frames])
        assert np.all(np.diff(stamps) > 0)
        assert abs(stamps[-1] - now) < 1.0  # stamped at render time, on the node clock
        assert np.median(np.diff(stamps)) == pytest.approx(0.05, rel=0.25)
    # The two cameras see different views of the same scene.
    a = np.frombuffer(bytes(probe.images["cam1"][-1].data), np.uint8)
    b = np.frombuffer(bytes(probe.images["top"][-1].data), np.uint8)
    assert not np.array_equal(a, b)


def test_position_command_moves_arm_within_limits(start_node, rclpy_context):
    start_node(MODULE, *SMALL)
    probe = SimProbe(rclpy_context)
    probe.wait_ready()
    goal = CFG.home.copy()
    goal[0] = 1.2
    goal[1] = CFG.upper[1] + 1.0  # beyond the limit: must stop at it
    start = len(probe.joint_states)

    def arrived() -> bool:
        probe.send_position(goal)
        return abs(probe.q()[0] - 1.2) < 1e-3 and abs(probe.q()[1] - CFG.upper[1]) < 1e-3

    assert probe.spin_until(arrived, 8.0), probe.q()
    qs = np.array([m[3] for m in probe.joint_states[start:]])
    vs = np.array([m[4] for m in probe.joint_states[start:]])
    ts = np.array([m[1] for m in probe.joint_states[start:]])
    assert np.all(qs <= CFG.upper + 1e-12) and np.all(qs >= CFG.lower - 1e-12)
    assert np.all(np.abs(vs) <= CFG.max_velocity + 1e-9)
    # Under load two timer callbacks can fall in one physics step: the same state twice,
    # same stamp (no motion in zero time); speeds are between distinct stamps.
    distinct = np.concatenate([[True], np.diff(ts) > 0])
    qs, ts = qs[distinct], ts[distinct]
    speed = np.abs(np.diff(qs, axis=0)) / np.diff(ts)[:, None]
    assert np.all(speed <= CFG.max_velocity * 1.05)
    assert np.max(np.abs(vs[:, 0])) > 1.0  # it really moved at speed


def test_joint_trajectory_followed_by_name_in_any_order(start_node, rclpy_context):
    start_node(MODULE, *SMALL)
    probe = SimProbe(rclpy_context)
    probe.wait_ready()
    mid = CFG.home + np.array([0.3, 0.1, -0.1, 0.1])
    end = CFG.home + np.array([0.6, 0.2, -0.2, 0.2])
    names = NAMES[::-1]
    probe.send_trajectory(names, [(0.5, mid[::-1]), (1.0, end[::-1])])  # zero stamp: now
    sent = time.monotonic()
    assert probe.spin_until(lambda: np.allclose(probe.q(), end, atol=2e-3), 5.0), probe.q()
    # It took about the trajectory's duration (not an instant jump).
    assert time.monotonic() - sent > 0.8
    # And it followed the path: somewhere near the midpoint on the way.
    qs = np.array([m[3] for m in probe.joint_states])
    assert np.min(np.max(np.abs(qs - mid), axis=1)) < 0.05


def test_bad_commands_rejected_and_arm_holds(start_node, rclpy_context):
    proc = start_node(MODULE, *SMALL)
    probe = SimProbe(rclpy_context)
    probe.wait_ready()
    q0 = probe.q().copy()
    probe.send_position([0.5, 0.5, 0.5])  # wrong length
    probe.send_position([0.5, math.nan, 0.5, 0.5])  # non-finite
    probe.send_position([0.5, 0.5, math.inf, 0.5])
    probe.send_trajectory([*NAMES[:3], "gripper"], [(0.5, [0.5] * 4)])  # unknown joint
    probe.send_trajectory(NAMES[:3], [(0.5, [0.5] * 3)])  # missing joint
    probe.send_trajectory(NAMES, [(0.5, [0.5, 0.5, math.nan, 0.5])])
    probe.spin_for(1.0)
    np.testing.assert_allclose(probe.q(), q0, atol=1e-9)
    assert proc.wait_for_output("rejected", timeout=5.0)
    assert "expected 4 positions" in proc.output()


def test_no_command_for_timeout_holds_position(start_node, rclpy_context):
    start_node(MODULE, *SMALL, "-p", "command_timeout_s:=0.3")
    probe = SimProbe(rclpy_context)
    probe.wait_ready()
    goal = CFG.home.copy()
    goal[0] = 1.9  # needs > 1 s of motion
    probe.send_position(goal)
    assert probe.spin_until(lambda: probe.q()[0] > 0.05, 3.0)
    probe.spin_for(1.5)
    held = probe.q().copy()
    probe.spin_for(0.5)
    np.testing.assert_allclose(probe.q(), held, atol=1e-9)
    np.testing.assert_allclose(probe.joint_states[-1][4], 0.0, atol=1e-9)
    assert 0.1 < held[0] < 1.0  # stopped well short of the stale goal


def test_reset_with_same_seed_reproduces_targets(start_node, rclpy_context):
    start_node(MODULE, *SMALL, "-p", "seed:=7", "-r", "__ns:=/a")
    start_node(MODULE, *SMALL, "-p", "seed:=7", "-r", "__ns:=/b")
    a, b = SimProbe(rclpy_context, "/a"), SimProbe(rclpy_context, "/b")
    for probe in (a, b):
        probe.wait_ready()
        assert probe.spin_until(lambda p=probe: len(p.targets) == 1 and p.episodes, 5.0)
        assert probe.episodes[-1]["index"] == 0 and probe.episodes[-1]["seed"] == 7
        for k in (1, 2, 3):
            assert probe.reset()["index"] == k
            assert probe.spin_until(
                lambda p=probe, k=k: len(p.targets) == k + 1 and p.episodes[-1]["index"] == k,
                5.0,
            )
            assert not probe.episodes[-1]["done"] and not probe.episodes[-1]["success"]
    np.testing.assert_array_equal(a.targets, b.targets)
    expected = [sample_target(7, k, CFG.workspace) for k in range(4)]
    np.testing.assert_allclose(a.targets, expected)
    assert len({tuple(t) for t in a.targets}) == 4


def test_bad_config_stops_with_clear_error(node_env, tmp_path):
    # NodeProcess directly (not start_node): these exit on their own with code 2.
    bad = tmp_path / "arm.yaml"
    bad.write_text("joints: []\n")
    procs = [
        NodeProcess(MODULE, ros_args=("-p", f"arm_config:={bad}"), env=node_env),
        NodeProcess(MODULE, ros_args=("-p", "camera_view:=ceiling"), env=node_env),
    ]
    try:
        for p in procs:
            p.proc.wait(timeout=20)
        outputs = [p.output() for p in procs]
    finally:
        for p in procs:
            p.stop()
    assert [p.proc.returncode for p in procs] == [2, 2], outputs
    assert "at least 3 joints" in outputs[0]
    assert "camera_view" in outputs[1] and "'front'" in outputs[1]


def test_runs_on_sim_time_from_clock(start_node, rclpy_context):
    start_node(MODULE, *SMALL, "-p", "use_sim_time:=true")
    probe = SimProbe(rclpy_context)
    t_sim = 1000.0

    def tick() -> bool:
        nonlocal t_sim
        t_sim += 0.01
        probe.clock_pub.publish(Clock(clock=_time(t_sim)))
        return len(probe.joint_states) > 3 and probe.position_pub.get_subscription_count() > 0

    assert probe.spin_until(tick, 20.0)
    assert all(1000.0 <= m[1] <= t_sim for m in probe.joint_states)
    goal = CFG.home.copy()
    goal[0] = 0.5
    # Freeze the clock: the arm must not move however long we wait.
    probe.send_position(goal)
    probe.spin_for(0.5)
    q_frozen = probe.q().copy()
    assert abs(q_frozen[0]) < 1e-9
    start = t_sim

    def advance() -> bool:
        tick()
        probe.send_position(goal)
        return abs(probe.q()[0] - 0.5) < 1e-3

    assert probe.spin_until(advance, 15.0)
    assert t_sim - start > 0.4  # 0.5 rad needs at least ~0.4 s of sim time


def _time(t: float):
    from builtin_interfaces.msg import Time

    sec = math.floor(t)
    return Time(sec=sec, nanosec=round((t - sec) * 1e9))
