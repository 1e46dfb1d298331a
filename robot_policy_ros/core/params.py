"""Parameter specifications and their validation, independent of rclpy.

Every node describes its parameters as a list of :class:`ParamSpec`. The ROS layer
(:mod:`robot_policy_ros.nodes.params`) declares them with descriptors built from these
specs; the validation itself lives here so it is unit-tested without ROS.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

ParamValue = bool | int | float | str | list[bool] | list[int] | list[float] | list[str]


class ParameterError(ValueError):
    """A parameter value that the node cannot run with. The message names value and fix."""


@dataclass(frozen=True)
class ParamSpec:
    """One node parameter: name, default (which also fixes its type), description, range.

    Attributes:
        name: parameter name as seen by ``ros2 param``.
        default: default value; its Python type is the parameter type (``float`` defaults
            must be written as floats, e.g. ``50.0``).
        description: one sentence, shown by ``ros2 param describe``.
        min_value / max_value: inclusive numeric range (for numbers and number lists).
        choices: allowed values for a string parameter.
        read_only: True for parameters only read at configure time.
        check: optional extra validation; returns an error message or None.
        fix: hint appended to error messages.
        element_type: element type of a list parameter whose default is empty.
    """

    name: str
    default: ParamValue
    description: str
    min_value: float | None = None
    max_value: float | None = None
    choices: tuple[str, ...] | None = None
    read_only: bool = True
    check: Callable[[Any], str | None] | None = field(default=None, compare=False)
    fix: str = ""
    element_type: type | None = None

    def __post_init__(self) -> None:
        if not self.description:
            raise ValueError(f"parameter '{self.name}' needs a description")
        if self.choices is not None and self.default not in self.choices:
            raise ValueError(f"parameter '{self.name}': default {self.default!r} not in choices")

    @property
    def kind(self) -> type:
        """The scalar Python type of the parameter (element type for lists)."""
        if isinstance(self.default, list):
            if self.element_type is not None:
                return self.element_type
            if not self.default:
                raise ValueError(f"parameter '{self.name}': empty list default needs element_type")
            return type(self.default[0])
        return type(self.default)

    @property
    def is_list(self) -> bool:
        return isinstance(self.default, list)

    def describe_range(self) -> str:
        """Human-readable allowed range, used in descriptions and error messages."""
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.min_value is not None and self.max_value is not None:
            return f"in [{self.min_value:g}, {self.max_value:g}]"
        if self.min_value is not None:
            return f">= {self.min_value:g}"
        if self.max_value is not None:
            return f"<= {self.max_value:g}"
        return ""

    def _error(self, value: Any, problem: str) -> ParameterError:
        hint = self.fix or (f"set it {self.describe_range()}" if self.describe_range() else "")
        msg = f"parameter '{self.name}' = {value!r}: {problem}"
        if hint:
            msg += f"; {hint}"
        return ParameterError(msg)

    def validate(self, value: Any) -> ParamValue:
        """Return ``value`` (ints widened to float for float parameters) or raise."""
        items = value if self.is_list else [value]
        if self.is_list and not isinstance(value, (list, tuple)):
            raise self._error(value, "expected a list")
        checked = []
        for item in items:
            if self.kind is float and isinstance(item, int) and not isinstance(item, bool):
                item = float(item)
            if type(item) is not self.kind:
                raise self._error(value, f"expected {self.kind.__name__}")
            if self.kind is float and not math.isfinite(item):
                raise self._error(value, "must be finite")
            if self.kind in (int, float):
                if self.min_value is not None and item < self.min_value:
                    raise self._error(value, f"below the minimum {self.min_value:g}")
                if self.max_value is not None and item > self.max_value:
                    raise self._error(value, f"above the maximum {self.max_value:g}")
            if self.choices is not None and item not in self.choices:
                raise self._error(value, "not an allowed value")
            checked.append(item)
        result: ParamValue = list(checked) if self.is_list else checked[0]
        if self.check is not None:
            problem = self.check(result)
            if problem:
                raise self._error(value, problem)
        return result


def validate_parameters(specs: Iterable[ParamSpec], values: dict[str, Any]) -> dict[str, Any]:
    """Validate ``values`` (missing names take their defaults) against ``specs``."""
    out: dict[str, Any] = {}
    for spec in specs:
        out[spec.name] = spec.validate(values.get(spec.name, spec.default))
    return out


def spec_names(specs: Sequence[ParamSpec]) -> list[str]:
    """Names of the specs, checking there are no duplicates."""
    names = [s.name for s in specs]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ValueError(f"duplicate parameter specs: {sorted(dupes)}")
    return names
