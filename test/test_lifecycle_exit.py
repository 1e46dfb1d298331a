"""How the node processes end: the lifecycle ``shutdown`` transition, SIGINT and SIGTERM.

Each test runs a real node process (the lifecycle ones: command_streamer with only a limits
file, policy_node with a tiny checkpoint; for the signals, every node executable of
setup.py as installed) against the in-process fake robot, ends it, and checks the exit
code and that its output has no traceback and no "context is invalid" error (a thread
meeting a shut-down ROS context).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from lifecycle_msgs.msg import Transition
from runtime_fakes import JOINTS, FakeRobot, make_checkpoint, write_limits

from robot_policy_ros.processes import NodeProcess

pytestmark = pytest.mark.ros

STREAMER = "robot_policy_ros.nodes.command_streamer"
POLICY = "robot_policy_ros.nodes.policy_node"
CAMERAS = {"front": ("front/image_raw", (32, 32), "rgb8")}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "mlp", fps=20.0, chunk_size=20)


def _start(start_node, tmp_path, which: str, checkpoint=None, *params: str):
    if which == "command_streamer":
        path = write_limits(tmp_path / "limits.yaml")
        args = ["-p", f"limits_file:={path}"]
        module = STREAMER
    else:
        args = ["-p", f"checkpoint:={checkpoint}", "-p", "torch_threads:=1"]
        module = POLICY
    for p in params:
        args += ["-p", p]
    return start_node(module, *args)


def _exit_code(proc, timeout: float = 20.0) -> int:
    try:
        return proc.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{proc.module} still running {timeout:g} s later\n{proc.output()}")


def _assert_clean(proc) -> None:
    out = proc.output()
    assert "Traceback" not in out, out
    assert "context is invalid" not in out and "context is not valid" not in out, out


def _running(robot: FakeRobot, which: str) -> bool:
    """The node's thread is at work: commands (streamer) or chunks (policy) flow."""
    if which == "command_streamer":
        return robot.wait_for(lambda: len(robot.commands) >= 10, 30.0)
    return robot.wait_for(lambda: len(robot.chunks) >= 2, 90.0)


@pytest.mark.parametrize(
    ("which", "from_state"),
    [
        ("command_streamer", "unconfigured"),
        ("command_streamer", "inactive"),
        ("command_streamer", "active"),
        ("policy_node", "active"),
    ],
)
def test_lifecycle_shutdown_ends_process(
    start_node, tmp_path, rclpy_context, checkpoint, which, from_state
):
    autostart = "true" if from_state != "unconfigured" else "false"
    proc = _start(start_node, tmp_path, which, checkpoint, f"autostart:={autostart}")
    with FakeRobot(rclpy_context, positions=[0.1, -0.2, 0.05], cameras=CAMERAS) as robot:
        if from_state == "unconfigured":
            assert robot.wait_for(lambda: _state(robot, which) == "unconfigured", 60.0)
            transition = Transition.TRANSITION_UNCONFIGURED_SHUTDOWN
        else:
            assert robot.wait_active(which, 90.0), proc.output()
            assert _running(robot, which), proc.output()
            transition = Transition.TRANSITION_ACTIVE_SHUTDOWN
            if from_state == "inactive":
                assert robot.lifecycle(which, Transition.TRANSITION_DEACTIVATE)
                transition = Transition.TRANSITION_INACTIVE_SHUTDOWN
        assert robot.lifecycle(which, transition), proc.output()
        code = _exit_code(proc)
    assert code == 0, proc.output()
    assert "shut down (finalized)" in proc.output()
    _assert_clean(proc)


def _state(robot: FakeRobot, node: str) -> str:
    try:
        return robot.lifecycle_state(node)
    except TimeoutError:
        return ""


# Every node executable of setup.py's console_scripts: the ROS arguments it needs to run
# (given a tmp folder and a tiny checkpoint), and the node names it brings up.
def _executable_ros_args(which: str, tmp_path: Path, checkpoint: Path) -> list[str]:
    if which == "command_streamer":
        return ["-p", f"limits_file:={write_limits(tmp_path / 'limits.yaml')}"]
    if which in ("policy_node", "policy_stack"):  # the stack's streamer: limits from it
        return ["-p", f"checkpoint:={checkpoint}", "-p", "torch_threads:=1"]
    if which == "camera_node":
        video = tmp_path / "clip.avi"
        writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (32, 24))
        for k in range(5):
            writer.write(np.full((24, 32, 3), 40 * k, dtype=np.uint8))
        writer.release()
        return ["-p", f"source:={video}", "-p", "rate_hz:=10.0"]
    if which == "sim_robot":
        return ["-p", "image_width:=64", "-p", "image_height:=48"]
    if which == "bag_recorder":
        return ["-p", f"output_dir:={tmp_path / 'bags'}"]
    return []  # scripted_expert, episode_driver (episodes:=0: until stopped)


EXECUTABLES = {
    "policy_node": ["policy_node"],
    "command_streamer": ["command_streamer"],
    "policy_stack": ["policy_node", "command_streamer"],
    "camera_node": ["camera_node"],
    "sim_robot": ["sim_robot"],
    "scripted_expert": ["scripted_expert"],
    "bag_recorder": ["bag_recorder"],
    "episode_driver": ["episode_driver"],
}


def _console_script(name: str) -> str:
    """The installed console script (next to this interpreter, as ``pip install`` puts it)."""
    path = Path(sys.executable).parent / name
    if not path.is_file():
        pytest.fail(f"no console script {path}: run `make venv` to install the package")
    return str(path)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("which", list(EXECUTABLES))
def test_executable_exits_zero_on_signal(
    node_env, tmp_path, rclpy_context, checkpoint, which, signum
):
    """The real executable, spinning (its nodes answer services; the runtime nodes at work),
    ends with exit code 0 and no traceback on SIGINT (Ctrl-C) and SIGTERM."""
    ros_args = _executable_ros_args(which, tmp_path, checkpoint)
    proc = NodeProcess(which, ros_args=ros_args, env=node_env, executable=_console_script(which))
    try:
        with FakeRobot(rclpy_context, positions=[0.1, -0.2, 0.05], cameras=CAMERAS) as robot:
            for node in EXECUTABLES[which]:
                assert robot.spinning(node, 90.0), proc.output()
            for node in EXECUTABLES[which]:
                if node in ("command_streamer", "policy_node"):
                    assert _running(robot, node), proc.output()
            if "command_streamer" in EXECUTABLES[which]:  # stopped in the middle of a motion
                robot.publish_chunk(np.tile([0.3, -0.4, 0.1], (100, 1)), JOINTS, 20.0)
            proc.proc.send_signal(signum)
            code = _exit_code(proc)
    finally:
        proc.stop()
    assert code == 0, proc.output()
    _assert_clean(proc)
