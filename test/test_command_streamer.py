"""command_streamer in its own process against an in-process fake robot.

Chunks come from the test (no policy, no torch), so every case controls exactly what the
streamer is asked to do. Joint order and limits come from a limits_file.
"""

from __future__ import annotations

import subprocess
import time

import numpy as np
import pytest
from ros_test_utils import NodeProcess
from runtime_fakes import ACTIVATE, DEACTIVATE, JOINTS, FakeRobot, lower_upper, write_limits

pytestmark = pytest.mark.ros

STREAMER = "robot_policy_ros.nodes.command_streamer"
RATE = 50.0


def _start(start_node, tmp_path, *params: str):
    limits = write_limits(tmp_path / "limits.yaml")
    args = ["-p", f"limits_file:={limits}", "-p", "ramp_in_s:=0.2"]
    for p in params:
        args += ["-p", p]
    return start_node(STREAMER, *args)


def _ramp_chunk(start: np.ndarray, velocity: np.ndarray, seconds: float, fps: float = 20.0):
    """A chunk moving linearly from ``start`` at ``velocity`` (per joint) for ``seconds``."""
    steps = np.arange(int(seconds * fps) + 1)[:, None] / fps
    return start[None, :] + steps * velocity[None, :]


def _moved(values: np.ndarray, by: float = 0.0) -> bool:
    """True if the commands in ``values`` span more than ``by`` on some joint."""
    return len(values) > 1 and float(np.ptp(values, axis=0).max()) > by


@pytest.fixture
def streamer_and_robot(start_node, tmp_path, rclpy_context):
    proc = _start(start_node, tmp_path)
    with FakeRobot(rclpy_context, positions=[0.1, -0.2, 0.05]) as robot:
        assert robot.wait_active("command_streamer"), proc.output()
        yield proc, robot


def test_publishes_nothing_before_joint_state_then_starts_at_measured(
    start_node, tmp_path, rclpy_context
):
    proc = _start(start_node, tmp_path)
    with FakeRobot(rclpy_context, positions=[0.3, -0.4, 0.2]) as robot:
        robot.publish_joints = False
        assert robot.wait_active("command_streamer"), proc.output()
        time.sleep(1.0)
        assert robot.command_values().size == 0, "commands before any joint state"
        robot.publish_joints = True
        assert robot.wait_for(lambda: len(robot.commands) >= 10, 10.0), proc.output()
        first = robot.command_values()[0]
        np.testing.assert_allclose(first, [0.3, -0.4, 0.2], atol=1e-9)


def test_chunk_names_reordered_and_commands_at_rate(streamer_and_robot):
    proc, robot = streamer_and_robot
    assert robot.wait_for(lambda: len(robot.commands) >= 5, 10.0), proc.output()
    # The chunk lists joints in a different order, plus one the streamer does not drive.
    names = ["wrist", "gripper", "shoulder", "elbow"]
    target = {"shoulder": 0.2, "elbow": -0.3, "wrist": 0.1}
    chunk = np.array([[target["wrist"], 9.0, target["shoulder"], target["elbow"]]] * 60)
    robot.publish_chunk(chunk, names, fps=20.0)
    expected = [target[j] for j in JOINTS]
    assert robot.wait_for(
        lambda: np.allclose(robot.command_values()[-1], expected, atol=1e-6), 5.0
    ), robot.command_values()[-1]
    t0 = time.monotonic()
    time.sleep(2.0)
    times = robot.command_times(since=t0)
    rate = (len(times) - 1) / (times[-1] - times[0])
    assert rate == pytest.approx(RATE, rel=0.05)


