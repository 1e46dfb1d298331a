"""policy_node (own process) under bad input: it refuses, says why, and recovers."""

from __future__ import annotations

import math
import struct
import subprocess
import time
import zlib

import cv2
import numpy as np
import pytest
from ros_test_utils import NodeProcess
from runtime_fakes import JOINTS, FakeRobot, make_checkpoint
from sensor_msgs.msg import CompressedImage, Image

pytestmark = pytest.mark.ros

POLICY = "robot_policy_ros.nodes.policy_node"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "mlp", fps=20.0, chunk_size=20)


def _start(start_node, checkpoint, *params: str):
    args = ["-p", f"checkpoint:={checkpoint}", "-p", "torch_threads:=1"]
    for p in params:
        args += ["-p", p]
    return start_node(POLICY, *args)


def _stamp(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def _png_bomb(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 4096, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_bomb_and_truncated_frames_refused_node_keeps_serving(
    start_node, rclpy_context, checkpoint
):
    proc = _start(start_node, checkpoint, "image_transport:=compressed")
    _ok, good = cv2.imencode(".png", np.full((32, 32, 3), 90, np.uint8))
    payload = {"data": _png_bomb(60_000, 60_000)}
    with FakeRobot(rclpy_context) as robot:
        pub = robot.node.create_publisher(CompressedImage, "front/image_raw/compressed", 5)

        def publish() -> None:
            msg = CompressedImage(format="png")
            robot.stamp(msg.header)
            msg.data = payload["data"]
            pub.publish(msg)

        robot.timers.append(robot.node.create_timer(1 / 30, publish))
        assert proc.wait_for_output("PNG declares 60000x60000", 60.0), proc.output()
        assert robot.wait_for(
            lambda: int(robot.diagnostic_values("policy_node").get("images_rejected", 0)) > 0, 10.0
        )
        assert "camera 'front'" in robot.diagnostic_values("policy_node")["_message"]
        assert robot.chunks == []
        payload["data"] = good.tobytes()[: len(good) // 2]  # truncated
        assert proc.wait_for_output("truncated", 15.0), proc.output()
        assert robot.chunks == []
        payload["data"] = good.tobytes()
        assert robot.wait_for(lambda: len(robot.chunks) >= 2, 30.0), proc.output()
        assert proc.proc.poll() is None


def test_frozen_camera_gives_no_inference_and_recovers(start_node, rclpy_context, checkpoint):
    proc = _start(start_node, checkpoint, "max_observation_age_s:=5.0")
    frame = Image(height=32, width=32, step=96, encoding="rgb8")
    frame.data = bytes(32 * 96)
    state = {"frozen": False}
    with FakeRobot(rclpy_context) as robot:
        pub = robot.node.create_publisher(Image, "front/image_raw", 5)

        def publish() -> None:
            if not state["frozen"]:
                robot.stamp(frame.header)  # a frozen driver re-sends the same stamp
            pub.publish(frame)

        robot.timers.append(robot.node.create_timer(1 / 30, publish))
        assert robot.wait_for(lambda: len(robot.chunks) >= 2, 60.0), proc.output()
        state["frozen"] = True
        t_frozen = _stamp(frame)
        assert proc.wait_for_output("camera 'front' is frozen", 10.0), proc.output()
        time.sleep(0.5)
        assert "frozen" in robot.diagnostic_values("policy_node").get("stale_reason", "")
        # Well inside max_observation_age_s, yet no chunk from the frozen frame after the flag.
        n = len(robot.chunks)
        time.sleep(1.0)
        assert all(_stamp(m) <= t_frozen for _, m in robot.chunks[n:])
        state["frozen"] = False
        t_back = robot.now()
        assert robot.wait_for(
            lambda: any(_stamp(m) > t_back for _, m in list(robot.chunks)), 15.0
        ), proc.output()


@pytest.mark.parametrize(
    ("names", "positions", "message"),
    [
        ([*JOINTS, "elbow"], [0.0, 0.0, 0.0, 0.0], "more than once"),
        (JOINTS, [0.0, math.nan, 0.0], "non-finite positions for joint(s) ['elbow']"),
    ],
)
def test_bad_joint_states_give_no_inference_and_clear_error(
    start_node, rclpy_context, checkpoint, names, positions, message
):
    cameras = {"front": ("front/image_raw", (32, 32), "rgb8")}
    proc = _start(start_node, checkpoint)
    with FakeRobot(
        rclpy_context, joint_names=names, positions=positions, extra_joints=(), cameras=cameras
    ) as robot:
        assert proc.wait_for_output(message, 60.0), proc.output()
        time.sleep(1.0)
        assert robot.chunks == []
        assert robot.wait_for(
            lambda: message in robot.diagnostic_values("policy_node").get("_message", ""), 5.0
        )
        assert proc.proc.poll() is None


@pytest.mark.parametrize(
    ("module", "status_name", "idle_message"),
    [
        (POLICY, "/arm_left/policy_node: inference", "no joint_states message received yet"),
        (
            "robot_policy_ros.nodes.command_streamer",
            "/arm_left/command_streamer: commands",
            "waiting_for_joint_states",
        ),
    ],
)
def test_namespaced_node_diagnostics_carry_full_name_and_hardware_id(
    start_node, rclpy_context, checkpoint, module, status_name, idle_message
):
    proc = start_node(
        module,
        "-r",
        "__ns:=/arm_left",
        "-p",
        f"checkpoint:={checkpoint}",
        "-p",
        "torch_threads:=1" if module == POLICY else "e_stop_grace_s:=0.0",
        "-p",
        "hardware_id:=left_arm_sn42",
    )
    with FakeRobot(rclpy_context) as robot:

        def status():
            for _, array in list(robot.diagnostics):
                for s in array.status:
                    if s.name == status_name:
                        return s
            return None

        assert robot.wait_for(lambda: status() is not None, 60.0), proc.output()
        assert status().hardware_id == "left_arm_sn42"
        # Nothing reaches it from the root namespace's inputs: two arms never mix.
        assert robot.wait_for(lambda: idle_message in status().message, 10.0), status().message


def _run_to_exit(node_env, *ros_args: str) -> NodeProcess:
    proc = NodeProcess(POLICY, ros_args=ros_args, env=node_env)
    try:
        proc.proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        proc.stop()
        raise
    return proc


@pytest.mark.parametrize(
    ("param", "expected"),
    [
        (
            "arm_joint_names:=['shoulder','elbow','wrist','gripper']",
            "the checkpoint's joints ['shoulder', 'elbow', 'wrist'] (3) are not the arm's "
            "joints ['shoulder', 'elbow', 'wrist', 'gripper'] (4)",
        ),
        (
            "arm_cameras:=['wrist:32x32']",
            "the checkpoint's cameras ['front'] are not the arm's cameras ['wrist']",
        ),
        (
            "arm_cameras:=['front:480x640']",
            "camera 'front': the checkpoint expects 32x32 (HxW), the arm's camera gives 480x640",
        ),
    ],
)
def test_wrong_checkpoint_for_the_arm_refused_naming_both_sides(
    node_env, checkpoint, param, expected
):
    proc = _run_to_exit(node_env, "-p", f"checkpoint:={checkpoint}", "-p", param)
    assert proc.proc.returncode == 1, proc.output()
    assert "does not fit this arm" in proc.output() and expected in proc.output(), proc.output()
    assert "active" not in proc.output().split("does not fit")[-1]


@pytest.fixture(scope="module")
def four_by_three_checkpoint(tmp_path_factory):
    """Trained (as recorded in the checkpoint) on 64x48 (4:3) frames stretched to 32x32."""
    from robot_policy_ros.checkpoint.config import CameraInput

    front = CameraInput("front", 32, 32, fit="resize", source_height=48, source_width=64)
    return make_checkpoint(tmp_path_factory.mktemp("ckpt43") / "mlp", cameras=[front])


def test_camera_of_other_aspect_ratio_refused_naming_both_shapes(
    start_node, rclpy_context, four_by_three_checkpoint
):
    proc = _start(start_node, four_by_three_checkpoint)
    cameras = {"front": ("front/image_raw", (36, 64), "rgb8")}  # 16:9
    with FakeRobot(rclpy_context, cameras=cameras) as robot:
        message = "gives 64x36 frames but the checkpoint was trained on 64x48"
        assert proc.wait_for_output(message, 60.0), proc.output()
        time.sleep(1.0)
        assert robot.chunks == []
        assert robot.wait_for(
            lambda: "another aspect ratio" in robot.diagnostic_values("policy_node")["_message"],
            5.0,
        )
        assert proc.proc.poll() is None


def test_camera_of_trained_aspect_ratio_gets_the_recorded_transform(
    start_node, rclpy_context, four_by_three_checkpoint
):
    proc = _start(start_node, four_by_three_checkpoint)
    cameras = {"front": ("front/image_raw", (96, 128), "rgb8")}  # 4:3, another size
    with FakeRobot(rclpy_context, cameras=cameras) as robot:
        assert robot.wait_for(lambda: len(robot.chunks) >= 2, 60.0), proc.output()
    assert "aspect ratio" not in proc.output()


@pytest.mark.parametrize("fit", ["crop", "letterbox"])
def test_image_fit_parameter_maps_another_aspect_ratio(
    start_node, rclpy_context, four_by_three_checkpoint, fit
):
    proc = _start(start_node, four_by_three_checkpoint, f"image_fit:={fit}")
    cameras = {"front": ("front/image_raw", (36, 64), "rgb8")}
    with FakeRobot(rclpy_context, cameras=cameras) as robot:
        assert robot.wait_for(lambda: len(robot.chunks) >= 2, 60.0), proc.output()
