"""bag_recorder node (separate process) recording topics published by this test."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from rosbags.highlevel import AnyReader

from robot_policy_ros.data.bag_writer import bag_is_complete, default_typestore

rclpy = pytest.importorskip("rclpy")
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from ros_test_utils import spin_until  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

pytestmark = pytest.mark.ros
MODULE = "robot_policy_ros.nodes.bag_recorder"
RELIABLE_ALL = QoSProfile(
    history=HistoryPolicy.KEEP_ALL,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)


class Harness:
    """A test node publishing topics and calling the recorder's services."""

    def __init__(self, context, topics: list[str]) -> None:
        self.node = Node("recorder_test", context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.chatter = self.node.create_publisher(String, topics[0], RELIABLE_ALL)
        self.joints = self.node.create_publisher(JointState, topics[1], RELIABLE_ALL)
        self.clients = {
            name: self.node.create_client(Trigger, f"/bag_recorder/{name}")
            for name in ("start", "stop", "status")
        }

    def wait_matched(self, timeout: float = 30.0) -> None:
        ok = spin_until(
            self.executor,
            lambda: (
                self.chatter.get_subscription_count() >= 1
                and self.joints.get_subscription_count() >= 1
            ),
            timeout,
        )
        assert ok, "the recorder did not subscribe to the test topics"

    def call(self, name: str, timeout: float = 20.0) -> Trigger.Response:
        client = self.clients[name]
        assert spin_until(self.executor, client.service_is_ready, timeout), name
        future = client.call_async(Trigger.Request())
        assert spin_until(self.executor, future.done, timeout), name
        return future.result()

    def status(self) -> dict:
        return json.loads(self.call("status").message)

    def publish(self, n_chatter: int, n_joints: int) -> None:
        for i in range(max(n_chatter, n_joints)):
            if i < n_chatter:
                self.chatter.publish(String(data=f"m{i}"))
            if i < n_joints:
                msg = JointState(name=["j1", "j2"], position=[float(i), 2.0 * i])
                msg.header.stamp.sec = 100 + i
                self.joints.publish(msg)
            if i % 50 == 0:
                self.executor.spin_once(timeout_sec=0.0)

    def wait_received(self, counts: dict[str, int], timeout: float = 20.0) -> dict:
        deadline = time.monotonic() + timeout
        status: dict = {}
        while time.monotonic() < deadline:
            status = self.status()
            got = {t: status["counts"].get(t, {}).get("written", 0) for t in counts}
            if got == counts:
                return status
            time.sleep(0.1)
        raise AssertionError(f"recorder did not receive {counts}: {status}")

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()


def _bag_counts(bag: Path) -> dict[str, int]:
    with AnyReader([bag], default_typestore=default_typestore()) as reader:
        return {c.topic: c.msgcount for c in reader.connections}


def _start_recorder(start_node, out: Path, topics: list[str], *params: str):
    proc = start_node(
        MODULE,
        "-p",
        f"output_dir:={out}",
        "-p",
        f"topics:=[{','.join(repr(t) for t in topics)}]",
        "-p",
        "discovery_period_s:=0.1",
        *params,
    )
    assert proc.wait_for_output("recording", 30), proc.output()
    return proc


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_recorded_counts_equal_published_counts(
    start_node, rclpy_context, tmp_path: Path, storage: str
) -> None:
    topics = ["/rec_test/chatter", "/rec_test/joint_states"]
    proc = _start_recorder(
        start_node, tmp_path, topics, "-p", f"storage:={storage}", "-p", "episode_topic:=''"
    )
    h = Harness(rclpy_context, topics)
    try:
        h.wait_matched()
        started = h.call("start")
        assert started.success, started.message
        h.publish(n_chatter=300, n_joints=200)
        h.wait_received({topics[0]: 300, topics[1]: 200})
        stopped = h.call("stop")
    finally:
        h.close()
    assert stopped.success, stopped.message
    report = json.loads(stopped.message)
    assert report["received"] == report["written"] == 500 and report["lost"] == 0
    bag = Path(started.message)
    assert _bag_counts(bag) == {topics[0]: 300, topics[1]: 200}
    meta = json.loads((bag / "episode.json").read_text())
    assert meta["storage"] == storage and meta["complete"] is True
    assert meta["counts"][topics[1]] == {"received": 200, "written": 200, "dropped": 0, "failed": 0}
    assert proc.alive()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_mid_episode_leaves_a_complete_readable_bag(
    start_node, rclpy_context, tmp_path: Path, sig: signal.Signals
) -> None:
    topics = ["/rec_sig/chatter", "/rec_sig/joint_states"]
    proc = _start_recorder(
        start_node, tmp_path, topics, "-p", "autostart:=true", "-p", "episode_topic:=''"
    )
    h = Harness(rclpy_context, topics)
    try:
        h.wait_matched()
        h.publish(n_chatter=120, n_joints=80)
        h.wait_received({topics[0]: 120, topics[1]: 80})
    finally:
        h.close()
    proc.proc.send_signal(sig)
    proc.proc.wait(timeout=20)
    assert "closed cleanly" in proc.output(), proc.output()
    bag = tmp_path / "episode_000000"
    assert bag_is_complete(bag)
    assert _bag_counts(bag) == {topics[0]: 120, topics[1]: 80}
    meta = json.loads((bag / "episode.json").read_text())
    assert meta["stop_reason"] == "shutdown" and meta["lost"] == 0
    with AnyReader([bag], default_typestore=default_typestore()) as reader:
        conn = next(c for c in reader.connections if c.topic == topics[1])
        first = next(reader.messages(connections=[conn]))
        msg = reader.deserialize(first[2], conn.msgtype)
    assert msg.header.stamp.sec == 100 and np.allclose(msg.position, [0.0, 0.0])


def test_episode_topic_records_one_bag_per_episode_with_success(
    start_node, rclpy_context, tmp_path: Path
) -> None:
    topics = ["/rec_ep/chatter", "/rec_ep/joint_states"]
    _start_recorder(start_node, tmp_path, topics, "-p", "episode_topic:=/rec_ep/episode")
    h = Harness(rclpy_context, topics)
    latched = QoSProfile(
        depth=10,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )
    episode = h.node.create_publisher(String, "/rec_ep/episode", latched)

    def announce(index: int, done: bool, success: bool = False) -> None:
        info = {"index": index, "seed": 40 + index, "success": success, "done": done}
        info["elapsed_s"] = 0.0
        episode.publish(String(data=json.dumps(info)))

    try:
        h.wait_matched()
        assert spin_until(h.executor, lambda: episode.get_subscription_count() >= 1, 20)
        for index, n, success in ((5, 30, True), (6, 20, False)):
            announce(index, done=False)
            bag = tmp_path / f"episode_{index:06d}"
            assert spin_until(h.executor, bag.is_dir, 20)
            h.publish(n_chatter=n, n_joints=n)
            h.wait_received({topics[0]: n, topics[1]: n})
            announce(index, done=True, success=success)
            assert spin_until(h.executor, lambda: not h.status()["recording"], 20)
        h.publish(n_chatter=10, n_joints=0)  # between episodes: not recorded
    finally:
        h.close()
    for index, n, success in ((5, 30, True), (6, 20, False)):
        bag = tmp_path / f"episode_{index:06d}"
        meta = json.loads((bag / "episode.json").read_text())
        assert (meta["index"], meta["seed"], meta["success"]) == (index, 40 + index, success)
        assert meta["stop_reason"] == "episode_done"
        assert _bag_counts(bag) == {topics[0]: n, topics[1]: n}


def test_recover_option_rebuilds_a_bag_without_metadata(tmp_path: Path, capsys) -> None:
    from robot_policy_ros.data.synthetic import SyntheticEpisode, write_synthetic_episode
    from robot_policy_ros.nodes.bag_recorder import main

    bag = tmp_path / "episode_000000"
    write_synthetic_episode(bag, SyntheticEpisode(duration_s=0.3, image_hw=(8, 8)))
    (bag / "metadata.yaml").unlink()  # as if the recorder had been killed
    assert main(["bag_recorder", "--recover", str(bag)]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert bag_is_complete(bag) and report["recovered"] == sum(_bag_counts(bag).values())


def test_invalid_storage_parameter_exits_with_a_message(start_node, tmp_path: Path) -> None:
    proc = start_node(MODULE, "-p", f"output_dir:={tmp_path}", "-p", "storage:=zip")
    proc.proc.wait(timeout=30)
    assert proc.proc.returncode == 2
    assert "storage" in proc.output() and "mcap" in proc.output()


def test_one_callback_takes_every_waiting_message_of_a_topic(rclpy_context, tmp_path) -> None:
    """rclpy's executor takes one message per subscription per wait cycle; the recorder's
    callback takes the rest waiting on its topic itself (up to TAKE_BATCH), so a recorder
    starved of CPU (few cycles a second) still keeps up with a 500 Hz topic. Here 60 joint
    states wait in the recorder's reader before its executor runs: the first callback
    records all 60 (without the batch it would record 1)."""
    from rclpy.parameter import Parameter

    from robot_policy_ros.nodes.bag_recorder import TAKE_BATCH, BagRecorder

    assert TAKE_BATCH >= 60
    topic = "/rec_batch/joint_states"
    pub_node = Node("rec_batch_pub", context=rclpy_context)
    pub = pub_node.create_publisher(JointState, topic, RELIABLE_ALL)
    recorder = BagRecorder(
        parameter_overrides=[
            Parameter("output_dir", value=str(tmp_path / "bags")),
            Parameter("topics", value=[topic]),
            Parameter("episode_topic", value=""),
            Parameter("autostart", value=True),
            Parameter("discovery_period_s", value=0.05),
        ],
        context=rclpy_context,
    )
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(recorder)
    calls = []
    on_message = recorder._on_message

    def counted(t: str, data: bytes) -> None:
        calls.append(t)
        on_message(t, data)

    recorder._on_message = counted
    try:
        assert spin_until(executor, lambda: recorder._subs.get(topic) is not None, 10.0)
        assert spin_until(executor, lambda: pub.get_subscription_count() == 1, 10.0)
        for i in range(60):
            pub.publish(JointState(name=["a"], position=[float(i)]))
        time.sleep(2.0)  # delivered into the recorder's reader; nothing taken yet
        assert spin_until(executor, lambda: len(calls) >= 1, 10.0)
        assert len(calls) == 1
        assert recorder._writer.counts()[topic].received == 60
        stats = recorder.stop_episode()
        assert stats is not None and stats.written == 60 and stats.lost == 0
    finally:
        recorder.shutdown()
        executor.shutdown()
        recorder.destroy_node()
        pub_node.destroy_node()
