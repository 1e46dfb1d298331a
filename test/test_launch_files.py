"""The launch files under real ROS 2 launch (launch_pytest): commands reach the remapped
command topic at the configured rate, and a preset/checkpoint mismatch stops the launch.

These need ROS 2 Jazzy's launch, launch_ros and launch_pytest (a sourced ROS 2 install);
without them the whole module is skipped. The nodes run from this checkout (or from the
install space when the package is installed), in a DDS domain of the test's own.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

launch_pytest = pytest.importorskip(
    "launch_pytest",
    reason="ROS 2 launch is not installed; these tests run in a sourced ROS 2 Jazzy environment",
)
pytest.importorskip(
    "launch_ros",
    reason="ROS 2 launch_ros is not installed; these tests run in a sourced ROS 2 Jazzy install",
)
# The launch modules are imported by their full paths: a bare `import launch` could also find
# this repository's launch/ folder, which holds the launch files, not the library.
from launch.actions import IncludeLaunchDescription, SetEnvironmentVariable  # noqa: E402
from launch.launch_description import LaunchDescription  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from ros_test_utils import REPO_ROOT  # noqa: E402


def _launch_pytest_supports_this_pytest() -> bool:
    # launch_pytest reads `fixture._pytestfixturefunction`, which pytest >= 8.4 no longer sets
    # (ROS 2 Jazzy ships pytest 7.4); under a newer pytest it fails at collection.
    return hasattr(launch_pytest.fixture(lambda: None), "_pytestfixturefunction")


def launch_test(fixture):
    """``pytest.mark.launch(fixture=...)``; where launch_pytest cannot run, a plain skip."""
    if _launch_pytest_supports_this_pytest():
        return pytest.mark.launch(fixture=fixture)
    reason = (
        f"launch_pytest cannot run under pytest {pytest.__version__}; use the pytest of the "
        "ROS 2 Jazzy install (7.x)"
    )

    def replace(test):
        def skipped():  # not the test itself: a generator test needs launch_pytest to run
            pytest.skip(reason)

        skipped.__name__ = test.__name__
        return skipped

    return replace


# Not pytest.mark.launch at module level: launch_pytest reads that marker as "this test runs
# under a launch fixture", which only the tests marked with a fixture do.
pytestmark = [pytest.mark.ros, pytest.mark.slow]

LAUNCH_DIR = REPO_ROOT / "launch"
SIM_JOINTS = ["base_yaw", "shoulder_pitch", "elbow_pitch", "wrist_pitch"]
RATE_HZ = 20.0
FIRST_COMMAND_TIMEOUT_S = 90.0  # node start-up imports torch; slow on a loaded 2-core box
MEASURE_S = 4.0


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A random MLP checkpoint for the sim arm's joints and one small front camera."""
    out = tmp_path_factory.mktemp("ckpt") / "mlp"
    cmd = [
        sys.executable,
        "-m",
        "robot_policy_ros.cli",
        "init-checkpoint",
        "--policy",
        "mlp",
        "--joints",
        ",".join(SIM_JOINTS),
        "--cameras",
        "front:64x64",
        "--fps",
        "10",
        "--out",
        str(out),
    ]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    subprocess.run(cmd, check=True, cwd=REPO_ROOT, env=env, timeout=240)
    return out


def _env_actions(domain_id: int) -> list:
    return [
        SetEnvironmentVariable("ROS_DOMAIN_ID", str(domain_id)),
        SetEnvironmentVariable("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST"),
        SetEnvironmentVariable("OMP_NUM_THREADS", "1"),
        SetEnvironmentVariable("PYTHONUNBUFFERED", "1"),
    ]


def _include(name: str, **arguments: str) -> IncludeLaunchDescription:
    return IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(LAUNCH_DIR / name)),
        launch_arguments=list(arguments.items()),
    )