def test_commands_within_limits(streamer_and_robot):
    _proc, robot = streamer_and_robot
    lower, upper, vmax = lower_upper()
    # Targets far outside the limits, jumping from one side to the other after 2 s.
    chunk = np.array([[5.0, -5.0, 5.0]] * 20 + [[-5.0, 5.0, -5.0]] * 20)
    t0 = time.monotonic()
    robot.publish_chunk(chunk, JOINTS, fps=10.0)
    time.sleep(3.0)
    values = robot.command_values(since=t0)
    assert len(values) > 100
    assert np.all(values >= lower - 1e-12) and np.all(values <= upper + 1e-12)
    steps = np.abs(np.diff(values, axis=0))
    # At most max_velocity * dt per tick (dt may stretch to two periods after a late tick).
    assert np.all(steps <= vmax * 2.0 / RATE + 1e-9), steps.max(axis=0)
    assert np.isclose(values[:, 0], upper[0]).any() and np.isclose(values[:, 2], lower[2]).any()


def test_non_finite_chunk_rejected_and_counted(streamer_and_robot):
    proc, robot = streamer_and_robot
    chunk = np.zeros((10, 3))
    chunk[4, 1] = np.nan
    robot.publish_chunk(chunk, JOINTS, fps=10.0)
    assert proc.wait_for_output("non-finite", 5.0), proc.output()
    assert robot.wait_for(
        lambda: (
            robot.diagnostic_values("command_streamer").get("chunks_rejected_non_finite") == "1"
        ),
        5.0,
    )
    assert np.isfinite(robot.command_values()).all()


def test_chunk_missing_joint_rejected_with_name(streamer_and_robot):
    proc, robot = streamer_and_robot
    robot.publish_chunk(np.zeros((10, 2)), ["shoulder", "wrist"], fps=10.0)
    assert proc.wait_for_output("lacks joint(s) ['elbow']", 5.0), proc.output()


def test_old_and_future_chunks_dropped(streamer_and_robot):
    proc, robot = streamer_and_robot
    start = np.array([0.1, -0.2, 0.05])
    robot.publish_chunk(
        _ramp_chunk(start + 0.3, np.zeros(3), 1.0), JOINTS, 20.0, stamp=robot.now() - 5.0
    )
    robot.publish_chunk(
        _ramp_chunk(start + 0.3, np.zeros(3), 1.0), JOINTS, 20.0, stamp=robot.now() + 5.0
    )
    assert proc.wait_for_output("ended", 5.0) and proc.wait_for_output("in the future", 5.0)
    time.sleep(0.5)
    np.testing.assert_allclose(robot.command_values()[-1], start, atol=1e-9)


def test_underrun_holds_last_command_without_extrapolating(streamer_and_robot):
    _proc, robot = streamer_and_robot
    start = np.array([0.1, -0.2, 0.05])
    velocity = np.array([0.2, -0.2, 0.1])
    robot.publish_chunk(_ramp_chunk(start, velocity, 0.5), JOINTS, 20.0)
    time.sleep(1.5)  # the chunk ended 1 s ago
    t0 = time.monotonic()
    time.sleep(0.5)
    held = robot.command_values(since=t0)
    assert len(held) > 10
    assert np.ptp(held, axis=0).max() == 0.0, "the command moved without an action"
    # It stopped where the chunk ended (the ramp-in may leave it slightly behind), not beyond.
    end = start + 0.5 * velocity
    assert np.all(np.abs(held[-1] - start) <= np.abs(end - start) + 1e-9)
    diag = robot.diagnostic_values("command_streamer")
    assert robot.wait_for(
        lambda: int(robot.diagnostic_values("command_streamer").get("underrun_events", 0)) >= 1,
        3.0,
    ), diag


