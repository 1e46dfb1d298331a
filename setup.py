"""ament_python setup for robot_policy_ros.

Works both under ``colcon build`` in a ROS 2 workspace and with ``pip install`` in a
plain virtual environment (rclpy and messages from the ros-jazzy-* wheels).
"""

from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "robot_policy_ros"


def config_data_files() -> list[tuple[str, list[str]]]:
    """Install config/**/*.yaml and config/*.xml keeping the layout (config/arms/...)."""
    groups: dict[str, list[str]] = {}
    for path in sorted(glob("config/**/*.yaml", recursive=True) + glob("config/*.xml")):
        parent = str(Path(path).parent)
        groups.setdefault(f"share/{PACKAGE}/{parent}", []).append(path)
    return sorted(groups.items())


def requirements() -> list[str]:
    lines = Path(__file__).with_name("requirements.txt").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", sorted(glob("launch/*.launch.py"))),
        *config_data_files(),
    ],
    install_requires=requirements(),
    python_requires=">=3.10",
    zip_safe=True,
    maintainer="robot_policy_ros developers",
    maintainer_email="dev@robot-policy-ros.invalid",
    description="Camera-to-motor learned policies (MLP, ACT, Diffusion Policy) for ROS 2.",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "policy_node = robot_policy_ros.nodes.policy_node:main",
            "command_streamer = robot_policy_ros.nodes.command_streamer:main",
            "policy_stack = robot_policy_ros.nodes.policy_stack:main",
            "camera_node = robot_policy_ros.nodes.camera_node:main",
            "sim_robot = robot_policy_ros.nodes.sim_robot:main",
            "scripted_expert = robot_policy_ros.nodes.scripted_expert:main",
            "bag_recorder = robot_policy_ros.nodes.bag_recorder:main",
            "episode_driver = robot_policy_ros.nodes.episode_driver:main",
            "robot-policy = robot_policy_ros.cli:main",
        ],
    },
)
