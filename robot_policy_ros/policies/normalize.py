"""Normalisation of joint states and actions with statistics stored in the checkpoint.

Modes (chosen per family as the reference implementations do):
- ``"mean_std"``: (x - mean) / std — MLP and ACT, for state and action.
- ``"min_max"``: maps [min, max] to [-1, 1] — Diffusion Policy, for state and action (the
  diffusion sample is clipped to [-1, 1], so actions must live there).

Tiny spreads (a joint that never moved in the demonstrations) are guarded with ``eps`` in
joint units so that an unseen value cannot explode to a huge normalised input.

The statistics are buffers that are *not* part of the state dict: they live in
``config.json``, human-readable, and are the single source of truth. They stay float32
even when the network runs in half precision (see :meth:`Normalizer._apply`).
"""

from __future__ import annotations

import torch
from torch import nn

from robot_policy_ros.checkpoint.config import NormalizationStats

__all__ = ["MODES", "NormalizationStats", "Normalizer"]

MODES = ("mean_std", "min_max")


class Normalizer(nn.Module):
    """State/action (un)normalisation for one family.

    Args:
        stats: per-joint statistics.
        state_mode / action_mode: "mean_std" or "min_max".
        eps: smallest std (mean_std) or half-range (min_max), joint units.
    """

    def __init__(
        self, stats: NormalizationStats, state_mode: str, action_mode: str, eps: float = 1e-3
    ) -> None:
        super().__init__()
        for mode in (state_mode, action_mode):
            if mode not in MODES:
                raise ValueError(f"normalization mode must be one of {MODES}, got {mode!r}")
        self.state_mode = state_mode
        self.action_mode = action_mode
        self.eps = float(eps)
        n = stats.num_joints
        for name in ("state_offset", "state_scale", "action_offset", "action_scale"):
            self.register_buffer(name, torch.zeros(n), persistent=False)
        self.stats = stats
        self.set_stats(stats)

    def set_stats(self, stats: NormalizationStats) -> None:
        """Replace the statistics (same number of joints)."""
        if stats.num_joints != self.state_offset.shape[0]:
            raise ValueError(
                f"normalization stats have {stats.num_joints} joints, "
                f"policy has {self.state_offset.shape[0]}"
            )
        self.stats = stats
        for group, mode in (("state", self.state_mode), ("action", self.action_mode)):
            if mode == "mean_std":
                offset = getattr(stats, f"{group}_mean")
                scale = getattr(stats, f"{group}_std").clip(min=self.eps)
            else:
                lo, hi = getattr(stats, f"{group}_min"), getattr(stats, f"{group}_max")
                offset = (lo + hi) / 2.0
                scale = ((hi - lo) / 2.0).clip(min=self.eps)
            buf_o = getattr(self, f"{group}_offset")
            buf_s = getattr(self, f"{group}_scale")
            with torch.no_grad():
                buf_o.copy_(torch.as_tensor(offset, dtype=torch.float32))
                buf_s.copy_(torch.as_tensor(scale, dtype=torch.float32))

    def _apply(self, fn, recurse=True):
        # Move with the module (device) but keep float32: normalised values in half
        # precision would cost ~1e-3 of the joint range on the way out.
        super()._apply(fn, recurse)
        for name in ("state_offset", "state_scale", "action_offset", "action_scale"):
            buf = self._buffers[name]
            if buf is not None and buf.dtype != torch.float32:
                self._buffers[name] = buf.float()
        return self

    def normalize_state(self, x: torch.Tensor) -> torch.Tensor:
        """Joint units -> normalised (float32)."""
        return (x.float() - self.state_offset) / self.state_scale

    def normalize_action(self, x: torch.Tensor) -> torch.Tensor:
        """Joint units -> normalised (float32)."""
        return (x.float() - self.action_offset) / self.action_scale

    def unnormalize_action(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised -> joint units (float32)."""
        return x.float() * self.action_scale + self.action_offset
