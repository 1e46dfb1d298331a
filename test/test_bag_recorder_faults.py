"""bag_recorder bags checked by an independent reader, and a hard kill mid-episode."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from robot_policy_ros.data.bag_writer import bag_is_complete, recover_bag

pytest.importorskip("rclpy")
from test_bag_recorder import Harness, _bag_counts, _start_recorder

pytestmark = pytest.mark.ros

FLUSH_S = 0.2


def test_bag_readable_by_independent_mcap_reader(start_node, rclpy_context, tmp_path: Path):
    """The `mcap` + `mcap-ros2-support` packages (not rosbags) read topics, counts, contents."""
    from mcap_ros2.reader import read_ros2_messages

    topics = ["/rec_mcap/chatter", "/rec_mcap/joint_states"]
    proc = _start_recorder(
        start_node, tmp_path, topics, "-p", "storage:=mcap", "-p", "episode_topic:=''"
    )
    h = Harness(rclpy_context, topics)
    try:
        h.wait_matched()
        started = h.call("start")
        assert started.success, started.message
        h.publish(n_chatter=50, n_joints=40)
        h.wait_received({topics[0]: 50, topics[1]: 40})
        assert h.call("stop").success
    finally:
        h.close()
    files = sorted(Path(started.message).glob("*.mcap"))
    assert len(files) == 1
    chatter, joints = [], []
    for m in read_ros2_messages(str(files[0])):
        (chatter if m.channel.topic == topics[0] else joints).append(m)
    assert {m.channel.topic for m in chatter + joints} == set(topics)
    assert [m.ros_msg.data for m in chatter] == [f"m{i}" for i in range(50)]
    assert len(joints) == 40
    for i, m in enumerate(joints):
        assert list(m.ros_msg.name) == ["j1", "j2"]
        assert list(m.ros_msg.position) == [float(i), 2.0 * i]
        assert m.ros_msg.header.stamp.sec == 100 + i
    assert proc.alive()


def test_sigkill_mid_episode_loses_at_most_the_last_flush_interval(
    start_node, rclpy_context, tmp_path: Path
):
    """Stated bound: a hard kill loses only what arrived in the last ``flush_interval_s``.

    Everything received more than one flush interval before the kill is on disk, and
    ``bag_recorder --recover`` (recover_bag) turns the partial bag into a complete one.
    """
    topics = ["/rec_kill/chatter", "/rec_kill/joint_states"]
    proc = _start_recorder(
        start_node,
        tmp_path,
        topics,
        "-p",
        "autostart:=true",
        "-p",
        "episode_topic:=''",
        "-p",
        f"flush_interval_s:={FLUSH_S}",
    )
    h = Harness(rclpy_context, topics)
    try:
        h.wait_matched()
        h.publish(n_chatter=120, n_joints=80)
        h.wait_received({topics[0]: 120, topics[1]: 80})
    finally:
        h.close()
    time.sleep(5 * FLUSH_S)  # more than one flush interval since the last message
    proc.proc.send_signal(signal.SIGKILL)
    proc.proc.wait(timeout=20)
    bag = tmp_path / "episode_000000"
    assert not bag_is_complete(bag)  # no metadata.yaml: it was killed, not closed
    report = recover_bag(bag)
    assert bag_is_complete(bag)
    assert report["recovered"] == 200
    assert _bag_counts(bag) == {topics[0]: 120, topics[1]: 80}
