"""A checkpoint's deployment section sets the refill threshold and blending unless the user
sets them: config.json parsing and the rclpy-free resolution (core/deployment.py)."""

from __future__ import annotations

import pytest

from robot_policy_ros.checkpoint.config import CheckpointError, DeploymentDefaults
from robot_policy_ros.core.deployment import (
    BUILT_IN,
    DEPLOYMENT_PARAMETERS,
    FROM_CHECKPOINT,
    FROM_PARAMETER,
    checkpoint_parameters,
    diagnostic_values,
    resolve_parameters,
)
from robot_policy_ros.core.params import ParameterError, validate_parameters
from robot_policy_ros.params.command_streamer import SPECS as STREAMER_SPECS
from robot_policy_ros.params.policy_node import SPECS as POLICY_SPECS


def _resolve(specs, node, user: dict, ckpt: dict):
    params = validate_parameters(specs, {"checkpoint": "/ckpt", **user})
    return resolve_parameters(
        specs, params, set(user), ckpt.get(node, {}), DEPLOYMENT_PARAMETERS[node]
    )


def test_n_action_steps_gives_refill_threshold_of_the_unused_actions() -> None:
    # 10 actions at 30 fps, 5 executed: infer again when 5 / 30 s remain.
    ckpt = checkpoint_parameters(5, None, chunk_size=10, fps=30.0)
    r = _resolve(POLICY_SPECS, "policy_node", {}, ckpt)
    assert r["inference_trigger"].value == "horizon"
    assert r["inference_trigger"].source == FROM_CHECKPOINT
    assert r["refill_threshold_s"].value == pytest.approx(5 / 30)
    assert r["refill_threshold_s"].source == FROM_CHECKPOINT
    assert r["inference_rate_hz"].source == BUILT_IN  # not used by the horizon trigger
    s = _resolve(STREAMER_SPECS, "command_streamer", {}, ckpt)
    assert (s["blending"].value, s["blending"].source) == ("replace", FROM_CHECKPOINT)
    assert (s["ensemble_k"].value, s["ensemble_k"].source) == (0.01, BUILT_IN)


def test_temporal_ensemble_coeff_gives_rate_trigger_at_fps_and_ensemble_blending() -> None:
    ckpt = checkpoint_parameters(1, 0.05, chunk_size=8, fps=30.0)
    r = _resolve(POLICY_SPECS, "policy_node", {}, ckpt)
    assert r["inference_trigger"].value == "rate"
    assert r["inference_rate_hz"].value == 30.0
    assert r["refill_threshold_s"].source == BUILT_IN
    s = _resolve(STREAMER_SPECS, "command_streamer", {}, ckpt)
    assert s["blending"].value == "temporal_ensemble"
    assert s["ensemble_k"].value == 0.05
    assert s["ensemble_k"].source == FROM_CHECKPOINT


def test_parameter_the_user_sets_wins_over_the_checkpoint() -> None:
    ckpt = checkpoint_parameters(1, 0.05, chunk_size=8, fps=30.0)
    s = _resolve(STREAMER_SPECS, "command_streamer", {"ensemble_k": 0.5}, ckpt)
    assert (s["ensemble_k"].value, s["ensemble_k"].source) == (0.5, FROM_PARAMETER)
    assert s["blending"].source == FROM_CHECKPOINT
    # Set to the built-in default's value: still the user's choice, not the checkpoint's.
    s = _resolve(STREAMER_SPECS, "command_streamer", {"blending": "replace"}, ckpt)
    assert (s["blending"].value, s["blending"].source) == ("replace", FROM_PARAMETER)
    r = _resolve(POLICY_SPECS, "policy_node", {"inference_trigger": "horizon"}, ckpt)
    assert (r["inference_trigger"].value, r["inference_trigger"].source) == (
        "horizon",
        FROM_PARAMETER,
    )


def test_without_deployment_section_built_in_defaults_apply() -> None:
    r = _resolve(POLICY_SPECS, "policy_node", {"refill_threshold_s": 0.2}, {})
    assert (r["inference_trigger"].value, r["inference_trigger"].source) == ("horizon", BUILT_IN)
    assert (r["refill_threshold_s"].value, r["refill_threshold_s"].source) == (
        0.2,
        FROM_PARAMETER,
    )
    values = diagnostic_values(r)
    assert values["inference_trigger"] == "horizon"
    assert values["inference_trigger_source"] == BUILT_IN
    assert values["refill_threshold_s"] == "0.2"


def test_whole_chunk_executed_gives_zero_threshold() -> None:
    ckpt = checkpoint_parameters(8, None, chunk_size=8, fps=10.0)
    assert ckpt["policy_node"]["refill_threshold_s"] == 0.0