def test_holds_when_joint_states_stop(streamer_and_robot):
    _proc, robot = streamer_and_robot
    start = np.array([0.1, -0.2, 0.05])
    robot.publish_chunk(_ramp_chunk(start, np.array([0.1, 0.1, 0.1]), 3.0), JOINTS, 20.0)
    time.sleep(0.5)
    robot.publish_joints = False
    time.sleep(0.5 + 0.3)  # joint_state_timeout_s 0.5 + margin
    t0 = time.monotonic()
    time.sleep(0.5)
    held = robot.command_values(since=t0)
    assert len(held) > 10 and np.ptp(held, axis=0).max() == 0.0
    assert robot.wait_for(
        lambda: robot.diagnostic_values("command_streamer").get("_message") == "joint_states_stale",
        3.0,
    )
    robot.publish_joints = True
    t1 = time.monotonic()
    assert robot.wait_for(lambda: _moved(robot.command_values(since=t1)), 3.0)


def test_e_stop_halts_within_one_tick_and_latches(streamer_and_robot):
    proc, robot = streamer_and_robot
    start = np.array([0.1, -0.2, 0.05])
    velocity = np.array([0.2, 0.1, 0.05])
    robot.publish_chunk(_ramp_chunk(start, velocity, 6.0), JOINTS, 20.0)
    time.sleep(1.0)  # moving (ramp-in done)
    assert _moved(robot.command_values(since=time.monotonic() - 0.3), 0.01)
    t_stop = time.time()
    robot.e_stop(True)
    time.sleep(0.6)
    # Judged by publish time: every command published later than one tick (plus a generous
    # allowance for delivering e_stop to the streamer) after the stop is the same held value.
    allowance = 1.0 / RATE + 0.03
    after = robot.commands_published(after=t_stop + allowance)
    assert len(after) >= 20, "hold behaviour keeps publishing"
    assert np.ptp(after, axis=0).max() == 0.0, after[:4]
    held = after[-1].copy()
    # ... and it is where the arm was commanded at the stop, give or take that one tick.
    before = robot.commands_published(before=t_stop)[-1]
    assert np.all(np.abs(held - before) <= velocity * allowance + 1e-9)
    assert proc.wait_for_output("E-STOP", 2.0)

    # Released input alone does not resume; reset is refused while e_stop is still true.
    assert robot.reset_e_stop().success is False
    robot.e_stop(False)
    time.sleep(0.5)
    np.testing.assert_array_equal(robot.command_values()[-1], held)
    assert robot.diagnostic_values("command_streamer").get("e_stop") == "True"

    # New chunks while stopped are not executed until reset.
    robot.publish_chunk(_ramp_chunk(held, velocity, 4.0), JOINTS, 20.0)
    time.sleep(0.4)
    np.testing.assert_array_equal(robot.command_values()[-1], held)
    response = robot.reset_e_stop()
    assert response.success, response.message
    t_reset = time.monotonic()
    assert robot.wait_for(lambda: _moved(robot.command_values(since=t_reset), 0.01), 3.0)


def test_e_stop_published_before_start_is_seen(start_node, tmp_path, rclpy_context):
    with FakeRobot(rclpy_context, positions=[0.1, -0.2, 0.05]) as robot:
        robot.e_stop(True)  # latched (transient local) before the streamer exists
        proc = _start(start_node, tmp_path, "e_stop_behavior:=silent")
        assert robot.wait_active("command_streamer"), proc.output()
        assert proc.wait_for_output("E-STOP", 10.0), proc.output()
        time.sleep(0.5)
        assert robot.command_values().size == 0  # silent: nothing while stopped


def test_reactivate_replays_nothing_old(streamer_and_robot):
    _proc, robot = streamer_and_robot
    far = np.array([0.9, -1.5, 0.4])
    # A long chunk that still covers the time after re-activation.
    robot.publish_chunk(np.repeat(far[None, :], 200, axis=0), JOINTS, 20.0)
    time.sleep(0.3)
    assert robot.lifecycle("command_streamer", DEACTIVATE)
    time.sleep(0.3)
    with robot.lock:
        resting = robot.positions.copy()  # the robot stopped at the last command
    n_inactive = len(robot.commands)
    time.sleep(0.5)
    assert len(robot.commands) - n_inactive <= 1, "published while inactive"
    t_act = time.monotonic()
    assert robot.lifecycle("command_streamer", ACTIVATE)
    time.sleep(1.5)
    after = robot.command_values(since=t_act)
    assert len(after) > 30
    np.testing.assert_allclose(after[0], resting, atol=1e-9)
    np.testing.assert_allclose(after, np.repeat(resting[None, :], len(after), 0), atol=1e-9)


