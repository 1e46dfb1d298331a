"""The one sim-episode client (robot_policy_ros.nodes.episode_client) against the sim's
episode interface (an in-process stand-in with the same topic, QoS and service)."""

from __future__ import annotations

import pytest
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from ros_test_utils import FakeSimEpisodes
from std_msgs.msg import String

from robot_policy_ros.nodes.episode_client import EPISODE_QOS, EpisodeClient

pytestmark = pytest.mark.ros


@pytest.fixture
def setup(rclpy_context):
    executor = SingleThreadedExecutor(context=rclpy_context)
    sim_node = Node("fake_sim", context=rclpy_context)
    client_node = Node("episode_client_test", context=rclpy_context)
    executor.add_node(sim_node)
    executor.add_node(client_node)
    sim = FakeSimEpisodes(sim_node)
    seen: list[dict] = []
    client = EpisodeClient(client_node, "sim_robot", executor=executor, on_episode=seen.append)
    assert client.wait_for_sim(10.0)
    yield sim, client, seen, sim_node
    executor.shutdown()
    sim_node.destroy_node()
    client_node.destroy_node()


def test_reset_starts_the_next_episode_and_returns_its_state(setup) -> None:
    sim, client, _, _ = setup
    assert client.reset()["index"] == 1
    assert client.reset()["index"] == 2
    assert sim.resets == [0, 1]


def test_wait_done_returns_the_outcome_of_that_episode(setup) -> None:
    sim, client, seen, _ = setup
    index = client.reset()["index"]
    assert client.wait_until(lambda: client.current().get("index") == index, 5.0)
    sim.finish(success=True)
    done = client.wait_done(index, 5.0)
    assert done["index"] == index and done["done"] and done["success"]
    assert "timed_out_waiting" not in done
    assert seen and seen[-1]["done"]  # the hook saw every message


def test_wait_done_times_out_as_a_failed_episode(setup) -> None:
    _, client, _, _ = setup
    index = client.reset()["index"]
    done = client.wait_done(index, 0.5)
    assert done["timed_out_waiting"] and not done["success"] and done["index"] == index


def test_refused_reset_raises_with_the_sims_reason(setup) -> None:
    sim, client, _, _ = setup
    sim.refuse = "arm not homed"
    with pytest.raises(RuntimeError, match="arm not homed"):
        client.reset()


def test_missing_sim_times_out(rclpy_context) -> None:
    executor = SingleThreadedExecutor(context=rclpy_context)
    node = Node("lonely_client", context=rclpy_context)
    executor.add_node(node)
    try:
        client = EpisodeClient(node, "/nowhere/sim_robot", executor=executor)
        with pytest.raises(TimeoutError, match="/nowhere/sim_robot/reset"):
            client.reset(timeout=0.5)
    finally:
        executor.shutdown()
        node.destroy_node()


def test_non_json_episode_message_is_ignored(setup) -> None:
    _, client, _, sim_node = setup
    index = client.reset()["index"]
    assert client.wait_until(lambda: client.current().get("index") == index, 5.0)
    bad = sim_node.create_publisher(String, "sim_robot/episode", EPISODE_QOS)
    bad.publish(String(data="not json"))
    client.wait_until(lambda: False, 0.3)
    assert client.current()["index"] == index  # the last good state stays
