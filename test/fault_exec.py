"""Start a node with a storage fault prepared around it (test helper, run as ``python -m``).

``python -m fault_exec MODULE ARGS...`` (with test/ on PYTHONPATH) runs MODULE as
``__main__`` after, as the environment asks:

- ``FAULT_TMPFS=DIR``: unshare a private mount namespace and mount a small tmpfs on DIR,
  seen by this process only; the test later runs ``nsenter -t PID -m mount -o remount,ro
  DIR`` to make it read-only under the running node (a real EROFS), and reads the files
  through ``/proc/PID/root/DIR``;
- ``FAULT_UID=N``: drop to uid and gid N (root ignores permission bits, so an unwritable
  folder gives EACCES only to an unprivileged process).

Needs root (or a user namespace) for the mount; the tests skip when this sandbox refuses.
"""

from __future__ import annotations

import ctypes
import os
import runpy
import subprocess
import sys

CLONE_NEWNS = 0x00020000


def main() -> None:
    tmpfs = os.environ.pop("FAULT_TMPFS", "")
    if tmpfs:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        if libc.unshare(CLONE_NEWNS) != 0:
            sys.exit(f"fault_exec: unshare(CLONE_NEWNS): {os.strerror(ctypes.get_errno())}")
        subprocess.run(["mount", "--make-rprivate", "/"], check=True)
        os.makedirs(tmpfs, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", tmpfs], check=True)
    uid = os.environ.pop("FAULT_UID", "")
    if uid:
        os.setgroups([])
        os.setgid(int(uid))
        os.setuid(int(uid))
    module, sys.argv = sys.argv[1], sys.argv[1:]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