def test_checkpoint_value_outside_parameter_range_is_refused_naming_the_fix() -> None:
    # fps 2000 -> inference_rate_hz 2000 > its maximum 1000
    ckpt = checkpoint_parameters(1, 0.01, chunk_size=8, fps=2000.0)
    with pytest.raises(ParameterError, match=r"deployment section.*inference_rate_hz.*explicitly"):
        _resolve(POLICY_SPECS, "policy_node", {}, ckpt)


def test_deployment_section_round_trips_and_is_validated() -> None:
    dep = DeploymentDefaults(n_action_steps=5, temporal_ensemble_coeff=None, source="lerobot")
    assert DeploymentDefaults.from_dict(dep.to_dict()) == dep
    assert DeploymentDefaults.from_dict({"n_action_steps": 1, "temporal_ensemble_coeff": 1}) == (
        DeploymentDefaults(1, 1.0)
    )
    bad = [
        ({"n_action_steps": 0}, "n_action_steps must be an integer"),
        ({"n_action_steps": True}, "n_action_steps must be an integer"),
        ({"n_action_steps": 2.5}, "n_action_steps must be an integer"),
        ({"n_action_steps": 1, "temporal_ensemble_coeff": "x"}, "finite number"),
        ({"n_action_steps": 1, "temporal_ensemble_coeff": float("nan")}, "finite number"),
        ({"n_action_steps": 1, "temporal_ensemble_coeff": -1.0}, r"outside \[0, 100\]"),
        ({"n_action_steps": 1, "extra": 1}, "unknown keys"),
        ({"temporal_ensemble_coeff": 0.1}, "misses key 'n_action_steps'"),
        ([1], "must be an object"),
    ]
    for data, message in bad:
        with pytest.raises(CheckpointError, match=message):
            DeploymentDefaults.from_dict(data)


def test_config_json_deployment_section_is_optional_and_checked_against_chunk(tmp_path) -> None:
    from runtime_fakes import make_checkpoint

    from robot_policy_ros.checkpoint.config import CheckpointConfig, read_checkpoint_config

    ckpt = make_checkpoint(tmp_path / "ckpt")
    cfg = read_checkpoint_config(ckpt)
    assert cfg.deployment is None
    data = cfg.to_dict()
    assert "deployment" not in data  # native checkpoints are written as before
    data["deployment"] = {"n_action_steps": cfg.chunk_size, "source": "test"}
    parsed = CheckpointConfig.from_dict(data)
    assert parsed.deployment == DeploymentDefaults(cfg.chunk_size, None, "test")
    assert parsed.to_dict()["deployment"]["n_action_steps"] == cfg.chunk_size
    data["deployment"] = {"n_action_steps": cfg.chunk_size + 1}
    with pytest.raises(CheckpointError, match="exceeds chunk_size"):
        CheckpointConfig.from_dict(data)
    data["deployment"] = "fast"
    with pytest.raises(CheckpointError, match="deployment must be an object"):
        CheckpointConfig.from_dict(data)


@pytest.mark.ros
def test_node_knows_which_parameters_the_user_set(rclpy_context) -> None:
    """Overrides given at start and ``ros2 param set`` before configure count as set by the
    user; declared defaults do not (they leave the choice to the checkpoint)."""
    from rclpy.parameter import Parameter

    from robot_policy_ros.nodes.command_streamer import CommandStreamer

    node = CommandStreamer(
        "deployment_probe",
        context=rclpy_context,
        parameter_overrides=[
            Parameter("ensemble_k", value=0.3),
            Parameter("blending", value="replace"),  # the default's value, set explicitly
        ],
    )
    try:
        assert node.user_set_parameters == {"ensemble_k", "blending"}
        result = node.set_parameters([Parameter("control_rate_hz", value=100.0)])
        assert result[0].successful
        assert node.user_set_parameters == {"ensemble_k", "blending", "control_rate_hz"}
        refused = node.set_parameters([Parameter("crossfade_s", value=-1.0)])
        assert not refused[0].successful
        assert "crossfade_s" not in node.user_set_parameters
    finally:
        node.destroy_node()


def test_deployment_section_is_written_and_kept_by_import_weights(tmp_path) -> None:
    import torch
    from runtime_fakes import make_checkpoint

    from robot_policy_ros.checkpoint.config import read_checkpoint_config
    from robot_policy_ros.checkpoint.weights import import_weights, load_checkpoint, save_checkpoint

    policy = load_checkpoint(make_checkpoint(tmp_path / "plain", chunk_size=10))
    dep = DeploymentDefaults(n_action_steps=4, temporal_ensemble_coeff=None, source="test")
    like = save_checkpoint(policy, tmp_path / "like", deployment=dep)
    assert read_checkpoint_config(like).deployment == dep
    with pytest.raises(CheckpointError, match="exceeds chunk_size"):
        save_checkpoint(policy, tmp_path / "bad", deployment=DeploymentDefaults(11))
    torch.save({"state_dict": policy.state_dict()}, tmp_path / "w.pt")
    out = import_weights(tmp_path / "w.pt", like, tmp_path / "out")
    assert read_checkpoint_config(out).deployment == dep
