"""Camera messages + joint positions -> the policy's Observation, exactly as policy_node
builds it; also used by the bag replay (robot_policy_ros.data.replay), so a recorded
episode reaches the policy as it would on the arm.

What it does (policy_node keeps the gate, the clock-jump handling and the threads):

- each camera message becomes uint8 RGB at the checkpoint's image size by the transform
  training used (``image_fit``: the checkpoint's recorded fit, or the parameter's), with
  the refusals of :func:`~robot_policy_ros.core.images.fit_for_camera` (cached per frame
  size); raw ``sensor_msgs/Image`` and ``CompressedImage`` alike, from rclpy or from a bag
  (rosbags' messages have the same fields);
- for ``n_obs_steps`` > 1 every input is kept by stamp
  (:class:`~robot_policy_ros.core.obs_history.ObservationHistory`) and the earlier frames
  of an observation are those nearest ``t - k / fps``, each converted once.

No rclpy here; torch only through the Observation type, imported when first built.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from robot_policy_ros.core.images import (
    ImageDecodeError,
    compressed_image_size,
    compressed_to_rgb,
    fit_for_camera,
    raw_to_rgb,
)
from robot_policy_ros.core.obs_history import Entry, ObservationHistory
from robot_policy_ros.core.observation import JOINTS, GateResult


class CameraImageError(ImageDecodeError):
    """A camera's frame that cannot become the model's image; ``camera`` names it."""

    def __init__(self, camera: str, message: str) -> None:
        super().__init__(message)
        self.camera = camera


def is_raw_image(msg: Any) -> bool:
    """sensor_msgs/Image (has ``encoding``) rather than sensor_msgs/CompressedImage."""
    return hasattr(msg, "encoding")


class ObservationBuilder:
    """Builds Observations for one checkpoint (see the module docstring).

    Args:
        cameras: the checkpoint's CameraInputs (name, model size, trained fit and frame size).
        n_obs_steps / fps: the policy's observation history and rate.
        image_fit: policy_node's ``image_fit`` parameter ("checkpoint" or a fit).
        keep_margin_s: how much older than the history span stored entries are kept.
    """

    def __init__(
        self,
        cameras: Sequence[Any],
        n_obs_steps: int,
        fps: float,
        image_fit: str = "checkpoint",
        keep_margin_s: float = 0.5,
    ) -> None:
        self.cameras = {c.name: c for c in cameras}
        self.camera_names = [c.name for c in cameras]
        self.image_shapes = {c.name: (c.height, c.width) for c in cameras}
        self.image_fit = image_fit
        self.n_obs_steps = int(n_obs_steps)
        self.fps = float(fps)
        self._fits: dict[tuple[str, int, int], str] = {}
        self.history = (
            ObservationHistory(
                [*self.camera_names, JOINTS], self.n_obs_steps, self.fps, keep_margin_s
            )
            if self.n_obs_steps > 1
            else None
        )

    # -- inputs -------------------------------------------------------------------------------

    def add(self, name: str, stamp: float, payload: Any) -> None:
        """Keep an input (a camera message, or the mapped joint positions under ``JOINTS``)
        for the history; nothing to keep when n_obs_steps is 1."""
        if self.history is not None:
            self.history.add(name, stamp, payload)

    def clear(self) -> None:
        """Forget the stored history (activation, clock jump, a new episode)."""
        if self.history is not None:
            self.history.clear()

    # -- images -------------------------------------------------------------------------------

    def fit_for(self, camera: str, height: int, width: int) -> str:
        """The image fit for this camera's frames of this size (cached; refusals raise)."""
        key = (camera, int(height), int(width))
        fit = self._fits.get(key)
        if fit is None:
            if height <= 0 or width <= 0:
                raise ImageDecodeError(f"image has no pixels: height={height}, width={width}")
            spec = self.cameras[camera]
            fit = fit_for_camera(
                camera,
                (int(height), int(width)),
                (spec.height, spec.width),
                spec.source_shape,
                spec.fit,
                self.image_fit,
            )
            if len(self._fits) > 64:
                self._fits.clear()
            self._fits[key] = fit
        return fit

    def to_rgb(self, name: str, msg: Any) -> np.ndarray:
        """One camera message -> uint8 RGB at the checkpoint's size (raises ImageDecodeError)."""
        size = self.image_shapes[name]
        if not is_raw_image(msg):
            _fmt, width, height = compressed_image_size(msg.data)
            fit = self.fit_for(name, height, width)
            return compressed_to_rgb(msg.data, size, fit)
        fit = self.fit_for(name, msg.height, msg.width)
        return raw_to_rgb(
            msg.encoding,
            msg.height,
            msg.width,
            msg.step,
            msg.data,
            size,
            bool(msg.is_bigendian),
            fit,
        )

    def entry_rgb(self, name: str, entry: Entry) -> np.ndarray:
        """A history entry's image, converted once and kept with the entry."""
        if entry.converted is None:
            entry.converted = self.to_rgb(name, entry.payload)
        return entry.converted

    def _rgb(self, name: str, convert: Any, item: Any) -> np.ndarray:
        try:
            return convert(name, item)
        except CameraImageError:
            raise
        except ImageDecodeError as exc:
            raise CameraImageError(name, str(exc)) from exc

    # -- observations ---------------------------------------------------------------------------

    def build(self, gate: GateResult, lock: Any = None) -> tuple[Any, list[float]] | None:
        """The Observation for a passed gate snapshot and the history offsets (frame stamp -
        observation-camera stamp, seconds, oldest first, 0.0 last; [] without history).

        ``lock`` (a context manager) guards the history lookup against a concurrent reset;
        None when the history was cleared since the snapshot (nothing to build). Raises
        CameraImageError naming the camera whose frame cannot be converted.
        """
        from robot_policy_ros.policies.base import Observation

        if self.history is None:
            images = {n: self._rgb(n, self.to_rgb, msg) for n, msg in gate.images.items()}
            obs = Observation(images=images, joint_positions=gate.joints, stamp=gate.stamp)
            return obs, []
        with lock if lock is not None else contextlib.nullcontext():
            try:
                frames = self.history.frames(gate.stamp, gate.stamps)
            except KeyError:
                return None  # cleared (a clock jump) since the snapshot
            # the stored entries, so that their conversions serve later observations
            current = {
                n: self.history.at(n, gate.stamps[n], gate.images[n]) for n in self.camera_names
            }
        images = {n: self._rgb(n, self.entry_rgb, entry) for n, entry in current.items()}
        history = []
        for frame in frames:
            imgs = {n: self._rgb(n, self.entry_rgb, frame[n]) for n in self.camera_names}
            history.append(
                Observation(
                    images=imgs,
                    joint_positions=frame[JOINTS].payload,
                    stamp=frame[self.camera_names[0]].stamp,
                )
            )
        first = self.camera_names[0]
        offsets = [frame[first].stamp - gate.stamps[first] for frame in frames] + [0.0]
        obs = Observation(
            images=images, joint_positions=gate.joints, stamp=gate.stamp, history=history
        )
        return obs, offsets
