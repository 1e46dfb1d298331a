"""policy_node's parameter table (no rclpy: read by the node, launch validation and docs)."""

from __future__ import annotations

import re

from robot_policy_ros.checkpoint.config import IMAGE_FITS
from robot_policy_ros.core.observation_health import parse_camera_sizes
from robot_policy_ros.core.params import ParamSpec

#: ``device`` values: cpu, cuda or cuda:N.
DEVICE_RE = re.compile(r"^(cpu|cuda|cuda:\d+)$")
#: ``dtype`` and ``image_transport`` values.
DTYPES = ("float32", "float16", "bfloat16")
# Who runs the network (robot_policy_ros.inference); the one list, torch-free.
INFERENCE_BACKENDS = ("auto", "torch", "onnxruntime", "openvino")
IMAGE_TRANSPORTS = ("raw", "compressed")


def _check_device(value: str) -> str | None:
    return None if DEVICE_RE.match(value) else "expected 'cpu', 'cuda' or 'cuda:N'"


def _check_cameras(value: list[str]) -> str | None:
    try:
        parse_camera_sizes(value)
    except ValueError as exc:
        return str(exc)
    return None


SPECS: list[ParamSpec] = [
    ParamSpec(
        "checkpoint",
        "",
        "Checkpoint directory (config.json + model.safetensors) to load.",
        check=lambda v: None if v else "is empty",
        fix="set -p checkpoint:=/path/to/checkpoint_dir",
    ),
    ParamSpec(
        "device",
        "cpu",
        "Torch device for inference: cpu, cuda or cuda:N.",
        check=_check_device,
    ),
    ParamSpec(
        "dtype",
        "float32",
        "Inference dtype.",
        choices=DTYPES,
    ),
    ParamSpec(
        "inference_backend",
        "auto",
        "Who runs the network: torch; onnxruntime or openvino (the checkpoint exported to "
        "ONNX, cached beside it keyed by the weights' hash, CPU float32); auto: the fastest "
        "of those installed whose graphs match torch within 1e-4, else torch.",
        choices=INFERENCE_BACKENDS,
    ),
    ParamSpec(
        "image_fit",
        "checkpoint",
        "How camera frames become the model's images. checkpoint: as in training (the "
        "transform the checkpoint records), and a camera whose aspect ratio differs from the "
        "frames it was trained on (or from the model input, where not recorded) is refused, "
        "naming both shapes. resize (stretch), crop (centre crop) or letterbox (pad): that "
        "transform, whatever the aspect ratio.",
        choices=("checkpoint", *IMAGE_FITS),
    ),
    ParamSpec(
        "image_transport",
        "raw",
        "raw: sensor_msgs/Image on NAME/image_raw; compressed: sensor_msgs/CompressedImage on "
        "NAME/image_raw/compressed.",
        choices=IMAGE_TRANSPORTS,
    ),
    ParamSpec(
        "max_observation_age_s",
        0.25,
        "Every camera frame and the joint state must be younger than this (header.stamp vs "
        "the node clock) for an inference to run.",
        min_value=0.001,
        max_value=60.0,
    ),
    ParamSpec(
        "max_clock_jump_s",
        1.0,
        "A ROS clock step forward by more than this (or any step backwards) resets the "
        "published horizon and drops every input and in-flight chunk from before it; the "
        "next chunk comes from inputs stamped after the jump.",
        min_value=0.01,
        max_value=3600.0,
    ),
    ParamSpec(
        "inference_trigger",
        "horizon",
        "horizon: infer when the time still covered by published chunks falls below "
        "refill_threshold_s; rate: infer at inference_rate_hz. Not set: the checkpoint's "
        "deployment section decides where it has one (temporal ensembling: rate, else "
        "horizon); the log and diagnostics name the value used and its source.",
        choices=("horizon", "rate"),
    ),
    ParamSpec(
        "arm_jump_tolerance",
        0.25,
        "A joint state further from the previous one than the checkpoint's velocity limits "
        "allow, by more than this on any joint (joint units), is a jump of the arm (a reset, "
        "a push, a collision): the published horizon and the observation history are reset "
        "and inference restarts from inputs stamped after it. 0: off.",
        min_value=0.0,
        max_value=1000.0,
    ),
    ParamSpec(
        "refill_threshold_s",
        0.5,
        "horizon trigger: infer when less than this many seconds of published actions remain. "
        "Not set: (chunk_size - n_action_steps) / fps where the checkpoint's deployment "
        "section records n_action_steps (the policy executes that many actions per chunk). "
        "Never less than the recent inference latency (p95) in effect, so the next chunk "
        "arrives before the published ones run out.",
        min_value=0.0,
        max_value=600.0,
    ),
    ParamSpec(
        "inference_rate_hz",
        10.0,
        "rate trigger: inferences per second (back to back if inference is slower). Not set: "
        "the checkpoint's fps where its deployment section asks for temporal ensembling.",
        min_value=0.01,
        max_value=1000.0,
    ),
    ParamSpec(
        "torch_threads",
        0,
        "Torch intra-op threads for inference; 0 = max(1, CPU cores - 1), leaving a core for "
        "the control loop.",
        min_value=0,
        max_value=1024,
    ),
    ParamSpec(
        "reuse_memory",
        True,
        "Keep freed memory for reuse (glibc mallopt: no mmap below 32 MB, no trimming), so that "
        "inference does not page-fault fresh memory in on every call (tens of thousands of "
        "faults/s for ACT on a CPU), kernel work that also disturbs the control loop.",
    ),
    ParamSpec(
        "arm_joint_names",
        [],
        "Joints of the arm this node drives; when set, a checkpoint for other joints (names "
        "or count) is refused at configure, naming both lists. Empty: not checked.",
        element_type=str,
    ),
    ParamSpec(
        "arm_cameras",
        [],
        "Cameras of the arm as NAME:HEIGHTxWIDTH (e.g. front:480x640); when set, a checkpoint "
        "with other camera names or image sizes is refused at configure. Empty: not checked.",
        element_type=str,
        check=lambda v: _check_cameras(v),
    ),
]
