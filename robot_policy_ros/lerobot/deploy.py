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
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def deployment_parameters(
    deployment: dict[str, Any], chunk_size: int, fps: float
) -> dict[str, dict[str, Any]]:
    """{"policy_node": {...}, "command_streamer": {...}} for LeRobot's deployment defaults."""
    coeff = deployment.get("temporal_ensemble_coeff")
    if coeff is not None:
        return {
            "policy_node": {"inference_trigger": "rate", "inference_rate_hz": float(fps)},
            "command_streamer": {"blending": "temporal_ensemble", "ensemble_k": float(coeff)},
        }
    k = int(deployment.get("n_action_steps", chunk_size))
    threshold = max(0.0, (chunk_size - min(k, chunk_size)) / float(fps))
    return {
        "policy_node": {"inference_trigger": "horizon", "refill_threshold_s": threshold},
        "command_streamer": {"blending": "replace"},
    }


def write_params_file(path: str | Path, params: dict[str, dict[str, Any]], note: str) -> Path:
    """A ROS 2 parameters file (``params_file:=`` of policy.launch.py) for ``params``."""
    import yaml

    out = Path(path).expanduser()
    doc = {f"/**/{node}": {"ros__parameters": values} for node, values in params.items()}
    text = f"# {note}\n" + yaml.safe_dump(doc, sort_keys=True)
    out.write_text(text, encoding="utf-8")
    return out
