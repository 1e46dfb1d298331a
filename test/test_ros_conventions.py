"""ROS 2 conventions of the managed nodes, checked against a real command_streamer process.

- Its own log lines reach /rosout at their severity (rqt_console, recorded bags).
- Parameters follow the lifecycle: writable while unconfigured, read-only while inactive
  or active (refused with the way out), validated when set.
- A parameter file in ``ros2 param dump`` form loads back unchanged.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import yaml
from rcl_interfaces.msg import Log, Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import GetParameters, ListParameters, SetParameters
from runtime_fakes import ACTIVATE, DEACTIVATE, JOINTS, FakeRobot, write_limits

from robot_policy_ros.nodes.lifecycle import ROSOUT_QOS

pytestmark = pytest.mark.ros

STREAMER = "robot_policy_ros.nodes.command_streamer"
CONFIGURE = 1
CLEANUP = 2


class RosoutListener:
    """Collects /rosout records of one logger name on a FakeRobot's node."""

    def __init__(self, robot: FakeRobot, name: str) -> None:
        self.name = name
        self.records: list[tuple[int, str]] = []
        self._lock = threading.Lock()
        robot.node.create_subscription(Log, "/rosout", self._on_log, ROSOUT_QOS)

    def _on_log(self, msg: Log) -> None:
        if msg.name == self.name:
            with self._lock:
                self.records.append((int(msg.level), msg.msg))

    def has(self, level: int, text: str) -> bool:
        with self._lock:
            return any(lvl == level and text in m for lvl, m in self.records)


def _set(robot: FakeRobot, node: str, name: str, value: float) -> SetParameters.Response:
    request = SetParameters.Request()
    request.parameters = [
        Parameter(
            name=name,
            value=ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value),
        )
    ]
    return robot._call(SetParameters, f"/{node}/set_parameters", request).results[0]


def _get(robot: FakeRobot, node: str, names: list[str]) -> list:
    request = GetParameters.Request(names=names)
    return list(robot._call(GetParameters, f"/{node}/get_parameters", request).values)


def _python_value(value: ParameterValue):
    kind = value.type
    fields = {
        ParameterType.PARAMETER_BOOL: "bool_value",
        ParameterType.PARAMETER_INTEGER: "integer_value",
        ParameterType.PARAMETER_DOUBLE: "double_value",
        ParameterType.PARAMETER_STRING: "string_value",
        ParameterType.PARAMETER_BOOL_ARRAY: "bool_array_value",
        ParameterType.PARAMETER_INTEGER_ARRAY: "integer_array_value",
        ParameterType.PARAMETER_DOUBLE_ARRAY: "double_array_value",
        ParameterType.PARAMETER_STRING_ARRAY: "string_array_value",
    }
    if kind not in fields:
        return None
    got = getattr(value, fields[kind])
    return list(got) if kind >= ParameterType.PARAMETER_BOOL_ARRAY else got


def _dump(robot: FakeRobot, node: str) -> dict:
    """The node's parameters as ``ros2 param dump`` writes them (``{node: {ros__parameters}}``)."""
    names = list(
        robot._call(
            ListParameters, f"/{node}/list_parameters", ListParameters.Request()
        ).result.names
    )
    values = _get(robot, node, names)
    params = {}
    for name, value in zip(names, values, strict=True):
        python = _python_value(value)
        if python is None:
            continue
        # ros2 param dump nests dotted names; this node has none.
        params[name] = python
    return {f"/{node}": {"ros__parameters": params}}