def _run_to_exit(node_env, *ros_args: str) -> NodeProcess:
    """Start a streamer expected to exit by itself; wait for the exit."""
    proc = NodeProcess(STREAMER, ros_args=ros_args, env=node_env)
    try:
        proc.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.stop()
        raise
    return proc


def test_streamer_refuses_to_activate_without_limits(node_env):
    proc = _run_to_exit(node_env)
    assert proc.proc.returncode == 1
    assert "no joint limits" in proc.output() and "limits_file" in proc.output()


def test_bad_parameter_stops_with_message(node_env, tmp_path):
    limits = f"limits_file:={write_limits(tmp_path / 'limits.yaml')}"
    proc = _run_to_exit(node_env, "-p", limits, "-p", "control_rate_hz:=5000.0")
    assert proc.proc.returncode == 2
    assert "control_rate_hz" in proc.output() and "[1, 1000]" in proc.output()
    proc2 = _run_to_exit(node_env, "-p", limits, "-p", "blending:=blend")
    assert proc2.proc.returncode == 1
    assert "'blending' = 'blend'" in proc2.output() and "temporal_ensemble" in proc2.output()


@pytest.mark.parametrize("interface", ["joint_state", "joint_trajectory"])
def test_command_interfaces_carry_names_and_positions(
    start_node, tmp_path, rclpy_context, interface
):
    from sensor_msgs.msg import JointState
    from trajectory_msgs.msg import JointTrajectory

    msg_type = JointState if interface == "joint_state" else JointTrajectory
    proc = _start(start_node, tmp_path, f"command_interface:={interface}", "control_rate_hz:=100.0")
    with FakeRobot(rclpy_context, positions=[0.1, -0.2, 0.05], command_type=msg_type) as robot:
        assert robot.wait_for(lambda: len(robot.commands) >= 20, 15.0), proc.output()
        _, last = robot.commands[-1]
        if interface == "joint_state":
            names, positions = last
            assert names == JOINTS
            np.testing.assert_allclose(positions, [0.1, -0.2, 0.05], atol=1e-9)
        else:
            assert list(last.joint_names) == JOINTS and len(last.points) == 1
            np.testing.assert_allclose(last.points[0].positions, [0.1, -0.2, 0.05], atol=1e-9)
            tfs = last.points[0].time_from_start
            assert tfs.sec == 0 and tfs.nanosec == 10_000_000  # reach it at the next tick


def test_joint_state_missing_a_joint_is_clear_error(start_node, tmp_path, rclpy_context):
    proc = _start(start_node, tmp_path)
    with FakeRobot(rclpy_context, joint_names=["shoulder", "wrist"], positions=[0.0, 0.0]) as robot:
        assert proc.wait_for_output("joint_states lacks joint(s) ['elbow']", 15.0), proc.output()
        time.sleep(0.5)
        assert robot.commands == []


def test_every_parameter_has_description_type_and_range(rclpy_context):
    from robot_policy_ros.nodes.command_streamer import CommandStreamer
    from robot_policy_ros.nodes.policy_node import PolicyNode

    for cls in (CommandStreamer, PolicyNode):
        node = cls(context=rclpy_context)
        try:
            for spec in node.specs:
                desc = node.describe_parameter(spec.name)
                assert desc.description, spec.name
                assert desc.type != 0, spec.name
                if isinstance(spec.default, float) and spec.min_value is not None:
                    assert desc.floating_point_range, spec.name
                if spec.choices:
                    assert all(c in desc.additional_constraints for c in spec.choices)
        finally:
            node.destroy_node()
