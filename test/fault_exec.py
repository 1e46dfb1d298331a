"""Start a node with a storage fault prepared around it (test helper, run as ``python -m``).

``python -m fault_exec MODULE ARGS...`` (with test/ on PYTHONPATH) runs MODULE as
``__main__`` after, as the environment asks:

- ``FAULT_TMPFS=DIR``: unshare a private mount namespace and mount a small tmpfs on DIR,
  seen by this process only; the test later runs ``nsenter -t PID -m mount -o remount,ro
  DIR`` to make it read-only under the running node (a real EROFS), and reads the files
  through ``/proc/PID/root/DIR``;
- ``FAULT_DROP_DAC=1``: stay uid 0 but give up CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH
  (effective, permitted and bounding sets), the capabilities by which root ignores
  permission bits: a folder chmod'ed 0555 then refuses this process with a real EACCES,
  while it can still read a root-only interpreter (its owner bits allow it), which a drop
  to an unprivileged uid cannot.

Needs root (or a user namespace) for the mount and CAP_SETPCAP for the capability drop; the
tests skip when this sandbox refuses.
"""

from __future__ import annotations

import ctypes
import os
import runpy
import subprocess
import sys

CLONE_NEWNS = 0x00020000
PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE = 1
CAP_DAC_READ_SEARCH = 2
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def drop_dac_capabilities() -> None:
    """Give up root's permission-bit overrides for this process and anything it execs."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    caps = (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH)
    for cap in caps:
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            sys.exit(
                f"fault_exec: prctl(PR_CAPBSET_DROP, {cap}): {os.strerror(ctypes.get_errno())}"
            )
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        sys.exit(f"fault_exec: capget: {os.strerror(ctypes.get_errno())}")
    mask = ~sum(1 << cap for cap in caps) & 0xFFFFFFFF  # both caps are in the first word
    data[0].effective &= mask
    data[0].permitted &= mask
    data[0].inheritable &= mask
    if libc.capset(ctypes.byref(header), data) != 0:
        sys.exit(f"fault_exec: capset: {os.strerror(ctypes.get_errno())}")


def main() -> None:
    tmpfs = os.environ.pop("FAULT_TMPFS", "")
    if tmpfs:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        if libc.unshare(CLONE_NEWNS) != 0:
            sys.exit(f"fault_exec: unshare(CLONE_NEWNS): {os.strerror(ctypes.get_errno())}")
        subprocess.run(["mount", "--make-rprivate", "/"], check=True)
        os.makedirs(tmpfs, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", tmpfs], check=True)
    if os.environ.pop("FAULT_DROP_DAC", ""):
        drop_dac_capabilities()
    module, sys.argv = sys.argv[1], sys.argv[1:]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
