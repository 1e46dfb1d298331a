"""Inference backends: who runs a policy's network (torch, or its exported ONNX graphs run
by ONNX Runtime or OpenVINO).

- :mod:`robot_policy_ros.inference.export`: builds ONNX graphs from a loaded policy (the
  weights checked against the checkpoint's sha256 at load), caches them next to the
  checkpoint or in the user cache folder, keyed by the hash of the weights, buffers and
  config, and re-verifies that hash before any cached graph is used.
- :mod:`robot_policy_ros.inference.backends`: predictors with the same ``predict_chunk``
  contract as :class:`~robot_policy_ros.policies.base.Policy`, and ``make_predictor`` which
  picks one by name (``auto``: the fastest installed backend whose outputs match torch).

- :mod:`robot_policy_ros.inference.threads`: runtime threading settings made before torch
  loads.

onnx, onnxruntime and openvino are optional: without them ``auto`` falls back to torch.
"""

from typing import Any

__all__ = ["BACKENDS", "Predictor", "available_backends", "make_predictor"]


def __getattr__(name: str) -> Any:
    # Lazy: importing the package (e.g. .threads, before torch loads) must not import torch.
    if name in __all__:
        from robot_policy_ros.inference import backends

        return getattr(backends, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
