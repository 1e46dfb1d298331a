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
import rclpy.executors
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


def _import(name: str, joints: int, tmp_path, capsys):
    src = lerobot_folder(name, tmp_path)
    ckpt = tmp_path / f"{name}_ckpt"
    args = ["import-lerobot", str(src), "--out", str(ckpt), "--joints", ",".join(JOINTS[:joints])]
    rc = cli.main([*args, "--fps", "30"])
    assert rc == 0, capsys.readouterr().err
    return ckpt


def test_imported_deployment_defaults_apply_unless_a_parameter_is_set(tmp_path, capsys) -> None:
    """LeRobot's n_action_steps / temporal_ensemble_coeff become the nodes' refill threshold
    and blending without any parameter; a parameter given on the command line wins."""
    from robot_policy_ros.core.deployment import BUILT_IN, FROM_CHECKPOINT, FROM_PARAMETER

    ensemble = _import("act_two_cameras", 5, tmp_path, capsys)  # chunk 8, coeff 0.01
    steps = _import("act_one_camera", 6, tmp_path, capsys)  # chunk 10, n_action_steps 5
    lease = lease_test_domain()
    env = ros_env(lease.domain_id)

    def node(module: str, ns: str, ckpt, *extra: str) -> NodeProcess:
        # Namespaced and named apart: diagnostics carry the fully qualified node name.
        ros_args = ["-r", f"__ns:=/{ns}", "-r", f"__node:={module}_{ns}"]
        ros_args += ["-p", f"checkpoint:={ckpt}", *extra]
        return NodeProcess(f"robot_policy_ros.nodes.{module}", ros_args=ros_args, env=env)

    nodes = {
        "a/policy_node_a": node("policy_node", "a", ensemble, "-p", "inference_rate_hz:=5.0"),
        "a/command_streamer_a": node("command_streamer", "a", ensemble),
        "b/policy_node_b": node("policy_node", "b", steps),
        "b/command_streamer_b": node("command_streamer", "b", steps, "-p", "ensemble_k:=0.2"),
    }
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=lease.domain_id)
    robot = FakeRobot(context, joint_names=JOINTS, positions=START, extra_joints=())
    robot.__enter__()
    try:
        out = lambda: "\n".join(f"--- {n}\n{p.output()}" for n, p in nodes.items())  # noqa: E731

        def diag(name: str, key: str) -> tuple[str, str]:
            values = robot.diagnostic_values(name)
            return values.get(key, ""), values.get(f"{key}_source", "")

        def seen(name: str, key: str) -> bool:
            return bool(diag(name, key)[0])

        for name in nodes:
            key = "inference_trigger" if "policy_node" in name else "blending"
            assert robot.wait_for(lambda n=name, k=key: seen(n, k), 90.0), out()

        assert diag("a/policy_node_a", "inference_trigger") == ("rate", FROM_CHECKPOINT)
        assert diag("a/policy_node_a", "inference_rate_hz") == ("5", FROM_PARAMETER)
        assert diag("a/command_streamer_a", "blending") == ("temporal_ensemble", FROM_CHECKPOINT)
        assert diag("a/command_streamer_a", "ensemble_k") == ("0.01", FROM_CHECKPOINT)

        assert diag("b/policy_node_b", "inference_trigger") == ("horizon", FROM_CHECKPOINT)
        threshold, source = diag("b/policy_node_b", "refill_threshold_s")
        assert source == FROM_CHECKPOINT
        assert abs(float(threshold) - 5 / 30) < 1e-4
        assert diag("b/policy_node_b", "inference_rate_hz")[1] == BUILT_IN
        assert diag("b/command_streamer_b", "blending") == ("replace", FROM_CHECKPOINT)
        assert diag("b/command_streamer_b", "ensemble_k") == ("0.2", FROM_PARAMETER)

        log = nodes["b/policy_node_b"].output()
        assert "deployment: inference_trigger = horizon (from checkpoint deployment section)" in log
        assert "refill_threshold_s = 0.166667 (from checkpoint deployment section)" in log
    finally:
        robot.__exit__(None, None, None)
        for p in nodes.values():
            p.stop()
        context.try_shutdown()
        lease.release()


