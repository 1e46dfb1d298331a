"""Replaying recorded bags through a checkpoint reports the per-joint error between its
predicted and the demonstrated actions (robot_policy_ros.data.replay).

The bags are written here with known demonstrations: at every camera frame the command is
the checkpoint's own first action for the observation policy_node would see (the frame
brought to the model's size, the joint state at that stamp), computed independently of the
replay code, plus a per-joint offset chosen by the test. The replay must then report that
offset as the error, exactly, which it only can if it builds the same observations and
compares at the right times.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from runtime_fakes import JOINTS, make_checkpoint

from robot_policy_ros.checkpoint.weights import load_checkpoint
from robot_policy_ros.core.images import fit_rgb
from robot_policy_ros.data.bag_writer import BagWriter, default_typestore, make_qos
from robot_policy_ros.data.replay import ReplayError, replay_bags
from robot_policy_ros.policies.base import Observation

FPS = 20.0
FRAMES = 24


def write_bag(path: Path, policy, offset: np.ndarray, seed: int) -> list[np.ndarray]:
    """Joint states, 64x64 frames and commands = own first action + ``offset`` at 20 Hz.

    Returns the first actions the policy gives for each frame's observation.
    """
    ts = default_typestore()
    mt = ts.types
    rng = np.random.default_rng(seed)
    j = len(JOINTS)
    events: list[tuple[int, str, bytes]] = []
    firsts = []

    def header(ns: int):
        stamp = mt["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9)
        return mt["std_msgs/msg/Header"](stamp=stamp, frame_id="")

    dim = mt["std_msgs/msg/MultiArrayDimension"]
    layout = mt["std_msgs/msg/MultiArrayLayout"](
        dim=[dim(label="joints", size=j, stride=j)], data_offset=0
    )
    for k in range(FRAMES):
        ns = 10**9 + round(k * 1e9 / FPS)
        q = rng.uniform(-0.5, 0.5, size=j)
        frame = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
        # Names in another order than the checkpoint's: mapped by name, as policy_node does.
        js = mt["sensor_msgs/msg/JointState"](
            header=header(ns),
            name=list(reversed(JOINTS)),
            position=np.ascontiguousarray(q[::-1], dtype=np.float64),
            velocity=np.zeros(0),
            effort=np.zeros(0),
        )
        img = mt["sensor_msgs/msg/Image"](
            header=header(ns),
            height=64,
            width=64,
            encoding="rgb8",
            is_bigendian=0,
            step=64 * 3,
            data=frame.reshape(-1),
        )
        obs = Observation(images={"front": fit_rgb(frame, (32, 32), "resize")}, joint_positions=q)
        first = np.asarray(policy.predict_chunk(obs), dtype=np.float64)[0]
        firsts.append(first)
        cmd = mt["std_msgs/msg/Float64MultiArray"](layout=layout, data=first + offset)
        events.append((ns - 1_000_000, "/arm/forward_position_controller/commands", cmd))
        events.append((ns, "/arm/joint_states", js))
        events.append((ns + 1000, "/arm/front/image_raw", img))
    types = {
        "/arm/joint_states": "sensor_msgs/msg/JointState",
        "/arm/front/image_raw": "sensor_msgs/msg/Image",
        "/arm/forward_position_controller/commands": "std_msgs/msg/Float64MultiArray",
    }
    writer = BagWriter(path, "mcap", flush_interval_s=0.0)
    writer.open()
    for topic, msgtype in types.items():
        writer.add_topic(topic, msgtype, [make_qos()])
    for ns, topic, msg in sorted(events, key=lambda e: e[0]):
        writer.write(topic, ts.serialize_cdr(msg, types[topic]), ns)
    writer.close()
    return firsts


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("replay")
    ckpt = make_checkpoint(tmp / "ckpt", cameras={"front": (32, 32)}, fps=FPS, chunk_size=10)
    policy = load_checkpoint(ckpt)
    offset = np.linspace(0.01, 0.06, len(JOINTS))
    write_bag(tmp / "bags" / "exact", policy, np.zeros(len(JOINTS)), seed=1)
    write_bag(tmp / "bags" / "offset", policy, offset, seed=2)
    return ckpt, tmp / "bags", offset, tmp


def test_replay_reports_the_known_per_joint_error(recorded) -> None:
    ckpt, bags, offset, tmp = recorded
    report = replay_bags(ckpt, [bags], plot_path=tmp / "replay.png")
    assert report["joint_names"] == list(JOINTS)
    by_name = {Path(b["path"]).name: b for b in report["bags"]}
    assert set(by_name) == {"exact", "offset"}
    for bag in by_name.values():
        assert bag["observations"] == FRAMES, bag["skipped"]
        assert bag["action_source"] == "commands"
    exact = by_name["exact"]["first_action"]["joints"]
    off = by_name["offset"]["first_action"]["joints"]
    overall = report["overall"]["first_action"]["joints"]
    for j, name in enumerate(JOINTS):
        # The demonstrator was the policy itself: no error.
        assert exact[name]["max_abs"] < 1e-6
        # predicted - demonstrated = -offset at every step.
        for stat in ("mean_abs", "rms", "max_abs"):
            assert off[name][stat] == pytest.approx(offset[j], abs=1e-6)
        # Both bags together: half the steps off by offset, half exact.
        assert overall[name]["mean_abs"] == pytest.approx(offset[j] / 2, abs=1e-6)
        assert overall[name]["rms"] == pytest.approx(offset[j] / np.sqrt(2), abs=1e-6)
        assert overall[name]["max_abs"] == pytest.approx(offset[j], abs=1e-6)
    assert report["overall"]["first_action"]["samples"] == 2 * FRAMES
    # Whole chunks: actions beyond the last joint state are not compared.
    assert 0 < report["overall"]["chunk"]["samples"] < 2 * FRAMES * 10
    png = Path(report["plot"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_stride_subsamples_the_observations(recorded) -> None:
    ckpt, bags, offset, _ = recorded
    report = replay_bags(ckpt, [bags / "offset"], stride=5)
    (bag,) = report["bags"]
    assert bag["observations"] == len(range(0, FRAMES, 5))
    assert report["plot"] is None
    joints = bag["first_action"]["joints"]
    for j, name in enumerate(JOINTS):
        assert joints[name]["mean_abs"] == pytest.approx(offset[j], abs=1e-6)


def test_measured_actions_differ_from_commanded(recorded) -> None:
    ckpt, bags, _, _ = recorded
    report = replay_bags(ckpt, [bags / "exact"], action_source="measured")
    (bag,) = report["bags"]
    assert bag["action_source"] == "measured"
    # The random joint states are not what the policy commands.
    assert max(v["mean_abs"] for v in bag["first_action"]["joints"].values()) > 1e-3


def test_bad_arguments_are_refused(recorded) -> None:
    ckpt, bags, _, _ = recorded
    with pytest.raises(ReplayError, match="stride"):
        replay_bags(ckpt, [bags], stride=0)
    with pytest.raises(ReplayError, match="action_source"):
        replay_bags(ckpt, [bags], action_source="future")


def test_predict_bag_command_writes_the_report_and_plot(recorded, tmp_path, capsys) -> None:
    """`robot-policy predict CKPT --bag ...`: the same report replay_bags gives."""
    from robot_policy_ros.cli import main

    ckpt, bags, offset, _ = recorded
    out = tmp_path / "report.json"
    argv = ["predict", str(ckpt), "--bag", str(bags / "offset"), "--out", str(out)]
    code = main([*argv, "--backend", "torch"])
    assert code == 0
    report = json.loads(out.read_text())
    joints = report["overall"]["first_action"]["joints"]
    for j, name in enumerate(JOINTS):
        assert joints[name]["max_abs"] == pytest.approx(offset[j], abs=1e-6)
    assert Path(report["plot"]) == out.with_suffix(".png") and out.with_suffix(".png").is_file()
    printed = capsys.readouterr().out
    assert "replayed 1 bag(s)" in printed and JOINTS[0] in printed
