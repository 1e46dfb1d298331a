"""What gets recorded, and the ``ros2 bag record`` command that records it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

from robot_policy_ros.launch_support.arguments import _arg
from robot_policy_ros.launch_support.common import PresetError, validate_topic_name
from robot_policy_ros.launch_support.parameters import TopicPlan, resolve_topic, topic_plan
from robot_policy_ros.launch_support.presets import ArmPreset


def policy_record_topics(plan: TopicPlan, namespace: str = "") -> list[str]:
    """Inputs and outputs of the policy stack, as absolute topic names, for ``record:=true``."""
    topics = [plan.joint_states]
    for topic in plan.cameras.values():
        topics.append(f"{topic}/compressed" if plan.image_transport == "compressed" else topic)
    topics += ["action_chunk", plan.command, "e_stop", "/diagnostics"]
    return _unique(resolve_topic(t, namespace) for t in topics)


def _unique(items: Iterable[str]) -> list[str]:
    out: list[str] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def bag_output_dir(bag_dir: str, prefix: str, now: datetime | None = None) -> str:
    """A fresh bag folder ``<bag_dir>/<prefix>_<YYYYmmdd_HHMMSS>`` (ros2 bag refuses existing)."""
    stamp = (now or datetime.now()).strftime("%Y%m%d_%H%M%S")
    base = Path(bag_dir or ".").expanduser() / f"{prefix}_{stamp}"
    out, i = base, 1
    while out.exists():
        out = base.with_name(f"{base.name}_{i}")
        i += 1
    return str(out)


def bag_record_cmd(
    topics: Sequence[str],
    bag_dir: str,
    storage: str = "mcap",
    use_sim_time: bool = False,
) -> list[str]:
    """The ``ros2 bag record`` command line (Jazzy syntax) recording ``topics`` into ``bag_dir``.

    ``bag_dir`` is the bag folder itself and must not exist yet (see :func:`bag_output_dir`).
    """
    if not topics:
        raise PresetError("nothing to record: the topic list is empty")
    for topic in topics:
        problem = validate_topic_name(topic)
        if problem:
            raise PresetError(f"cannot record topic {topic!r}: {problem}")
    if storage not in ("mcap", "sqlite3"):
        raise PresetError(f"bag storage {storage!r} must be mcap or sqlite3")
    cmd = ["ros2", "bag", "record", "--storage", storage, "--output", bag_dir]
    if use_sim_time:
        cmd.append("--use-sim-time")
    # No terminal under launch: keyboard controls would only print warnings.
    cmd += ["--disable-keyboard-controls", "--topics", *topics]
    return cmd


def demo_record_topics(
    args: Mapping[str, str], preset: ArmPreset, sim: bool, namespace: str = ""
) -> list[str]:
    """Robot-side topics of a demonstration: joint states, cameras, the commands (actions).

    In the sim the episode topic is added, so episodes can be split when converting.
    ``extra_topics`` (space or comma separated) are appended.
    """
    plan, _ = topic_plan(args, preset)
    topics = [plan.joint_states, *plan.cameras.values(), plan.command]
    if sim:
        topics.append("sim_robot/episode")
    for extra in re.split(r"[,\s]+", _arg(args, "extra_topics")):
        if extra:
            problem = validate_topic_name(extra)
            if problem:
                raise PresetError(f"launch argument extra_topics: {extra!r} is invalid: {problem}")
            topics.append(extra)
    return _unique(resolve_topic(t, namespace) for t in topics)
