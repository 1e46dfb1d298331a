"""The simulated arm: configuration (YAML), forward kinematics and the joint servos.

Pure numpy; no rclpy. The arm is a yaw joint about the vertical axis followed by a chain
of pitch joints in the arm's vertical plane. A pitch angle of 0 points a link straight up
and positive angles lean it forward, so the absolute angle of link k (from vertical) is
the sum of the pitch angles up to k. The tool tip is the end of the last link.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from robot_policy_ros.core.joint_limits import JointLimits

PACKAGE = "robot_policy_ros"
DEFAULT_CONFIG_NAME = "sim_arm.yaml"


class ArmConfigError(ValueError):
    """A sim arm configuration that cannot be used; the message names the file and fix."""


@dataclass(frozen=True)
class CameraView:
    """A fixed pinhole camera: where it is, what it looks at, its horizontal field of view."""

    position: tuple[float, float, float]
    look_at: tuple[float, float, float]
    fov_deg: float = 60.0


@dataclass(frozen=True)
class Workspace:
    """Where targets appear: an annulus sector on the table in front of the arm."""

    radius_m: tuple[float, float] = (0.17, 0.33)
    yaw_rad: tuple[float, float] = (-0.75, 0.75)
    target_disc_radius_m: float = 0.03


@dataclass(frozen=True)
class ArmConfig:
    """Everything the sim needs to know about the arm (see config/sim_arm.yaml)."""

    joint_names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    max_velocity: np.ndarray
    max_acceleration: np.ndarray
    base_height: float
    link_lengths: tuple[float, ...]  # one per pitch joint
    home: np.ndarray
    servo_gain: float = 25.0
    workspace: Workspace = field(default_factory=Workspace)
    cameras: dict[str, CameraView] = field(default_factory=dict)
    name: str = "sim_arm"
    source: str = "<dict>"

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def clamp(self, q: np.ndarray) -> np.ndarray:
        """``q`` clamped to the position limits."""
        return np.clip(q, self.lower, self.upper)

    def joint_limits(self) -> JointLimits:
        """The arm's limits as the one :class:`JointLimits` type (same rules as every source)."""
        return JointLimits.from_columns(
            self.joint_names,
            {
                "lower": self.lower,
                "upper": self.upper,
                "max_velocity": self.max_velocity,
                "max_acceleration": self.max_acceleration,
            },
        )

    def limits_dict(self) -> dict[str, Any]:
        """The joints in the JointLimits schema ({"joints": [{name, lower, ...}]})."""
        return self.joint_limits().to_dict()


def default_arm_config_path() -> Path:
    """The packaged config/sim_arm.yaml: source tree first, then the ament share dir.

    Raises ArmConfigError if neither exists.
    """
    candidates = [Path(__file__).resolve().parents[2] / "config" / DEFAULT_CONFIG_NAME]
    try:  # installed with colcon: <prefix>/share/robot_policy_ros/config/sim_arm.yaml
        from ament_index_python.packages import get_package_share_directory

        share = get_package_share_directory(PACKAGE)
        candidates.append(Path(share) / "config" / DEFAULT_CONFIG_NAME)
    except Exception:
        pass
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix:
            candidates.append(Path(prefix) / "share" / PACKAGE / "config" / DEFAULT_CONFIG_NAME)
    for path in candidates:
        if path.is_file():
            return path
    raise ArmConfigError(
        f"cannot find {DEFAULT_CONFIG_NAME} (looked in: {', '.join(str(c) for c in candidates)});"
        " pass the arm_config parameter with the path of an arm YAML"
    )


def resolve_arm_config_path(path: str | os.PathLike | None) -> Path:
    """``path`` if given (must exist), else :func:`default_arm_config_path`."""
    if path is None or str(path) == "":
        return default_arm_config_path()
    p = Path(path).expanduser()
    if not p.is_file():
        raise ArmConfigError(f"arm config '{p}' does not exist; set arm_config to an arm YAML")
    return p


def load_arm_config(path: str | os.PathLike | None = None) -> ArmConfig:
    """Load and validate an arm YAML (default: the packaged config/sim_arm.yaml)."""
    p = resolve_arm_config_path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ArmConfigError(f"arm config '{p}': cannot read it as YAML: {exc}") from exc
    return arm_config_from_dict(data, source=str(p))


