"""Parameters every lifecycle-managed node (policy_node, command_streamer) has."""

from __future__ import annotations

from robot_policy_ros.core.params import ParamSpec

# Reporting parameters every managed node has.
REPORTING_SPECS: tuple[ParamSpec, ...] = (
    ParamSpec(
        "status_log_period_s",
        5.0,
        "Seconds between one-line status logs.",
        min_value=0.5,
        max_value=3600.0,
    ),
    ParamSpec(
        "diagnostics_period_s",
        1.0,
        "Seconds between /diagnostics messages.",
        min_value=0.1,
        max_value=60.0,
    ),
    ParamSpec(
        "hardware_id",
        "",
        "diagnostic_msgs hardware_id of this node's status (e.g. the arm's serial); empty: "
        "the node's fully qualified name, so namespaced copies of the stack stay apart.",
        check=lambda v: None if len(v) <= 256 else "at most 256 characters",
    ),
)

AUTOSTART = ParamSpec(
    "autostart",
    True,
    "Walk the node through configure and activate at start-up (false: wait for a lifecycle "
    "manager or `ros2 lifecycle set`).",
)

MANAGED_SPECS: tuple[ParamSpec, ...] = (*REPORTING_SPECS, AUTOSTART)
