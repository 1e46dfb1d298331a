"""End to end: record sim_robot episodes with bag_recorder, then train on the bags."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from rosbags.highlevel import AnyReader

from robot_policy_ros.data.bag_writer import default_typestore

rclpy = pytest.importorskip("rclpy")
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from ros_test_utils import spin_until  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from robot_policy_ros.checkpoint.weights import load_checkpoint  # noqa: E402
from robot_policy_ros.nodes.episode_client import EpisodeClient  # noqa: E402
from robot_policy_ros.training.trainer import TrainConfig, train  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[1]
ARM = REPO / "config" / "sim_arm.yaml"


def test_training_on_bags_recorded_from_the_sim_reduces_the_loss(
    start_node, rclpy_context, tmp_path: Path
) -> None:
    bags = tmp_path / "bags"
    recorder = start_node(
        "robot_policy_ros.nodes.bag_recorder",
        "-p",
        f"output_dir:={bags}",
        "-p",
        "topics:=['joint_states','front/image_raw','forward_position_controller/commands']",
        "-p",
        f"robot_config:={ARM}",
        "-p",
        "discovery_period_s:=0.1",
        "-p",
        "join_late_s:=0.0",
    )
    assert recorder.wait_for_output("recording", 30), recorder.output()
    node = Node("commander", context=rclpy_context)
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    commands = node.create_publisher(Float64MultiArray, "forward_position_controller/commands", 50)
    episodes = EpisodeClient(node, "sim_robot", executor=executor)
    status = node.create_client(Trigger, "bag_recorder/status")
    assert spin_until(executor, lambda: commands.get_subscription_count() >= 1, 30)
    sim = start_node(
        "robot_policy_ros.nodes.sim_robot",
        "-p",
        "image_width:=64",
        "-p",
        "image_height:=48",
        "-p",
        "camera_rate_hz:=15.0",
        "-p",
        "episode_timeout_s:=2.5",
        "-p",
        "seed:=3",
    )
    home = np.array(yaml.safe_load(ARM.read_text())["home"], dtype=float)

    def recorder_status() -> dict:
        fut = status.call_async(Trigger.Request())
        assert spin_until(executor, fut.done, 10)
        return json.loads(fut.result().message)

    try:
        # Record two fresh episodes started by ~/reset once every topic is subscribed.
        assert spin_until(executor, lambda: not recorder_status()["waiting_for"], 30), (
            sim.output() + recorder.output()
        )
        for _ in range(2):
            episodes.reset(timeout=10.0)
            assert spin_until(executor, lambda: recorder_status()["recording"], 30), (
                sim.output() + recorder.output()
            )
            t0 = time.monotonic()
            # A demonstration: sweep the joints around the home pose until the episode ends.
            while recorder_status()["recording"] and time.monotonic() - t0 < 10.0:
                t = time.monotonic() - t0
                target = home + 0.3 * np.sin(2.0 * t + np.arange(home.size))
                commands.publish(Float64MultiArray(data=target.tolist()))
                executor.spin_once(timeout_sec=0.04)
    finally:
        executor.shutdown()
        node.destroy_node()
    episodes = sorted(p for p in bags.iterdir() if p.is_dir())
    metas = {p.name: json.loads((p / "episode.json").read_text()) for p in episodes}
    # Episode 0 was joined already running: it either ran out on its own (if discovery took
    # longer than the sim's episode timeout) or was cut short by the first reset. Either way
    # it is a valid bag; the two episodes started by ~/reset must have run to their end.
    assert sorted(metas)[-2:] == ["episode_000001", "episode_000002"], metas
    finished = ["episode_000001", "episode_000002"]
    assert all(metas[n]["stop_reason"] == "episode_done" for n in finished), metas
    for bag in episodes:
        meta = metas[bag.name]
        assert meta["complete"] and meta["lost"] == 0
        assert meta["robot_config"]["name"] == "sim_arm"
        with AnyReader([bag], default_typestore=default_typestore()) as reader:
            counts = {c.topic: c.msgcount for c in reader.connections}
        assert counts == {t: c["written"] for t, c in meta["counts"].items()}
        if bag.name in finished:
            assert meta["success"] in (True, False)  # from the sim's done message
            assert counts["/front/image_raw"] > 15
            assert counts["/forward_position_controller/commands"] > 20

    result = train(
        TrainConfig(
            data=[str(bags)],
            out=str(tmp_path / "run"),
            policy="mlp",
            steps=80,
            batch_size=8,
            lr=2e-3,
            image_size=(24, 32),
            fps=10.0,
            chunk_size=4,
            val_fraction=0.5,
            checkpoint_every=0,
            overrides={"vision_backbone": "tiny_cnn", "backbone_width": 8, "hidden_dims": [64]},
            cache_dir=str(tmp_path / "cache"),
            torch_threads=1,
            progress=False,
        )
    )
    assert result.final_train_loss < 0.5 * result.first_train_loss
    assert math.isfinite(result.final_val_loss)
    policy = load_checkpoint(tmp_path / "run")
    arm = yaml.safe_load(ARM.read_text())["joints"]
    assert policy.joint_names == [j["name"] for j in arm]
    limits = json.loads((tmp_path / "run" / "config.json").read_text())["limits"]
    for i, joint in enumerate(arm):  # never beyond the robot's own limits
        assert joint["lower"] <= limits["lower"][i] < limits["upper"][i] <= joint["upper"]
        assert limits["max_velocity"][i] <= joint["max_velocity"]
        # Demonstrations do not bound accelerations; the robot config the recorder stored does.
        assert limits["max_acceleration"][i] == joint["max_acceleration"]
