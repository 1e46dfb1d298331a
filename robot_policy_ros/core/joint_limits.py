"""Joint limits: one type, one parser, one set of rules for every source.

Sources and their constructors:
    * limits file / arm preset ``joints`` list: :meth:`JointLimits.from_dict` / ``from_yaml``;
    * checkpoint config (``{"lower": [...], "upper": [...], "max_velocity": [...],
      "max_acceleration": [...] | null}`` in the checkpoint's joint order):
      :meth:`JointLimits.from_columns`, written by :meth:`JointLimits.to_columns`
      (``CheckpointConfig.limits`` is a JointLimits named by the checkpoint's joints);
    * limits estimated from demonstrations: ``data.stats.estimate_limits`` (returns one);
    * the same limits for every joint (an untrained checkpoint's placeholder):
      :meth:`JointLimits.uniform`;
    * sim arm config: :meth:`JointLimits.from_columns` with its arrays
      (``ArmConfig.joint_limits``);
    * a robot's limits for some joints, in either form (training's ``--limits-file`` or the
      robot config recorded with the demonstrations, read by ``data.stats``):
      :meth:`JointLimits.from_mapping`.

Rules (the same everywhere):
    * every joint has a unique non-empty name and finite ``lower < upper``, ``max_velocity > 0``;
    * ``max_acceleration`` is optional, but given for all joints or none; a null value means
      "absent"; a given one is finite and > 0;
    * numbers are real numbers; a YAML boolean or a string is refused, not read as 0/1 or
      parsed (also by the constructor: no bool, string or object arrays);
    * the columns form has exactly its keys: an unknown one (a misspelt ``max_acceleration``)
      is refused, not ignored; each column lists one value per joint;
    * errors are :class:`JointLimitsError` (a ValueError) naming the joint and the field.

No torch, no rclpy: importable by the streamer, the launch helpers and the sim alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from typing import Any

import numpy as np

__all__ = ["COLUMNS", "JointLimits", "JointLimitsError"]

#: Keys of the per-joint columns form (:meth:`JointLimits.from_columns`), required first.
COLUMNS = ("lower", "upper", "max_velocity", "max_acceleration")


class JointLimitsError(ValueError):
    """A rule broken while reading limits; ``str()`` says which joint and why.

    For readers with their own way of naming a field (an arm preset's ``joints[2] (elbow)
    .lower``): ``index`` (entry in the ``joints`` list, None for the list as a whole),
    ``joint`` (name, if known), ``key`` (the field, if one) and ``problem`` (the rest, as a
    predicate of the field: "must be > 0, got 0").
    """

    def __init__(
        self,
        message: str,
        *,
        index: int | None = None,
        joint: str | None = None,
        key: str | None = None,
        problem: str = "",
    ) -> None:
        super().__init__(message)
        self.index = index
        self.joint = joint
        self.key = key
        self.problem = problem or message


def _short(value: Any, limit: int = 80) -> str:
    """``repr`` cut to ``limit`` characters (hostile input must not make huge messages)."""
    text = repr(value) if not isinstance(value, np.ndarray) else f"array of shape {value.shape}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _as_vector(name: str, value: Any, n: int) -> np.ndarray:
    # Real numbers only, as in the parsers: numpy would read True as 1.0 and "1.5" as 1.5.
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError):
        raw = None
    if raw is None or raw.dtype.kind not in "iuf":
        raise ValueError(f"JointLimits.{name} must hold real numbers, got {_short(value)}")
    arr = np.array(raw, dtype=np.float64)
    if arr.shape != (n,):
        raise ValueError(
            f"JointLimits.{name} has shape {arr.shape}, expected ({n},) (one per joint)"
        )
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class JointLimits:
    """Per-joint position, velocity and (optional) acceleration limits, in joint units.

    Arrays are converted to read-only float64 vectors of length ``len(names)``. Validation
    (``__post_init__``) raises ValueError naming the offending joint.
    """

    names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    max_velocity: np.ndarray
    max_acceleration: np.ndarray | None = None

    def __post_init__(self) -> None:
        if isinstance(self.names, str):
            raise ValueError(f"JointLimits.names must be a sequence of names, got {self.names!r}")
        names = tuple(self.names)
        if not names:
            raise ValueError("JointLimits needs at least one joint")
        bad_names = [n for n in names if not isinstance(n, str) or not n]
        if bad_names:
            raise ValueError(f"JointLimits: joint names must be non-empty strings, got {bad_names}")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"JointLimits: duplicate joint names {dupes}")
        object.__setattr__(self, "names", names)
        n = len(names)
        fields = ["lower", "upper", "max_velocity"]
        if self.max_acceleration is not None:
            fields.append("max_acceleration")
        for field in fields:
            arr = _as_vector(field, getattr(self, field), n)
            bad = [names[i] for i in np.flatnonzero(~np.isfinite(arr))]
            if bad:
                raise ValueError(f"JointLimits.{field} is not finite for joint(s) {bad}")
            object.__setattr__(self, field, arr)
        for i, name in enumerate(names):
            if not self.lower[i] < self.upper[i]:
                raise ValueError(
                    f"joint '{name}': lower limit {self.lower[i]} must be below upper "
                    f"{self.upper[i]}"
                )
            if not self.max_velocity[i] > 0:
                raise ValueError(
                    f"joint '{name}': max_velocity must be > 0, got {self.max_velocity[i]}"
                )
            if self.max_acceleration is not None and not self.max_acceleration[i] > 0:
                raise ValueError(
                    f"joint '{name}': max_acceleration must be > 0, got {self.max_acceleration[i]}"
                )

    def __len__(self) -> int:
        """Number of joints."""
        return len(self.names)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, JointLimits):
            return NotImplemented
        if (self.max_acceleration is None) != (other.max_acceleration is None):
            return False
        return (
            self.names == other.names
            and np.array_equal(self.lower, other.lower)
            and np.array_equal(self.upper, other.upper)
            and np.array_equal(self.max_velocity, other.max_velocity)
            and (
                self.max_acceleration is None
                or np.array_equal(self.max_acceleration, other.max_acceleration)
            )
        )

    __hash__ = None  # type: ignore[assignment]  # mutable-looking array fields

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JointLimits:
        """Build from ``{"joints": [{"name", "lower", "upper", "max_velocity",
        "max_acceleration"?}, ...]}`` (the ``limits_file`` schema).

        ``max_acceleration`` is optional, but must then be given for all joints or none
        (a null value counts as absent).
        """
        if not isinstance(data, Mapping) or "joints" not in data:
            raise JointLimitsError("joint limits must be a mapping with a 'joints' list")
        joints = data["joints"]
        if not isinstance(joints, Sequence) or isinstance(joints, str) or not joints:
            raise JointLimitsError(
                "joint limits: 'joints' must be a non-empty list",
                problem="must be a non-empty list",
            )
        names: list[str] = []
        cols: dict[str, list[float]] = {"lower": [], "upper": [], "max_velocity": []}
        accel: list[float | None] = []
        for k, entry in enumerate(joints):
            if not isinstance(entry, Mapping):
                raise JointLimitsError(
                    f"joint limits: entry {k} is not a mapping: {entry!r}",
                    index=k,
                    problem=f"must be a mapping, got {entry!r}",
                )
            name = entry.get("name")
            if not isinstance(name, str) or not name:
                raise JointLimitsError(
                    f"joint limits: entry {k} has no 'name'",
                    index=k,
                    key="name",
                    problem="must be a non-empty string",
                )
            if name in names:
                raise JointLimitsError(
                    f"joint limits: duplicate joint '{name}' (listed twice)",
                    index=k,
                    joint=name,
                    key="name",
                    problem=f"joint '{name}' is listed twice",
                )
            missing = [key for key in cols if entry.get(key) is None]
            if missing:
                raise JointLimitsError(
                    f"joint limits: joint '{name}' lacks {missing}",
                    index=k,
                    joint=name,
                    key=missing[0],
                    problem="is missing",
                )
            names.append(name)
            for key, col in cols.items():
                col.append(_number(k, name, key, entry[key]))
            a = entry.get("max_acceleration")
            accel.append(None if a is None else _number(k, name, "max_acceleration", a))
            _check_entry(k, name, cols["lower"][-1], cols["upper"][-1], cols["max_velocity"][-1])
            if accel[-1] is not None and not accel[-1] > 0:
                raise JointLimitsError(
                    f"joint '{name}': max_acceleration must be > 0, got {accel[-1]}",
                    index=k,
                    joint=name,
                    key="max_acceleration",
                    problem=f"must be > 0, got {accel[-1]:g}",
                )
        without = [n for n, a in zip(names, accel, strict=True) if a is None]
        if 0 < len(without) < len(names):
            given = [n for n in names if n not in without]
            raise JointLimitsError(
                f"joint limits: max_acceleration must be given for all joints or none; "
                f"given for {given}, missing for {without}",
                key="max_acceleration",
                problem=f"max_acceleration is given for {given} but not for {without}; give it "
                "for every joint or for none",
            )
        return cls(
            names=tuple(names),
            lower=np.array(cols["lower"]),
            upper=np.array(cols["upper"]),
            max_velocity=np.array(cols["max_velocity"]),
            max_acceleration=None if without else np.array(accel, dtype=np.float64),
        )

    @classmethod
    def from_yaml(cls, path: str | PathLike[str]) -> JointLimits:
        """Load the ``limits_file``: YAML in the :meth:`from_dict` schema."""
        import yaml  # local: only needed when a file is read

        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
        try:
            return cls.from_dict(data)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """The :meth:`from_dict` schema (round-trips)."""
        joints = []
        for i, name in enumerate(self.names):
            entry: dict[str, Any] = {
                "name": name,
                "lower": float(self.lower[i]),
                "upper": float(self.upper[i]),
                "max_velocity": float(self.max_velocity[i]),
            }
            if self.max_acceleration is not None:
                entry["max_acceleration"] = float(self.max_acceleration[i])
            joints.append(entry)
        return {"joints": joints}

    @classmethod
    def from_columns(cls, names: Sequence[str], data: Mapping[str, Any]) -> JointLimits:
        """Build from per-joint lists in ``names`` order (the checkpoint config's form).

        ``data`` has ``lower``, ``upper``, ``max_velocity`` and optionally
        ``max_acceleration`` (a list, or null for "absent"), each with one entry per name,
        and no other keys (a misspelt ``max_acceleration`` must not silently mean "none").
        Raises :class:`JointLimitsError` naming what is wrong (the same rules as
        :meth:`from_dict`).
        """
        if not isinstance(data, Mapping):
            raise JointLimitsError(
                f"joint limits must be a mapping of per-joint lists, got {_short(data)}",
                problem="must be a mapping of per-joint lists",
            )
        names = [str(n) for n in names]
        n = len(names)
        unknown = sorted(str(k) for k in data if k not in COLUMNS)
        if unknown:
            raise JointLimitsError(
                f"joint limits: unknown keys {unknown} (expected {list(COLUMNS)})",
                key=unknown[0],
                problem=f"is not a limits key (expected one of {list(COLUMNS)})",
            )
        missing = [k for k in COLUMNS[:3] if data.get(k) is None]
        if missing:
            raise JointLimitsError(
                f"joint limits lack {missing}", key=missing[0], problem="is missing"
            )
        columns: dict[str, Any] = {}
        for key in COLUMNS:
            value = data.get(key)
            if value is None:
                continue
            if isinstance(value, np.ndarray):
                value = value.tolist()
            if not isinstance(value, list | tuple):
                raise JointLimitsError(
                    f"joint limits: '{key}' must be a list of {n} numbers (one per joint "
                    f"{names}), got {_short(value)}",
                    key=key,
                    problem=f"must be a list of {n} numbers, got {_short(value)}",
                )
            if len(value) != n:
                raise JointLimitsError(
                    f"joint limits: '{key}' must list {n} values (one per joint {names}), "
                    f"got {len(value)}",
                    key=key,
                    problem=f"must list {n} values (one per joint), got {len(value)}",
                )
            columns[key] = value
        joints = []
        for i, name in enumerate(names):
            entry = {k: columns[k][i] for k in columns}
            entry["name"] = name
            joints.append(entry)
        return cls.from_dict({"joints": joints})

    def to_columns(self) -> dict[str, Any]:
        """The :meth:`from_columns` form, as a checkpoint's ``config.json`` stores it
        (``max_acceleration`` null when absent); round-trips with ``self.names``."""
        return {
            "lower": self.lower.tolist(),
            "upper": self.upper.tolist(),
            "max_velocity": self.max_velocity.tolist(),
            "max_acceleration": (
                None if self.max_acceleration is None else self.max_acceleration.tolist()
            ),
        }

    @classmethod
    def uniform(
        cls,
        names: Sequence[str],
        lower: float = -3.14,
        upper: float = 3.14,
        max_velocity: float = 2.0,
        max_acceleration: float | None = None,
    ) -> JointLimits:
        """The same limits for every joint of ``names``.

        The defaults (+-3.14 rad, 2 rad/s, no acceleration limit) are the placeholder limits
        of an untrained checkpoint (``robot-policy init-checkpoint``, a LeRobot import without
        ``--limits``); a real robot needs its own.
        """
        given = {"lower": lower, "upper": upper, "max_velocity": max_velocity}
        if max_acceleration is not None:
            given["max_acceleration"] = max_acceleration
        for key, value in given.items():
            if isinstance(value, bool) or not isinstance(
                value, (int, float, np.integer, np.floating)
            ):
                raise JointLimitsError(
                    f"JointLimits.uniform: {key} must be a number, got {value!r}",
                    key=key,
                    problem=f"must be a number, got {value!r}",
                )
        k = len(names)
        return cls(
            names=tuple(names),
            lower=np.full(k, lower, dtype=np.float64),
            upper=np.full(k, upper, dtype=np.float64),
            max_velocity=np.full(k, max_velocity, dtype=np.float64),
            max_acceleration=(
                None if max_acceleration is None else np.full(k, max_acceleration, dtype=np.float64)
            ),
        )

    @classmethod
    def from_mapping(cls, data: Any, names: Sequence[str]) -> JointLimits:
        """Limits for ``names``, in that order, from either form.

        ``{"joints": [...]}`` (the :meth:`from_dict` schema; matched by name, extra joints
        ignored, so a whole arm YAML or preset will do) or per-joint columns already in
        ``names`` order (the :meth:`from_columns` schema).

        Raises:
            ValueError: the data breaks a rule (see the module docstring).
            KeyError: the ``joints`` list lacks some of ``names`` (naming them).
        """
        if isinstance(data, Mapping) and "joints" in data:
            return cls.from_dict(data).reorder(names)
        return cls.from_columns(names, data)

    def reorder(self, names: Sequence[str]) -> JointLimits:
        """Limits for ``names`` in that order (a subset is fine).

        Raises:
            KeyError: naming every joint in ``names`` that these limits lack.
        """
        index = {n: i for i, n in enumerate(self.names)}
        missing = [n for n in names if n not in index]
        if missing:
            raise KeyError(
                f"joint limits have no entry for joint(s) {missing}; available: {list(self.names)}"
            )
        idx = np.array([index[n] for n in names], dtype=np.intp)
        return JointLimits(
            names=tuple(names),
            lower=self.lower[idx],
            upper=self.upper[idx],
            max_velocity=self.max_velocity[idx],
            max_acceleration=None if self.max_acceleration is None else self.max_acceleration[idx],
        )


def _number(index: int, joint: str, key: str, value: Any) -> float:
    where = {"index": index, "joint": joint, "key": key}
    # Real numbers only: YAML booleans are ints in Python, but a limit written as `yes` is a
    # mistake, not 1.0; a quoted "1.5" is a string.
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise JointLimitsError(
            f"joint '{joint}': {key} must be a number, got {value!r} (not a number)",
            problem=f"must be a number, got {value!r}",
            **where,
        )
    number = float(value)
    if not np.isfinite(number):
        raise JointLimitsError(
            f"joint '{joint}': {key} = {value!r} is not finite",
            problem=f"must be finite, got {value!r}",
            **where,
        )
    return number


def _check_entry(index: int, name: str, lower: float, upper: float, max_velocity: float) -> None:
    if not lower < upper:
        raise JointLimitsError(
            f"joint '{name}': lower limit {lower} must be below upper {upper}",
            index=index,
            joint=name,
            key="lower",
            problem=f"must be below upper ({upper:g}), got {lower:g}",
        )
    if not max_velocity > 0:
        raise JointLimitsError(
            f"joint '{name}': max_velocity must be > 0, got {max_velocity}",
            index=index,
            joint=name,
            key="max_velocity",
            problem=f"must be > 0, got {max_velocity:g}",
        )
