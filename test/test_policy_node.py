"""policy_node in its own process against an in-process fake robot (no streamer)."""

from __future__ import annotations

import itertools
import math
import subprocess
import time

import cv2
import numpy as np
import pytest
from ros_test_utils import NodeProcess
from runtime_fakes import JOINTS, FakeRobot, make_checkpoint, poison_checkpoint
from sensor_msgs.msg import CompressedImage

pytestmark = pytest.mark.ros

POLICY = "robot_policy_ros.nodes.policy_node"
FPS = 20.0
CHUNK = 20


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "mlp", fps=FPS, chunk_size=CHUNK)


def _start(start_node, checkpoint, *params: str, remaps=()):
    args = ["-p", f"checkpoint:={checkpoint}", "-p", "torch_threads:=1"]
    for p in params:
        args += ["-p", p]
    for r in remaps:
        args += ["-r", r]
    return start_node(POLICY, *args)


def _stamp(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def _run_to_exit(node_env, *ros_args: str) -> NodeProcess:
    proc = NodeProcess(POLICY, ros_args=ros_args, env=node_env)
    try:
        proc.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.stop()
        raise
    return proc


def test_chunks_from_remapped_camera_in_checkpoint_order_then_stop_when_stale(
    start_node, rclpy_context, checkpoint
):
    """One process: chunk format, remapped bgr8 camera, stale camera, camera returning."""
    cameras = {"front": ("/arm/cam/color", (48, 48), "bgr8")}  # the checkpoint's 1:1
    proc = _start(
        start_node,
        checkpoint,
        "max_observation_age_s:=0.3",
        remaps=["front/image_raw:=/arm/cam/color"],
    )
    with FakeRobot(rclpy_context, positions=[0.1, -0.2, 0.05], cameras=cameras) as robot:
        assert robot.wait_for(lambda: len(robot.chunks) >= 3, 60.0), proc.output()
        _t_recv, msg = robot.chunks[-1]
        assert list(msg.joint_names) == JOINTS  # checkpoint order, extras dropped
        assert len(msg.points) == CHUNK
        offsets = [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points]
        np.testing.assert_allclose(offsets, np.arange(CHUNK) / FPS, atol=1e-9)
        values = np.array([p.positions for p in msg.points])
        assert values.shape == (CHUNK, 3) and np.isfinite(values).all()
        age = robot.now() - _stamp(msg)
        assert 0.0 <= age < 5.0
        stamps = [_stamp(m) for _, m in robot.chunks]
        assert all(b > a for a, b in itertools.pairwise(stamps))

        # The camera stops: no chunk is computed from a frame older than max age.
        robot.publish_images["front"] = False
        t_stop = robot.now()
        assert proc.wait_for_output("no inference: camera 'front' is", 10.0), proc.output()
        time.sleep(1.0)
        late = [m for _, m in robot.chunks if _stamp(m) > t_stop]
        assert not late, "a chunk was computed after the camera stopped"
        diag = robot.diagnostic_values("policy_node")
        assert "camera 'front'" in diag.get("stale_reason", ""), diag
        assert int(diag["stale_skips"]) > 0

        # It comes back: inference resumes.
        robot.publish_images["front"] = True
        t_back = robot.now()
        assert robot.wait_for(
            lambda: any(_stamp(m) > t_back for _, m in list(robot.chunks)), 15.0
        ), proc.output()


def test_missing_joint_is_clear_error(start_node, rclpy_context, checkpoint):
    cameras = {"front": ("front/image_raw", (32, 32), "rgb8")}
    proc = _start(start_node, checkpoint)
    with FakeRobot(
        rclpy_context, joint_names=["shoulder", "wrist"], positions=[0.0, 0.0], cameras=cameras
    ) as robot:
        assert proc.wait_for_output("joint_states lacks joint(s) ['elbow']", 60.0), proc.output()
        time.sleep(1.0)
        assert robot.chunks == []
        assert robot.wait_for(
            lambda: "elbow" in robot.diagnostic_values("policy_node").get("_message", ""), 5.0
        )


def test_compressed_transport_and_mono_camera(start_node, rclpy_context, tmp_path):
    ckpt = make_checkpoint(tmp_path / "two_cams", cameras={"front": (32, 32), "wrist": (16, 24)})
    proc = _start(
        start_node,
        ckpt,
        "image_transport:=compressed",
        "inference_trigger:=rate",
        "inference_rate_hz:=5.0",
        "image_fit:=resize",  # 60x40 frames into 32x32 and 24x16: stretched on purpose
    )
    with FakeRobot(rclpy_context) as robot:
        pubs = {
            name: robot.node.create_publisher(CompressedImage, f"{name}/image_raw/compressed", 5)
            for name in ("front", "wrist")
        }
        gray = np.full((40, 60), 128, dtype=np.uint8)
        _ok, jpg = cv2.imencode(".jpg", gray)

        def publish() -> None:
            for pub in pubs.values():
                msg = CompressedImage(format="jpeg")
                msg.header.stamp = robot.node.get_clock().now().to_msg()
                msg.data = jpg.tobytes()
                pub.publish(msg)

        robot.timers.append(robot.node.create_timer(1 / 30, publish))
        assert robot.wait_for(lambda: len(robot.chunks) >= 2, 60.0), proc.output()
        times = [t for t, _ in robot.chunks]
        assert robot.wait_for(lambda: len(robot.chunks) >= 6, 10.0)
        times = [t for t, _ in robot.chunks]
        rate = (len(times) - 1) / (times[-1] - times[0])
        assert rate == pytest.approx(5.0, rel=0.3)


def test_overflowing_checkpoint_never_publishes_non_finite(start_node, rclpy_context, tmp_path):
    ckpt = poison_checkpoint(make_checkpoint(tmp_path / "overflow"), 3e38)
    cameras = {"front": ("front/image_raw", (32, 32), "rgb8")}
    proc = _start(start_node, ckpt)
    with FakeRobot(rclpy_context, cameras=cameras) as robot:
        assert proc.wait_for_output("non-finite actions: chunk dropped", 60.0), proc.output()
        time.sleep(1.0)
        assert robot.chunks == []
        assert robot.wait_for(
            lambda: (
                int(robot.diagnostic_values("policy_node").get("chunks_dropped_non_finite", 0)) > 0
            ),
            5.0,
        )


def test_nan_weights_refused_at_configure(node_env, tmp_path):
    ckpt = poison_checkpoint(make_checkpoint(tmp_path / "nan"), math.nan)
    proc = _run_to_exit(node_env, "-p", f"checkpoint:={ckpt}")
    assert proc.proc.returncode == 1
    assert "non-finite" in proc.output() and "checkpoint" in proc.output()


def test_bad_parameter_stops_with_message(node_env, checkpoint):
    proc = _run_to_exit(node_env)
    assert proc.proc.returncode == 1
    assert "parameter 'checkpoint' = '': is empty; set -p checkpoint:=" in proc.output()
    proc = _run_to_exit(node_env, "-p", f"checkpoint:={checkpoint}", "-p", "device:=tpu")
    assert proc.proc.returncode == 1
    assert "'device' = 'tpu'" in proc.output() and "cuda:N" in proc.output()
    proc = _run_to_exit(node_env, "-p", "max_observation_age_s:=-1.0")
    assert proc.proc.returncode == 2
    assert "max_observation_age_s" in proc.output()


def _first_chunk_after(robot: FakeRobot, t_mono: float, t_sim: float) -> int | None:
    """Index of the first chunk received after ``t_mono`` and stamped from ``t_sim`` on."""
    with robot.lock:
        chunks = list(robot.chunks)
    for k, (t_recv, msg) in enumerate(chunks):
        if t_recv > t_mono and t_sim - 0.05 <= _stamp(msg) < t_sim + 20.0:
            return k
    return None


def _jump_and_expect_fresh_chunk(robot: FakeRobot, proc, jump: float, jumps_seen: int) -> None:
    robot.sim_time_start += jump  # /clock (and every stamp of the fake) jumps
    t_mono, t_sim = time.monotonic(), robot.now()
    assert robot.wait_for(lambda: _first_chunk_after(robot, t_mono, t_sim) is not None, 15.0), (
        f"no chunk stamped after the {jump:+g} s jump within 15 s\n{proc.output()}"
    )
    first = _first_chunk_after(robot, t_mono, t_sim)
    assert robot.chunks[first][0] - t_mono < 10.0  # an old horizon kept: ~60 s
    time.sleep(1.5)  # the chunks after it are on the new timeline too
    with robot.lock:
        later = [_stamp(m) for _, m in robot.chunks[first:]]
    assert len(later) >= 2, proc.output()
    assert all(s >= t_sim - 0.05 for s in later), (t_sim, later)
    assert robot.wait_for(
        lambda: int(robot.diagnostic_values("policy_node").get("time_jumps", 0)) >= jumps_seen,
        10.0,
    ), robot.diagnostic_values("policy_node")


def test_policy_node_resets_horizon_on_clock_jump(start_node, rclpy_context, checkpoint):
    """/clock (published by the fake robot, another process) jumps back, then forward: each
    time a fresh chunk, stamped after the jump, comes at once; nothing from before it."""
    cameras = {"front": ("front/image_raw", (32, 32), "rgb8")}
    # refill_threshold_s 0: a chunk (0.95 s) is only followed when its horizon has run out,
    # so an old horizon end kept across a jump back would stop inference for the whole jump.
    proc = _start(
        start_node,
        checkpoint,
        "use_sim_time:=true",
        "refill_threshold_s:=0.0",
        "max_observation_age_s:=0.5",
    )
    with FakeRobot(rclpy_context, cameras=cameras, sim_time_start=1000.0) as robot:
        assert robot.wait_for(lambda: len(robot.chunks) >= 2, 90.0), proc.output()
        _jump_and_expect_fresh_chunk(robot, proc, -60.0, 1)  # sim reset: /clock restarts
        _jump_and_expect_fresh_chunk(robot, proc, 100.0, 2)
        assert proc.wait_for_output("ROS clock jumped by -5", 5.0), proc.output()
        assert "Traceback" not in proc.output()


def test_arm_jump_resets_horizon_and_infers_from_inputs_after_it(
    start_node, rclpy_context, tmp_path
):
    """The arm snaps elsewhere (a sim reset without a lifecycle restart): a fresh chunk,
    observed after the jump, comes at once instead of after the old 5 s horizon."""
    ckpt = make_checkpoint(tmp_path / "long", fps=FPS, chunk_size=100)  # 4.95 s per chunk
    cameras = {"front": ("front/image_raw", (32, 32), "rgb8")}
    proc = _start(start_node, ckpt, "refill_threshold_s:=0.0", "max_observation_age_s:=0.5")
    with FakeRobot(rclpy_context, cameras=cameras, follow_commands=False) as robot:
        assert robot.wait_for(lambda: len(robot.chunks) >= 1, 90.0), proc.output()
        time.sleep(0.5)
        with robot.lock:
            robot.positions = robot.positions + np.array([0.0, -0.8, 0.0])  # elbow: 1 rad/s max
        t_mono, t_ros = time.monotonic(), robot.now()
        assert robot.wait_for(lambda: _first_chunk_after(robot, t_mono, t_ros) is not None, 3.0), (
            f"no chunk observed after the arm jumped within 3 s\n{proc.output()}"
        )
        assert robot.wait_for(
            lambda: int(robot.diagnostic_values("policy_node").get("arm_jumps", 0)) >= 1, 10.0
        ), robot.diagnostic_values("policy_node")
        assert proc.wait_for_output("joint states jumped", 5.0), proc.output()
        assert "Traceback" not in proc.output()


def test_observation_history_frames_one_over_fps_apart_at_another_inference_rate(
    start_node, rclpy_context, tmp_path
):
    """n_obs_steps 3 at 10 fps, inference at 3 Hz, camera at 30 Hz: the frames given to the
    policy are 100 ms apart (within half a camera period), not one inference period."""
    ckpt = make_checkpoint(
        tmp_path / "diff",
        fps=10.0,
        policy_type="diffusion",
        vision_backbone="tiny_cnn",
        backbone_width=4,
        horizon=8,
        n_action_steps=5,
        n_obs_steps=3,
        down_dims=(8, 16),
        n_groups=4,
        diffusion_step_embed_dim=8,
        spatial_softmax_num_keypoints=4,
        num_inference_steps=2,
    )
    proc = _start(start_node, ckpt, "inference_trigger:=rate", "inference_rate_hz:=3.0")
    cameras = {"front": ("front/image_raw", (32, 32), "rgb8")}
    with FakeRobot(rclpy_context, positions=[0.1, -0.2, 0.05], cameras=cameras) as robot:
        assert robot.wait_for(lambda: len(robot.chunks) >= 5, 60.0), proc.output()
        diag = robot.diagnostic_values("policy_node")
        offsets = [float(v) for v in diag["observation_history_offsets_ms"].split()]
        assert len(offsets) == 3 and offsets[-1] == 0.0, diag
        # 1000/30/2 ms: the nearest camera frame to each target
        np.testing.assert_allclose(offsets, [-200.0, -100.0, 0.0], atol=1000 / 30 / 2 + 1.0)
        stamps = [_stamp(m) for _, m in list(robot.chunks)[-4:]]
        period = float(np.median(np.diff(stamps)))
        assert period > 0.2, stamps  # inference ~3 Hz: not the 100 ms the frames are apart
