"""The scripted expert's planner: inverse kinematics and minimum-jerk joint trajectories.

From the privileged target position it plans: (optionally) lift the tool, move it to a
hover pose above the target, then lower it onto the target with the tool pointing down,
each leg a minimum-jerk move in joint space timed from the joint velocity and
acceleration limits. Pure numpy; no rclpy.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np

from robot_policy_ros.sim.arm import ArmConfig, ArmKinematics

TOOL_DOWN = math.pi  # absolute angle of the last link from vertical-up

# Peak speed and acceleration of a minimum-jerk move over distance D in time T are
# 1.875 D/T and 5.7735 D/T^2.
_MJ_PEAK_VEL = 1.875
_MJ_PEAK_ACC = 10.0 / math.sqrt(3.0)


class IKError(ValueError):
    """No joint solution within the limits for the requested tool pose."""


def min_jerk(q0: np.ndarray, q1: np.ndarray, tau: float) -> np.ndarray:
    """Minimum-jerk interpolation at normalised time ``tau`` in [0, 1] (clamped).

    Zero velocity and acceleration at both ends.
    """
    s = min(max(tau, 0.0), 1.0)
    blend = s * s * s * (10.0 + s * (-15.0 + 6.0 * s))
    return q0 + (q1 - q0) * blend


def min_jerk_velocity(q0: np.ndarray, q1: np.ndarray, tau: float, duration: float) -> np.ndarray:
    """Time derivative of :func:`min_jerk` (units per second)."""
    s = min(max(tau, 0.0), 1.0)
    dblend = 30.0 * s * s * (1.0 - s) ** 2
    return (q1 - q0) * dblend / duration


def solve_ik(
    config: ArmConfig,
    target: np.ndarray,
    tool_angle: float = TOOL_DOWN,
    elbow_up: bool = True,
    q_seed: np.ndarray | None = None,
) -> np.ndarray:
    """Joint positions putting the tool tip at ``target`` (x, y, z) with the last link at
    ``tool_angle`` from vertical (pi = pointing down).

    Analytic for the usual 3 pitch joints (yaw + planar 2-link + tool orientation); a damped
    least-squares solve otherwise. Raises IKError if no solution is within the limits.
    """
    x, y, z = (float(v) for v in target)
    n = config.num_joints
    yaw = math.atan2(y, x) if math.hypot(x, y) > 1e-9 else 0.0
    r = math.hypot(x, y)
    if n == 4:
        candidates = []
        for up in (elbow_up, not elbow_up):
            try:
                candidates.append(_analytic_3link(config, yaw, r, z, tool_angle, up))
            except IKError:
                continue
        for q in candidates:
            if np.all(q >= config.lower - 1e-9) and np.all(q <= config.upper + 1e-9):
                return config.clamp(q)
        raise IKError(f"target {target} with tool angle {tool_angle:.2f} is outside the limits")
    return _numeric_planar(config, yaw, r, z, tool_angle, q_seed)


def _analytic_3link(
    config: ArmConfig, yaw: float, r: float, z: float, tool_angle: float, elbow_up: bool
) -> np.ndarray:
    l1, l2, l3 = config.link_lengths
    # Wrist point: back along the tool from the tip.
    wr = r - l3 * math.sin(tool_angle)
    wz = z - l3 * math.cos(tool_angle)
    # Planar 2-link, angles from vertical: components (cos -> up, sin -> forward).
    u, v = wz - config.base_height, wr
    d2 = u * u + v * v
    c2 = (d2 - l1 * l1 - l2 * l2) / (2.0 * l1 * l2)
    if c2 < -1.0 - 1e-9 or c2 > 1.0 + 1e-9:
        raise IKError(f"wrist point at distance {math.sqrt(d2):.3f} m is out of reach")
    c2 = min(max(c2, -1.0), 1.0)
    t2 = math.acos(c2) * (1.0 if elbow_up else -1.0)
    t1 = math.atan2(v, u) - math.atan2(l2 * math.sin(t2), l1 + l2 * math.cos(t2))
    t3 = tool_angle - t1 - t2
    return np.array([yaw, t1, t2, t3])


def _numeric_planar(
    config: ArmConfig,
    yaw: float,
    r: float,
    z: float,
    tool_angle: float,
    q_seed: np.ndarray | None,
    iterations: int = 200,
) -> np.ndarray:
    kin = ArmKinematics(config)
    q = np.array(config.home if q_seed is None else q_seed, dtype=np.float64)
    q[0] = yaw
    goal = np.array([r, z, tool_angle])
    lengths = kin.lengths
    for _ in range(iterations):
        rz = kin.planar(q)[-1]
        err = goal - np.array([rz[0], rz[1], np.sum(q[1:])])
        if np.linalg.norm(err) < 1e-7:
            break
        phi = np.cumsum(q[1:])
        # d(tip)/d(q_k) sums over the links at and after joint k.
        dr = np.cumsum((lengths * np.cos(phi))[::-1])[::-1]
        dz = -np.cumsum((lengths * np.sin(phi))[::-1])[::-1]
        jac = np.vstack([dr, dz, np.ones_like(dr)])
        lam = 1e-3
        step = jac.T @ np.linalg.solve(jac @ jac.T + lam * np.eye(3), err)
        q[1:] = np.clip(q[1:] + step, config.lower[1:], config.upper[1:])
    rz = kin.planar(q)[-1]
    if math.hypot(rz[0] - r, rz[1] - z) > 1e-4 or abs(np.sum(q[1:]) - tool_angle) > 1e-3:
        raise IKError(f"no solution within limits for r={r:.3f} z={z:.3f}")
    if not config.lower[0] <= yaw <= config.upper[0]:
        raise IKError(f"base yaw {yaw:.2f} is outside the limits")
    return q


def segment_duration(
    config: ArmConfig, q0: np.ndarray, q1: np.ndarray, speed: float, min_duration: float
) -> float:
    """Duration of a minimum-jerk move so that its peak joint velocity and acceleration
    stay within ``speed`` (0..1] times the limits."""
    d = np.abs(np.asarray(q1) - np.asarray(q0))
    t_vel = np.max(_MJ_PEAK_VEL * d / (speed * config.max_velocity))
    t_acc = np.max(np.sqrt(_MJ_PEAK_ACC * d / (speed * config.max_acceleration)))
    return float(max(min_duration, t_vel, t_acc))


@dataclass
class Segment:
    start: float
    duration: float
    q0: np.ndarray
    q1: np.ndarray


class MinJerkPlan:
    """A chain of minimum-jerk joint moves in absolute time; holds the last pose after."""

    def __init__(self, segments: list[Segment]) -> None:
        if not segments:
            raise ValueError("a plan needs at least one segment")
        self.segments = segments

    @property
    def start_time(self) -> float:
        return self.segments[0].start

    @property
    def end_time(self) -> float:
        last = self.segments[-1]
        return last.start + last.duration

    @property
    def final(self) -> np.ndarray:
        return self.segments[-1].q1.copy()

    def sample(self, t: float) -> np.ndarray:
        """Joint positions at time ``t``."""
        if t <= self.segments[0].start:
            return self.segments[0].q0.copy()
        for seg in self.segments:
            if t < seg.start + seg.duration:
                return min_jerk(seg.q0, seg.q1, (t - seg.start) / seg.duration)
        return self.final

    def velocity(self, t: float) -> np.ndarray:
        """Joint velocities at time ``t``."""
        for seg in self.segments:
            if seg.start <= t < seg.start + seg.duration:
                return min_jerk_velocity(
                    seg.q0, seg.q1, (t - seg.start) / seg.duration, seg.duration
                )
        return np.zeros_like(self.segments[0].q0)


@dataclass(frozen=True)
class ExpertConfig:
    """How the expert moves.

    hover_height_m: tool tip height above the target before descending.
    touch_height_m: tool tip height at the end (over the target, near the table).
    speed: fraction of the joint velocity/acceleration limits a move may use at its peak.
    min_segment_s: shortest move.
    noise_std: scale (metres) of random offsets of the hover point; the final point gets a
        quarter of it (clipped to max_final_offset_m), durations vary by +-10 % per unit.
    """

    hover_height_m: float = 0.08
    touch_height_m: float = 0.015
    speed: float = 0.5
    min_segment_s: float = 0.4
    noise_std: float = 0.0
    max_final_offset_m: float = 0.012


class ExpertPlanner:
    """Plans the reach for one target from the current joint positions."""

    def __init__(self, config: ArmConfig, expert: ExpertConfig | None = None) -> None:
        self.config = config
        self.expert = expert or ExpertConfig()
        self.kin = ArmKinematics(config)

    def plan(
        self,
        q_now: np.ndarray,
        target: np.ndarray,
        t0: float,
        rng: np.random.Generator | None = None,
    ) -> MinJerkPlan:
        """A plan starting at time ``t0`` from ``q_now`` that ends touching ``target``.

        ``rng`` (with ``noise_std`` > 0) perturbs the hover point, final point and timing.
        """
        ex = self.expert
        q_now = self.config.clamp(np.asarray(q_now, dtype=np.float64))
        target = np.asarray(target, dtype=np.float64)
        noisy = rng is not None and ex.noise_std > 0
        hover_off = np.zeros(3)
        final_off = np.zeros(3)
        if noisy:
            hover_off = rng.normal(0.0, ex.noise_std, 3)
            hover_off[2] = abs(hover_off[2])  # only ever higher, never into the table
            final_off[:2] = np.clip(
                rng.normal(0.0, ex.noise_std * 0.25, 2),
                -ex.max_final_offset_m,
                ex.max_final_offset_m,
            )
        hover = target + np.array([0.0, 0.0, ex.hover_height_m]) + hover_off
        touch = target + np.array([0.0, 0.0, ex.touch_height_m]) + final_off
        waypoints: list[np.ndarray] = []
        tip = self.kin.tip(q_now)
        if tip[2] < hover[2] - 0.02:
            # Low (e.g. on the previous target): lift straight up first.
            lift = np.array([tip[0], tip[1], hover[2]])
            with contextlib.suppress(IKError):  # unreachable lift: go directly
                waypoints.append(solve_ik(self.config, lift, q_seed=q_now))
        waypoints.append(solve_ik(self.config, hover, q_seed=q_now))
        waypoints.append(solve_ik(self.config, touch, q_seed=waypoints[-1]))
        segments: list[Segment] = []
        t = t0
        q_prev = q_now
        for q_next in waypoints:
            dur = segment_duration(self.config, q_prev, q_next, ex.speed, ex.min_segment_s)
            if noisy:
                dur *= float(np.clip(1.0 + rng.normal(0.0, 0.1), 0.8, 1.3))
            segments.append(Segment(t, dur, q_prev, q_next))
            t += dur
            q_prev = q_next
        return MinJerkPlan(segments)


def choose_target(targets: np.ndarray, seed: int) -> int:
    """Which of the episode's targets (n, 3) the expert goes to: a seeded coin.

    The coin is drawn from a generator keyed by ``seed`` and the targets' exact coordinates
    (micrometres), so the choice is reproducible whatever order messages arrive in, yet
    carries no geometric rule (not the nearest, not the leftmost) a policy could learn from
    the image: over episodes each target is chosen half the time. One target: always 0.
    """
    targets = np.atleast_2d(np.asarray(targets, dtype=np.float64))
    if len(targets) == 1:
        return 0
    key = [round(float(v) * 1e6) & 0xFFFFFFFF for v in targets[:, :2].ravel()]
    # The trailing 1 separates this stream from the planner's noise stream.
    return int(np.random.default_rng([int(seed), *key, 1]).integers(len(targets)))