class CommandProbe:
    """An rclpy node in the test's domain: feeds fake robot inputs, times the commands."""

    def __init__(self, domain_id: int, command_topic: str, inputs: dict[str, str] | None = None):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from sensor_msgs.msg import Image, JointState
        from std_msgs.msg import Float64MultiArray

        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = Node("launch_test_probe", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.stamps: list[float] = []
        self.commands: list[list[float]] = []
        self.node.create_subscription(Float64MultiArray, command_topic, self._on_command, 50)
        self._timers = []
        if inputs:  # act as the robot: joint states and a camera
            js_pub = self.node.create_publisher(JointState, inputs["joint_states"], 10)
            img_pub = self.node.create_publisher(Image, inputs["camera"], 10)

            def joint_states() -> None:
                msg = JointState(name=SIM_JOINTS, position=[0.1] * len(SIM_JOINTS))
                msg.header.stamp = self.node.get_clock().now().to_msg()
                js_pub.publish(msg)

            def image() -> None:
                msg = Image(height=64, width=64, encoding="rgb8", step=64 * 3)
                msg.data = bytes(64 * 64 * 3)
                msg.header.stamp = self.node.get_clock().now().to_msg()
                img_pub.publish(msg)

            self._timers = [
                self.node.create_timer(0.02, joint_states),
                self.node.create_timer(0.1, image),
            ]

    def _on_command(self, msg) -> None:
        self.stamps.append(time.monotonic())
        self.commands.append(list(msg.data))

    def spin_for(self, seconds: float, until=None) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not (until and until()):
            self.executor.spin_once(timeout_sec=0.02)

    def measured_rate(self) -> float:
        """Commands per second over the measuring window after the first command."""
        self.spin_for(FIRST_COMMAND_TIMEOUT_S, until=lambda: len(self.stamps) > 0)
        assert self.stamps, "no command reached the remapped command topic"
        first = len(self.stamps)
        self.spin_for(MEASURE_S)
        window = self.stamps[first - 1 :]
        assert len(window) > 2, f"only {len(window)} commands in {MEASURE_S} s"
        return (len(window) - 1) / (window[-1] - window[0])

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()


def _assert_commands_safe(commands: list[list[float]], preset: dict) -> None:
    for cmd in commands:
        assert len(cmd) == len(preset["joints"])
        for value, joint in zip(cmd, preset["joints"], strict=True):
            assert math.isfinite(value)
            assert joint["lower"] - 1e-9 <= value <= joint["upper"] + 1e-9


# ---------------------------------------------------------------- policy.launch.py


@pytest.fixture(scope="module")
def my_arm(tmp_path_factory) -> Path:
    """A user preset ("bring your own arm"): the sim joints on made-up robot topics."""
    preset = yaml.safe_load((REPO_ROOT / "config" / "arms" / "sim_arm.yaml").read_text())
    preset.update(
        name="launch_test_arm",
        joint_states_topic="/lt_robot/joint_states",
        command_topic="/lt_robot/position_commands",
        cameras=[{"name": "front", "topic": "/lt_cam/image_raw"}],
    )
    path = tmp_path_factory.mktemp("arm") / "launch_test_arm.yaml"
    path.write_text(yaml.safe_dump(preset, sort_keys=False))
    return path


@launch_pytest.fixture
def policy_launch(checkpoint, my_arm, ros_domain):
    return LaunchDescription(
        [
            *_env_actions(ros_domain),
            _include(
                "policy.launch.py",
                checkpoint=str(checkpoint),
                arm=str(my_arm),
                control_rate_hz=str(RATE_HZ),
            ),
            launch_pytest.actions.ReadyToTest(),
        ]
    )


@launch_test(policy_launch)
def test_policy_launch_streams_commands_to_the_remapped_topic_at_the_configured_rate(
    ros_domain, my_arm
):
    probe = CommandProbe(
        ros_domain,
        "/lt_robot/position_commands",
        inputs={"joint_states": "/lt_robot/joint_states", "camera": "/lt_cam/image_raw"},
    )
    try:
        rate = probe.measured_rate()
        assert rate == pytest.approx(RATE_HZ, rel=0.25)
        _assert_commands_safe(probe.commands, yaml.safe_load(my_arm.read_text()))
    finally:
        probe.close()


# ---------------------------------------------------------------- sim.launch.py


@pytest.fixture(scope="module")
def bag_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bags")


RECORD = shutil.which("ros2") is not None


@launch_pytest.fixture
def sim_launch(checkpoint, ros_domain, bag_dir, tmp_path_factory):
    sim_params = tmp_path_factory.mktemp("sim") / "sim.yaml"
    # A small, slow camera keeps the shared test machine responsive.
    sim_params.write_text(
        "/**:\n  ros__parameters:\n    image_width: 128\n    image_height: 96\n"
        "    camera_rate_hz: 10.0\n"
    )
    return LaunchDescription(
        [
            *_env_actions(ros_domain),
            _include(
                "sim.launch.py",
                checkpoint=str(checkpoint),
                namespace="lt_sim",
                control_rate_hz=str(RATE_HZ),
                sim_params_file=str(sim_params),
                record="true" if RECORD else "false",
                bag_dir=str(bag_dir),
            ),
            launch_pytest.actions.ReadyToTest(),
        ]
    )


@launch_test(sim_launch)
def test_sim_launch_drives_the_sim_through_its_controller_topic(ros_domain, bag_dir):
    probe = CommandProbe(ros_domain, "/lt_sim/forward_position_controller/commands")
    try:
        rate = probe.measured_rate()
        assert rate == pytest.approx(RATE_HZ, rel=0.25)
        _assert_commands_safe(
            probe.commands,
            yaml.safe_load((REPO_ROOT / "config" / "arms" / "sim_arm.yaml").read_text()),
        )
    finally:
        probe.close()
    yield  # the launch shuts down here; ros2 bag record then writes its metadata
    if RECORD:
        (bag,) = [p for p in bag_dir.iterdir() if p.name.startswith("policy_")]
        meta = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
        counts = {
            t["topic_metadata"]["name"]: t["message_count"]
            for t in meta["topics_with_message_count"]
        }
        assert counts.get("/lt_sim/forward_position_controller/commands", 0) > 0
        assert counts.get("/lt_sim/joint_states", 0) > 0


# ---------------------------------------------------------------- mismatch stops the launch

_RUN_LAUNCH = """
import sys
from launch import LaunchService
from launch.actions import IncludeLaunchDescription
from launch.launch_description import LaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
service = LaunchService()
arguments = [tuple(a.split(':=', 1)) for a in sys.argv[2:]]
service.include_launch_description(LaunchDescription([IncludeLaunchDescription(
    PythonLaunchDescriptionSource(sys.argv[1]), launch_arguments=arguments)]))
sys.exit(service.run())
"""


def test_mismatching_preset_stops_the_launch_with_both_joint_lists(checkpoint, node_env):
    env = dict(node_env)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _RUN_LAUNCH,
            str(LAUNCH_DIR / "policy.launch.py"),
            f"checkpoint:={checkpoint}",
            "arm:=so101",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",  # not the repository root, whose launch/ folder is not the launch library
        env=env,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert str(SIM_JOINTS) in out, out
    assert (
        str(["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"])
        in out
    )
    assert "process started" not in out, "nothing may start when the preset does not match"
