"""An imported LeRobot checkpoint runs on policy_node + command_streamer like a native one.

Real nodes in their own processes against the in-process fake robot (as in
test_runtime_integration): the first chunk policy_node publishes, through the ROS image and
joint-state path, must equal ``robot-policy predict`` for the observation the robot sent
(predict itself is checked against LeRobot's recorded actions in test_lerobot_import), and
the streamer's commands stay finite and inside the limits.
"""

from __future__ import annotations

import numpy as np
import pytest
import rclpy
from ros_test_utils import NodeProcess, lease_test_domain, ros_env
from runtime_fakes import FakeRobot
from test_lerobot_import import lerobot_folder

from robot_policy_ros import cli

pytestmark = pytest.mark.ros

JOINTS = [f"j{i}" for i in range(6)]
START = [0.1, -0.2, 0.3, 0.0, 0.25, -0.1]
LIMIT = 1.5


def test_imported_act_on_policy_node_matches_offline_predict(tmp_path, capsys) -> None:
    import json

    from robot_policy_ros.checkpoint.weights import load_checkpoint
    from robot_policy_ros.cli.predict import predict_arrays

    src = lerobot_folder("act_one_camera", tmp_path)
    limits = tmp_path / "limits.json"
    limits.write_text(
        json.dumps({"lower": [-LIMIT] * 6, "upper": [LIMIT] * 6, "max_velocity": [2.0] * 6})
    )
    ckpt = tmp_path / "ckpt"
    args = ["import-lerobot", str(src), "--out", str(ckpt), "--joints", ",".join(JOINTS)]
    rc = cli.main([*args, "--fps", "30", "--units", "deg", "--limits", str(limits)])
    assert rc == 0, capsys.readouterr().err

    # The fake robot's camera frame: its generator's first draw (see FakeRobot).
    frame = np.random.default_rng(1).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    policy = load_checkpoint(ckpt)
    expected = predict_arrays(
        policy, {"front": frame[None, None]}, np.array(START, dtype=float)[None, None]
    )[0]

    lease = lease_test_domain()
    env = ros_env(lease.domain_id)
    common = ["-p", f"checkpoint:={ckpt}"]
    node = NodeProcess(
        "robot_policy_ros.nodes.policy_node",
        ros_args=[*common, "-p", "torch_threads:=1", "-r", "front/image_raw:=/arm/front"],
        env=env,
    )
    streamer = NodeProcess(
        "robot_policy_ros.nodes.command_streamer",
        ros_args=[*common, "-p", "ramp_in_s:=0.2"],
        env=env,
    )
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=lease.domain_id)
    robot = FakeRobot(
        context,
        joint_names=JOINTS,
        positions=START,
        extra_joints=(),
        cameras={"front": ("/arm/front", (64, 64), "rgb8")},
    )
    robot.__enter__()
    try:
        out = lambda: f"{node.output()}\n--- streamer\n{streamer.output()}"  # noqa: E731
        assert robot.wait_active("policy_node", 90.0), out()
        assert robot.wait_active("command_streamer", 30.0), out()
        assert robot.wait_for(lambda: len(robot.chunks) >= 1, 60.0), out()
        assert robot.wait_for(lambda: len(robot.commands) >= 20, 30.0), out()
        _, chunk = robot.chunks[0]
        assert list(chunk.joint_names) == JOINTS
        got = np.array([p.positions for p in chunk.points])
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() < 1e-4
        commands = np.array([v for _, v in robot.commands])
        assert np.isfinite(commands).all()
        assert (np.abs(commands) <= LIMIT + 1e-9).all()
    finally:
        robot.__exit__(None, None, None)
        node.stop()
        streamer.stop()
        context.try_shutdown()
        lease.release()