def _number(value: Any, what: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArmConfigError(f"arm config '{source}': {what} = {value!r} is not a number")
    if not math.isfinite(value):
        raise ArmConfigError(f"arm config '{source}': {what} = {value!r} is not finite")
    return float(value)


def _vector(value: Any, n: int, what: str, source: str) -> tuple[float, ...]:
    if not isinstance(value, (list, tuple)) or len(value) != n:
        raise ArmConfigError(f"arm config '{source}': {what} must be a list of {n} numbers")
    return tuple(_number(v, f"{what}[{i}]", source) for i, v in enumerate(value))


def arm_config_from_dict(data: Any, source: str = "<dict>") -> ArmConfig:
    """Validate a parsed arm YAML; every problem raises ArmConfigError naming the field."""
    if not isinstance(data, dict):
        raise ArmConfigError(f"arm config '{source}': expected a mapping at the top level")
    joints = data.get("joints")
    if not isinstance(joints, list) or len(joints) < 3:
        raise ArmConfigError(
            f"arm config '{source}': 'joints' must list at least 3 joints (a yaw joint and"
            " two or more pitch joints)"
        )
    for i, j in enumerate(joints):
        if not isinstance(j, dict) or not isinstance(j.get("name"), str) or not j["name"]:
            raise ArmConfigError(f"arm config '{source}': joints[{i}] needs a non-empty 'name'")
        for key in ("lower", "upper", "max_velocity", "max_acceleration"):
            if j.get(key) is None:  # the sim needs every limit, accelerations included
                raise ArmConfigError(f"arm config '{source}': joint '{j['name']}' has no '{key}'")
    try:  # the one parser and its rules (core/joint_limits.py)
        limits = JointLimits.from_dict({"joints": joints})
    except ValueError as exc:
        raise ArmConfigError(f"arm config '{source}': {exc}") from None
    names = list(limits.names)
    n = len(names)
    links = data.get("links")
    if not isinstance(links, dict):
        raise ArmConfigError(
            f"arm config '{source}': 'links' must be a mapping with base_height and lengths"
        )
    base_height = _number(links.get("base_height"), "links.base_height", source)
    lengths = _vector(links.get("lengths"), n - 1, "links.lengths (one per pitch joint)", source)
    if base_height <= 0 or any(v <= 0 for v in lengths):
        raise ArmConfigError(f"arm config '{source}': link lengths must be > 0")
    lower, upper = limits.lower.copy(), limits.upper.copy()
    home = np.array(_vector(data.get("home", [0.0] * n), n, "home", source))
    if np.any(home < lower) or np.any(home > upper):
        bad = [names[i] for i in range(n) if not lower[i] <= home[i] <= upper[i]]
        raise ArmConfigError(f"arm config '{source}': home is outside the limits of {bad}")
    gain = _number(data.get("servo_gain", 25.0), "servo_gain", source)
    if gain <= 0:
        raise ArmConfigError(f"arm config '{source}': servo_gain must be > 0")
    ws = data.get("workspace", {}) or {}
    if not isinstance(ws, dict):
        raise ArmConfigError(f"arm config '{source}': 'workspace' must be a mapping")
    default_ws = Workspace()
    r_rng = _vector(ws.get("radius_m", default_ws.radius_m), 2, "workspace.radius_m", source)
    y_rng = _vector(ws.get("yaw_rad", default_ws.yaw_rad), 2, "workspace.yaw_rad", source)
    disc = _number(
        ws.get("target_disc_radius_m", default_ws.target_disc_radius_m),
        "workspace.target_disc_radius_m",
        source,
    )
    if not (0 < r_rng[0] < r_rng[1]) or not y_rng[0] <= y_rng[1] or disc <= 0:
        raise ArmConfigError(
            f"arm config '{source}': workspace needs 0 < radius_m[0] < radius_m[1],"
            " yaw_rad[0] <= yaw_rad[1] and target_disc_radius_m > 0"
        )
    cams: dict[str, CameraView] = {}
    raw_cams = data.get("cameras", {}) or {}
    if not isinstance(raw_cams, dict):
        raise ArmConfigError(f"arm config '{source}': 'cameras' must be a mapping name -> view")
    for cname, c in raw_cams.items():
        if not isinstance(c, dict):
            raise ArmConfigError(f"arm config '{source}': camera '{cname}' must be a mapping")
        pos = _vector(c.get("position"), 3, f"cameras.{cname}.position", source)
        look = _vector(c.get("look_at"), 3, f"cameras.{cname}.look_at", source)
        fov = _number(c.get("fov_deg", 60.0), f"cameras.{cname}.fov_deg", source)
        if not 5.0 <= fov <= 170.0:
            raise ArmConfigError(f"arm config '{source}': cameras.{cname}.fov_deg in [5, 170]")
        if np.linalg.norm(np.subtract(pos, look)) < 1e-6:
            raise ArmConfigError(
                f"arm config '{source}': camera '{cname}' position equals its look_at"
            )
        cams[str(cname)] = CameraView(pos, look, fov)  # type: ignore[arg-type]
    return ArmConfig(
        joint_names=tuple(names),
        lower=lower,
        upper=upper,
        max_velocity=limits.max_velocity.copy(),
        max_acceleration=np.array(limits.max_acceleration),
        base_height=base_height,
        link_lengths=lengths,
        home=home,
        servo_gain=gain,
        workspace=Workspace(r_rng, y_rng, disc),  # type: ignore[arg-type]
        cameras=cams,
        name=str(data.get("name", "sim_arm")),
        source=source,
    )


class ArmKinematics:
    """Forward kinematics of the yaw + planar pitch chain."""

    def __init__(self, config: ArmConfig) -> None:
        self.config = config
        self.base_height = config.base_height
        self.lengths = np.asarray(config.link_lengths, dtype=np.float64)

    def planar(self, q: Sequence[float]) -> np.ndarray:
        """Points of the pitch chain in the arm plane as (r, z): shoulder, then link ends."""
        q = np.asarray(q, dtype=np.float64)
        phi = np.cumsum(q[1:])
        pts = np.empty((len(self.lengths) + 1, 2))
        pts[0] = (0.0, self.base_height)
        pts[1:, 0] = np.cumsum(self.lengths * np.sin(phi))
        pts[1:, 1] = self.base_height + np.cumsum(self.lengths * np.cos(phi))
        return pts

    def points(self, q: Sequence[float]) -> np.ndarray:
        """3D points (N+2, 3): base on the table, shoulder, each link end (last = tool tip)."""
        q = np.asarray(q, dtype=np.float64)
        rz = self.planar(q)
        c, s = math.cos(q[0]), math.sin(q[0])
        out = np.empty((len(rz) + 1, 3))
        out[0] = (0.0, 0.0, 0.0)
        out[1:, 0] = rz[:, 0] * c
        out[1:, 1] = rz[:, 0] * s
        out[1:, 2] = rz[:, 1]
        return out

    def tip(self, q: Sequence[float]) -> np.ndarray:
        """Tool tip position (x, y, z)."""
        return self.points(q)[-1]

    def tool_angle(self, q: Sequence[float]) -> float:
        """Angle of the last link from vertical-up (pi = pointing straight down)."""
        return float(np.sum(np.asarray(q, dtype=np.float64)[1:]))


class ServoArm:
    """Joint position servos with velocity and acceleration limits, stepped at a fixed dt.

    Each step the velocity command is ``gain * error`` (plus the commanded velocity, if
    one is given, as feed-forward), capped so the joint can still brake to the setpoint
    under the acceleration limit, capped at the velocity limit, and then changed by at most
    ``max_acceleration * dt``. Positions never leave the limits: a joint that reaches a
    limit stops there.
    """

    def __init__(self, config: ArmConfig, q0: Sequence[float] | None = None) -> None:
        self.config = config
        self.q = config.clamp(np.array(config.home if q0 is None else q0, dtype=np.float64))
        self.v = np.zeros(config.num_joints)
        self.setpoint = self.q.copy()

    def reset(self, q: Sequence[float]) -> None:
        """Snap to ``q`` (clamped), at rest, holding it."""
        self.q = self.config.clamp(np.array(q, dtype=np.float64))
        self.v = np.zeros(self.config.num_joints)
        self.setpoint = self.q.copy()

    def set_setpoint(self, q: Sequence[float]) -> None:
        """Command a position; it is clamped to the limits."""
        self.setpoint = self.config.clamp(np.asarray(q, dtype=np.float64))

    def stopping_point(self) -> np.ndarray:
        """Where the joints come to rest when braking at full deceleration from now."""
        a = self.config.max_acceleration
        return self.config.clamp(self.q + self.v * np.abs(self.v) / (2.0 * a))

    def step(self, dt: float, feedforward: np.ndarray | None = None) -> None:
        """Advance the servos by ``dt`` seconds toward the setpoint."""
        cfg = self.config
        err = self.setpoint - self.q
        # Feedback never asks for more speed than can be braked away before the setpoint.
        v_brake = np.sqrt(2.0 * cfg.max_acceleration * np.abs(err))
        v_des = np.clip(cfg.servo_gain * err, -v_brake, v_brake)
        if feedforward is not None:
            v_des = v_des + feedforward
        v_des = np.clip(v_des, -cfg.max_velocity, cfg.max_velocity)
        dv = np.clip(v_des - self.v, -cfg.max_acceleration * dt, cfg.max_acceleration * dt)
        self.v = self.v + dv
        q = self.q + self.v * dt
        at_limit = (q <= cfg.lower) | (q >= cfg.upper)
        self.q = np.clip(q, cfg.lower, cfg.upper)
        self.v = np.where(at_limit, 0.0, self.v)
