"""When to start the sim's next episode while recording demonstrations (no rclpy)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class EpisodeSequencer:
    """Start the next episode after each finished one, until ``episodes`` are recorded.

    Fed the sim_robot's ``~/episode`` JSON ({"index", "done", ...}); the sim republishes
    it periodically, so each finished index counts once. ``episodes`` = 0: never stop.
    """

    episodes: int = 0
    finished: list[int] = field(default_factory=list)

    def on_episode(self, data: Mapping[str, Any]) -> str:
        """``"reset"`` (start the next episode), ``"stop"`` (all recorded) or ``"wait"``."""
        if not data.get("done"):
            return "wait"
        index = int(data["index"])
        if index in self.finished:
            return "wait"
        self.finished.append(index)
        if self.episodes and len(self.finished) >= self.episodes:
            return "stop"
        return "reset"