def test_streamer_log_lines_reach_rosout(start_node, tmp_path, rclpy_context):
    limits = write_limits(tmp_path / "limits.yaml")
    proc = start_node(STREAMER, "-p", f"limits_file:={limits}", "-p", "ramp_in_s:=0.2")
    with FakeRobot(rclpy_context, positions=[0.1, -0.2, 0.05]) as robot:
        rosout = RosoutListener(robot, "command_streamer")
        assert robot.wait_active("command_streamer"), proc.output()
        # Transient-local: the lines logged before this subscription matched arrive too.
        assert robot.wait_for(lambda: rosout.has(Log.INFO, "active"), 10.0), rosout.records
        assert robot.wait_for(lambda: len(robot.commands) >= 5, 10.0), proc.output()
        nan_chunk = np.full((10, len(JOINTS)), np.nan)
        robot.publish_chunk(nan_chunk, JOINTS, fps=20.0)
        assert robot.wait_for(lambda: rosout.has(Log.ERROR, "action_chunk rejected"), 10.0), (
            rosout.records
        )
        robot.e_stop(True)
        assert robot.wait_for(lambda: rosout.has(Log.ERROR, "E-STOP"), 10.0), rosout.records


def test_parameters_writable_unconfigured_read_only_configured(start_node, tmp_path, rclpy_context):
    limits = write_limits(tmp_path / "limits.yaml")
    proc = start_node(STREAMER, "-p", f"limits_file:={limits}", "-p", "autostart:=false")
    with FakeRobot(rclpy_context, positions=[0.1, -0.2, 0.05]) as robot:
        assert robot.wait_for(
            lambda: robot.lifecycle_state("command_streamer") == "unconfigured", 20.0
        ), proc.output()
        accepted = _set(robot, "command_streamer", "control_rate_hz", 100.0)
        assert accepted.successful, accepted.reason
        out_of_range = _set(robot, "command_streamer", "control_rate_hz", -5.0)
        assert not out_of_range.successful

        assert robot.lifecycle("command_streamer", CONFIGURE), proc.output()
        (value,) = _get(robot, "command_streamer", ["control_rate_hz"])
        assert value.double_value == 100.0
        refused = _set(robot, "command_streamer", "control_rate_hz", 50.0)
        assert not refused.successful
        assert "deactivate and clean up first" in refused.reason

        assert robot.lifecycle("command_streamer", ACTIVATE), proc.output()
        assert not _set(robot, "command_streamer", "control_rate_hz", 50.0).successful
        # Switching clocks under a running stream would let old chunks replay: refused too.
        request = SetParameters.Request()
        request.parameters = [
            Parameter(
                name="use_sim_time",
                value=ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=True),
            )
        ]
        sim_time = robot._call(SetParameters, "/command_streamer/set_parameters", request)
        assert not sim_time.results[0].successful
        assert robot.wait_for(lambda: len(robot.commands) >= 20, 10.0), proc.output()
        times = robot.command_times()
        rate = (len(times) - 1) / (times[-1] - times[0])
        assert 80.0 < rate < 120.0, f"the value set while unconfigured is in force: {rate} Hz"

        # The usual pattern: deactivate, clean up, set, configure, activate.
        assert robot.lifecycle("command_streamer", DEACTIVATE)
        assert robot.lifecycle("command_streamer", CLEANUP)
        assert _set(robot, "command_streamer", "control_rate_hz", 50.0).successful
        assert robot.lifecycle("command_streamer", CONFIGURE), proc.output()


def test_param_dump_loads_back_unchanged(start_node, tmp_path, rclpy_context):
    limits = write_limits(tmp_path / "limits.yaml")
    first = start_node(
        STREAMER,
        "-p",
        f"limits_file:={limits}",
        "-p",
        "autostart:=false",
        "-p",
        "control_rate_hz:=125.0",
    )
    with FakeRobot(rclpy_context) as robot:
        assert robot.wait_for(
            lambda: robot.lifecycle_state("command_streamer") == "unconfigured", 20.0
        ), first.output()
        dumped = _dump(robot, "command_streamer")
        first.stop()
        params_file = tmp_path / "dump.yaml"
        params_file.write_text(yaml.safe_dump(dumped))

        second = start_node(STREAMER, "--params-file", str(params_file))
        assert robot.wait_for(
            lambda: robot.lifecycle_state("command_streamer") == "unconfigured", 20.0
        ), second.output()
        assert _dump(robot, "command_streamer") == dumped
        # The file's values are in force, not only listed: it configures as the first did.
        assert robot.lifecycle("command_streamer", CONFIGURE), second.output()
