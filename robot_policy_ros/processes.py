"""Run ROS 2 nodes of this package as child processes (demo, benchmarks and tests).

No rclpy here: a :class:`NodeProcess` is ``python -m MODULE [args] --ros-args ...`` in its
own process group, its output captured to a log file, stopped with SIGINT as Ctrl-C would.
"""

from __future__ import annotations

import fcntl
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO

from robot_policy_ros.core.transport import dds_profile_env

PACKAGE_ROOT = Path(__file__).resolve().parents[1]

#: Domain IDs that map to DDS ports outside the Linux ephemeral range on every platform.
SAFE_DOMAIN_IDS = tuple(range(1, 102)) + tuple(range(215, 233))

_LOCK_DIR = Path(tempfile.gettempdir()) / "robot_policy_ros-domain-locks"


class DomainLease:
    """A ROS_DOMAIN_ID held exclusively (an flock) by this process until released.

    Tests, benchmarks and the demo on one machine lease their domains, so two concurrent
    runs never share one: a random pick alone collides often once a test suite walks
    through dozens of domains.
    """

    def __init__(self, domain_id: int, handle: IO[str]) -> None:
        self.domain_id = domain_id
        self._handle: IO[str] | None = handle

    def release(self) -> None:
        """Give the domain back (also happens when the process exits)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def lease_domain_id(candidates: Iterable[int] | None = None) -> DomainLease:
    """Lease the first free domain of ``candidates`` (default: safe IDs, random start)."""
    if candidates is None:
        start = random.SystemRandom().randrange(len(SAFE_DOMAIN_IDS))
        candidates = SAFE_DOMAIN_IDS[start:] + SAFE_DOMAIN_IDS[:start]
    _LOCK_DIR.mkdir(parents=True, exist_ok=True)
    for domain_id in candidates:
        handle = open(_LOCK_DIR / f"{domain_id}.lock", "w")  # noqa: SIM115 - held while leased
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        return DomainLease(domain_id, handle)
    raise RuntimeError("no free ROS_DOMAIN_ID: every candidate is leased by another run")


_process_lease: DomainLease | None = None


def isolated_ros_env(domain_id: int | None = None, **extra: str) -> dict[str, str]:
    """Environment for nodes that must stay on this machine, in a DDS domain of their own.

    Discovery is limited to localhost and ``ROS_DOMAIN_ID`` is ``domain_id`` (a random one
    in 1..101 when None), so concurrent runs never see each other. This package's source
    tree is put first on PYTHONPATH so child processes import the same code, and Fast DDS
    loads config/fastdds.xml unless a profile is already set (``extra`` may set or clear it).
    """
    env = dict(os.environ)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    if domain_id is None:
        global _process_lease
        if _process_lease is None:
            _process_lease = lease_domain_id()
        domain_id = _process_lease.domain_id
    env["ROS_DOMAIN_ID"] = str(domain_id)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH", "")) if p
    )
    # config/fastdds.xml unless the caller's environment names a profile of its own
    env.update(dds_profile_env(environ=env))
    env.update(extra)
    return env


class NodeProcess:
    """A node (``python -m module``) in its own process group, output captured to a file.

    ``executable`` (a path, e.g. an installed console script) runs instead of
    ``python -m module``; ``module`` then only names the process in messages and its log.
    """

    def __init__(
        self,
        module: str,
        args: Sequence[str] = (),
        ros_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        log_path: str | os.PathLike[str] | None = None,
        executable: str | None = None,
    ) -> None:
        self.module = module
        if log_path is None:
            import tempfile

            fd, name = tempfile.mkstemp(prefix=module.rsplit(".", 1)[-1] + "-", suffix=".log")
            os.close(fd)
            log_path = name
        self.log_path = Path(log_path)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - open while the process runs
        cmd = [executable] if executable else [sys.executable, "-m", module]
        cmd += args
        if ros_args:
            cmd += ["--ros-args", *ros_args]
        self.cmd = cmd
        self.proc = subprocess.Popen(
            cmd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            cwd=str(PACKAGE_ROOT),
            start_new_session=True,
        )

    def output(self) -> str:
        """Everything the process printed so far."""
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int:
        """SIGINT (as Ctrl-C would), then SIGKILL if it does not exit; returns the code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        if not self._log.closed:
            self._log.close()
        return self.proc.returncode

    def wait_for_output(self, text: str, timeout: float = 30.0) -> bool:
        """Wait until ``text`` appears in the output (False on timeout or exit without it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return True
            if not self.alive():
                return text in self.output()
            time.sleep(0.05)
        return False