def test_imported_act_drives_the_embedded_sim_like_a_native_checkpoint(tmp_path, capsys) -> None:
    """An imported LeRobot ACT (LeRobot 0.4.4, 4 joints, one camera) deployed exactly as the
    demo deploys a native checkpoint: sim_robot, policy_node and command_streamer in their
    own processes, connected only by topic remapping; the sim follows the commands."""
    import json
    import time

    from rclpy.node import Node
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray

    from robot_policy_ros.sim.arm import load_arm_config

    arm = load_arm_config(None)
    limits = tmp_path / "limits.json"
    limits.write_text(
        json.dumps(
            {
                "lower": arm.lower.tolist(),
                "upper": arm.upper.tolist(),
                "max_velocity": arm.max_velocity.tolist(),
            }
        )
    )
    src = lerobot_folder("act_no_vae_two_decoder_layers", tmp_path)  # front 56x72
    ckpt = tmp_path / "ckpt"
    args = ["import-lerobot", str(src), "--out", str(ckpt), "--joints", ",".join(arm.joint_names)]
    assert cli.main([*args, "--fps", "30", "--limits", str(limits)]) == 0, capsys.readouterr()

    lease = lease_test_domain()
    env = ros_env(lease.domain_id)
    ns = "/lr_arm"
    commands_topic = f"{ns}/forward_position_controller/commands"
    remap = [
        "-r",
        f"joint_states:={ns}/joint_states",
        "-r",
        f"front/image_raw:={ns}/front/image_raw",
    ]
    procs = [
        NodeProcess(
            "robot_policy_ros.nodes.sim_robot",
            ros_args=["-r", f"__ns:={ns}", "-p", "image_width:=72", "-p", "image_height:=56",
                      "-p", "camera_rate_hz:=15.0", "-p", "episode_timeout_s:=1000.0"],
            env=env,
        ),
        NodeProcess(
            "robot_policy_ros.nodes.policy_node",
            ros_args=[*remap, "-p", f"checkpoint:={ckpt}", "-p", "torch_threads:=1"],
            env=env,
        ),
        NodeProcess(
            "robot_policy_ros.nodes.command_streamer",
            ros_args=[*remap, "-r", f"joint_commands:={commands_topic}",
                      "-p", f"checkpoint:={ckpt}", "-p", "ramp_in_s:=0.2",
                      "-p", f"controller_joints:={json.dumps(list(arm.joint_names))}"],
            env=env,
        ),
    ]  # fmt: skip
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=lease.domain_id)
    node = Node("lerobot_sim_probe", context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    commands: list[np.ndarray] = []
    states: list[tuple[list[str], np.ndarray]] = []
    node.create_subscription(
        Float64MultiArray, commands_topic, lambda m: commands.append(np.array(m.data)), 100
    )
    node.create_subscription(
        JointState,
        f"{ns}/joint_states",
        lambda m: states.append((list(m.name), np.array(m.position))),
        qos_profile_sensor_data,
    )
    out = lambda: "\n".join(f"--- {p.module}\n{p.output()[-3000:]}" for p in procs)  # noqa: E731
    try:
        deadline = time.monotonic() + 120.0
        while len(commands) < 100 and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        assert len(commands) >= 100, out()
        sent = np.array(commands)
        assert np.isfinite(sent).all()
        assert (sent >= arm.lower - 1e-9).all() and (sent <= arm.upper + 1e-9).all()
        t_end = time.monotonic() + 1.0
        while time.monotonic() < t_end:
            executor.spin_once(timeout_sec=0.05)
        names, q = states[-1]
        assert names == list(arm.joint_names)
        # The sim's arm goes where the imported policy's commands send it.
        assert np.abs(q - commands[-1]).max() < 0.2, (q, commands[-1])
        assert "Traceback" not in out()
    finally:
        executor.shutdown()
        node.destroy_node()
        for p in reversed(procs):
            p.stop()
        context.try_shutdown()
        lease.release()
