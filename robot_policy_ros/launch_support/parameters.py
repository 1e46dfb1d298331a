"""Launch arguments (and the arm preset) -> node parameters and topic remappings.

For each value: an explicit argument wins over the preset, the preset over the node's own
default; a ``params_file`` is applied last and overrides them all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robot_policy_ros.launch_support.arguments import (
    _arg,
    _checked_topic,
    _choice,
    parse_bool,
    parse_camera_topics,
    parse_positive_float,
)
from robot_policy_ros.launch_support.common import (
    BLENDING_MODES,
    COMMAND_INTERFACES,
    DTYPES,
    IMAGE_TRANSPORTS,
    PresetError,
)
from robot_policy_ros.launch_support.presets import ArmPreset
from robot_policy_ros.params.policy_node import DEVICE_RE


@dataclass(frozen=True)
class TopicPlan:
    """Where the policy stack's inputs and outputs go after remapping."""

    joint_states: str
    command: str
    command_interface: str
    cameras: dict[str, str]  # checkpoint camera name -> image (base) topic
    image_transport: str = "raw"


def topic_plan(
    args: Mapping[str, str], preset: ArmPreset | None, camera_names: Sequence[str] = ()
) -> tuple[TopicPlan, list[str]]:
    """Resolve topics: explicit argument > preset > the nodes' own relative names.

    ``camera_names`` are the checkpoint's cameras (the policy_node subscribes to
    ``<camera>/image_raw``). Returns the plan and warnings for cameras left unmapped.
    """
    warnings: list[str] = []
    explicit = parse_camera_topics(_arg(args, "camera_topics"))
    single = _checked_topic(args, "camera_topic")
    names = list(camera_names) or (
        [c.name for c in preset.cameras] if preset is not None else list(explicit)
    )
    if single:
        if len(names) != 1:
            raise PresetError(
                f"launch argument camera_topic:={single} maps a single camera, but the checkpoint "
                f"has cameras {names}; use camera_topics:=name=topic,... instead"
            )
        explicit.setdefault(names[0], single)
    preset_cams = preset.camera_topics if preset is not None else {}
    cameras: dict[str, str] = {}
    for cam in names:
        if cam in explicit:
            cameras[cam] = explicit[cam]
        elif cam in preset_cams:
            cameras[cam] = preset_cams[cam]
        else:
            cameras[cam] = f"{cam}/image_raw"
            if preset is not None or explicit:
                warnings.append(
                    f"no topic given for camera '{cam}'; using '{cam}/image_raw' in the launch "
                    f"namespace (set camera_topics:={cam}=/your/image_topic)"
                )
    unknown = sorted(set(explicit) - set(names))
    if unknown and camera_names:
        raise PresetError(
            f"launch argument camera_topics names camera(s) {unknown} the checkpoint does not "
            f"have; its cameras are {list(camera_names)}"
        )
    interface = _choice(args, "command_interface", COMMAND_INTERFACES) or (
        preset.command_interface if preset is not None else "position_array"
    )
    plan = TopicPlan(
        joint_states=_checked_topic(args, "joint_states_topic")
        or (preset.joint_states_topic if preset is not None else "joint_states"),
        command=_checked_topic(args, "command_topic")
        or (preset.command_topic if preset is not None else "joint_commands"),
        command_interface=interface,
        cameras=cameras,
        image_transport=_choice(args, "image_transport", IMAGE_TRANSPORTS) or "raw",
    )
    return plan, warnings


def remappings(plan: TopicPlan) -> list[tuple[str, str]]:
    """Remap rules for policy_node and command_streamer (both get the same list).

    The nodes use relative names (``joint_states``, ``<camera>/image_raw``,
    ``joint_commands``); rules that would map a name onto itself are left out.
    """
    rules = [("joint_states", plan.joint_states), ("joint_commands", plan.command)]
    for cam, topic in plan.cameras.items():
        if plan.image_transport == "compressed":
            rules.append((f"{cam}/image_raw/compressed", f"{topic}/compressed"))
        else:
            rules.append((f"{cam}/image_raw", topic))
    return [(src, dst) for src, dst in rules if src != dst]


