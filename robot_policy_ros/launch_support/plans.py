"""Whole-launch plans: what each launch file's ``OpaqueFunction`` starts, decided from its
arguments (nodes with their parameters and remappings, the recorder, the log lines).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from robot_policy_ros.launch_support.arguments import (
    _arg,
    _choice,
    launch_namespace,
    log_level_arg,
    parse_bool,
    parse_positive_float,
)
from robot_policy_ros.launch_support.checkpoint_info import (
    check_preset_matches_checkpoint,
    limits_from_checkpoint,
    read_checkpoint_info,
    write_limits_file,
)
from robot_policy_ros.launch_support.common import (
    GAZEBO_CONTROLLERS,
    NO_PRESET,
    PACKAGE,
    RECORDERS,
    PresetError,
    validate_topic_name,
)
from robot_policy_ros.launch_support.parameters import (
    node_parameters,
    remappings,
    resolve_topic,
    sim_robot_parameters,
    topic_plan,
)
from robot_policy_ros.launch_support.presets import ArmPreset, load_preset
from robot_policy_ros.launch_support.recording import (
    bag_output_dir,
    bag_record_cmd,
    demo_record_topics,
    policy_record_topics,
)


@dataclass
class NodePlan:
    """One node to start: launch_ros ``Node`` keyword arguments (package-relative)."""

    executable: str
    name: str
    parameters: list[dict[str, Any] | str] = field(default_factory=list)
    remappings: list[tuple[str, str]] = field(default_factory=list)
    arguments: list[str] = field(default_factory=list)
    package: str = PACKAGE
    #: Stop the whole launch when this node exits (a policy stack missing a node is unsafe
    #: to leave half-running, and a recording without its robot is useless).
    required: bool = True


@dataclass
class LaunchPlan:
    """Everything a launch file starts, decided from its arguments."""

    nodes: list[NodePlan]
    namespace: str = ""
    log_level: str = "info"
    record_cmd: list[str] | None = None
    infos: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    preset: ArmPreset | None = None


def _preset_or_none(args: Mapping[str, str], share_dir: str | os.PathLike) -> ArmPreset | None:
    arm = _arg(args, "arm")
    return None if arm == NO_PRESET else load_preset(arm, share_dir)


def plan_policy_launch(
    args: Mapping[str, str],
    share_dir: str | os.PathLike,
    now: datetime | None = None,
    scratch_dir: str | os.PathLike | None = None,
) -> LaunchPlan:
    """Plan policy.launch.py: validate preset vs checkpoint, then nodes and recording.

    Raises :class:`PresetError` (or its :class:`PresetMismatchError`) to stop the launch.
    """
    args = dict(args)
    preset = _preset_or_none(args, share_dir)
    checkpoint = _arg(args, "checkpoint")
    if not checkpoint:
        node_parameters(args, preset)  # raises the "checkpoint:= is required" message
    info = read_checkpoint_info(checkpoint)
    limits_file = ""
    if preset is not None:
        # Its camera warnings ignore camera_topics:=...; topic_plan's below account for them.
        check_preset_matches_checkpoint(preset, info)
    else:
        limits_file = str(write_limits_file(limits_from_checkpoint(info), scratch_dir))
    plan, warnings = topic_plan(args, preset, info.camera_names)
    params = node_parameters(args, preset, limits_file=limits_file, plan=plan)
    rules = remappings(plan)
    ns = launch_namespace(args)
    nodes = [
        NodePlan("policy_node", "policy_node", params["policy_node"], rules),
        NodePlan("command_streamer", "command_streamer", params["command_streamer"], rules),
    ]
    infos = [
        f"arm preset: {preset.name} ({preset.path})"
        if preset is not None
        else f"no arm preset: limits from the checkpoint ({limits_file})",
        f"checkpoint {checkpoint}: joints {list(info.joint_names)}, cameras "
        f"{list(info.camera_names)}",
        f"joint_states <- {resolve_topic(plan.joint_states, ns)}; commands "
        f"({plan.command_interface}) -> {resolve_topic(plan.command, ns)}",
    ] + [f"camera {c} <- {resolve_topic(t, ns)}" for c, t in plan.cameras.items()]
    record_cmd = None
    if parse_bool(_arg(args, "record") or "false", "record"):
        out = bag_output_dir(_arg(args, "bag_dir") or "bags", "policy", now)
        record_cmd = bag_record_cmd(
            policy_record_topics(plan, ns),
            out,
            use_sim_time=parse_bool(_arg(args, "use_sim_time") or "false", "use_sim_time"),
        )
        infos.append(f"recording to {out}")
    return LaunchPlan(nodes, ns, log_level_arg(args), record_cmd, infos, warnings, preset)


def plan_record_demos(
    args: Mapping[str, str], share_dir: str | os.PathLike, now: datetime | None = None
) -> LaunchPlan:
    """Plan record_demos.launch.py: sim + scripted expert (sim:=true) and a recorder."""
    args = dict(args)
    preset = load_preset(_arg(args, "arm") or "sim_arm", share_dir)
    sim = parse_bool(_arg(args, "sim") or "true", "sim")
    ns = launch_namespace(args)
    recorder = _choice(args, "recorder", RECORDERS) or "ros2bag"
    topics = demo_record_topics(args, preset, sim, ns)
    out = bag_output_dir(_arg(args, "bag_dir") or "demos", "demo", now)
    use_sim_time = parse_bool(_arg(args, "use_sim_time") or "false", "use_sim_time")
    nodes: list[NodePlan] = []
    infos = [f"arm preset: {preset.name} ({preset.path})", f"recording {topics} to {out}"]
    if sim:
        sim_params = sim_robot_parameters(args)
        nodes.append(NodePlan("sim_robot", "sim_robot", list(sim_params)))
        expert_rules = [
            (src, dst)
            for src, dst in (
                ("joint_states", preset.joint_states_topic),
                ("forward_position_controller/commands", preset.command_topic),
            )
            if src != dst
        ]
        nodes.append(NodePlan("scripted_expert", "scripted_expert", list(sim_params), expert_rules))
        episodes = _arg(args, "episodes") or "0"
        delay = _arg(args, "reset_delay_s") or "1.0"
        if not episodes.isdigit():
            raise PresetError(f"launch argument episodes:={episodes!r} must be a whole number >= 0")
        if parse_positive_float(delay, "reset_delay_s") > 3600:
            raise PresetError(f"launch argument reset_delay_s:={delay!r} is over an hour")
        nodes.append(
            NodePlan(
                "episode_driver",
                "episode_driver",
                [
                    {
                        "use_sim_time": use_sim_time,
                        "episodes": int(episodes),
                        "reset_delay_s": float(delay),
                    }
                ],
            )
        )
        infos.append(
            "teleoperator: the sim's scripted expert; "
            + (f"{episodes} episodes" if episodes != "0" else "episodes until Ctrl-C")
        )
    record_cmd = None
    if recorder == "ros2bag":
        record_cmd = bag_record_cmd(topics, out, use_sim_time=use_sim_time)
    else:
        # bag_recorder writes one bag per episode under output_dir; in the sim the
        # episode topic starts and closes them, on a real robot its ~/start and ~/stop do.
        rec_params: dict[str, Any] = {
            "output_dir": out,
            "topics": topics,
            "episode_topic": "sim_robot/episode" if sim else "",
            "robot_config": preset.path,
        }
        if use_sim_time:
            rec_params["use_sim_time"] = True
        rec_file = _arg(args, "recorder_params_file")
        params: list[dict[str, Any] | str] = [rec_params]
        if rec_file:
            if not Path(rec_file).expanduser().is_file():
                raise PresetError(
                    f"launch argument recorder_params_file:={rec_file} does not exist"
                )
            params.append(str(Path(rec_file).expanduser()))
        nodes.append(NodePlan("bag_recorder", "bag_recorder", params))
        if not sim:
            infos.append(
                "bag_recorder: start and stop each episode with "
                f"ros2 service call {resolve_topic('bag_recorder', ns)}/start std_srvs/srv/Trigger "
                "(and .../stop)"
            )
    return LaunchPlan(nodes, ns, log_level_arg(args), record_cmd, infos, [], preset)


def gazebo_arguments(args: Mapping[str, str]) -> dict[str, str]:
    """policy.launch.py arguments for a gz sim + gz_ros2_control robot.

    Forces ``use_sim_time:=true``; the controller picks the command interface and topic
    unless ``command_topic``/``command_interface`` are given explicitly.
    """
    controller = _arg(args, "controller") or "forward_position_controller"
    if controller not in GAZEBO_CONTROLLERS:
        raise PresetError(
            f"launch argument controller:={controller!r} must be one of "
            f"{', '.join(GAZEBO_CONTROLLERS)}"
        )
    interface, topic = GAZEBO_CONTROLLERS[controller]
    out = {k: v for k, v in args.items() if v is not None}
    out["use_sim_time"] = "true"
    out["command_interface"] = _arg(args, "command_interface") or interface
    out["command_topic"] = _arg(args, "command_topic") or topic
    gz_cam = _arg(args, "gz_camera_topic")
    if gz_cam and not _arg(args, "camera_topics") and not _arg(args, "camera_topic"):
        # parameter_bridge publishes the image under the same name on the ROS side.
        out["camera_topic"] = gz_cam
    return out


def gz_bridge_arguments(bridge_clock: bool, gz_camera_topic: str = "") -> list[str]:
    """ros_gz_bridge ``parameter_bridge`` arguments bridging gz -> ROS (clock, camera)."""
    bridges = []
    if bridge_clock:
        bridges.append("/clock@rosgraph_msgs/msg/Clock[gz.msgs.Clock")
    if gz_camera_topic:
        problem = validate_topic_name(gz_camera_topic)
        if problem:
            raise PresetError(f"gz_camera_topic {gz_camera_topic!r} is invalid: {problem}")
        bridges.append(f"{gz_camera_topic}@sensor_msgs/msg/Image[gz.msgs.Image")
    return bridges
