"""Give the C heap's free memory back to the OS (glibc ``malloc_trim``); no rclpy.

Why: a process that queues camera frames (bag_recorder: ~0.9 MB each, hundreds of them
when its disk thread falls behind) grows its heap by the queued frames. Once they are
written and freed, glibc keeps most of that memory: frames come from the heap rather than
from their own mappings (glibc's mmap threshold rises past the frame size the first time
such a block is freed), and small blocks allocated meanwhile pin the heap's top, so the
automatic trim at the top rarely fires. The resident size then stays at the queue's
high-water mark for good (benchmarks/soak.py: a recorder at 820 MB with an empty queue).
``malloc_trim(0)`` walks every arena and returns the free pages inside the heap too
(``madvise(MADV_DONTNEED)``), so the resident size follows the queue back down.

:class:`HeapTrimmer` does that from a background thread, only when glibc holds at least
``min_free_bytes`` free (``mallinfo2``) and that changed since the last trim, so an idle
or steady process pays one ``mallinfo2`` call per period. ctypes releases the GIL during
the call: other Python threads keep running; threads that allocate in the arena being
trimmed wait for its lock (milliseconds). Where glibc is absent (or too old for
``mallinfo2``) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.malloc_trim.restype = ctypes.c_int
        libc.mallinfo2.argtypes = []
        libc.mallinfo2.restype = _Mallinfo2
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


def heap_free_bytes() -> int | None:
    """Bytes glibc holds free in its heaps (``mallinfo2().fordblks``); None without glibc."""
    if _LIBC is None:
        return None
    return int(_LIBC.mallinfo2().fordblks)


def trim_heap() -> bool:
    """``malloc_trim(0)``: True if glibc gave memory back, False if not or unsupported."""
    if _LIBC is None:
        return False
    return bool(_LIBC.malloc_trim(0))


def resident_bytes() -> int | None:
    """This process's resident size (``/proc/self/statm``); None where it cannot be read."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class HeapTrimmer:
    """Every ``period_s``, trims the heap when at least ``min_free_bytes`` are free in it
    and something changed since the last trim.

    glibc still counts trimmed pages as free, so "free" alone would trim every period
    once a queue has backed up; a trim runs again only when the free heap changed by
    ``min_free_bytes`` or the resident size grew by that much since the last one (freed
    memory that was used again and freed again). ``trims`` counts the trims that ran.
    ``supported`` is False where glibc is absent; then :meth:`start` starts nothing.
    """

    def __init__(self, period_s: float = 2.0, min_free_bytes: int = 32 * 1024 * 1024) -> None:
        if period_s <= 0 or min_free_bytes < 0:
            raise ValueError("period_s must be > 0 and min_free_bytes >= 0")
        self.period_s = float(period_s)
        self.min_free_bytes = int(min_free_bytes)
        self.supported = _LIBC is not None
        self.trims = 0
        self._after_last: tuple[int, int | None] | None = None  # (free, resident)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> bool:
        """One period's work: trim if enough is free and changed. True if it trimmed."""
        free = heap_free_bytes()
        if free is None or free < self.min_free_bytes:
            return False
        if self._after_last is not None:
            last_free, last_resident = self._after_last
            resident = resident_bytes()
            grew = (
                resident is None
                or last_resident is None
                or resident - last_resident >= self.min_free_bytes
            )
            if abs(free - last_free) < self.min_free_bytes and not grew:
                return False
        trim_heap()
        self.trims += 1
        self._after_last = (heap_free_bytes() or 0, resident_bytes())
        return True

    def start(self) -> HeapTrimmer:
        if self.supported and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="heap-trimmer", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self.check()
