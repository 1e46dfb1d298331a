"""Small measurement helpers shared by the benchmarks (Linux /proc; no rclpy)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far, all threads (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MiB (VmRSS of /proc/PID/status); NaN if unknown."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return math.nan


def diag_number(values: Mapping[str, str], key: str) -> float:
    """A diagnostics key-value as a number; NaN when absent or not a number."""
    try:
        return float(values.get(key, "nan"))
    except ValueError:
        return math.nan


def pin_process(pid: int, cpus: set[int]) -> int:
    """Restrict every thread of a running process to ``cpus`` (threads it starts later
    inherit it); returns how many threads were pinned. Linux only (/proc/PID/task)."""
    pinned = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), cpus)
            pinned += 1
        except (ProcessLookupError, PermissionError):  # a thread that just ended
            continue
    return pinned