def node_parameters(
    args: Mapping[str, str],
    preset: ArmPreset | None,
    limits_file: str = "",
    plan: TopicPlan | None = None,
) -> dict[str, list[dict[str, Any] | str]]:
    """Launch arguments -> the ``parameters`` list of each node.

    Each list is ``[values from arguments and preset]`` followed by ``params_file`` when
    given, so a params file overrides any parameter (launch_ros applies entries in order).
    Empty arguments are left out, so the node's own default applies.
    """
    checkpoint = _arg(args, "checkpoint")
    if not checkpoint:
        raise PresetError(
            "launch argument checkpoint:= is required: a checkpoint directory (make a random "
            "one for trying things out with `robot-policy init-checkpoint`)"
        )
    common: dict[str, Any] = {"checkpoint": checkpoint}
    if _arg(args, "autostart"):
        common["autostart"] = parse_bool(args["autostart"], "autostart")
    if _arg(args, "use_sim_time"):
        common["use_sim_time"] = parse_bool(args["use_sim_time"], "use_sim_time")

    policy: dict[str, Any] = dict(common)
    if _arg(args, "device"):
        device = _arg(args, "device")
        if not DEVICE_RE.match(device):
            raise PresetError(f"launch argument device:={device!r} must be cpu, cuda or cuda:N")
        policy["device"] = device
    for name, choices in (("dtype", DTYPES), ("image_transport", IMAGE_TRANSPORTS)):
        value = _choice(args, name, choices)
        if value:
            policy[name] = value

    streamer: dict[str, Any] = dict(common)
    if limits_file:
        streamer["limits_file"] = limits_file
    elif preset is not None and preset.path:
        # The preset file itself is a valid limits_file (same `joints` schema).
        streamer["limits_file"] = preset.path
    if _arg(args, "control_rate_hz"):
        streamer["control_rate_hz"] = parse_positive_float(
            args["control_rate_hz"], "control_rate_hz"
        )
    elif preset is not None:
        streamer["control_rate_hz"] = float(preset.control_rate_hz)
    interface = plan.command_interface if plan is not None else None
    interface = interface or _choice(args, "command_interface", COMMAND_INTERFACES)
    if not interface and preset is not None:
        interface = preset.command_interface
    if interface:
        streamer["command_interface"] = interface
    blending = _choice(args, "blending", BLENDING_MODES)
    if blending:
        streamer["blending"] = blending

    params_file = _arg(args, "params_file")
    if params_file and not Path(params_file).expanduser().is_file():
        raise PresetError(f"launch argument params_file:={params_file} does not exist")
    tail: list[dict[str, Any] | str] = [str(Path(params_file).expanduser())] if params_file else []
    return {"policy_node": [policy, *tail], "command_streamer": [streamer, *tail]}


def resolve_topic(topic: str, namespace: str = "") -> str:
    """Absolute name of ``topic`` as seen from a node in ``namespace``."""
    if topic.startswith("/"):
        return topic
    ns = namespace.strip("/")
    return f"/{ns}/{topic}" if ns else f"/{topic}"


def sim_robot_parameters(args: Mapping[str, str]) -> list[dict[str, Any] | str]:
    """Parameters of the embedded sim_robot (and scripted_expert): sim time and a params file."""
    params: list[dict[str, Any] | str] = []
    if _arg(args, "use_sim_time"):
        params.append({"use_sim_time": parse_bool(args["use_sim_time"], "use_sim_time")})
    sim_file = _arg(args, "sim_params_file")
    if sim_file:
        if not Path(sim_file).expanduser().is_file():
            raise PresetError(f"launch argument sim_params_file:={sim_file} does not exist")
        params.append(str(Path(sim_file).expanduser()))
    return params
