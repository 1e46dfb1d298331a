"""Declare and read node parameters from :class:`~robot_policy_ros.core.params.ParamSpec`.

Each parameter gets a descriptor with its description, type, range or choices, so
``ros2 param describe`` tells the user what a value means and which values are allowed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
)
from rclpy.exceptions import (
    InvalidParameterTypeException,
    InvalidParameterValueException,
    ParameterUninitializedException,
)
from rclpy.node import Node
from rclpy.parameter import Parameter

from robot_policy_ros.core.params import ParameterError, ParamSpec, spec_names

_SCALAR_TYPES = {
    bool: ParameterType.PARAMETER_BOOL,
    int: ParameterType.PARAMETER_INTEGER,
    float: ParameterType.PARAMETER_DOUBLE,
    str: ParameterType.PARAMETER_STRING,
}
_ARRAY_TYPES = {
    bool: ParameterType.PARAMETER_BOOL_ARRAY,
    int: ParameterType.PARAMETER_INTEGER_ARRAY,
    float: ParameterType.PARAMETER_DOUBLE_ARRAY,
    str: ParameterType.PARAMETER_STRING_ARRAY,
}


def descriptor_for(spec: ParamSpec, read_only: bool | None = None) -> ParameterDescriptor:
    """Build the ROS parameter descriptor (type, description, range) of ``spec``.

    ``read_only`` overrides ``spec.read_only`` (lifecycle nodes gate writes by state).
    """
    ptype = (_ARRAY_TYPES if spec.is_list else _SCALAR_TYPES)[spec.kind]
    desc = ParameterDescriptor(
        name=spec.name,
        type=ptype,
        description=spec.description,
        read_only=spec.read_only if read_only is None else read_only,
    )
    constraint = spec.describe_range()
    if constraint:
        desc.additional_constraints = constraint
    if (
        not spec.is_list
        and spec.kind is float
        and (spec.min_value is not None or spec.max_value is not None)
    ):
        desc.floating_point_range = [
            FloatingPointRange(
                from_value=float(spec.min_value if spec.min_value is not None else -1e300),
                to_value=float(spec.max_value if spec.max_value is not None else 1e300),
                step=0.0,
            )
        ]
    if (
        not spec.is_list
        and spec.kind is int
        and (spec.min_value is not None or spec.max_value is not None)
    ):
        desc.integer_range = [
            IntegerRange(
                from_value=int(spec.min_value if spec.min_value is not None else -(2**62)),
                to_value=int(spec.max_value if spec.max_value is not None else 2**62),
                step=1,
            )
        ]
    return desc


def declare_parameters(
    node: Node, specs: Sequence[ParamSpec], read_only: bool | None = None
) -> None:
    """Declare every spec on ``node``; a bad override becomes a :class:`ParameterError`.

    ``read_only`` overrides each spec's own flag (None: keep it).
    """
    spec_names(specs)
    for spec in specs:
        descriptor = descriptor_for(spec, read_only)
        try:
            if spec.is_list and not spec.default:
                # An empty list cannot tell rclpy its type: declare it typed, then (unless
                # overridden) give it a typed empty value, so `ros2 param get/dump` show it.
                node.declare_parameter(spec.name, Parameter.Type(descriptor.type), descriptor)
                try:
                    node.get_parameter(spec.name)
                except ParameterUninitializedException:
                    empty = Parameter(spec.name, Parameter.Type(descriptor.type), [])
                    node.set_parameters([empty])
            else:
                node.declare_parameter(spec.name, spec.default, descriptor)
        except InvalidParameterTypeException as exc:
            hint = " (write doubles with a decimal point, e.g. 50.0)" if spec.kind is float else ""
            raise ParameterError(
                f"parameter '{spec.name}': expected a {spec.kind.__name__}"
                f"{' list' if spec.is_list else ''}{hint}: {exc}"
            ) from exc
        except InvalidParameterValueException as exc:
            raise ParameterError(
                f"parameter '{spec.name}': value out of range; set it {spec.describe_range()}"
                f" ({exc})"
            ) from exc


def read_parameters(node: Node, specs: Sequence[ParamSpec]) -> dict[str, Any]:
    """Read and validate the current values of ``specs``; raises :class:`ParameterError`."""
    values: dict[str, Any] = {}
    for spec in specs:
        try:
            value = node.get_parameter(spec.name).value
        except ParameterUninitializedException:
            value = []
        if value is None and spec.is_list:
            value = []
        if spec.is_list and value is not None:
            value = list(value)
        values[spec.name] = spec.validate(value)
    return values
