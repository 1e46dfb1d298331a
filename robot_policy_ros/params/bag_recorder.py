"""bag_recorder's parameter table (no rclpy: read by the node, launch validation and docs)."""

from __future__ import annotations

from robot_policy_ros.core.params import ParamSpec
from robot_policy_ros.data.bag_writer import STORAGES  # the writer's own list

DEFAULT_TOPICS = [
    "joint_states",
    "front/image_raw",
    "forward_position_controller/commands",
]

SPECS: list[ParamSpec] = [
    ParamSpec("output_dir", "bags", "Directory that receives one bag per episode."),
    ParamSpec(
        "topics",
        list(DEFAULT_TOPICS),
        "Topics to record; relative names resolve in the recorder's namespace.",
        check=lambda v: None if v else "record at least one topic",
    ),
    ParamSpec("storage", "mcap", "rosbag2 storage plugin of the bags.", choices=STORAGES),
    ParamSpec(
        "episode_topic",
        "sim_robot/episode",
        "std_msgs/String JSON episode topic that starts/stops bags ('' to disable).",
    ),
    ParamSpec("autostart", False, "Start recording an episode as soon as the node runs."),
    ParamSpec(
        "join_late_s",
        1.0,
        "Record an already running episode only if it started less than this ago (s).",
        min_value=0.0,
    ),
    ParamSpec(
        "max_queue",
        200000,
        "Most messages waiting to be written before new ones are dropped (and reported).",
        min_value=10,
    ),
    ParamSpec(
        "max_queue_mb",
        4096,
        "Most megabytes waiting to be written before new messages are dropped (reported).",
        min_value=1,
    ),
    ParamSpec(
        "flush_interval_s",
        1.0,
        "How often written data is made durable on disk (0 = only at close).",
        min_value=0.0,
    ),
    ParamSpec(
        "qos_depth",
        0,
        "Subscription history: 0 = keep_all (reliable publishers wait rather than lose "
        "messages in a burst), N > 0 = keep_last N.",
        min_value=0,
    ),
    ParamSpec("robot_config", "", "Robot/arm YAML file stored in each episode.json ('' = none)."),
    ParamSpec(
        "discovery_period_s",
        0.5,
        "How often the graph is checked for topics to subscribe to (s).",
        min_value=0.05,
    ),
]
