"""LeRobot's way of running a policy, as policy_node / command_streamer parameters.

LeRobot either executes ``n_action_steps`` actions of each chunk and then predicts again,
or (``temporal_ensemble_coeff`` set, ACT with n_action_steps = 1) predicts at every control
step and blends every chunk covering the step with weights exp(-coeff * i), i = 0 for the
oldest. The same behaviour here:

- n_action_steps k of a chunk of C actions at fps f: ``inference_trigger: horizon`` with
  ``refill_threshold_s = (C - k) / f`` (infer again once k actions have been used) and
  ``blending: replace``.
- temporal ensembling: ``inference_trigger: rate`` at ``inference_rate_hz = f``,
  ``blending: temporal_ensemble``, ``ensemble_k = coeff`` (the streamer's weights have the
  same convention).

The imported checkpoint records them in its config.json ``deployment`` section, and
policy_node / command_streamer apply them wherever the user sets no parameter
(robot_policy_ros.core.deployment); the parameters file written here states them
explicitly, for a launch that should not depend on that.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robot_policy_ros.core.deployment import checkpoint_parameters


def deployment_parameters(
    deployment: dict[str, Any], chunk_size: int, fps: float
) -> dict[str, dict[str, Any]]:
    """{"policy_node": {...}, "command_streamer": {...}} for LeRobot's deployment defaults
    (the rules of robot_policy_ros.core.deployment, which applies them at run time)."""
    return checkpoint_parameters(
        deployment.get("n_action_steps"),
        deployment.get("temporal_ensemble_coeff"),
        chunk_size,
        fps,
    )


def write_params_file(path: str | Path, params: dict[str, dict[str, Any]], note: str) -> Path:
    """A ROS 2 parameters file (``params_file:=`` of policy.launch.py) for ``params``."""
    import yaml

    out = Path(path).expanduser()
    doc = {f"/**/{node}": {"ros__parameters": values} for node, values in params.items()}
    text = f"# {note}\n" + yaml.safe_dump(doc, sort_keys=True)
    out.write_text(text, encoding="utf-8")
    return out
