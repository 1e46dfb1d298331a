"""Deployment defaults: which refill threshold and blending a checkpoint runs with.

A checkpoint may record how it was meant to be run (config.json's ``deployment`` section,
:class:`~robot_policy_ros.checkpoint.config.DeploymentDefaults`; LeRobot imports record
LeRobot's ``n_action_steps`` and ``temporal_ensemble_coeff``). These become the values of
the deployment parameters a user did not set; a parameter the user set always wins:

- ``n_action_steps`` k of a chunk of C actions at fps f: policy_node
  ``inference_trigger: horizon`` with ``refill_threshold_s = (C - k) / f`` (infer again once
  k actions have been used), command_streamer ``blending: replace``.
- ``temporal_ensemble_coeff`` c: policy_node ``inference_trigger: rate`` at
  ``inference_rate_hz = f`` (a chunk every control step, as LeRobot's ensembler does),
  command_streamer ``blending: temporal_ensemble`` with ``ensemble_k = c`` (the streamer's
  weights exp(-k * i), i = 0 for the oldest chunk, are LeRobot's convention).

Every resolved value carries its source (:data:`FROM_CHECKPOINT`, :data:`FROM_PARAMETER`,
:data:`BUILT_IN`), which the nodes log at configure and publish in their diagnostics.

"Set by the user" is decided by the ROS layer (a parameter override at start, from the
command line, a launch file or a params file, or a ``ros2 param set`` before configure);
this module only takes the set of such names. No rclpy here.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from robot_policy_ros.core.params import ParameterError, ParamSpec

FROM_CHECKPOINT = "from checkpoint deployment section"
FROM_PARAMETER = "from parameter"
BUILT_IN = "built-in default"

#: The parameters a deployment section can default, per node.
DEPLOYMENT_PARAMETERS: dict[str, tuple[str, ...]] = {
    "policy_node": ("inference_trigger", "refill_threshold_s", "inference_rate_hz"),
    "command_streamer": ("blending", "ensemble_k"),
}


@dataclass(frozen=True)
class Resolved:
    """A parameter's value in use and where it came from."""

    value: Any
    source: str

    def describe(self) -> str:
        value = f"{self.value:g}" if isinstance(self.value, float) else str(self.value)
        return f"{value} ({self.source})"


def checkpoint_parameters(
    n_action_steps: int | None,
    temporal_ensemble_coeff: float | None,
    chunk_size: int,
    fps: float,
) -> dict[str, dict[str, Any]]:
    """{"policy_node": {...}, "command_streamer": {...}}: the parameter values that run a
    policy as its deployment section says (see the module docstring); n_action_steps None
    means the whole chunk."""
    if temporal_ensemble_coeff is not None:
        return {
            "policy_node": {"inference_trigger": "rate", "inference_rate_hz": float(fps)},
            "command_streamer": {
                "blending": "temporal_ensemble",
                "ensemble_k": float(temporal_ensemble_coeff),
            },
        }
    k = chunk_size if n_action_steps is None else min(int(n_action_steps), chunk_size)
    threshold = max(0.0, (chunk_size - k) / float(fps))
    return {
        "policy_node": {"inference_trigger": "horizon", "refill_threshold_s": threshold},
        "command_streamer": {"blending": "replace"},
    }


def deployment_of(config: Any) -> dict[str, dict[str, Any]]:
    """:func:`checkpoint_parameters` of a CheckpointConfig ({} when it has no deployment)."""
    dep = getattr(config, "deployment", None)
    if dep is None:
        return {}
    return checkpoint_parameters(
        dep.n_action_steps, dep.temporal_ensemble_coeff, config.chunk_size, config.fps
    )


def resolve_parameters(
    specs: Sequence[ParamSpec],
    params: Mapping[str, Any],
    user_set: Collection[str],
    from_checkpoint: Mapping[str, Any],
    names: Sequence[str],
) -> dict[str, Resolved]:
    """The value in use of each of ``names`` and its source.

    Args:
        specs: the node's parameter table (checkpoint values are validated against it).
        params: the values read from the node (validated; a name not set by the user holds
            its spec default).
        user_set: names the user set explicitly.
        from_checkpoint: this node's values from :func:`checkpoint_parameters` ({}: none).
        names: the parameters to resolve.

    Raises:
        ParameterError: a checkpoint value outside the parameter's range, naming both and
            the fix (set the parameter).
    """
    by_name = {s.name: s for s in specs}
    out: dict[str, Resolved] = {}
    for name in names:
        if name in user_set:
            out[name] = Resolved(params[name], FROM_PARAMETER)
        elif name in from_checkpoint:
            try:
                value = by_name[name].validate(from_checkpoint[name])
            except ParameterError as exc:
                raise ParameterError(
                    f"the checkpoint's deployment section gives {exc}; or set parameter "
                    f"'{name}' explicitly"
                ) from None
            out[name] = Resolved(value, FROM_CHECKPOINT)
        else:
            out[name] = Resolved(params[name], BUILT_IN)
    return out


def describe_resolved(resolved: Mapping[str, Resolved]) -> str:
    """One line: ``name = value (source), ...``."""
    return ", ".join(f"{name} = {r.describe()}" for name, r in resolved.items())


def diagnostic_values(resolved: Mapping[str, Resolved]) -> dict[str, str]:
    """Diagnostics key-values: ``<name>`` -> value, ``<name>_source`` -> source."""
    out: dict[str, str] = {}
    for name, r in resolved.items():
        out[name] = f"{r.value:g}" if isinstance(r.value, float) else str(r.value)
        out[f"{name}_source"] = r.source
    return out
