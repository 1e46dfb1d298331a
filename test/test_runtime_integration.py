"""policy_node + command_streamer as separate processes against an in-process fake robot.

The fake robot publishes shuffled joint states with extra joints at 100 Hz and a bgr8
camera on a remapped topic at 30 Hz, and follows the commands it receives. One stack is
shared by the tests that only observe it (each restores what it changes).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pytest
import rclpy
from ros_test_utils import NodeProcess, lease_test_domain, ros_env
from runtime_fakes import (
    JOINTS,
    FakeRobot,
    lower_upper,
    make_checkpoint,
    poison_checkpoint,
    write_limits,
)

pytestmark = pytest.mark.ros

POLICY = "robot_policy_ros.nodes.policy_node"
STREAMER = "robot_policy_ros.nodes.command_streamer"
STACK = "robot_policy_ros.nodes.policy_stack"
START = [0.1, -0.2, 0.05]
MAX_AGE = 0.3
RATE = 50.0
# Narrower than the checkpoint's limits (+-1, ...), so the random policy gets clamped.
NARROW = {
    "joints": [
        {"name": "wrist", "lower": 0.0, "upper": 0.1, "max_velocity": 0.5},
        {"name": "shoulder", "lower": 0.0, "upper": 0.2, "max_velocity": 0.5},
        {"name": "elbow", "lower": -0.3, "upper": -0.1, "max_velocity": 0.5},
    ]
}
CAMERA = {"front": ("/arm/front/color", (48, 48), "bgr8")}  # the checkpoint's aspect ratio
# The controller's joint order is the limits file's: commands go out in it.
CONTROLLER = [j["name"] for j in NARROW["joints"]]
START_BY_NAME = dict(zip(JOINTS, START, strict=True))


@dataclass
class Stack:
    policy: NodeProcess
    streamer: NodeProcess
    robot: FakeRobot
    lease: object = None

    def output(self) -> str:
        return f"--- policy_node\n{self.policy.output()}\n--- streamer\n{self.streamer.output()}"


def _start_stack(
    tmp,
    checkpoint,
    limits_file=None,
    policy_params=(),
    streamer_params=(),
    robot_kwargs=None,
    single_process=False,
):
    lease = lease_test_domain()
    domain = lease.domain_id
    env = ros_env(domain)
    common = ["-p", f"checkpoint:={checkpoint}"]
    policy_args = [
        *common,
        "-p",
        "torch_threads:=1",
        "-p",
        f"max_observation_age_s:={MAX_AGE}",
        "-r",
        "front/image_raw:=/arm/front/color",
    ]
    for p in policy_params:
        policy_args += ["-p", p]
    streamer_args = [*common, "-p", "ramp_in_s:=0.2"]
    if limits_file:
        streamer_args += ["-p", f"limits_file:={limits_file}"]
    for p in streamer_params:
        streamer_args += ["-p", p]
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    if single_process:
        policy = NodeProcess(STACK, ros_args=[*policy_args, *streamer_args[2:]], env=env)
        streamer = policy
    else:
        policy = NodeProcess(POLICY, ros_args=policy_args, env=env)
        streamer = NodeProcess(STREAMER, ros_args=streamer_args, env=env)
    kwargs = dict(robot_kwargs or {})
    names = kwargs.get("joint_names", JOINTS)
    positions = [START_BY_NAME[n] for n in names]
    robot = FakeRobot(context, positions=positions, cameras=CAMERA, **kwargs)
    robot.__enter__()
    stack = Stack(policy, streamer, robot, lease)
    try:
        # Generous: configure builds and checks the ONNX graph (auto backend) on a loaded CPU.
        assert robot.wait_active("policy_node", 120.0), stack.output()
        assert robot.wait_active("command_streamer", 30.0), stack.output()
    except BaseException:
        _stop_stack(stack, context)
        raise
    return stack, context


def _stop_stack(stack: Stack, context) -> None:
    stack.robot.__exit__(None, None, None)
    stack.policy.stop()
    stack.streamer.stop()
    context.try_shutdown()
    stack.lease.release()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stack")
    checkpoint = make_checkpoint(tmp / "mlp")
    limits = write_limits(tmp / "narrow.yaml", NARROW)
    stack, context = _start_stack(tmp, checkpoint, limits, robot_kwargs={"joint_names": CONTROLLER})
    yield stack
    _stop_stack(stack, context)


def _diag(robot: FakeRobot, node: str) -> dict[str, str]:
    return robot.diagnostic_values(node)


def _chunk_stamp(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def test_commands_arrive_at_rate_in_controller_joint_order(stack):
    robot = stack.robot
    assert robot.wait_for(lambda: len(robot.chunks) >= 2, 30.0), stack.output()
    assert robot.wait_for(lambda: len(robot.commands) >= 50, 30.0), stack.output()
    first = robot.command_values()[0]
    # The first command is the measured position in the controller's (limits file's) order,
    # although the checkpoint and its chunks list the joints in another order.
    np.testing.assert_allclose(first, [START_BY_NAME[n] for n in CONTROLLER], atol=1e-9)
    assert list(robot.chunks[-1][1].joint_names) == JOINTS
    t0 = time.monotonic()
    time.sleep(3.0)
    times = robot.command_times(since=t0)
    rate = (len(times) - 1) / (times[-1] - times[0])
    assert rate == pytest.approx(RATE, rel=0.05)
    assert robot.command_values(since=t0).shape[1] == len(JOINTS)


def test_commands_within_limits(stack):
    robot = stack.robot
    # Limits come from limits_file (in another joint order), not from the checkpoint.
    lower, upper, vmax = lower_upper(NARROW)  # commands are in the limits file's order
    t0 = time.monotonic()
    time.sleep(3.0)
    values = robot.command_values(since=t0)
    assert len(values) > 100 and np.isfinite(values).all()
    assert np.all(values >= lower - 1e-12) and np.all(values <= upper + 1e-12)
    assert np.all(np.abs(np.diff(values, axis=0)) <= vmax * 2.0 / RATE + 1e-9)
    assert int(_diag(robot, "command_streamer")["clamped_ticks"]) > 0  # the limits did bite


def test_stale_camera_stops_inference_and_streamer_holds(stack):
    robot = stack.robot
    assert robot.wait_for(lambda: len(robot.chunks) >= 1, 30.0)
    robot.publish_images["front"] = False
    t_stop = time.monotonic()
    try:
        assert stack.policy.wait_for_output("no inference: camera 'front' is", 10.0)
        time.sleep(2.0)  # the buffered actions (0.95 s per chunk) run out
        # No chunk was computed from a frame older than max_observation_age_s.
        late = [t for t, _ in list(robot.chunks) if t > t_stop + MAX_AGE + 0.5]
        assert not late, stack.output()
        t_hold = time.monotonic()
        time.sleep(0.6)
        held = robot.command_values(since=t_hold)
        assert len(held) > 20
        assert np.ptp(held, axis=0).max() == 0.0, "moved without a fresh observation"
        assert "camera 'front'" in _diag(robot, "policy_node").get("stale_reason", "")
        streamer = _diag(robot, "command_streamer")
        assert streamer["_message"].startswith("holding"), streamer
        assert int(streamer["underrun_events"]) >= 1
    finally:
        robot.publish_images["front"] = True


def test_inference_resumes_when_camera_returns(stack):
    robot = stack.robot
    robot.publish_images["front"] = False
    try:
        assert stack.policy.wait_for_output("no inference: camera 'front' is", 10.0)
        time.sleep(1.5)
    finally:
        robot.publish_images["front"] = True
    t_back = time.monotonic()
    assert robot.wait_for(lambda: any(t > t_back for t, _ in list(robot.chunks)), 10.0)
    assert robot.wait_for(
        lambda: len(v := robot.command_values(since=t_back)) > 5 and np.ptp(v, axis=0).max() > 0,
        10.0,
    ), stack.output()


def test_nan_checkpoint_never_publishes_nan(tmp_path):
    checkpoint = poison_checkpoint(make_checkpoint(tmp_path / "overflow"), 3e38)
    stack, context = _start_stack(tmp_path, checkpoint)
    try:
        robot = stack.robot
        assert stack.policy.wait_for_output("non-finite actions: chunk dropped", 30.0)
        assert robot.wait_for(lambda: len(robot.commands) > 50, 10.0), stack.output()
        values = robot.command_values()
        assert np.isfinite(values).all()
        np.testing.assert_allclose(values, np.repeat([START], len(values), 0), atol=1e-12)
        assert robot.chunks == []
    finally:
        _stop_stack(stack, context)


def test_sim_time_drives_stamps_and_commands(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "mlp")
    stack, context = _start_stack(
        tmp_path,
        checkpoint,
        policy_params=["use_sim_time:=true"],
        streamer_params=["use_sim_time:=true"],
        robot_kwargs={"sim_time_start": 1000.0},
    )
    try:
        robot = stack.robot
        assert robot.wait_for(lambda: len(robot.chunks) >= 2, 30.0), stack.output()
        stamp = _chunk_stamp(robot.chunks[-1][1])
        assert abs(stamp - robot.now()) < 5.0  # sim-time stamps, not wall time
        assert robot.wait_for(lambda: len(robot.commands) > 50, 10.0), stack.output()
        assert np.isfinite(robot.command_values()).all()
    finally:
        _stop_stack(stack, context)


def test_single_process_stack_streams_commands(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "mlp")
    stack, context = _start_stack(tmp_path, checkpoint, single_process=True)
    try:
        robot = stack.robot
        assert robot.wait_for(lambda: len(robot.chunks) >= 2, 30.0), stack.output()
        t0 = time.monotonic()
        time.sleep(2.0)
        times = robot.command_times(since=t0)
        assert (len(times) - 1) / (times[-1] - times[0]) == pytest.approx(RATE, rel=0.05)
        assert math.isfinite(float(robot.command_values()[-1][0]))
    finally:
        _stop_stack(stack, context)
