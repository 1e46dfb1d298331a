"""command_streamer's parameter table (no rclpy: read by the node, launch validation and docs)."""

from __future__ import annotations

from robot_policy_ros.core.chunk_buffer import BlendMode
from robot_policy_ros.core.params import ParamSpec

#: Message types the ``command_interface`` parameter selects.
COMMAND_INTERFACES = ("position_array", "joint_state", "joint_trajectory")

SPECS: list[ParamSpec] = [
    ParamSpec(
        "checkpoint",
        "",
        "Checkpoint directory: the streamer reads its joint order and stored joint limits "
        "(config only, no weights). Empty: joint order and limits come from limits_file.",
    ),
    ParamSpec(
        "limits_file",
        "",
        "YAML with per-joint lower/upper/max_velocity[/max_acceleration]; overrides the "
        "checkpoint's stored limits. With neither, the streamer refuses to start.",
    ),
    ParamSpec(
        "controller_joints",
        [],
        "The controller's joint order (a forward_position_controller's `joints` list): the "
        "order of every position_array command. Empty: the limits file's order, else the "
        "checkpoint's. Must name the same joints; chunks are mapped to it by name.",
        element_type=str,
    ),
    ParamSpec(
        "control_rate_hz",
        50.0,
        "Rate at which joint commands are published.",
        min_value=1.0,
        max_value=1000.0,
    ),
    ParamSpec(
        "blending",
        "replace",
        "How overlapping chunks are combined. Not set: the checkpoint's deployment section "
        "decides where it has one (temporal_ensemble where it records a "
        "temporal_ensemble_coeff, else replace); the log and diagnostics name the value used "
        "and its source.",
        choices=tuple(m.value for m in BlendMode),
    ),
    ParamSpec(
        "ensemble_k",
        0.01,
        "temporal_ensemble: weight of the i-th oldest chunk is exp(-ensemble_k * i). Not set: "
        "the checkpoint's deployment temporal_ensemble_coeff where it records one.",
        min_value=0.0,
        max_value=100.0,
    ),
    ParamSpec(
        "average_weight",
        0.5,
        "average: weight of the newest chunk against the blend of the older ones.",
        min_value=0.0,
        max_value=1.0,
    ),
    ParamSpec(
        "crossfade_s",
        0.1,
        "crossfade: seconds over which a new chunk fades in over the older ones, from its arrival.",
        min_value=0.0,
        max_value=10.0,
    ),
    ParamSpec(
        "command_interface",
        "position_array",
        "Message type on joint_commands: position_array (std_msgs/Float64MultiArray for "
        "forward_position_controller), joint_state (sensor_msgs/JointState) or "
        "joint_trajectory (single-point trajectory_msgs/JointTrajectory).",
        choices=COMMAND_INTERFACES,
    ),
    ParamSpec(
        "ramp_in_s",
        2.0,
        "Seconds over which the velocity limit ramps from 0 to full after (re)starting "
        "from the measured position.",
        min_value=0.0,
        max_value=60.0,
    ),
    ParamSpec(
        "use_acceleration_limit",
        True,
        "Also limit accelerations where the limits carry max_acceleration (every preset does); "
        "limits without accelerations run with the velocity limit only (logged).",
    ),
    ParamSpec(
        "bring_in_velocity",
        0.1,
        "Top speed (joint units/s) at which a joint measured outside its limits is brought "
        "inside; it is never snapped in.",
        min_value=1e-4,
        max_value=10.0,
    ),
    ParamSpec(
        "reanchor_tolerance",
        0.25,
        "If the measured position and the last command differ by more than this on any joint "
        "(arm moved by hand, driver restart, sim reset), hold, restart from the measured "
        "position and ramp in again.",
        min_value=1e-3,
        max_value=100.0,
    ),
    ParamSpec(
        "max_clock_jump_s",
        1.0,
        "A ROS clock step forward by more than this (or any step backwards) clears the buffered "
        "chunks and restarts from the measured position.",
        min_value=0.01,
        max_value=3600.0,
    ),
    ParamSpec(
        "e_stop_behavior",
        "hold",
        "While the e-stop is latched: hold (keep publishing the last safe command) or silent "
        "(publish nothing).",
        choices=("hold", "silent"),
    ),
    ParamSpec(
        "joint_state_timeout_s",
        0.5,
        "If the latest joint state is older than this (by its stamp where sane, else by "
        "arrival), decelerate to a stop and report it; start and re-anchor only on a fresher "
        "one.",
        min_value=0.001,
        max_value=60.0,
    ),
    ParamSpec(
        "e_stop_grace_s",
        3.0,
        "After activation, publish nothing until the e-stop input has been heard from (a "
        "message; a latched publisher's sample is waited for) or this many seconds have "
        "passed, so that a latched e-stop published before the streamer started is honoured "
        "before anything moves. The log says which ended the wait.",
        min_value=0.0,
        max_value=60.0,
    ),
    ParamSpec(
        "joint_state_max_stamp_lag_s",
        5.0,
        "Joint-state freshness is judged by header.stamp when the stamp is sane: not ahead of "
        "the node clock and at most this many seconds behind it on arrival. Otherwise (zero "
        "stamps, another machine's clock) by arrival time (diagnostics counter "
        "joint_state_stamp_fallbacks).",
        min_value=0.01,
        max_value=3600.0,
    ),
    ParamSpec(
        "deadman_timeout_s",
        0.0,
        "Deadman (pendants, teleop): > 0 subscribes std_msgs/Bool on 'deadman'; nothing moves "
        "until true arrives, and silence beyond this many seconds or a false latches the "
        "e-stop (release with ~/reset_e_stop while the heartbeat is alive). 0: off.",
        min_value=0.0,
        max_value=60.0,
    ),
    ParamSpec(
        "max_chunk_future_s",
        0.5,
        "Chunks stamped further than this ahead of the node clock are rejected (clock mismatch).",
        min_value=0.0,
        max_value=60.0,
    ),
    ParamSpec(
        "max_chunk_points",
        1000,
        "Chunks with more points than this are rejected (diagnostics counter chunks_rejected).",
        min_value=2,
        max_value=100000,
    ),
    ParamSpec(
        "max_chunk_duration_s",
        30.0,
        "Chunks spanning more seconds than this (first to last point) are rejected.",
        min_value=0.01,
        max_value=3600.0,
    ),
    ParamSpec(
        "realtime_priority",
        10,
        "SCHED_FIFO priority of the control thread where permitted; the executor thread gets "
        "one less, so it cannot hold the GIL while preempted (0: normal scheduling).",
        min_value=0,
        max_value=99,
    ),
    ParamSpec(
        "lock_memory",
        True,
        "mlockall() the process at activation so that no page the control loop touches can be "
        "paged out (a major page fault stalls it for tens of ms). Skipped where torch is loaded "
        "in the same process (policy_stack) or where it is not permitted.",
    ),
]
