"""The benchmarks' /proc helpers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from robot_policy_ros.bench.procstat import pin_process

# A child with a second thread already running when it is pinned.
CHILD = (
    "import threading, time; "
    "threading.Thread(target=time.sleep, args=(30,)).start(); time.sleep(30)"
)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to pin to one")
def test_pin_process_pins_every_existing_thread():
    cpu = max(os.sched_getaffinity(0))
    child = subprocess.Popen([sys.executable, "-c", CHILD])
    try:
        tasks = Path(f"/proc/{child.pid}/task")
        deadline = time.monotonic() + 10
        while len(list(tasks.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pin_process(child.pid, {cpu}) >= 2
        for task in tasks.iterdir():
            assert os.sched_getaffinity(int(task.name)) == {cpu}
    finally:
        child.kill()
        child.wait()
