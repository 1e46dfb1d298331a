"""Parameter specs: validation messages name the value and the fix."""

import pytest

from robot_policy_ros.core.params import ParameterError, ParamSpec, validate_parameters

RATE = ParamSpec("control_rate_hz", 50.0, "Command rate.", min_value=1.0, max_value=1000.0)
MODE = ParamSpec("blending", "replace", "Blend mode.", choices=("replace", "average"))


def test_out_of_range_value_names_value_and_range():
    with pytest.raises(ParameterError, match=r"control_rate_hz.*2000.*\[1, 1000\]"):
        RATE.validate(2000.0)


def test_int_is_accepted_for_float_parameter():
    assert RATE.validate(50) == 50.0


def test_non_finite_float_rejected():
    with pytest.raises(ParameterError, match="finite"):
        RATE.validate(float("nan"))


def test_unknown_choice_lists_allowed_values():
    with pytest.raises(ParameterError, match="'replace', 'average'"):
        MODE.validate("blend")


def test_wrong_type_rejected():
    with pytest.raises(ParameterError, match="expected str"):
        MODE.validate(3)


def test_custom_check_message_used():
    spec = ParamSpec("ckpt", "", "Checkpoint dir.", check=lambda v: None if v else "is empty")
    with pytest.raises(ParameterError, match="is empty"):
        spec.validate("")


def test_missing_values_take_defaults():
    assert validate_parameters([RATE, MODE], {}) == {"control_rate_hz": 50.0, "blending": "replace"}


def test_spec_without_description_is_a_programming_error():
    with pytest.raises(ValueError, match="description"):
        ParamSpec("x", 1, "")


@pytest.mark.ros
def test_declared_parameter_carries_description_and_range(rclpy_context):
    from rclpy.node import Node

    from robot_policy_ros.nodes.params import declare_parameters, read_parameters

    node = Node("param_probe", context=rclpy_context)
    try:
        declare_parameters(node, [RATE, MODE])
        desc = node.describe_parameter("control_rate_hz")
        assert desc.description == "Command rate."
        assert desc.floating_point_range[0].to_value == 1000.0
        assert read_parameters(node, [RATE, MODE])["blending"] == "replace"
    finally:
        node.destroy_node()


@pytest.mark.ros
def test_out_of_range_override_stops_with_clear_error(rclpy_context):
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    from robot_policy_ros.nodes.params import declare_parameters

    node = Node(
        "param_probe2",
        context=rclpy_context,
        parameter_overrides=[Parameter("control_rate_hz", value=5000.0)],
    )
    try:
        with pytest.raises(ParameterError, match="control_rate_hz"):
            declare_parameters(node, [RATE])
    finally:
        node.destroy_node()
